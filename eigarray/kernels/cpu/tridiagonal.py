"""Numba kernel for ``(B, n, n)`` stacks of mid-sized Hermitian matrices.

Householder tridiagonalisation followed by the implicit QL algorithm with
Wilkinson-like shifts, eigenvectors accumulated (the ``tred2``/``tql2`` pair of
EISPACK, in LAPACK's ``?hetd2`` / ``?ungtr`` conventions for the complex case),
run on ``L = 16`` matrices of the batch at once, one per SIMD lane, like the
Jacobi kernel next to it: the working storage is lane-interleaved
(``W[i, j, l]`` is entry ``(i, j)`` of matrix ``l``), every scalar operation
becomes a loop over the lanes that LLVM vectorises, and the latency chains of
the QL chases (a square root and two divisions per rotation) of the ``L``
matrices overlap.  Vectorising across matrices rather than along rows also
turns the reductions of the tridiagonalisation into per-lane sums, which
vectorise without ``fastmath``.

Steps, per block of ``L`` matrices:

1. load: each matrix is read from its lower triangle (the real part of the
   diagonal), conjugated into the upper triangle of ``W`` and scaled by the
   power of two that brings its largest entry into ``[0.5, 1)`` (exact: no
   overflow or underflow later on; the eigenvalues are scaled back at the end);
2. tridiagonalise: for ``k = 0 .. n-2`` the reflector ``H_k = I - tau v v^H``
   (LAPACK's ``?larfg``, its norm a float64 sum of squares for every dtype,
   with a rescaled retry for float64 columns of tiny entries) makes column
   ``k`` real tridiagonal, and ``W <- H_k^H W H_k`` updates the
   upper triangle (a symmetric matrix-vector product and a rank-2 update);
   ``v`` is kept in row ``k`` of ``W``;
3. form ``Q = H_0 ... H_{n-2}`` by backward accumulation, stored transposed
   (``Qt[j, i] = Q[i, j]``, so that a column of ``Q`` is contiguous);
4. QL: ``tql2`` on the real tridiagonal matrix (``d``, ``e`` in float64 for
   every dtype), ``e[m]`` negligible when ``|e[m]| <= eps ||T||_1`` (the
   normwise test, which a cluster of eigenvalues at roundoff level also
   meets), the lanes in lockstep but each on its own eigenvalue: a
   chase runs over the union of the lanes' unreduced ranges, and a lane
   outside its own range, or whose chase has stopped, gets the identity
   rotation, so each matrix sees exactly the arithmetic it would see alone;
   each rotation is applied to two columns of ``Q`` right away.  Letting
   each lane move on to its next eigenvalue as soon as it has one (rather
   than all lanes waiting for the slowest on the same eigenvalue) raised
   the share of useful lane-rotations from 0.66 to 0.94-0.98 (n = 32-128)
   and cut the time at ``n = 128`` by a quarter;
5. store: eigenvalues sorted ascending, scaled back; eigenvectors the
   matching columns of ``Q``.

Accuracy is normwise (backward stable, like LAPACK's ``?syev``), not the
relative accuracy of Jacobi.  A matrix whose QL iteration needs more than 30
chases for one eigenvalue (not seen in practice) gets NaN eigenvalues.

The kernel validates nothing and imports nothing from eigarray.  ``A`` is a
C-contiguous ``(B, n, n)`` stack, read only; its lower triangle (and the real
part of its diagonal) holds the matrix.  Threads follow
:func:`numba.set_num_threads`.  No ``fastmath``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["LANES", "TRIDIAGONAL_MAX_N", "tridiagonal_eigh"]

# Matrices per SIMD block.  Measured on AVX-512 (Zen 5), float64 with
# eigenvectors, n = 32 / 64 / 128, CPU microseconds per matrix on one thread:
# 8 lanes 82 / 595 / 4529 (loops of 8 do not vectorise), 16 lanes 34 / 225 /
# 1442, 32 lanes 59 / 346 / 3482 (the scratch no longer fits the caches);
# before the per-lane eigenvalue index of ``_ql`` (16 lanes now: 22 / 130 / 905-1030).
LANES = 16

# Largest n for which this kernel beats a ``prange`` over LAPACK ``?syevd``
# (``jacobi.lapack_eigh``), float64 with eigenvectors, on the 2-core AMD EPYC
# Zen 5 CI machine (numba 0.68.1, scipy's OpenBLAS 0.3.30); throughput ratio
# tridiagonal / LAPACK on one thread (CPU time, the machine was shared):
#   n = 12: 4.0   24: 3.5   32: 2.4-2.9   48: 2.3   64: 2.0   96: 1.4
#   n = 112: 1.0   128: 1.0-1.2
#   n = 136: 0.9   144: 0.9   160: 0.85   192: 0.8   256: 0.65
# (the lane block's scratch, 2 n^2 16 values, leaves L2 beyond n ~ 100);
# a near-tie goes to this kernel at 128, the size the benchmark reports.
TRIDIAGONAL_MAX_N = 128
# float64 sums of squares (float32 data is squared in float64, where it can
# neither underflow nor overflow):
_SQ_LO = 2.0 ** -960   # a sum of squares above this lost nothing to underflow
_SQ_HI = 2.0 ** 960    # ... and below this nothing overflowed
_UP = 2.0 ** 600       # rescales a column of tiny entries before its reflector
_MAXIT = 30            # QL chases per eigenvalue before giving up


@njit(cache=True, error_model="numpy", inline="always")
def _pow2_pair(e):
    """Two factors whose product is ``2**e``, each safely representable."""
    h = e // 2
    return math.ldexp(1.0, h), math.ldexp(1.0, e - h)


@njit(cache=True, error_model="numpy")
def _load(A, b0, W, ex):
    """Scaled upper triangles of ``A[b0 : b0 + L]`` into the lanes of ``W``.

    Lane ``l`` gets ``W[j, i, l] = conj(A[b0 + l, i, j]) 2**-ex[l]`` for
    ``j <= i``: the lower triangle of the matrix, as the upper triangle of
    its conjugate transpose, which is the matrix itself.
    """
    n = A.shape[1]
    L = W.shape[2]
    for l in range(L):
        b = b0 + l
        amax = 0.0
        for i in range(n):
            for j in range(i):
                a = A[b, i, j]
                amax = max(amax, abs(a.real), abs(a.imag))
            amax = max(amax, abs(A[b, i, i].real))
        e = math.frexp(amax)[1]  # 0 for a zero matrix
        ex[l] = e
        f1, f2 = _pow2_pair(-e)
        for i in range(n):
            for j in range(i):
                W[j, i, l] = A[b, i, j].conjugate() * f1 * f2
            W[i, i, l] = A[b, i, i].real * f1 * f2


@njit(cache=True, error_model="numpy")
def _tridiagonalize(W, d, e, tau, P, V, acc, rs, sc, s2):
    """``W <- H^H W H`` for ``H = H_0 ... H_{n-2}``, on the upper triangle.

    On return ``d[:, l]``, ``e[:, l]`` hold the real tridiagonal matrix of
    lane ``l`` (``e[k]`` couples ``k`` and ``k + 1``, ``e[n-1] = 0``), and
    ``W[k, k+1:]``, ``tau[k]`` the reflector ``H_k = I - tau v v^H``.
    The column below the diagonal is the conjugate of the row right of it,
    so the reflector reads row ``k``.  ``P``, ``V`` (``(n, L)``), ``acc``,
    ``rs``, ``sc``, ``s2`` (``(L,)``) are scratch; ``rs`` is float64 or
    complex128 whatever the dtype of ``W``.

    The reflector's norm is a float64 sum of squares for every dtype, so
    float32 data never underflows in it.  A float64 column whose sum of
    squares is below ``_SQ_LO`` (it may have underflowed to zero, or lost
    digits to subnormals) is rescaled by ``_UP`` first; after that the norm
    is zero only for a zero column, which gets ``H = I``.
    """
    n = W.shape[0]
    L = W.shape[2]
    for k in range(n - 1):
        # the column x = conj(W[k, k+1:]): alpha = x[0], s2 = ||x[1:]||^2
        for l in range(L):
            s2[l] = 0.0
            sc[l] = 1.0
        for j in range(k + 2, n):
            for l in range(L):
                x = W[k, j, l]
                xr = np.float64(x.real)
                xi = np.float64(x.imag)
                s2[l] += xr * xr + xi * xi
        tiny = False
        for l in range(L):
            a = W[k, k + 1, l]
            ar = np.float64(a.real)
            ai = np.float64(a.imag)
            tiny |= s2[l] + ar * ar + ai * ai < _SQ_LO
        if tiny:  # rare (or a zero column): rescale the tiny lanes, and redo them
            for l in range(L):
                a = W[k, k + 1, l]
                ar = np.float64(a.real)
                ai = np.float64(a.imag)
                sc[l] = _UP if s2[l] + ar * ar + ai * ai < _SQ_LO else 1.0
                s2[l] = 0.0
            for j in range(k + 2, n):
                for l in range(L):
                    x = W[k, j, l] * sc[l]
                    s2[l] += x.real * x.real + x.imag * x.imag
        # the reflector, branch-free over the lanes (LAPACK's ?larfg); a lane
        # whose column is already real and reduced gets H = I
        for l in range(L):
            alpha = W[k, k + 1, l].conjugate() * sc[l]
            ar = alpha.real
            keep = (s2[l] == 0.0) & (alpha.imag == 0.0)
            beta = -math.copysign(math.sqrt(s2[l] + ar * ar + alpha.imag * alpha.imag), ar)
            bs = 1.0 if keep else beta
            tau[k, l] = 0.0 if keep else (bs - alpha) / bs
            den = alpha - bs if not keep else alpha - alpha + 1.0
            rs[l] = 1.0 / den  # |den| >= |beta| >= 2**-480: finite
            e[k, l] = (ar if keep else beta) / sc[l]
            d[k, l] = W[k, k, l].real
        for l in range(L):
            V[k + 1, l] = 1.0
            W[k, k + 1, l] = 1.0
        for j in range(k + 2, n):
            for l in range(L):
                vj = W[k, j, l].conjugate() * sc[l] * rs[l]
                V[j, l] = vj
                W[k, j, l] = vj
        # P = tau W22 v from the upper triangle: row j of it gives P[j] (a
        # per-lane sum) and, mirrored, a share of P[i] for i > j
        for i in range(k + 1, n):
            for l in range(L):
                P[i, l] = 0.0
        for j in range(k + 1, n):
            for l in range(L):
                acc[l] = W[j, j, l].real * V[j, l]
            for i in range(j + 1, n):
                for l in range(L):
                    wji = W[j, i, l]
                    acc[l] += wji * V[i, l]
                    P[i, l] += wji.conjugate() * V[j, l]
            for l in range(L):
                P[j, l] += acc[l]
        # w = p - (tau / 2) (p^H v) v, into P
        for l in range(L):
            acc[l] = 0.0
        for i in range(k + 1, n):
            for l in range(L):
                P[i, l] *= tau[k, l]
                acc[l] += P[i, l].conjugate() * V[i, l]
        for l in range(L):
            acc[l] *= -0.5 * tau[k, l]
        for i in range(k + 1, n):
            for l in range(L):
                P[i, l] += acc[l] * V[i, l]
        # W22 <- W22 - v w^H - w v^H, upper triangle
        for i in range(k + 1, n):
            for j in range(i, n):
                for l in range(L):
                    W[i, j, l] -= V[i, l] * P[j, l].conjugate() + P[i, l] * V[j, l].conjugate()
    for l in range(L):
        d[n - 1, l] = W[n - 1, n - 1, l].real
        e[n - 1, l] = 0.0


@njit(cache=True, error_model="numpy")
def _form_q(W, tau, Qt, U, tv):
    """``Qt[j, i] = Q[i, j]`` for ``Q = H_0 ... H_{n-2}``, accumulated backwards.

    ``Q <- H_k Q`` touches rows and columns ``> k`` only: ``u = v^H Q`` (a
    per-lane sum along column ``j`` of ``Q``, contiguous in ``Qt``), then
    ``Q[:, j] -= tau u_j v``.
    """
    n = W.shape[0]
    L = W.shape[2]
    for i in range(n):
        for j in range(n):
            for l in range(L):
                Qt[i, j, l] = 1.0 if i == j else 0.0
    for k in range(n - 2, -1, -1):
        for j in range(k + 1, n):
            for l in range(L):
                U[l] = 0.0
            for i in range(k + 1, n):
                for l in range(L):
                    U[l] += W[k, i, l].conjugate() * Qt[j, i, l]
            for l in range(L):
                tv[l] = tau[k, l] * U[l]
            for i in range(k + 1, n):
                for l in range(L):
                    Qt[j, i, l] -= tv[l] * W[k, i, l]


@njit(cache=True, error_model="numpy")
def _ql(d, e, Qt, tol, want_vectors, lo, ml, go, st, its, fail, s, c, p, g, F, BB, R, C, S,
        tn):
    """Implicit QL (``tql2``) on every lane; rotations applied to ``Qt``.

    Each lane works on its own eigenvalue ``lo[l]`` (``tql2``'s ``l``), so
    that a lane which needs fewer chases for it does not wait for the
    others.  A pass over ``m`` first moves every ``lo`` past the negligible
    ``e[lo]`` and finds the lane's first negligible ``e[m]`` beyond it
    (``ml``); then one chase runs from
    the largest ``ml`` down to the smallest ``lo``, and a lane gets the
    identity rotation outside its own range ``lo <= i < ml``, or after its
    chase stopped early (a zero rotation radius, ``st``).  ``fail[l]`` is
    set when an eigenvalue took more than ``_MAXIT`` chases.  The other
    arguments are ``(L,)`` scratch.

    ``e[m]`` is negligible when ``|e[m]| <= tol ||T||_1`` (``tn`` holds
    ``tol ||T||_1`` per lane): a normwise test, like EISPACK ``tql2``'s
    (which compares with the running maximum of ``|d[i]| + |e[i]|``); it
    perturbs ``T`` by at most ``tol ||T||``, all that backward stability
    asks.  The local test ``|e[m]| <= tol (|d[m]| + |d[m+1]|)`` of ``tqli``
    is never met by an off-diagonal entry of a cluster of eigenvalues at
    roundoff level (a rank-deficient or strongly graded matrix): such a
    lane used up its ``_MAXIT`` chases and came back NaN.  ``||T||_1 >= 1/2``
    unless ``T = 0`` (the load scaled the largest entry into ``[1/2, 1)``),
    so the shift's ``e[lo]`` is never below ``tol / 2``: no division by
    zero, no overflow.
    """
    n = d.shape[0]
    L = d.shape[1]
    for l in range(L):
        fail[l] = False
        lo[l] = 0
        its[l] = 0
        tn[l] = 0.0
    for i in range(n):
        for l in range(L):
            row = abs(d[i, l]) + abs(e[i, l]) + (abs(e[i - 1, l]) if i > 0 else 0.0)
            tn[l] = max(tn[l], row)
    for l in range(L):
        tn[l] *= tol
    while True:
        lmin = n - 1
        for l in range(L):
            ml[l] = n - 1
            lmin = min(lmin, lo[l])
        for m in range(lmin, n - 1):
            for l in range(L):
                small = abs(e[m, l]) <= tn[l]
                done = (m == lo[l]) & small  # eigenvalue lo[l] found: next one
                ml[l] = m if (small & (m > lo[l]) & (ml[l] == n - 1)) else ml[l]
                lo[l] = m + 1 if done else lo[l]
                its[l] = 0 if done else its[l]
        mmax = 0
        lmin = n - 1
        for l in range(L):
            act = ml[l] > lo[l]
            if act and its[l] == _MAXIT:
                fail[l] = True
                e[lo[l], l] = 0.0
                act = False
            go[l] = act
            st[l] = False
            its[l] += act
            if act:
                mmax = max(mmax, ml[l])
                lmin = min(lmin, lo[l])
        if mmax == 0:
            break
        # the shift, from the leading 2x2 block of each lane's range
        for l in range(L):
            k = lo[l] if go[l] else 0
            el = e[k, l] if go[l] else 1.0
            g0 = (d[k + 1, l] - d[k, l]) / (2.0 * el)
            r = math.sqrt(g0 * g0 + 1.0) if abs(g0) < 2.0 ** 500 else abs(g0)
            g[l] = d[ml[l], l] - d[k, l] + el / (g0 + math.copysign(r, g0))
            s[l] = 1.0
            c[l] = 1.0
            p[l] = 0.0
        for i in range(mmax - 1, lmin - 1, -1):
            bad = False
            for l in range(L):
                ei = e[i, l]
                f = s[l] * ei
                F[l] = f
                BB[l] = c[l] * ei
                q = f * f + g[l] * g[l]
                R[l] = math.sqrt(q)
                bad |= (q < _SQ_LO) | (q > _SQ_HI)
            if bad:  # rare: a radius that squaring under- or overflowed
                for l in range(L):
                    R[l] = math.hypot(F[l], g[l])
            for l in range(L):
                act = go[l] & (i < ml[l]) & (i >= lo[l])
                r = R[l]
                on = act & (r != 0.0)
                stop = act & (r == 0.0)
                rr = r if on else 1.0
                sn = F[l] / rr
                cn = g[l] / rr
                gg = d[i + 1, l] - p[l]
                t = (d[i, l] - gg) * sn + 2.0 * cn * BB[l]
                pn = sn * t
                e[i + 1, l] = r if act else e[i + 1, l]
                d[i + 1, l] = gg + pn if on else (gg if stop else d[i + 1, l])
                s[l] = sn if on else s[l]
                c[l] = cn if on else c[l]
                p[l] = pn if on else p[l]
                g[l] = cn * t - BB[l] if on else g[l]
                C[l] = cn if on else 1.0
                S[l] = sn if on else 0.0
                go[l] = go[l] & (not stop)
                st[l] = st[l] | stop
            if want_vectors:  # columns i, i+1 of Q
                for r_ in range(n):
                    for l in range(L):
                        a = Qt[i, r_, l]
                        b = Qt[i + 1, r_, l]
                        Qt[i + 1, r_, l] = S[l] * a + C[l] * b
                        Qt[i, r_, l] = C[l] * a - S[l] * b
        for l in range(L):
            if go[l]:
                d[lo[l], l] -= p[l]
                e[lo[l], l] = g[l]
            if go[l] | st[l]:
                e[ml[l], l] = 0.0


@njit(cache=True, error_model="numpy")
def _store(d, Qt, ex, fail, b0, w, V, want_vectors, col):
    """Ascending eigenvalues (scaled back) and their columns of ``Q``."""
    n = d.shape[0]
    L = d.shape[1]
    for l in range(L):
        b = b0 + l
        for i in range(n):
            col[i] = d[i, l]
        order = np.argsort(col, kind="mergesort")
        f1, f2 = _pow2_pair(ex[l])
        for k in range(n):
            w[b, k] = np.nan if fail[l] else col[order[k]] * f1 * f2
        if want_vectors:
            for k in range(n):
                src = order[k]
                for i in range(n):
                    V[b, i, k] = Qt[src, i, l]


@njit(cache=True, error_model="numpy")
def _run_blocks(A, w, V, want_vectors, b_start, nblocks, L):
    """Matrices ``b_start .. b_start + nblocks L - 1``, ``L`` at a time, with
    one allocation of the scratch (about ``2 n^2 L`` values)."""
    n = A.shape[1]
    tol = np.finfo(w.dtype).eps
    W = np.empty((n, n + 1, L), A.dtype)  # n + 1: no power-of-two stride
    Qt = np.empty((n, n + 1, L) if want_vectors else (1, 1, L), A.dtype)
    d = np.empty((n, L), np.float64)
    e = np.empty((n, L), np.float64)
    tau = np.empty((n, L), A.dtype)
    P = np.empty((n, L), A.dtype)
    Vv = np.empty((n, L), A.dtype)
    acc = np.empty(L, A.dtype)
    tv = np.empty(L, A.dtype)
    # the reflectors' reciprocals in float64/complex128 for every dtype
    rs = np.zeros(L, A.dtype) + np.zeros(L, np.float64)
    sc = np.empty(L, np.float64)
    s2 = np.empty(L, np.float64)
    ex = np.empty(L, np.int64)
    ml = np.empty(L, np.int64)
    lo = np.empty(L, np.int64)
    its = np.empty(L, np.int64)
    go = np.empty(L, np.bool_)
    st = np.empty(L, np.bool_)
    fail = np.empty(L, np.bool_)
    s = np.empty(L, np.float64)
    c = np.empty(L, np.float64)
    p = np.empty(L, np.float64)
    g = np.empty(L, np.float64)
    F = np.empty(L, np.float64)
    BB = np.empty(L, np.float64)
    R = np.empty(L, np.float64)
    tn = np.empty(L, np.float64)
    C = np.empty(L, w.dtype)
    S = np.empty(L, w.dtype)
    col = np.empty(n, np.float64)
    for blk in range(nblocks):
        b0 = b_start + blk * L
        _load(A, b0, W, ex)
        _tridiagonalize(W, d, e, tau, P, Vv, acc, rs, sc, s2)
        if want_vectors:
            _form_q(W, tau, Qt, acc, tv)
        _ql(d, e, Qt, tol, want_vectors, lo, ml, go, st, its, fail, s, c, p, g, F, BB, R, C, S,
            tn)
        _store(d, Qt, ex, fail, b0, w, V, want_vectors, col)


@njit(parallel=True, cache=True, error_model="numpy")
def tridiagonal_eigh(A, w, V, want_vectors):
    """Eigen-decompose every matrix of a ``(B, n, n)`` stack.

    Parameters
    ----------
    A : ndarray, shape (B, n, n), C-contiguous, float32/64 or complex64/128
        The Hermitian stack, held in the lower triangle (the real part of
        the diagonal); read only.
    w : ndarray, shape (B, n), real dtype of ``A``
        Output: eigenvalues, ascending; NaN for a matrix whose QL iteration
        did not converge.
    V : ndarray, shape (B, n, n), dtype of ``A``
        Output: eigenvectors in columns; not written if ``want_vectors`` is
        false.
    want_vectors : bool
        Whether to accumulate and write ``V``.

    Notes
    -----
    ``prange`` over chunks of consecutive blocks of ``LANES`` matrices (at
    least 64 chunks when the batch allows), each allocating its scratch
    once; the ``B mod LANES`` matrices left over make one more chunk, a
    block of fewer lanes.  About ``(8/3 + 6 c) n^3``
    flops per matrix, with ``c ~ 1.2-1.5`` QL chases per eigenvalue.
    """
    B = A.shape[0]
    n = A.shape[1]
    if B == 0 or n == 0:
        return
    nfull = B // LANES
    tail = B - nfull * LANES
    # at least 64 chunks when the batch allows (even shares for the threads),
    # plus one for the matrices left over
    per = max(1, nfull // 64)
    nchunks = (nfull + per - 1) // per
    for chunk in prange(nchunks + (tail > 0)):
        if chunk < nchunks:
            first = chunk * per
            _run_blocks(A, w, V, want_vectors, first * LANES, min(per, nfull - first), LANES)
        else:
            _run_blocks(A, w, V, want_vectors, nfull * LANES, 1, tail)
