"""Batched Jacobi eigensolver on the GPU, one thread block per matrix.

Two-sided Jacobi with the parallel round-robin (circle-method, Brent-Luk)
ordering of :mod:`eigarray._jacobi_reference`: a sweep is ``N - 1`` rounds
(``N = n + n % 2``); in round ``r`` the pairs are ``(N-1, r)`` and
``((r + k) % (N-1), (r - k) % (N-1))``, ``k = 1 .. N/2 - 1`` (pairs holding
the dummy index ``n`` of an odd ``n`` are skipped), all disjoint, so a round
is done in three block-wide phases separated by ``syncthreads``:

1. one thread per pair: threshold test, Rutishauser's ``c``, ``s e``, ``t r``
   (float64) into shared memory, diagonal update in shared memory;
2. ``A <- J^H A``: rows ``p, q`` of every pair, one thread per (pair, column);
3. ``A <- A J`` and ``V <- V J``: columns ``p, q``, one thread per (row, pair),
   except that the pair's own 2x2 block gets exact zeros off the diagonal and
   the t-updated diagonal.

The working matrix is the caller's full-storage working copy ``A[b]`` (L1/L2
resident, ``n^2`` values), the eigenvectors accumulate in ``V[b]``; the
diagonal, the round's pairs and cosines live in shared memory, the ``s e`` of
the round in a ``(B, n/2)`` device scratch of ``A``'s dtype (so one kernel
serves real and complex dtypes).
Power-of-two scaling, the relative threshold and stopping test of Demmel &
Veselić, the ascending sort and the outputs are those of the CPU driver
``jacobi_eigh`` (``sweeps[b] = -1`` when matrix ``b`` did not converge in
``max_sweeps`` sweeps).  Supports ``n <= MAX_N``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, int32, int64

from ._launch import small_grids_allowed
from .rotation import rotation as _rotation
from .rotation import round_robin_pair as _pair

__all__ = ["MAX_N", "launch"]

MAX_N = 128
_HALF = MAX_N // 2


@cuda.jit
def _jacobi_block(A, w, V, tol, tiny, max_sweeps, want_vectors, sweeps, off, SE):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    T = cuda.blockDim.x
    n = A.shape[1]
    N = n + (n & 1)
    m = N // 2
    d = cuda.shared.array(MAX_N, float64)  # diagonal (scaled)
    pp = cuda.shared.array(_HALF, int32)  # pairs of the round; -1: skipped
    qq = cuda.shared.array(_HALF, int32)
    cs = cuda.shared.array(_HALF, float64)  # c; s e is in SE[b, k] (dtype of A)
    order = cuda.shared.array(MAX_N, int32)
    state = cuda.shared.array(3, int64)  # scale exponent, rotations in sweep, sweeps

    # scale by 2**-e, e from the largest entry of the upper triangle
    if tid == 0:
        amax = 0.0
        for i in range(n):
            amax = max(amax, abs(A[b, i, i].real))
            for j in range(i + 1, n):
                amax = max(amax, abs(A[b, i, j].real), abs(A[b, i, j].imag))
        state[0] = math.frexp(amax)[1]
        state[2] = 0
    cuda.syncthreads()
    e = int(state[0])
    h = e // 2
    f1 = math.ldexp(1.0, -h)
    f2 = math.ldexp(1.0, h - e)
    for idx in range(tid, n * n, T):
        i = idx // n
        j = idx % n
        if i < j:
            x = A[b, i, j] * f1 * f2
            A[b, i, j] = x
            A[b, j, i] = x.conjugate()
        elif i == j:
            d[i] = A[b, i, i].real * f1 * f2
            A[b, i, i] = d[i]
        if want_vectors:
            V[b, i, j] = 1.0 if i == j else 0.0
    cuda.syncthreads()

    for _ in range(max_sweeps):
        if tid == 0:
            state[1] = 0
        cuda.syncthreads()
        for rnd in range(N - 1):
            # 1. rotation parameters, one thread per pair
            for k in range(tid, m, T):
                p, q = _pair(rnd, k, N)
                pp[k] = -1
                if q < n:
                    a = A[b, p, q]
                    r = abs(a)
                    dp = d[p]
                    dq = d[q]
                    if r > tol * math.sqrt(abs(dp)) * math.sqrt(abs(dq)) and r >= tiny:
                        c, s, tr = _rotation(dp, dq, r)
                        ph = a / r
                        pp[k] = p
                        qq[k] = q
                        cs[k] = c
                        SE[b, k] = s * ph
                        d[p] = dp - tr
                        d[q] = dq + tr
                        cuda.atomic.add(state, 1, 1)
            cuda.syncthreads()
            # 2. rows p, q of J^H A
            for idx in range(tid, m * n, T):
                k = idx // n
                j = idx % n
                p = pp[k]
                if p >= 0:
                    q = qq[k]
                    c = cs[k]
                    se = SE[b, k]
                    x = A[b, p, j]
                    y = A[b, q, j]
                    A[b, p, j] = c * x - se * y
                    A[b, q, j] = se.conjugate() * x + c * y
            cuda.syncthreads()
            # 3. columns p, q of (J^H A) J and of V J; the 2x2 block of the
            #    pair gets the exact zeros and the t-updated diagonal
            for idx in range(tid, n * m, T):
                i = idx // m
                k = idx % m
                p = pp[k]
                if p >= 0:
                    q = qq[k]
                    c = cs[k]
                    se = SE[b, k]
                    if i == p:
                        A[b, p, p] = d[p]
                        A[b, p, q] = 0.0
                    elif i == q:
                        A[b, q, p] = 0.0
                        A[b, q, q] = d[q]
                    else:
                        x = A[b, i, p]
                        y = A[b, i, q]
                        A[b, i, p] = c * x - se.conjugate() * y
                        A[b, i, q] = se * x + c * y
                    if want_vectors:
                        x = V[b, i, p]
                        y = V[b, i, q]
                        V[b, i, p] = c * x - se.conjugate() * y
                        V[b, i, q] = se * x + c * y
            cuda.syncthreads()
        done = state[1] == 0
        cuda.syncthreads()
        if done:
            break
        if tid == 0:
            state[2] += 1

    # convergence, off, ascending order (one thread), then the outputs
    if tid == 0:
        converged = True
        offb = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                r = abs(A[b, p, q])
                sp = math.sqrt(abs(d[p]))
                sq = math.sqrt(abs(d[q]))
                if not (r <= tol * sp * sq or r < tiny):
                    converged = False
                if r >= tiny:
                    offb = max(offb, r / sp / sq)
        sweeps[b] = state[2] if converged else -1
        off[b] = offb
        for i in range(n):
            x = d[i]
            k = i
            while k > 0 and d[order[k - 1]] > x:
                order[k] = order[k - 1]
                k -= 1
            order[k] = i
    cuda.syncthreads()
    g1 = math.ldexp(1.0, h)
    g2 = math.ldexp(1.0, e - h)
    for k in range(tid, n, T):
        w[b, k] = d[order[k]] * g1 * g2
    if want_vectors:
        for idx in range(tid, n * n, T):  # A is free now: a copy of V
            A[b, idx // n, idx % n] = V[b, idx // n, idx % n]
        cuda.syncthreads()
        for idx in range(tid, n * n, T):
            i = idx // n
            k = idx % n
            V[b, i, k] = A[b, i, order[k]]


def launch(A, w, V, tol, max_sweeps, want_vectors, sweeps, off):
    """Run :func:`_jacobi_block` on device arrays (CuPy arrays work directly).

    Same arguments as the CPU driver ``jacobi_eigh``: ``A`` ``(B, n, n)``
    C-contiguous working copy (overwritten; ``n <= MAX_N``), outputs ``w``
    ``(B, n)``, ``V`` ``(B, n, n)``, ``sweeps`` ``(B,)`` int32, ``off``
    ``(B,)``.  One block of 32 to 256 threads per matrix; allocates the
    ``(B, (n + 1) // 2)`` scratch ``SE``; asynchronous on the default stream,
    no host synchronisation.
    """
    B, n = A.shape[0], A.shape[1]
    if B == 0 or n == 0:
        return
    tiny = float(np.finfo(np.dtype(str(w.dtype))).tiny)
    SE = cuda.device_array((B, (n + 1) // 2), dtype=np.dtype(str(A.dtype)))
    work = max(1, n // 2) * n
    threads = min(256, max(32, 32 * ((work + 31) // 32)))
    with small_grids_allowed():
        _jacobi_block[B, threads](
            A, w, V, float(tol), tiny, int(max_sweeps), bool(want_vectors), sweeps, off, SE
        )
