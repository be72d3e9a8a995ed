"""Numba kernels of the batched Jacobi eigensolver for ``(B, n, n)`` stacks.

Cyclic two-sided Jacobi with Rutishauser's rotation formulas, threshold
skipping and the relative stopping test of Demmel & Veselić: an off-diagonal
entry is left alone when ``|a_pq| <= tol * sqrt|a_pp| * sqrt|a_qq|`` (or when it
is below the smallest normal number of the dtype after scaling), and a matrix
has converged when a whole sweep leaves every pair alone.  Each matrix is first
scaled by the power of two that brings its largest entry into ``[0.5, 1)``
(exact, so entries near overflow or underflow are safe) and the eigenvalues are
scaled back at the end.  The diagonal is kept apart in a real vector and
updated by ``a_pp -= t |a_pq|``, ``a_qq += t |a_pq|``; the annihilated entry is
set to an exact zero.  A Hermitian pair is reduced to the real case with the
phase ``e = a_pq / |a_pq|``: the rotation is ``J = [[c, s e], [-s conj(e), c]]``
on rows and columns ``p, q``, and ``A <- J^H A J``, ``V <- V J``.

Row-cyclic ordering ``(0, 1), (0, 2), ..., (n-2, n-1)``, applied to ``L``
matrices of the batch at once, one per SIMD lane: the working storage is
lane-interleaved (``M[i, j, l]`` is entry ``(i, j)`` of matrix ``l``), every
scalar operation of the algorithm becomes a loop over the lanes that LLVM
vectorises, and a lane whose pair is below the threshold gets the identity
rotation (``c = 1``, ``s = 0``), so each matrix sees exactly the arithmetic
it would see alone.  The ``L`` latency chains of the rotation parameters
(four divisions, four square roots) overlap, and the sweeps stop when no lane
rotates.  Only the upper triangle is updated (three loops, for the parts of
columns ``p, q`` above, between and right of ``p, q``); eigenvectors are
accumulated as rows of ``U = V^T``.  Measured on AVX-512 (Zen 5), this is
5-8x faster at ``n = 3`` than the same algorithm unrolled into registers one
matrix at a time, and 3-4x at ``n = 8`` than one matrix at a time with any of
the row-cyclic or round-robin orderings tried.  The lane storage has ``n + 1``
columns: a power-of-two row stride maps a column of lanes onto one L1 set
(2x slower at ``n = 32``).

Outputs of the driver :func:`jacobi_eigh`, per matrix ``b``:

``w[b]``
    eigenvalues in ascending order (real dtype);
``V[b]``
    eigenvectors in its columns, ``V[b][:, k]`` belonging to ``w[b, k]``, as
    :func:`numpy.linalg.eigh`; left untouched when ``want_vectors`` is false;
``sweeps[b]``
    the number of sweeps that applied at least one rotation (0 for a
    diagonal or zero matrix) when the matrix converged, ``-1`` when it did not
    converge within ``max_sweeps`` sweeps (``w``, ``V`` then hold the current
    approximation, sorted as usual);
``off[b]``
    the final off-diagonal measure ``max_{p<q} |a_pq| / sqrt(|a_pp a_qq|)``
    of the scaled matrix (entries below the smallest normal number count as
    zero); converged matrices have ``off <= tol``, up to the rounding of the
    division.

The kernels validate nothing and import nothing from eigarray.  ``A`` is a
C-contiguous ``(B, n, n)`` stack with both triangles filled; only its upper
triangle and the real part of its diagonal are read, and this kernel never
writes to it (the CUDA kernels, with the same signature, use it as scratch).
Threads follow :func:`numba.set_num_threads`.  No ``fastmath``: the relative
accuracy of Jacobi needs IEEE rounding.  Division by zero and overflow return
``inf``/``nan`` (``error_model="numpy"``) instead of raising, which also lets
the loops vectorise; NaN input gives NaN output and ``sweeps = -1``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..rotation import rotation

__all__ = ["JACOBI_MAX_N", "jacobi_eigh", "lapack_eigh"]

# Largest n for which this Jacobi kernel beats ``lapack_eigh`` (prange over
# LAPACK, one BLAS thread), float64 with eigenvectors, 2 threads on the 2-core
# AMD EPYC Zen 5 CI machine (numba 0.68.1, OpenBLAS 0.3.31); throughput ratio
# Jacobi / LAPACK-prange, median of 5, range over quiet runs:
#   n = 12: 2.2   16: 1.5-1.7   20: 1.3   24: 1.1-1.2   28: 0.8-1.2
#   n = 32: 0.75-0.94   48: 0.5   64: 0.45   128: 0.15
# Jacobi's ~7 sweeps of 6 n^3 flops lose to LAPACK's ~4 n^3 as n grows;
# near-ties go to Jacobi for its relative accuracy.  Re-measured against
# both other CPU kernels (one thread, CPU time, shared machine): Jacobi /
# LAPACK-prange 4.3 at n = 8, 2.4 at 12, 1.6 at 16, 1.0-1.2 at 24, 0.64 at
# 32; the tridiagonal kernel (``tridiagonal.py``, the path for n above this)
# ties Jacobi at n = 8 and is 1.7x / 3.0x faster at n = 12 / 24, but with
# normwise accuracy only, so the relative-accuracy range stays at 24.
JACOBI_MAX_N = 24

# Matrices processed together, one per SIMD lane (see the module docstring);
# measured best on AVX-512: 64 up to n = 8, 32 above (L2-resident lanes).
_LANES_SMALL = 64
_LANES_LARGE = 32


# --------------------------------------------------------------------------
# scalar building blocks
# --------------------------------------------------------------------------


_rotation = njit(cache=True, error_model="numpy", inline="always")(rotation)


@njit(cache=True, error_model="numpy", inline="always")
def _pow2_pair(e):
    """Two factors whose product is ``2**e``, each safely representable."""
    h = e // 2
    return math.ldexp(1.0, h), math.ldexp(1.0, e - h)


# --------------------------------------------------------------------------
# L matrices at once, lane-interleaved
# --------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _load(A, b0, M, d, U, ex, F, want_vectors):
    """Scale matrices ``b0 .. b0 + L - 1`` of ``A`` into the lanes.

    ``M[i, j, l]`` (``i < j``) and ``d[i, l]`` hold the strict upper triangle
    and the diagonal of lane ``l``, scaled by ``2**-ex[l] = F[0, l] F[1, l]``;
    ``U[i, :, l]`` is row ``i`` of ``V^T`` (the identity to start with).
    Lanes past the end of the batch get a zero matrix, which never rotates.
    Loops run over the lanes innermost, so that they vectorise.
    """
    n = A.shape[1]
    L = M.shape[2]
    nl = min(L, A.shape[0] - b0)
    # largest entry of each lane (max(|re|, |im|) stands for the modulus:
    # within a factor sqrt(2), which is all the scaling needs)
    for l in range(L):
        F[0, l] = 0.0
    for i in range(n):
        for l in range(nl):
            F[0, l] = max(F[0, l], abs(A[b0 + l, i, i].real))
        for j in range(i + 1, n):
            for l in range(nl):
                a = A[b0 + l, i, j]
                F[0, l] = max(F[0, l], abs(a.real), abs(a.imag))
    for l in range(L):
        e = math.frexp(F[0, l])[1]  # 0 for a zero matrix
        ex[l] = e
        F[0, l], F[1, l] = _pow2_pair(-e)
    for i in range(n):
        for l in range(nl):
            d[i, l] = A[b0 + l, i, i].real * F[0, l] * F[1, l]
        for l in range(nl, L):
            d[i, l] = 0.0
        for j in range(i + 1, n):
            for l in range(nl):
                M[i, j, l] = A[b0 + l, i, j] * F[0, l] * F[1, l]
            for l in range(nl, L):
                M[i, j, l] = 0.0
    if want_vectors:
        for i in range(n):
            for j in range(n):
                for l in range(L):
                    U[i, j, l] = 1.0 if i == j else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _lane_rotations(M, d, C, SE, SEC, cnt, p, q, tol, tiny):
    """Rotation parameters of pair ``(p, q)`` in every lane; update the diagonal.

    Branch-free over the lanes (a lane that skips gets the identity,
    ``c = 1``, ``s = 0``), so the loop vectorises.  Returns whether any lane
    rotates.
    """
    L = C.shape[0]
    nrot = 0
    for l in range(L):
        a = M[p, q, l]
        r = abs(a)
        dp = d[p, l]
        dq = d[q, l]
        go = (r > tol * math.sqrt(abs(dp)) * math.sqrt(abs(dq))) & (r >= tiny)
        rs = r if go else 1.0  # keeps the unused lanes finite
        c, s, tr = _rotation(dp, dq, rs)
        ph = a / rs
        C[l] = c if go else 1.0
        SE[l] = s * ph if go else 0.0
        SEC[l] = s * ph.conjugate() if go else 0.0
        tr = tr if go else 0.0
        d[p, l] = dp - tr
        d[q, l] = dq + tr
        M[p, q, l] = 0.0 if go else a
        cnt[l] += go
        nrot += go
    return nrot > 0


@njit(cache=True, error_model="numpy", inline="always")
def _lane_apply(M, U, C, SE, SEC, p, q, want_vectors):
    """``A <- J^H A J`` on the upper triangle, ``V^T <- J^T V^T``, every lane.

    ``J = [[c, s e], [-s conj(e), c]]`` on rows/columns ``p < q``; the entries
    of column ``k`` above ``p``, between ``p`` and ``q`` and right of ``q`` are
    stored at different places of the upper triangle, hence three loops.
    """
    n = M.shape[0]
    L = M.shape[2]
    for k in range(p):
        for l in range(L):
            g = M[k, p, l]
            h = M[k, q, l]
            M[k, p, l] = C[l] * g - SEC[l] * h
            M[k, q, l] = SE[l] * g + C[l] * h
    for k in range(p + 1, q):
        for l in range(L):
            g = M[p, k, l].conjugate()
            h = M[k, q, l]
            M[p, k, l] = (C[l] * g - SEC[l] * h).conjugate()
            M[k, q, l] = SE[l] * g + C[l] * h
    for k in range(q + 1, n):
        for l in range(L):
            g = M[p, k, l]
            h = M[q, k, l]
            M[p, k, l] = C[l] * g - SE[l] * h
            M[q, k, l] = SEC[l] * g + C[l] * h
    if want_vectors:
        for k in range(n):
            for l in range(L):
                g = U[p, k, l]
                h = U[q, k, l]
                U[p, k, l] = C[l] * g - SEC[l] * h
                U[q, k, l] = SE[l] * g + C[l] * h


@njit(cache=True, error_model="numpy")
def _sweep_lanes(M, d, U, C, SE, SEC, cnt, swl, tol, tiny, max_sweeps, want_vectors):
    """Row-cyclic sweeps until no lane rotates; ``swl[l]``: sweeps that rotated."""
    n = d.shape[0]
    L = d.shape[1]
    for l in range(L):
        swl[l] = 0
    for _ in range(max_sweeps):
        for l in range(L):
            cnt[l] = 0
        for p in range(n - 1):
            for q in range(p + 1, n):
                if _lane_rotations(M, d, C, SE, SEC, cnt, p, q, tol, tiny):
                    _lane_apply(M, U, C, SE, SEC, p, q, want_vectors)
        done = True
        for l in range(L):
            if cnt[l] > 0:
                swl[l] += 1
                done = False
        if done:
            break


@njit(cache=True, error_model="numpy")
def _store(M, d, U, ex, swl, b0, w, V, sweeps, off, tol, tiny, want_vectors, F, ok, order, dd):
    """Convergence test, ``off``, ascending sort and scale-back of every lane.

    The test and ``off`` run over the lanes innermost (vectorised, ``ok`` and
    ``F[0]`` as scratch); the sort and the writes are per matrix.
    """
    n = w.shape[1]
    L = M.shape[2]
    nl = min(L, w.shape[0] - b0)
    for l in range(L):
        ok[l] = True
        F[0, l] = 0.0
    for p in range(n - 1):
        for q in range(p + 1, n):
            for l in range(L):
                r = abs(M[p, q, l])
                sp = math.sqrt(abs(d[p, l]))
                sq = math.sqrt(abs(d[q, l]))
                ok[l] &= (r <= tol * sp * sq) | (r < tiny)
                F[0, l] = max(F[0, l], 0.0 if r < tiny else r / sp / sq)
    for l in range(nl):
        b = b0 + l
        sweeps[b] = swl[l] if ok[l] else -1
        off[b] = F[0, l]
        for i in range(n):  # insertion sort, stable
            x = d[i, l]
            k = i
            while k > 0 and dd[k - 1] > x:
                dd[k] = dd[k - 1]
                order[k] = order[k - 1]
                k -= 1
            dd[k] = x
            order[k] = i
        b1, b2 = _pow2_pair(ex[l])
        for k in range(n):
            w[b, k] = dd[k] * b1 * b2
        if want_vectors:
            for k in range(n):
                src = order[k]
                for i in range(n):
                    V[b, i, k] = U[src, i, l]


# --------------------------------------------------------------------------
# batch drivers
# --------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _jacobi_chunk(A, w, V, tol, max_sweeps, want_vectors, sweeps, off, chunk, per, L):
    """Blocks ``chunk * per`` to ``(chunk + 1) * per`` of ``L`` matrices, in one scratch."""
    n = A.shape[1]
    nblocks = (A.shape[0] + L - 1) // L
    tiny = np.finfo(w.dtype).tiny
    # n + 1 columns: a power-of-two row stride (n = 32, L = 32: 8 KiB)
    # would map a whole column of lanes onto one L1 set
    M = np.empty((n, n + 1, L), A.dtype)
    U = np.empty((n, n + 1, L) if want_vectors else (1, 1, L), A.dtype)
    d = np.empty((n, L), w.dtype)
    C = np.empty(L, w.dtype)
    SE = np.empty(L, A.dtype)
    SEC = np.empty(L, A.dtype)
    cnt = np.empty(L, np.int64)
    swl = np.empty(L, np.int64)
    ex = np.empty(L, np.int64)
    F = np.empty((2, L), np.float64)
    ok = np.empty(L, np.bool_)
    order = np.empty(n, np.int64)
    dd = np.empty(n, w.dtype)
    for blk in range(chunk * per, min(nblocks, (chunk + 1) * per)):
        b0 = blk * L
        _load(A, b0, M, d, U, ex, F, want_vectors)
        _sweep_lanes(M, d, U, C, SE, SEC, cnt, swl, tol, tiny, max_sweeps, want_vectors)
        _store(M, d, U, ex, swl, b0, w, V, sweeps, off, tol, tiny, want_vectors,
               F, ok, order, dd)


@njit(cache=True, error_model="numpy")
def _one_by_one(A, w, V, want_vectors, sweeps, off):
    for b in range(A.shape[0]):
        w[b, 0] = A[b, 0, 0].real
        if want_vectors:
            V[b, 0, 0] = 1.0
        sweeps[b] = 0
        off[b] = 0.0


@njit(cache=True)
def _chunking(B, n):
    """``(L, per, nchunks)``: lanes per block, blocks per chunk, chunks.

    About ``2**17 / (n**3 L)`` blocks (~0.1 ms of work) share one scratch
    allocation; at least 64 chunks when ``B`` allows, for the threads.
    """
    L = _LANES_SMALL if n <= 8 else _LANES_LARGE
    nblocks = (B + L - 1) // L
    per = max(1, min(2**17 // (n**3 * L) + 1, nblocks // 64))
    return L, per, (nblocks + per - 1) // per


@njit(parallel=True, cache=True, error_model="numpy")
def jacobi_eigh(A, w, V, tol, max_sweeps, want_vectors, sweeps, off):
    """Eigen-decompose every matrix of a ``(B, n, n)`` stack by Jacobi.

    Parameters
    ----------
    A : ndarray, shape (B, n, n), C-contiguous, float32/64 or complex64/128
        The symmetric/Hermitian stack, both triangles filled; read only.
    w : ndarray, shape (B, n), real dtype of ``A``
        Output: eigenvalues, ascending.
    V : ndarray, shape (B, n, n), dtype of ``A``
        Output: eigenvectors in columns; not written if ``want_vectors`` is
        false.
    tol : float
        Relative threshold, normally the eps of the real dtype.
    max_sweeps : int
        Most sweeps per matrix.
    want_vectors : bool
        Whether to accumulate and write ``V``.
    sweeps : ndarray, shape (B,), int32
        Output: sweeps with at least one rotation, ``-1`` if not converged.
    off : ndarray, shape (B,), real dtype of ``A``
        Output: final ``max |a_pq| / sqrt(|a_pp a_qq|)`` of each matrix.

    Notes
    -----
    ``prange`` over chunks of consecutive blocks of ``L`` matrices (the SIMD
    lanes); each chunk allocates its lane-interleaved scratch once
    (``2 n^2 L`` values).  ``O(n^3)`` flops per sweep and matrix.
    :func:`jacobi_eigh_serial` does the same on the calling thread.
    """
    n = A.shape[1]
    if n == 1:
        _one_by_one(A, w, V, want_vectors, sweeps, off)
    elif n > 1:
        L, per, nchunks = _chunking(A.shape[0], n)
        for chunk in prange(nchunks):
            _jacobi_chunk(A, w, V, tol, max_sweeps, want_vectors, sweeps, off, chunk, per, L)


@njit(cache=True, error_model="numpy")
def jacobi_eigh_serial(A, w, V, tol, max_sweeps, want_vectors, sweeps, off):
    """:func:`jacobi_eigh` without a parallel region, for small batches.

    A parallel region, even one that would run on a single thread, starts
    the threading layer's pool: its spin-waiting costs more than a small
    batch's work, and with GNU OpenMP a process that forks afterwards
    (``multiprocessing``'s 'fork', data-loader workers) has its children
    abort.
    """
    n = A.shape[1]
    if n == 1:
        _one_by_one(A, w, V, want_vectors, sweeps, off)
    elif n > 1:
        L, per, nchunks = _chunking(A.shape[0], n)
        for chunk in range(nchunks):
            _jacobi_chunk(A, w, V, tol, max_sweeps, want_vectors, sweeps, off, chunk, per, L)


@njit(parallel=True, cache=True)
def lapack_eigh(A, w, V, want_vectors):
    """``prange`` over :func:`numpy.linalg.eigh` (LAPACK ``?syevd``/``?heevd``).

    Arguments ``(A, w, V, want_vectors)`` as :func:`jacobi_eigh` (``A`` is
    not modified, its lower triangle is read); the baseline that
    :data:`JACOBI_MAX_N` and ``tridiagonal.TRIDIAGONAL_MAX_N`` are measured
    against, and the CPU path for ``n > TRIDIAGONAL_MAX_N``.  Absolute
    (normwise) accuracy only.  Call it with
    the BLAS thread pool limited to one thread (``threadpoolctl``): threaded
    BLAS inside the ``prange`` oversubscribes the cores, and OpenBLAS prints a
    warning per call inside Numba's OpenMP threads.
    """
    for b in prange(A.shape[0]):
        if want_vectors:
            wb, Vb = np.linalg.eigh(A[b])
            w[b] = wb
            V[b] = Vb
        else:
            w[b] = np.linalg.eigvalsh(A[b])
