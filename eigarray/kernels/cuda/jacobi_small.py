"""Batched Jacobi eigensolver on the GPU, one thread per matrix (small ``n``).

The CPU kernel's algorithm (:mod:`eigarray.kernels.cpu.jacobi`), one matrix
per thread: row-cyclic two-sided Jacobi with Rutishauser's rotations on the
upper triangle of the caller's working copy ``A[b]``, the diagonal kept in
``w[b]`` (real) and eigenvectors accumulated in place in ``V[b]``; power-of-two
scaling, the relative threshold and stopping test of Demmel & Veselić, an
ascending selection sort that swaps ``w`` entries and ``V`` columns.  Same
arguments and outputs as the CPU driver ``jacobi_eigh`` (``sweeps[b] = -1``
when matrix ``b`` did not converge in ``max_sweeps`` sweeps).

For ``n <= MAX_N``: a thread's matrix and vectors (``2 n^2`` values, 32 for
``n = 4``) stay in L1, every thread of a warp runs the same rotation sequence
(divergence only where one lane skips a pair), and a batch of ``B`` matrices
fills ``B / 128`` blocks.  Above that the work per thread grows as ``n^3`` with
no parallelism inside a matrix: :mod:`.jacobi_block` (one block per matrix)
takes over.  Parameters of the rotations are computed in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .rotation import rotation as _rotation

__all__ = ["MAX_N", "launch"]

MAX_N = 4
_THREADS = 128


@cuda.jit
def _jacobi_small(A, w, V, tol, tiny, max_sweeps, want_vectors, sweeps, off):
    b = cuda.grid(1)
    if b >= A.shape[0]:
        return
    n = A.shape[1]

    # scale by 2**-e, e from the largest entry of the upper triangle
    amax = 0.0
    for i in range(n):
        amax = max(amax, abs(A[b, i, i].real))
        for j in range(i + 1, n):
            amax = max(amax, abs(A[b, i, j].real), abs(A[b, i, j].imag))
    e = math.frexp(amax)[1]
    h = e // 2
    f1 = math.ldexp(1.0, -h)
    f2 = math.ldexp(1.0, h - e)
    for i in range(n):
        w[b, i] = A[b, i, i].real * f1 * f2
        for j in range(i + 1, n):
            A[b, i, j] = A[b, i, j] * f1 * f2
    if want_vectors:
        for i in range(n):
            for j in range(n):
                V[b, i, j] = 1.0 if i == j else 0.0

    nsweeps = 0
    for _ in range(max_sweeps):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                a = A[b, p, q]
                r = abs(a)
                dp = w[b, p]
                dq = w[b, q]
                if r <= tol * math.sqrt(abs(dp)) * math.sqrt(abs(dq)) or r < tiny:
                    continue
                rotated = True
                c, s, tr = _rotation(dp, dq, r)
                ph = a / r
                se = s * ph
                sec = s * ph.conjugate()
                w[b, p] = dp - tr
                w[b, q] = dq + tr
                A[b, p, q] = 0.0
                for k in range(p):
                    g = A[b, k, p]
                    hh = A[b, k, q]
                    A[b, k, p] = c * g - sec * hh
                    A[b, k, q] = se * g + c * hh
                for k in range(p + 1, q):
                    g = A[b, p, k].conjugate()
                    hh = A[b, k, q]
                    A[b, p, k] = (c * g - sec * hh).conjugate()
                    A[b, k, q] = se * g + c * hh
                for k in range(q + 1, n):
                    g = A[b, p, k]
                    hh = A[b, q, k]
                    A[b, p, k] = c * g - se * hh
                    A[b, q, k] = sec * g + c * hh
                if want_vectors:
                    for k in range(n):
                        g = V[b, k, p]
                        hh = V[b, k, q]
                        V[b, k, p] = c * g - sec * hh
                        V[b, k, q] = se * g + c * hh
        if not rotated:
            break
        nsweeps += 1

    converged = True
    offb = 0.0
    for p in range(n - 1):
        for q in range(p + 1, n):
            r = abs(A[b, p, q])
            sp = math.sqrt(abs(w[b, p]))
            sq = math.sqrt(abs(w[b, q]))
            if not (r <= tol * sp * sq or r < tiny):
                converged = False
            if r >= tiny:
                offb = max(offb, r / sp / sq)
    sweeps[b] = nsweeps if converged else -1
    off[b] = offb

    # ascending selection sort, columns of V follow; scale back
    for k in range(n - 1):
        imin = k
        for i in range(k + 1, n):
            if w[b, i] < w[b, imin]:
                imin = i
        if imin != k:
            x = w[b, k]
            w[b, k] = w[b, imin]
            w[b, imin] = x
            if want_vectors:
                for i in range(n):
                    y = V[b, i, k]
                    V[b, i, k] = V[b, i, imin]
                    V[b, i, imin] = y
    g1 = math.ldexp(1.0, h)
    g2 = math.ldexp(1.0, e - h)
    for i in range(n):
        w[b, i] = w[b, i] * g1 * g2


def launch(A, w, V, tol, max_sweeps, want_vectors, sweeps, off):
    """Run :func:`_jacobi_small` on device arrays (CuPy arrays work directly).

    Same arguments as the CPU driver ``jacobi_eigh``: ``A`` ``(B, n, n)``
    C-contiguous working copy (overwritten), outputs ``w`` ``(B, n)``, ``V``
    ``(B, n, n)``, ``sweeps`` ``(B,)`` int32, ``off`` ``(B,)``.  Asynchronous
    on the default stream; no host synchronisation.
    """
    B = A.shape[0]
    if B == 0:
        return
    tiny = float(np.finfo(np.dtype(str(w.dtype))).tiny)
    blocks = (B + _THREADS - 1) // _THREADS
    _jacobi_small[blocks, _THREADS](
        A, w, V, float(tol), tiny, int(max_sweeps), bool(want_vectors), sweeps, off
    )
