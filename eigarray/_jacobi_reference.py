"""Batched Jacobi eigensolver written in the Python Array API standard.

The readable reference of the algorithm that the Numba and numba-cuda kernels
implement, and the fallback for namespaces without a kernel (array-api-strict,
Dask, ...).

Algorithm
    Two-sided cyclic Jacobi for Hermitian matrices with the parallel
    round-robin (circle-method, Brent-Luk) ordering: a sweep is ``N - 1``
    rounds (``N`` = ``n`` rounded up to even), each round rotates ``n // 2``
    disjoint pairs ``(p, q)`` at once, so the whole round is one unitary
    matrix ``J`` and the update is ``A <- J^H A J``, ``V <- V J`` (matrix
    products, no item assignment, so immutable arrays such as JAX's work).
    Each rotation uses Rutishauser's formulas on the real 2x2 problem left
    after removing the phase ``e = a_pq / |a_pq|``: ``theta = (a_qq - a_pp) /
    (2 |a_pq|)``, ``t = sign(theta) / (|theta| + sqrt(1 + theta^2))``
    (evaluated with ``min(|theta|, 1/|theta|)``, so nothing overflows),
    ``c = 1 / sqrt(1 + t^2)``, ``s = t c``, ``J_pp = J_qq = c``,
    ``J_pq = s e``, ``J_qp = -s conj(e)``.  The diagonal is carried in a real
    vector and updated by ``a_pp -= t |a_pq|``, ``a_qq += t |a_pq|``, and the
    annihilated entries are set to exact zeros.  A pair is skipped (threshold
    Jacobi) when ``|a_pq| <= tol * sqrt|a_pp| * sqrt|a_qq|`` or when
    ``|a_pq|`` is below the smallest normal number: the relative criterion of
    Demmel & Veselić, which gives small eigenvalues of graded positive
    definite matrices to high relative accuracy.  A matrix has converged when
    a sweep skips every pair.  Each matrix is scaled by the power of two of
    its largest entry first (exact), and the eigenvalues are scaled back.

Storage
    ``A`` is a ``(..., n, n)`` stack; only its strictly upper triangle and the
    real part of its diagonal are read (the Hermitian matrix is rebuilt from
    them).  All matrices of the stack advance together, round by round; a
    converged matrix keeps being visited with identity rotations (it does not
    change) until every matrix has converged or ``max_sweeps`` is reached.
    Per call: the working matrix, ``V`` and one ``J`` per round, each of the
    stack's size; ``O(n^3)`` flops per round and matrix.

Host synchronisation
    One per sweep: ``bool(xp.any(...))`` decides whether another sweep is
    needed.  Everything else stays on the array's device.

References
    J. Demmel and K. Veselić, "Jacobi's method is more accurate than QR",
    SIAM J. Matrix Anal. Appl. 13(4), 1992.  R. P. Brent and F. T. Luk, "The
    solution of singular-value and symmetric eigenvalue problems on
    multiprocessor arrays", SIAM J. Sci. Stat. Comput. 6(1), 1985.
    H. Rutishauser, "The Jacobi method for real symmetric matrices",
    Numer. Math. 9, 1966.
"""

from __future__ import annotations

from typing import Any

from . import _namespace as ns

__all__ = ["jacobi_eigh_xp", "round_robin_pairs"]


