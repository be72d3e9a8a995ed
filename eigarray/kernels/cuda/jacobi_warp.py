"""Batched Jacobi eigensolver on the GPU, matrices in shared memory, ``n <= 32``.

Two-sided Jacobi with the round-robin (Brent-Luk) ordering of
:mod:`.jacobi_block` and :mod:`eigarray._jacobi_reference`, Rutishauser's
rotations, the relative threshold and stopping test of Demmel & Veselić and
power-of-two scaling: the algorithm of the other kernels, laid out so that a
matrix never leaves shared memory.

* ``S`` lanes per matrix (the power of two at or above ``n``), up to 128
  threads per block, so a block holds ``128 / S`` matrices (fewer where their
  shared memory would pass 40 KiB).  Each matrix, padded to an even order
  ``N`` with a zero row and column, and its eigenvectors, stored transposed
  so that the lanes rotating rows of ``V`` touch consecutive words, live in
  shared memory with rows padded to ``N + 1``.  The input is read once, only
  the triangle ``UPLO`` names, and never written: no working copy.
* A round of ``N / 2`` disjoint rotations is two steps between barriers.  The
  lanes of the pairs compute ``c`` and ``s e`` and update the diagonal and
  their own 2x2 blocks.  Then every off-diagonal 2x2 block ``(k, l)``,
  ``k < l``, of the round's pairs is updated in one go, ``J_k^H A_kl J_l``,
  and written with its mirror ``A_lk = A_kl^H`` (the matrix stays Hermitian
  to the last bit), while the other lanes rotate ``V``'s columns.  No entry
  is read by one lane and written by another within a step.
* ``n`` is a compile-time constant: one kernel per ``(n, dtype)``, compiled
  on first use (not cached on disk), with fixed-trip loops and shared
  arrays of exact size.
* Each lane has a fixed number of off-diagonal blocks and ``V`` items per
  round and applies them without a branch (a pair that does not rotate has
  ``c = 1``, ``s e = 0``: an exact identity), so that their loads overlap.
* Only block-wide barriers (``syncthreads``, ``syncthreads_or``) are used,
  so the kernel also runs under the CUDA simulator.

Measured on an H100 (float64, matrices per second, kernel alone): 2.2e8 at
``n = 3`` (3.5x ``cupy.linalg.eigh``), 6.5e7 at ``n = 8`` (2.5x), 2.0e7 at
``n = 12`` (1.3x), 9.4e6 at ``n = 16`` (0.6x), 1.2e6 at ``n = 32`` (0.7x).
Shared memory bounds the matrices resident per multiprocessor at ``n = 32``
(12 warps of 64), and the latency of the shared-memory steps then bounds
the rate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64, from_dtype, int32

from ._launch import small_grids_allowed
from .rotation import left as _left
from .rotation import right as _right
from .rotation import rotation as _rotation
from .rotation import round_robin_pair as _pair

__all__ = ["MAX_N", "MIN_N", "launch"]

MIN_N = 1
MAX_N = 32
_MAX_THREADS = 128
_MAX_SHARED = 40 * 1024  # bytes of shared memory per block (static limit: 48 KiB)
_kernels: dict = {}


def _shape(n: int, itemsize: int) -> tuple[int, int]:
    """Lanes per matrix ``S`` and threads per block ``T`` (a multiple of ``S``).

    ``S`` is the power of two at or above ``n`` (lane ``i`` owns row ``i`` of
    the eigenvectors; more lanes per matrix measured slower on an H100 for
    every ``n`` but 32, where two warps per matrix gained 7%).  ``T`` is 128
    threads, fewer where the matrices of a block would need more shared
    memory than ``_MAX_SHARED``.
    """
    S = 2
    while S < n:
        S *= 2
    N = n + (n & 1)
    per_matrix = 2 * N * (N + 1) * itemsize
    T = max(_MAX_THREADS, S)
    while T > S and T // S * per_matrix > _MAX_SHARED:
        T //= 2
    return S, T


def _make(n: int, dtype: np.dtype):
    """The kernel for order ``n`` and element type ``dtype``, its ``G`` and ``T``."""
    N = n + (n & 1)
    M = N // 2
    LD = N + 1
    S, T = _shape(n, np.dtype(dtype).itemsize)
    G = T // S
    DT = from_dtype(dtype)
    RT = from_dtype(np.finfo(dtype).dtype)
    # the off-diagonal blocks (k, l), k < l, of a round
    pairs = [(k, l) for k in range(M) for l in range(k + 1, M)]
    NB = len(pairs)
    BK = np.array([k for k, _ in pairs] + [0], dtype=np.int32)
    BL = np.array([l for _, l in pairs] + [0], dtype=np.int32)
    # fixed trip counts per lane (unrolled, loads of different items overlap)
    NBL = (NB + S - 1) // S  # blocks per lane
    NBL1 = max(NBL, 1)
    NVL = (M * n + S - 1) // S  # (pair, row) items of V per lane

    @cuda.jit
    def kernel(A, upper, w, V, tol, tiny, max_sweeps, want_vectors, sweeps, off):
        sA = cuda.shared.array((G, N, LD), DT)
        sV = cuda.shared.array((G, N, LD), DT)  # sV[g, p, i] = V[i, p] of matrix g
        d = cuda.shared.array((G, N), RT)
        pp = cuda.shared.array((G, M), int32)
        qq = cuda.shared.array((G, M), int32)
        pc = cuda.shared.array((G, M), RT)
        pse = cuda.shared.array((G, M), DT)
        red = cuda.shared.array(T, float64)
        flags = cuda.shared.array(T, int32)
        kk = cuda.local.array(NBL1, int32)  # this lane's blocks (k, l)
        ll = cuda.local.array(NBL1, int32)
        tid = cuda.threadIdx.x
        g = tid // S
        lane = tid % S
        b = cuda.blockIdx.x * G + g
        live = b < A.shape[0]  # the last block's spare groups hold a zero matrix
        for j in range(NBL):
            t = min(lane + j * S, NB)  # t == NB: no block (BK, BL end in a spare 0)
            kk[j] = BK[t]
            ll[j] = BL[t]

        # load the triangle, mirror it; zero padding; V = I
        for idx in range(lane, N * N, S):
            i = idx // N
            j = idx % N
            if want_vectors:
                sV[g, i, j] = 1.0 if i == j else 0.0
            if i >= n or j >= n or not live:
                sA[g, i, j] = 0.0
            elif i == j:
                sA[g, i, i] = A[b, i, i].real
            elif (i < j) == upper:
                x = A[b, i, j]
                sA[g, i, j] = x
                sA[g, j, i] = x.conjugate()
        cuda.syncthreads()

        # scale by 2**-e, e from the largest entry of the matrix
        amax = 0.0
        for idx in range(lane, N * N, S):
            x = sA[g, idx // N, idx % N]
            amax = max(amax, abs(x.real), abs(x.imag))
        red[tid] = amax
        cuda.syncthreads()
        amax = 0.0
        for i in range(S):
            amax = max(amax, red[g * S + i])
        e = math.frexp(amax)[1]
        h = e // 2
        f1 = math.ldexp(1.0, -h)
        f2 = math.ldexp(1.0, h - e)
        cuda.syncthreads()
        for idx in range(lane, N * N, S):
            i = idx // N
            j = idx % N
            sA[g, i, j] = sA[g, i, j] * f1 * f2
        cuda.syncthreads()
        if lane < N:
            d[g, lane] = sA[g, lane, lane].real
        cuda.syncthreads()

        nsweeps = 0
        for _ in range(max_sweeps):
            rotated = 0
            for rnd in range(N - 1):
                # 1. the pairs' rotations, diagonals and own 2x2 blocks
                if lane < M:
                    p, q = _pair(rnd, lane, N)
                    pp[g, lane] = p
                    qq[g, lane] = q
                    c = 1.0
                    se = sA[g, p, q] * 0.0
                    if q < n:
                        a = sA[g, p, q]
                        r = abs(a)
                        dp = d[g, p]
                        dq = d[g, q]
                        if r > tol * math.sqrt(abs(dp)) * math.sqrt(abs(dq)) and r >= tiny:
                            c, s, tr = _rotation(dp, dq, r)
                            se = s * (a / r)
                            dp = dp - tr
                            dq = dq + tr
                            d[g, p] = dp
                            d[g, q] = dq
                            sA[g, p, p] = dp
                            sA[g, q, q] = dq
                            sA[g, p, q] = 0.0
                            sA[g, q, p] = 0.0
                            rotated = 1
                    pc[g, lane] = c
                    pse[g, lane] = se
                cuda.syncthreads()
                # 2. off-diagonal blocks J_k^H A_kl J_l and their mirrors; a
                #    pair that does not rotate has c = 1, s e = 0: exact identity
                for j in range(NBL):
                    k = kk[j]
                    l = ll[j]
                    if k != l:
                        p1 = pp[g, k]
                        q1 = qq[g, k]
                        p2 = pp[g, l]
                        q2 = qq[g, l]
                        c1 = pc[g, k]
                        s1 = pse[g, k]
                        c2 = pc[g, l]
                        s2 = pse[g, l]
                        x11 = sA[g, p1, p2]
                        x12 = sA[g, p1, q2]
                        x21 = sA[g, q1, p2]
                        x22 = sA[g, q1, q2]
                        y11, y21 = _left(c1, s1, x11, x21)
                        y12, y22 = _left(c1, s1, x12, x22)
                        z11, z12 = _right(c2, s2, y11, y12)
                        z21, z22 = _right(c2, s2, y21, y22)
                        sA[g, p1, p2] = z11
                        sA[g, p1, q2] = z12
                        sA[g, q1, p2] = z21
                        sA[g, q1, q2] = z22
                        sA[g, p2, p1] = z11.conjugate()
                        sA[g, q2, p1] = z12.conjugate()
                        sA[g, p2, q1] = z21.conjugate()
                        sA[g, q2, q1] = z22.conjugate()
                #    and V's columns: item (k, i) rotates row i of pair k
                if want_vectors:
                    for j in range(NVL):
                        it = lane + j * S
                        if it < M * n:
                            k = it // n
                            i = it % n
                            p = pp[g, k]
                            q = qq[g, k]
                            sV[g, p, i], sV[g, q, i] = _right(pc[g, k], pse[g, k],
                                                              sV[g, p, i], sV[g, q, i])
                cuda.syncthreads()
            # a sweep counts for a matrix while it rotates; stop when none does
            flags[tid] = rotated
            if cuda.syncthreads_or(rotated) == 0:
                break
            for i in range(M):
                if flags[g * S + i] != 0:
                    nsweeps += 1
                    break

        # convergence and off (lane p takes the row p), ascending ranks
        conv = 1
        offb = 0.0
        if lane < n:
            sp = math.sqrt(abs(d[g, lane]))
            for q in range(lane + 1, n):
                r = abs(sA[g, lane, q])
                sq = math.sqrt(abs(d[g, q]))
                if not (r <= tol * sp * sq or r < tiny):
                    conv = 0
                if r >= tiny:
                    offb = max(offb, r / sp / sq)
        red[tid] = offb
        flags[tid] = conv
        cuda.syncthreads()
        if not live:
            return
        if lane == 0:
            for i in range(1, S):
                offb = max(offb, red[g * S + i])
                conv = min(conv, flags[g * S + i])
            sweeps[b] = nsweeps if conv != 0 else -1
            off[b] = offb
        if lane < n:
            x = d[g, lane]
            rank = 0
            for j in range(n):
                y = d[g, j]
                if y < x or (y == x and j < lane):
                    rank += 1
            g1 = math.ldexp(1.0, h)
            g2 = math.ldexp(1.0, e - h)
            w[b, rank] = x * g1 * g2
            if want_vectors:
                for i in range(n):
                    V[b, i, rank] = sV[g, lane, i]

    return kernel, G, T


def launch(A, w, V, tol, max_sweeps, want_vectors, sweeps, off, *, upper=False):
    """Run the warp kernel for ``A.shape[-1]`` on device arrays (CuPy works directly).

    Same arguments as the CPU driver ``jacobi_eigh``, except that ``A``
    ``(B, n, n)``, ``MIN_N <= n <= MAX_N``, is only read, and only its lower
    triangle (its upper one when ``upper``).  Outputs ``w`` ``(B, n)``, ``V``
    ``(B, n, n)``, ``sweeps`` ``(B,)`` int32, ``off`` ``(B,)``.  Asynchronous
    on the default stream; no host synchronisation.
    """
    B, n = A.shape[0], A.shape[1]
    if B == 0:
        return
    if not MIN_N <= n <= MAX_N:
        raise ValueError(f"the warp kernel takes {MIN_N} <= n <= {MAX_N}; got n={n}")
    dtype = np.dtype(str(A.dtype))
    made = _kernels.get((n, dtype))
    if made is None:
        made = _kernels[(n, dtype)] = _make(n, dtype)
    kernel, G, T = made
    tiny = float(np.finfo(np.dtype(str(w.dtype))).tiny)
    with small_grids_allowed():
        kernel[(B + G - 1) // G, T](
            A, bool(upper), w, V, float(tol), tiny, int(max_sweeps), bool(want_vectors),
            sweeps, off)
