"""Accuracy checks and matrices with known spectra, for eigarray's tests and yours.

The checks are LAPACK's own test ratios (after ``dsyt21``/``dsyt22`` and
their complex twins, normalised by the matrix order ``n``): for computed
pairs ``(λ_i, v_i)`` of an order-``n`` matrix ``A`` in a working precision
with machine epsilon ``eps``,

* residual ratio ``||A V - V Λ||_1 / (n ||A||_1 eps)``,
* orthogonality ratio ``||Vᴴ V - I||_1 / (n eps)``,

both expected below 30 (:data:`THRESHOLD`).  Singular triplets
``(σ_i, u_i, v_i)`` of an ``m x n`` matrix are held to the same standard with
``||A v_i - σ_i u_i||`` and ``||Aᴴ u_i - σ_i v_i||`` in place of the
residual and ``max(m, n)`` in place of ``n``.  They are evaluated on the host
in float64/complex128 from whatever namespace the results live in.

The matrices come with their exact eigenvalues: Dirichlet Laplacians in one to
three dimensions (optionally anisotropic), ``Q diag(λ) Qᴴ`` with a random
unitary ``Q``, and graded positive definite ``D H D``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._namespace import to_host_numpy

__all__ = [
    "THRESHOLD",
    "residual_ratio",
    "orthogonality_ratio",
    "assert_eigenpairs",
    "eigenvalue_error",
    "laplacian_1d_eigenvalues",
    "laplacian_2d",
    "laplacian_3d",
    "matrix_with_spectrum",
    "graded_matrix",
    "svd_residual_ratio",
    "assert_singular_triplets",
    "matrix_with_singular_values",
]

THRESHOLD = 30.0


def _host(x: Any) -> np.ndarray:
    return np.asarray(to_host_numpy(x))


def _eps(dtype: Any) -> float:
    return float(np.finfo(np.dtype(dtype)).eps)


def _as_host_matrix(A: Any):
    """Host float64/complex128 copy of a dense array or a scipy sparse matrix."""
    try:
        import scipy.sparse as sp

        if sp.issparse(A):
            return sp.csr_array(A, dtype=np.result_type(A.dtype, np.float64))
    except ImportError:  # pragma: no cover - scipy is a test dependency
        pass
    a = _host(A)
    return a.astype(np.result_type(a.dtype, np.float64))


def _norm1(A: Any) -> float:
    if hasattr(A, "tocsc"):
        return float(abs(A).sum(axis=0).max())
    return float(np.abs(A).sum(axis=0).max()) if A.size else 0.0


def residual_ratio(A: Any, w: Any, V: Any, *, eps: float | None = None,
                   anorm: float | None = None) -> float:
    """``||A V - V diag(w)||_1 / (n ||A||_1 eps)`` (after LAPACK ``dsyt22``'s first ratio).

    Parameters
    ----------
    A : array or sparse matrix, shape (n, n)
        The matrix (any namespace; evaluated on the host in double precision).
    w : array, shape (k,)
        Eigenvalues.
    V : array, shape (n, k)
        Eigenvectors, as columns.
    eps : float, optional
        Machine epsilon of the working precision (default: that of ``V``'s dtype).
    anorm : float, optional
        ``||A||_1`` when it is known (default: computed).
    """
    Vh = _host(V)
    eps = _eps(Vh.dtype) if eps is None else eps
    Ah = _as_host_matrix(A)
    n = Ah.shape[0]
    wh = _host(w).astype(np.float64)
    V64 = Vh.astype(np.result_type(Vh.dtype, np.float64))
    R = Ah @ V64 - V64 * wh
    anorm = _norm1(Ah) if anorm is None else anorm
    if anorm == 0.0:
        return float(np.abs(R).sum(axis=0).max()) / (n * eps) if R.size else 0.0
    return float(np.abs(R).sum(axis=0).max()) / (n * anorm * eps) if R.size else 0.0


def orthogonality_ratio(V: Any, *, eps: float | None = None) -> float:
    """``||Vᴴ V - I||_1 / (n eps)`` (after LAPACK ``dsyt22``'s second ratio)."""
    Vh = _host(V)
    eps = _eps(Vh.dtype) if eps is None else eps
    n = Vh.shape[0]
    V64 = Vh.astype(np.result_type(Vh.dtype, np.float64))
    G = V64.conj().T @ V64 - np.eye(V64.shape[1])
    return float(np.abs(G).sum(axis=0).max()) / (n * eps) if G.size else 0.0


def eigenvalue_error(w: Any, exact: Any, *, anorm: float, eps: float) -> float:
    """``max |w - exact| / (n ||A|| eps)``-style ratio with ``n = 1``: ``max|Δλ| / (||A|| eps)``.

    Eigenvalues of a Hermitian matrix are perturbed by at most the residual
    norm, so a residual ratio below ``THRESHOLD`` bounds this by
    ``THRESHOLD * n``.
    """
    got = np.sort(_host(w).astype(np.float64))
    want = np.sort(np.asarray(exact, dtype=np.float64))
    _check(got.shape == want.shape, f"{got.size} eigenvalues, but {want.size} exact ones")
    d = np.abs(got - want)
    return float(d.max()) / (anorm * eps) if d.size else 0.0


def assert_eigenpairs(A: Any, w: Any, V: Any, *, exact: Any = None,
                      threshold: float = THRESHOLD, eps: float | None = None) -> None:
    """Assert LAPACK's ratios for ``(w, V)`` and, if given, the exact eigenvalues.

    ``exact`` eigenvalues must agree within ``threshold * n * ||A|| eps``,
    which is what a residual ratio below ``threshold`` guarantees.
    """
    Vh = _host(V)
    eps = _eps(Vh.dtype) if eps is None else eps
    Ah = _as_host_matrix(A)
    n = Ah.shape[0]
    anorm = _norm1(Ah)
    r = residual_ratio(Ah, w, Vh, eps=eps, anorm=anorm)
    o = orthogonality_ratio(Vh, eps=eps)
    _check(r < threshold, f"residual ratio {r:.3g} >= {threshold} (n={n}, eps={eps:.3g})")
    _check(o < threshold, f"orthogonality ratio {o:.3g} >= {threshold} (n={n}, eps={eps:.3g})")
    if exact is not None:
        e = eigenvalue_error(w, exact, anorm=max(anorm, np.finfo(float).tiny), eps=eps)
        _check(e < threshold * n,
               f"eigenvalues differ from the exact ones by {e:.3g} ||A|| eps >= {threshold} n")


def _check(ok: bool, message: str) -> None:
    """Raise AssertionError unless ``ok`` (also under ``python -O``, as numpy.testing)."""
    if not ok:
        raise AssertionError(message)


def laplacian_1d_eigenvalues(n: int) -> np.ndarray:
    """Eigenvalues of ``tridiag(-1, 2, -1)`` of order ``n``, ascending."""
    i = np.arange(1, n + 1)
    # 4 sin² rather than 2 - 2 cos: no cancellation in the small ones
    return 4.0 * np.sin(i * np.pi / (2 * (n + 1))) ** 2


def _tridiag(n: int):
    import scipy.sparse as sp

    e = np.ones(n)
    return sp.diags_array([-e[:-1], 2 * e, -e[:-1]], offsets=[-1, 0, 1], format="csr")


def laplacian_2d(nx: int, ny: int, *, anisotropy: float = 1.0, dense: bool = False):
    """2-D Dirichlet Laplacian ``kron(I_ny, T_nx) + a kron(T_ny, I_nx)``.

    Returns
    -------
    A : scipy.sparse.csr_array (or numpy.ndarray with ``dense=True``), shape (nx ny, nx ny)
    eigenvalues : numpy.ndarray
        All ``nx ny`` exact eigenvalues, ascending: ``t_i + a t_j``.
    """
    import scipy.sparse as sp

    Tx, Ty = _tridiag(nx), _tridiag(ny)
    A = sp.kron(sp.identity(ny), Tx) + anisotropy * sp.kron(Ty, sp.identity(nx))
    A = sp.csr_array(A)
    lam = np.add.outer(anisotropy * laplacian_1d_eigenvalues(ny),
                       laplacian_1d_eigenvalues(nx)).ravel()
    return (A.toarray() if dense else A), np.sort(lam)


def laplacian_3d(nx: int, ny: int, nz: int, *, dense: bool = False):
    """3-D Dirichlet Laplacian on an ``nx x ny x nz`` grid and its exact eigenvalues."""
    import scipy.sparse as sp

    Tx, Ty, Tz = _tridiag(nx), _tridiag(ny), _tridiag(nz)
    Ix, Iy, Iz = sp.identity(nx), sp.identity(ny), sp.identity(nz)
    A = sp.kron(Iz, sp.kron(Iy, Tx)) + sp.kron(Iz, sp.kron(Ty, Ix)) + sp.kron(Tz, sp.kron(Iy, Ix))
    A = sp.csr_array(A)
    lam = (laplacian_1d_eigenvalues(nz)[:, None, None] + laplacian_1d_eigenvalues(ny)[None, :, None]
           + laplacian_1d_eigenvalues(nx)[None, None, :]).ravel()
    return (A.toarray() if dense else A), np.sort(lam)


def matrix_with_spectrum(eigenvalues: Any, *, rng: Any = None, complex: bool = False):
    """``Q diag(λ) Qᴴ`` with a Haar-random unitary ``Q``; returns ``(A, Q)``.

    ``A`` is exactly Hermitian (symmetrised after the product); its columns of
    ``Q`` are the eigenvectors to rounding.
    """
    rng = np.random.default_rng(rng)
    lam = np.asarray(eigenvalues, dtype=np.float64)
    n = lam.size
    Z = rng.standard_normal((n, n))
    if complex:
        Z = Z + 1j * rng.standard_normal((n, n))
    Q, R = np.linalg.qr(Z)
    Q = Q * (np.diagonal(R) / np.abs(np.diagonal(R)))
    A = (Q * lam) @ Q.conj().T
    return (A + A.conj().T) / 2, Q


def graded_matrix(n: int, *, low: float = 1e-8, rng: Any = None, complex: bool = False):
    """Graded positive definite ``D H D`` (Demmel & Veselić) and ``cond(H)``.

    ``H`` has unit diagonal and is well conditioned; ``D`` is diagonal with
    entries spaced geometrically from 1 down to ``low``, in random order
    (a grading that is not sorted along the diagonal is what QR-based
    ``eigh`` gets wrong).  Jacobi with the
    relative stopping criterion finds every eigenvalue, the smallest included,
    to relative accuracy ``O(cond(H) eps)``.

    Returns
    -------
    A : numpy.ndarray, shape (n, n)
    cond_H : float
    """
    rng = np.random.default_rng(rng)
    Z = rng.standard_normal((n, n))
    if complex:
        Z = Z + 1j * rng.standard_normal((n, n))
    G = Z.conj().T @ Z / n + np.eye(n)
    d = 1.0 / np.sqrt(np.real(np.diagonal(G)))
    H = (G * d).T * d
    H = (H + H.conj().T) / 2
    D = rng.permutation(np.geomspace(1.0, low, n))   # unsorted grading defeats QR
    A = (H * D).T * D
    return (A + A.conj().T) / 2, float(np.linalg.cond(H))


def _as_host_general(A: Any):
    if hasattr(A, "tocsr"):
        return A.tocsr().astype(np.result_type(A.dtype, np.float64))
    a = _host(A)
    return a.astype(np.result_type(a.dtype, np.float64))


def svd_residual_ratio(A: Any, U: Any, s: Any, Vh: Any, *, eps: float | None = None,
                       anorm: float | None = None) -> float:
    """Largest of ``||A V - U Σ||_1`` and ``||Aᴴ U - V Σ||_1`` over ``max(m, n) ||A||_1 eps``.

    Parameters
    ----------
    A : array or sparse matrix, shape (m, n)
    U : array, shape (m, k)
        Left singular vectors, as columns.
    s : array, shape (k,)
        Singular values (any order, matching the columns).
    Vh : array, shape (k, n)
        Right singular vectors, as rows.
    eps, anorm : float, optional
        As in :func:`residual_ratio`.
    """
    Uh, Vhh = _host(U), _host(Vh)
    eps = _eps(Uh.dtype) if eps is None else eps
    Ah = _as_host_general(A)
    m, n = Ah.shape
    sh = _host(s).astype(np.float64)
    U64 = Uh.astype(np.result_type(Uh.dtype, np.float64))
    V64 = Vhh.astype(np.result_type(Vhh.dtype, np.float64)).conj().T
    R1 = Ah @ V64 - U64 * sh
    R2 = (Ah.conj().T @ U64) - V64 * sh
    if R1.size == 0:
        return 0.0
    anorm = max(_norm1(Ah), _norm1(Ah.conj().T)) if anorm is None else anorm
    worst = max(float(np.abs(R1).sum(axis=0).max()), float(np.abs(R2).sum(axis=0).max()))
    return worst / (max(m, n) * (anorm if anorm > 0 else 1.0) * eps)


def assert_singular_triplets(A: Any, U: Any, s: Any, Vh: Any, *, exact: Any = None,
                             threshold: float = THRESHOLD, eps: float | None = None) -> None:
    """Assert LAPACK-style ratios for singular triplets and, if given, the exact values.

    Checks :func:`svd_residual_ratio`, the orthogonality ratios of ``U`` and
    of ``Vhᴴ``, and that ``s`` agrees with ``exact`` (compared sorted) within
    ``threshold * max(m, n) * ||A||_1 eps``.
    """
    Uh = _host(U)
    eps = _eps(Uh.dtype) if eps is None else eps
    Ah = _as_host_general(A)
    anorm = max(_norm1(Ah), _norm1(Ah.conj().T))
    r = svd_residual_ratio(Ah, U, s, Vh, eps=eps, anorm=anorm)
    ou = orthogonality_ratio(U, eps=eps)
    ov = orthogonality_ratio(_host(Vh).conj().T, eps=eps)
    _check(r < threshold, f"singular residual ratio {r:.3g} >= {threshold}")
    _check(ou < threshold, f"orthogonality ratio of U {ou:.3g} >= {threshold}")
    _check(ov < threshold, f"orthogonality ratio of V {ov:.3g} >= {threshold}")
    if exact is not None:
        e = eigenvalue_error(s, exact, anorm=max(anorm, np.finfo(float).tiny), eps=eps)
        _check(e < threshold * max(Ah.shape),
               f"singular values differ from the exact ones by {e:.3g} ||A|| eps "
               f">= {threshold} max(m, n)")


def matrix_with_singular_values(m: int, n: int, singular_values: Any, *, rng: Any = None,
                                complex: bool = False):
    """``U diag(σ) Vᴴ`` with Haar-random orthonormal ``U`` (m x r) and ``V`` (n x r).

    ``r = len(singular_values) <= min(m, n)``; pad with zeros for an exactly
    low-rank or rank-deficient matrix.  Returns ``(A, U, V)`` as host arrays.
    """
    rng = np.random.default_rng(rng)
    sig = np.asarray(singular_values, dtype=np.float64)
    r = sig.size
    if r > min(m, n):
        raise ValueError(f"`singular_values` has {r} entries; at most min(m, n) = {min(m, n)}.")

    def haar(rows: int) -> np.ndarray:
        Z = rng.standard_normal((rows, r))
        if complex:
            Z = Z + 1j * rng.standard_normal((rows, r))
        Q, R = np.linalg.qr(Z)
        return Q * (np.diagonal(R) / np.abs(np.diagonal(R)))

    U, V = haar(m), haar(n)
    return (U * sig) @ V.conj().T, U, V