def round_robin_pairs(n: int) -> list[list[tuple[int, int]]]:
    """The pairs ``(p, q)``, ``p < q``, of each round of one sweep.

    Circle method on ``N = n + n % 2`` positions: position ``N - 1`` stays,
    the others turn, so ``N - 1`` rounds of ``N / 2`` disjoint pairs cover
    every pair once.  For odd ``n`` the pair holding the dummy index ``n`` is
    dropped (that index sits the round out).

    Examples
    --------
    >>> round_robin_pairs(4)
    [[(0, 3), (1, 2)], [(1, 3), (0, 2)], [(2, 3), (0, 1)]]
    """
    N = n + n % 2
    rounds = []
    for r in range(N - 1):
        pairs = [(N - 1, r)] + [((r + k) % (N - 1), (r - k) % (N - 1)) for k in range(1, N // 2)]
        rounds.append([(min(a, b), max(a, b)) for a, b in pairs if max(a, b) < n])
    return rounds


def _pow2(xp: Any, k: Any) -> tuple[Any, Any]:
    """Two arrays whose product is ``2**k`` (``k`` integral floats), each finite."""
    h = xp.floor(k / 2)
    return 2.0**h, 2.0 ** (k - h)


def jacobi_eigh_xp(
    A: Any, xp: Any, *, tol: float | None, max_sweeps: int, want_vectors: bool
) -> tuple[Any, Any, Any, Any]:
    """Eigenvalues and eigenvectors of a Hermitian stack by parallel-order Jacobi.

    Parameters
    ----------
    A : array, shape (..., n, n)
        Real symmetric or complex Hermitian stack (real floating or complex
        floating dtype).  Only the strictly upper triangle and the real part
        of the diagonal are read.  Not modified.
    xp : namespace
        Array API namespace of ``A``.
    tol : float or None
        Relative threshold of the stopping test; ``None`` means the machine
        epsilon of the real dtype, the normal choice.
    max_sweeps : int
        Most sweeps.
    want_vectors : bool
        Whether to accumulate eigenvectors.

    Returns
    -------
    w : array, shape (..., n), real dtype
        Eigenvalues in ascending order.
    V : array, shape (..., n, n), or None
        Eigenvectors in columns (``V[..., :, k]`` belongs to ``w[..., k]``);
        ``None`` unless ``want_vectors``.
    sweeps : array, shape (...), int32
        Sweeps that rotated at least once, or ``-1`` for a matrix that had not
        converged after ``max_sweeps`` sweeps (its ``w``, ``V`` are the
        current approximation).
    off : array, shape (...), real dtype
        Final ``max_{p<q} |a_pq| / sqrt(|a_pp a_qq|)`` of the scaled matrix,
        entries below the smallest normal number counting as zero.

    Notes
    -----
    ``O(n^3)`` flops per round (``J^H A J``, ``V J`` as matrix products),
    ``N - 1`` rounds per sweep; one host synchronisation per sweep.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> A = xp.asarray([[[2.0, 1.0], [1.0, 2.0]]])
    >>> w, V, sweeps, off = jacobi_eigh_xp(A, xp, tol=None, max_sweeps=10,
    ...                                    want_vectors=True)
    >>> w
    Array([[1., 3.]], dtype=array_api_strict.float64)
    >>> sweeps
    Array([1], dtype=array_api_strict.int32)
    """
    n = A.shape[-1]
    device = A.device
    is_complex = xp.isdtype(A.dtype, "complex floating")
    finfo = xp.finfo(A.dtype)
    rdtype = ns.real_dtype(xp, A.dtype)   # finfo.dtype is a name in some namespaces
    tol = float(finfo.eps) if tol is None else float(tol)
    tiny = float(finfo.smallest_normal)

    def conj(x: Any) -> Any:
        return xp.conj(x) if is_complex else x

    def mT(x: Any) -> Any:
        return xp.matrix_transpose(x)

    eye = xp.eye(n, dtype=rdtype, device=device)
    is_diag = xp.eye(n, dtype=xp.bool, device=device)

    # Hermitian matrix from the upper triangle; scale by 2**-k, k from the max entry
    upper = xp.triu(A, k=1)
    d = xp.sum(xp.real(A) * eye if is_complex else A * eye, axis=-1)
    amax = xp.maximum(xp.max(xp.abs(upper), axis=(-2, -1)), xp.max(xp.abs(d), axis=-1))
    usable = (amax > 0) & (amax < xp.inf)
    k = xp.floor(xp.log2(xp.where(usable, amax, xp.ones_like(amax)))) + 1
    f1, f2 = _pow2(xp, -k)
    upper = upper * xp.astype(f1[..., None, None], A.dtype)
    upper = upper * xp.astype(f2[..., None, None], A.dtype)
    d = d * f1[..., None] * f2[..., None]
    H = upper + conj(mT(upper)) + xp.astype(eye * d[..., None, :], A.dtype)

    batch = A.shape[:-2]
    V = xp.broadcast_to(xp.astype(eye, A.dtype), (*batch, n, n)) if want_vectors else None

    # one-hot selectors of the p and q of each round: E[i, k] = (i == p_k)
    index = xp.arange(n, device=device)[:, None]
    selectors = []
    for pairs in round_robin_pairs(n):
        if pairs:
            ps = xp.asarray([p for p, _ in pairs], device=device)
            qs = xp.asarray([q for _, q in pairs], device=device)
            selectors.append(
                (xp.astype(index == ps[None, :], rdtype), xp.astype(index == qs[None, :], rdtype))
            )

    sweeps = xp.zeros(batch, dtype=xp.int32, device=device)
    for _ in range(max_sweeps):
        rotated_in_sweep = xp.zeros(batch, dtype=xp.bool, device=device)
        for Ep, Eq in selectors:
            # the 2x2 problems of the round (exact: one-hot products)
            apq = xp.sum(xp.astype(Ep, A.dtype) * (H @ xp.astype(Eq, A.dtype)), axis=-2)
            dp = d @ Ep
            dq = d @ Eq
            r = xp.abs(apq)
            go = (r > tol * xp.sqrt(xp.abs(dp)) * xp.sqrt(xp.abs(dq))) & (r >= tiny)
            rs = xp.where(go, r, xp.ones_like(r))
            delta = dq - dp
            adelta = xp.abs(delta)
            twor = rs + rs
            small = adelta <= twor
            x = xp.minimum(adelta, twor) / xp.maximum(adelta, twor)
            q = xp.sqrt(1.0 + x * x)
            t = xp.where(small, xp.ones_like(x), x) / (xp.where(small, x, xp.ones_like(x)) + q)
            t = xp.where(delta < 0, -t, t)
            c = 1.0 / xp.sqrt(1.0 + t * t)
            zero = xp.zeros_like(t)
            s = xp.where(go, t * c, zero)
            c = xp.where(go, c, xp.ones_like(c))
            tr = xp.where(go, t * rs, zero)
            phase = apq / xp.astype(rs, A.dtype)
            se = xp.astype(s, A.dtype) * phase
            sec = xp.astype(s, A.dtype) * conj(phase)

            # J = diag(c on p, q; 1 elsewhere) + s e at (p, q) - s conj(e) at (q, p)
            cvec = 1.0 + (c - 1.0) @ mT(Ep + Eq)
            J = (
                xp.astype(eye * cvec[..., None, :], A.dtype)
                + (xp.astype(Ep, A.dtype) * se[..., None, :]) @ xp.astype(mT(Eq), A.dtype)
                - (xp.astype(Eq, A.dtype) * sec[..., None, :]) @ xp.astype(mT(Ep), A.dtype)
            )
            H = conj(mT(J)) @ H @ J
            if want_vectors:
                V = V @ J

            # exact diagonal (t-formula) and exact zeros at the rotated pairs
            d = d - tr @ mT(Ep) + tr @ mT(Eq)
            hit = (Ep * xp.astype(go, rdtype)[..., None, :]) @ mT(Eq)
            zeroed = (hit + mT(hit)) > 0
            H = xp.where(zeroed, xp.zeros_like(H), H)
            H = xp.where(is_diag, xp.astype(d[..., None, :], A.dtype), H)
            rotated_in_sweep = rotated_in_sweep | xp.any(go, axis=-1)
        sweeps = sweeps + xp.astype(rotated_in_sweep, xp.int32)
        if not bool(xp.any(rotated_in_sweep)):
            break

    # convergence test and off-diagonal measure, as in the sweeps
    R = xp.abs(H)
    sd = xp.sqrt(xp.abs(d))
    off_diag = ~is_diag
    skip = (R <= tol * sd[..., :, None] * sd[..., None, :]) | (R < tiny)
    converged = xp.all(skip | is_diag, axis=(-2, -1))
    safe = xp.where(sd > 0, sd, xp.ones_like(sd))
    ratio = R / safe[..., :, None] / safe[..., None, :]
    no_scale = (sd[..., :, None] == 0) | (sd[..., None, :] == 0)
    ratio = xp.where(no_scale, xp.full_like(ratio, xp.inf), ratio)
    ratio = xp.where((R < tiny) | ~off_diag, xp.zeros_like(ratio), ratio)
    off = xp.max(ratio, axis=(-2, -1))
    sweeps = xp.where(converged, sweeps, xp.full_like(sweeps, -1))

    # ascending order; eigenvectors permuted by an exact permutation matrix
    order = xp.argsort(d, axis=-1)
    b1, b2 = _pow2(xp, k)
    w = xp.sort(d, axis=-1) * b1[..., None] * b2[..., None]
    if want_vectors:
        perm = xp.astype(xp.arange(n, device=device)[:, None] == order[..., None, :], A.dtype)
        V = V @ perm
    return w, V, sweeps, off
