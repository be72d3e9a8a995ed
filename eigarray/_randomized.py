"""Randomized SVD and randomized Hermitian eigendecomposition.

Algorithms: the range finder of Halko, Martinsson & Tropp (2011) with
oversampling and power iterations, each pass re-orthonormalised; the
randomized block Krylov method of Musco & Musco (2015); and, for positive
semidefinite matrices, the stable fixed-rank Nyström approximation of Tropp,
Yurtsever, Udell & Cevher (2017).  A Gaussian test matrix is drawn on the
host from the caller's random state and moved to the operator's namespace,
so that every backend sees the same numbers.

Storage: blocks of ``l = k + n_oversamples`` vectors are ``(m, l)`` arrays
of *columns* in the operator's namespace and on its device; every product
with the operator and every orthonormalisation is a matrix-matrix product.
The small problems (Cholesky factors and Gram matrices ``l x l``, the final
singular value or eigenvalue decomposition of an ``l x l`` triangular or
projected matrix) live on the host in float64 or complex128.

Host synchronisation: one ``l x l`` matrix per orthonormalisation (the Gram
matrix for Cholesky-QR, the ``R`` factor for QR; none for LU or 'none') and
one at the end (the small SVD or eigenproblem).  A row-chunked Dask array
given to :func:`randomized_svd` is factorised as one task graph (one task per
row block and pass, a tall-skinny QR tree, the small problems in tasks):
submitted once, with one wait, for the singular values.  Other Dask paths
persist each block product, so that the graph is evaluated once per pass.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from . import _namespace as ns
from . import _validate as val
from ._linalg import (
    _apply_host,
    _cholesky_upper,
    cholesky_qr,
    gram,
    householder_qr,
    lu_normalize,
    scaled_operator,
)
from ._operator import LinearOperator, aslinearoperator
from ._result import ConvergenceInfo, EighResult, SVDResult

__all__ = ["randomized_svd", "randomized_eigh", "svd_impl", "eigh_impl", "adjoint"]

_NORMALIZERS = ("auto", "QR", "LU", "cholqr2", "none")
_SVD_METHODS = ("range_finder", "block_krylov")
_EIGH_METHODS = ("nystrom", "range_finder")


# ---------------------------------------------------------------------------
# Small helpers

def _to_xp(a: Any, xp: Any, dtype: Any, like: Any) -> Any:
    """A host NumPy array as an array of ``xp`` with ``dtype`` on the device of ``like``."""
    out = ns.from_host_numpy(ns.numpy_namespace().asarray(a), xp, like=like)
    return xp.astype(out, dtype) if out.dtype != dtype else out


def _gaussian(xp: Any, n: int, l: int, dtype: Any, rng: Any, device: Any) -> Any:
    """An ``(n, l)`` standard normal block drawn on the host from ``rng``, on ``device``.

    Its columns are scaled to unit norm (the range they span is the same):
    a product with them then stays within ``||A||`` in every entry, where
    columns of norm ``sqrt(n)`` made the first product of a matrix of norm
    1.2e308 (50 x 50) overflow.
    """
    hx = ns.numpy_namespace()
    if ns.is_complex(xp, dtype):
        G = rng.standard_normal((n, l)) + 1j * rng.standard_normal((n, l))
    else:
        G = rng.standard_normal((n, l))
    norms = hx.linalg.vector_norm(G, axis=0)
    G = G / hx.where(norms > 0, norms, 1.0)
    out = _to_xp(hx.asarray(G), xp, dtype, None)
    if device is not None and not ns.is_dask_array(out) and ns.device(out) != device:
        out = ns.to_device(out, device)
    return out


def _matmat(op: LinearOperator, X: Any) -> Any:
    return ns.persist(op.matmat(X))


def _rmatmat(op: LinearOperator, Y: Any) -> Any:
    return ns.persist(op.rmatmat(Y))


def _lazy_qr(xp: Any, Y: Any) -> tuple[Any, Any]:
    """Dask: ``Q`` of the tall-skinny QR, persisted, with no host synchronisation.

    On a cluster every trip to the host waits for the whole graph and the
    scheduler; Householder TSQR needs none, where Cholesky-QR needs the Gram
    matrix on the host to check it, twice per block.
    """
    Q, _ = xp.linalg.qr(ns.one_column_chunk(Y))
    return ns.persist(Q), None


def _normalize(xp: Any, Y: Any, how: str, *, cplx: bool, eps: float) -> tuple[Any, Any]:
    """Re-normalise a block between power passes; ``(Q, R or None)``, ``Y = Q R``."""
    if how == "none":
        return Y, None
    if how == "LU":
        return ns.persist(ns.one_column_chunk(lu_normalize(xp, Y))), None
    if ns.is_dask_array(Y):
        return _lazy_qr(xp, Y)
    if how == "QR":
        return _qr(xp, Y)
    Q, R, _ = cholesky_qr(xp, Y, cplx=cplx, eps=eps)          # 'auto' and 'cholqr2'
    return ns.persist(Q), R


def _orthonormalize(xp: Any, Y: Any, how: str, *, cplx: bool, eps: float) -> tuple[Any, Any]:
    """Orthonormal columns spanning ``Y``: Householder for 'QR', else Cholesky-QR2 (+ fallbacks)."""
    if ns.is_dask_array(Y):
        return _lazy_qr(xp, Y)
    if how == "QR":
        return _qr(xp, Y)
    Q, R, _ = cholesky_qr(xp, Y, cplx=cplx, eps=eps)
    return ns.persist(Q), R


def _project_out(xp: Any, Qs: list, Y: Any, cplx: bool) -> Any:
    """``Y - Q (Qᴴ Y)`` against every block of ``Qs`` (one classical Gram-Schmidt pass)."""
    for Q in Qs:
        C = (xp.conj(Q).T @ Y) if cplx else (Q.T @ Y)
        Y = Y - Q @ C
    return Y


#: A fused power pass is taken while ``eps cond(Y)²``, the relative error it
#: leaves in the block's weakest direction, is below this.
_FUSED_LOSS = 1e-3


def _fused_pass(op: LinearOperator, Z: Any, scale: float | None, *, cplx: bool, eps: float,
                check: Any = None) -> tuple:
    """One power pass with a single read of ``A`` (Cholesky-QR of ``Y = A Z``).

    The pass forms ``Y = A Z`` and ``Aᴴ Y`` together and divides by the
    Cholesky factor ``R`` of ``Yᴴ Y`` afterwards, ``Aᴴ Q = (Aᴴ Y) R⁻¹``.
    The rounding errors of ``Aᴴ Y`` then reach the weakest direction of the
    block amplified by ``cond(Y)²`` instead of ``cond(Y)``: harmless in a
    power pass whose subspace the next passes refine, while
    ``eps cond(Y)²`` stays below ``_FUSED_LOSS`` (checked on the eigenvalues
    of the Gram matrix).  ``Z`` is divided by ``scale`` (``||A Z||`` of the
    previous pass) so that ``Aᴴ Y`` is of the size of ``Aᴴ Q``; without one
    (the first pass) an ``Aᴴ Y`` that overflowed or came near underflow is
    refused.  Returns ``(Y, Aᴴ Q, R, fuse)`` with ``Y = A Z`` and its
    factor ``R``, or ``(Y, None, None, fuse)`` when refused: the caller
    orthonormalises ``Y`` properly and makes the adjoint product again.
    ``fuse`` says whether later passes should try again (not after an ill
    conditioned block).
    """
    xp = op.xp
    hx = ns.numpy_namespace()
    # A power of two, so that dividing Z and multiplying Y back are exact.
    s = 1.0 if scale is None or not 0 < scale < math.inf else 2.0 ** round(math.log2(scale))
    with hx.errstate(over="ignore", under="ignore", invalid="ignore"):
        Y, W = op.normal_matmat(Z if s == 1.0 else Z * (1.0 / s))
    if check is not None:
        check(Y)
    if s != 1.0:
        Y = Y * s
    G = gram(xp, Y, cplx)
    if not bool(hx.all(hx.isfinite(G))):
        return Y, None, None, False
    w = hx.linalg.eigvalsh(G)
    if not bool(w[-1] > 0 and w[0] * _FUSED_LOSS > eps * w[-1]):
        return Y, None, None, False
    if scale is None:
        # Unscaled: Aᴴ Y is of the size ||A||², which may leave the range.
        Wmax = float(xp.max(xp.abs(W)))
        tiny = float(hx.finfo(hx.float32 if eps > 1e-10 else hx.float64).tiny)
        if not (math.isfinite(Wmax) and Wmax >= tiny / eps):
            return Y, None, None, True
    R = _cholesky_upper(G)
    if R is None:
        return Y, None, None, False
    return Y, _apply_host(xp, W, hx.linalg.inv(R / s)), R, True


def _host_svals(R: Any, k: int) -> Any:
    """The ``k`` largest singular values of a host ``l x l`` factor (NaN when absent)."""
    hx = ns.numpy_namespace()
    if R is None:
        return hx.full(k, hx.nan)
    s = hx.linalg.svdvals(R)
    out = hx.full(k, hx.nan)
    out[:min(k, s.shape[0])] = s[:k]
    return out


def adjoint(op: LinearOperator) -> LinearOperator:
    """The adjoint ``Aᴴ`` of a bound operator with an adjoint (products counted on ``op``).

    ``matmat`` of the result is ``op.rmatmat`` and vice versa.  Products are
    counted twice: on the adjoint (``n_matvec`` counts products with ``Aᴴ``)
    and, through the bound methods, on ``op`` itself.
    """
    return LinearOperator((op.shape[1], op.shape[0]), op.dtype, op.xp,
                          matvec=op.rmatvec, matmat=op.rmatmat,
                          rmatvec=op.matvec, rmatmat=op.matmat, device=op.device,
                          normal=op._rnormal, rnormal=op._normal)


def _count(op: LinearOperator) -> int:
    return op.n_matvec + op.n_rmatvec


# ---------------------------------------------------------------------------
# Randomized SVD

def svd_impl(op: LinearOperator, k: int, *, n_oversamples: int, n_iter: int, normalizer: str,
             method: str, rng: Any, transpose: bool = False,
             residuals: bool = False, first_check: Any = None) -> SVDResult:
    """Randomized SVD of a bound operator with an adjoint (validated arguments).

    Parameters
    ----------
    op : LinearOperator
        Bound (``op.xp`` set), shape ``(m, n)``, with ``rmatmat``.
    k : int
        ``1 <= k <= min(m, n)``.
    n_oversamples : int
        ``>= 0``; the block size is ``l = min(k + n_oversamples, min(m, n))``.
    n_iter : int
        Power passes (``>= 0``); for 'block_krylov' the number of Krylov
        blocks after the first, capped so the basis fits in ``min(m, n)``;
        passes beyond the cap run as power passes on the first block.
    normalizer : {'auto', 'QR', 'LU', 'cholqr2', 'none'}
        Re-normalisation between passes.
    method : {'range_finder', 'block_krylov'}
    rng : numpy.random.Generator
    transpose : bool, default=False
        Work on ``Aᴴ`` (cheaper when ``m < n``); the result is for ``A``.
    residuals : bool, default=False
        Compute the true residual norms with one more product ``A V``
        (``k`` columns); otherwise they are NaN.
    first_check : callable, optional
        Called on the first product ``A Ω`` (see :func:`_sketch_check`).

    Returns
    -------
    SVDResult
        ``U`` (m, k), ``S`` (k,) descending in the real working dtype,
        ``Vh`` (k, n), in ``op.xp``; no sign normalisation.
    """
    if transpose:
        adj = adjoint(op)
        res = svd_impl(adj, k, n_oversamples=n_oversamples, n_iter=n_iter,
                       normalizer=normalizer, method=method, rng=rng, residuals=residuals,
                       first_check=first_check)
        xp = op.xp
        U, S, Vh = res
        cplx = ns.is_complex(xp, op.dtype)
        return SVDResult(xp.conj(Vh).T if cplx else Vh.T, S,
                         xp.conj(U).T if cplx else U.T, info=res.info)
    op, op_scale = scaled_operator(op)
    xp = op.xp
    hx = ns.numpy_namespace()
    m, n = op.shape
    dtype = op.dtype
    cplx = ns.is_complex(xp, dtype)
    eps = ns.eps(xp, dtype)
    l = min(k + n_oversamples, m, n)
    start = _count(op)
    like = None
    history: dict[str, list] = {"n_matvec": [], "singular_values": []}

    def record(R: Any, ahead: int = 0) -> None:
        # ``ahead``: adjoint products already made past the block recorded.
        history["n_matvec"].append(_count(op) - start - ahead)
        history["singular_values"].append(_host_svals(R, k) * op_scale())

    Omega = _gaussian(xp, n, l, dtype, rng, op.device)
    passes = 0
    if method == "range_finder":
        Z = Omega
        del Omega
        # Power passes read A once (op.normal_matmat) while the normaliser is
        # Cholesky-QR and the blocks are well enough conditioned; a block too
        # ill conditioned for it says the later ones will be too.
        fuse = normalizer in ("auto", "cholqr2") and op.has_normal
        scale = None                                  # ||A Z|| of the last pass
        for it in range(n_iter):
            R = W = None
            if fuse:
                Y, W, R, fuse = _fused_pass(op, Z, scale, cplx=cplx, eps=eps,
                                            check=first_check if it == 0 else None)
            else:
                Y = _matmat(op, Z)
                if it == 0 and first_check is not None:
                    first_check(Y)
            like = Y
            if R is not None:                         # W = Aᴴ Q already
                record(R if it > 0 else None, ahead=W.shape[1])
            else:
                Q, R = _normalize(xp, Y, normalizer, cplx=cplx, eps=eps)
                record(R if it > 0 else None)         # M Ω: Ω is not orthonormal
                W = _rmatmat(op, Q)
            if R is not None:
                scale = float(hx.linalg.norm(R, 2))
            Z, _ = _normalize(xp, W, normalizer, cplx=cplx, eps=eps)
            passes += 1
        Y = _matmat(op, Z)
        if n_iter == 0 and first_check is not None:
            first_check(Y)
        like = Y
        del Z
        Q, R = _orthonormalize(xp, Y, normalizer, cplx=cplx, eps=eps)
        # Z is orthonormal only after an orthonormalising normaliser (or Ω)
        record(R if n_iter > 0 and normalizer not in ("LU", "none") else None)
        Bh = _rmatmat(op, Q)                                       # Aᴴ Q, (n, l)
    else:
        Y = _matmat(op, Omega)
        if first_check is not None:
            first_check(Y)
        like = Y
        del Omega
        blocks = 1 + min(n_iter, max(0, min(m, n) // l - 1))
        # Passes the basis has no room for are power passes on the first
        # block (unless it spans the whole range already): a wide block
        # would otherwise get no iteration at all.
        for _ in range(n_iter - (blocks - 1) if l < min(m, n) else 0):
            Q, _ = _normalize(xp, Y, normalizer, cplx=cplx, eps=eps)
            Z, _ = _normalize(xp, _rmatmat(op, Q), normalizer, cplx=cplx, eps=eps)
            Y = _matmat(op, Z)
            passes += 1
        basis_how = normalizer if normalizer in ("QR", "cholqr2") else "auto"
        Qs: list = []
        Zs: list = []
        for b in range(blocks):
            if b > 0:
                Y = _matmat(op, Z)
                passes += 1
            for _ in range(2):                                     # block Gram-Schmidt twice
                Y = ns.persist(_project_out(xp, Qs, Y, cplx))
                Y, R = _orthonormalize(xp, Y, basis_how, cplx=cplx, eps=eps)
            Qs.append(Y)
            record(None)                              # projected blocks: no estimates
            Zb = _rmatmat(op, Y)                                    # Aᴴ Q_b, kept for B
            Zs.append(Zb)
            if b + 1 < blocks:
                Z, _ = _normalize(xp, Zb, normalizer, cplx=cplx, eps=eps)
        Q = Qs[0] if len(Qs) == 1 else ns.persist(ns.one_column_chunk(xp.concat(Qs, axis=1)))
        Bh = Zs[0] if len(Zs) == 1 else ns.persist(ns.one_column_chunk(xp.concat(Zs, axis=1)))
        del Qs, Zs

    # Rayleigh-Ritz: Bᴴ = Aᴴ Q = Q2 R, so B = Qᴴ A = Rᴴ Q2ᴴ; with R = X Σ Wᴴ on the
    # host, A ≈ Q B = (Q W) Σ (Q2 X)ᴴ.
    Q2, Rb = _qr(xp, Bh)
    del Bh
    X, s, Wh = hx.linalg.svd(Rb, full_matrices=False)
    W = hx.conj(Wh.T)[:, :k] if cplx else Wh.T[:, :k]
    U = Q @ _to_xp(W, xp, dtype, like)
    V = Q2 @ _to_xp(X[:, :k], xp, dtype, like)
    real = ns.real_dtype(xp, dtype)
    Vh = xp.conj(V).T if cplx else V.T
    n_products = _count(op) - start
    history["n_matvec"].append(n_products)
    history["singular_values"].append(hx.asarray(s[:k], dtype="float64") * op_scale())
    if residuals:
        AV = op.matmat(V)
        Rr = AV - U * xp.astype(_to_xp(hx.asarray(s[:k]), xp, real, like), dtype)[None, :]
        res = ns.to_host_numpy(xp.linalg.vector_norm(Rr, axis=0)).astype("float64") * op_scale()
        n_products = _count(op) - start
    else:
        res = hx.full(k, hx.nan)
    S = _to_xp(hx.asarray(s[:k] * op_scale()), xp, real, like)
    info = ConvergenceInfo(hx.ones(k, dtype=bool), res, passes, n_products,
                           {key: hx.asarray(v) for key, v in history.items()})
    return SVDResult(U, S, Vh, info=info)


def flip_signs(xp: Any, U: Any, Vh: Any) -> tuple[Any, Any]:
    """scikit-learn's ``svd_flip`` (u-based): the largest entry of each column of ``U`` is real > 0.

    Each column ``u`` is multiplied by ``c = conj(u_max) / |u_max|`` and the matching
    row of ``Vh`` by ``conj(c)``, which leaves ``U diag(S) Vh`` unchanged.
    """
    m = U.shape[0]
    idx = xp.argmax(xp.abs(U), axis=0)
    mask = xp.astype(xp.arange(m)[:, None] == idx[None, :], U.dtype)
    umax = xp.sum(U * mask, axis=0)
    mag = xp.abs(umax)
    one = xp.ones_like(umax)
    safe = xp.where(mag > 0, mag, xp.ones_like(mag))
    c = xp.conj(umax) / xp.astype(safe, U.dtype) if ns.is_complex(xp, U.dtype) else umax / safe
    c = xp.where(mag > 0, c, one)
    cv = xp.conj(c) if ns.is_complex(xp, U.dtype) else c
    return U * c[None, :], Vh * cv[:, None]


def _adapt(M: Any, name: str, *, check_finite: bool = True) -> LinearOperator:
    """Adapt ``M``; bound to NumPy when it carries no namespace; must have an adjoint."""
    if ns.is_array_api_obj(M) and not hasattr(M, "matvec") and getattr(M, "ndim", 2) != 2:
        raise ValueError(f"`{name}` must be a 2-D array; got an array of shape {tuple(M.shape)}.")
    op = aslinearoperator(M, name=name, check_finite=check_finite)
    if op.xp is None:
        op = op.bind(ns.numpy_namespace())
    if not op.has_adjoint:
        raise TypeError(
            f"`{name}` must provide the adjoint product (`rmatmat` or `rmatvec`) for a "
            f"randomized method; got an operator of type {type(M).__name__} without one.")
    if ns.is_array_api_obj(M) and ns.is_complex(op.xp, op.dtype) and not ns.is_dask_array(M):
        op = _complex_dense(op, M)
    return op


def _sketch_check(M: Any, name: str) -> Any:
    """A check of the first product ``Y = M Ω`` that stands for a NaN/Inf scan of ``M``.

    ``Ω`` is Gaussian, so none of its entries is zero: a NaN or an Inf in
    ``M`` reaches ``Y``, and a finite ``Y`` proves ``M`` finite without a
    pass over it.  Only a non-finite ``Y`` makes the scan, to tell NaN/Inf
    in ``M`` from overflow.  For dense arrays other than Dask; None otherwise.
    """
    if not ns.is_array_api_obj(M) or hasattr(M, "matvec") or ns.is_dask_array(M):
        return None

    def check(Y: Any) -> None:
        xp = ns.array_namespace(Y)
        if not bool(xp.all(xp.isfinite(Y))):
            xm = ns.array_namespace(M)
            if not bool(xm.all(xm.isfinite(M))):
                raise ValueError(f"`{name}` must not contain NaN or Inf.")

    return check


def _complex_dense(op: LinearOperator, M: Any) -> LinearOperator:
    """A complex dense operator whose adjoint product does not copy ``conj(M)``."""
    xp = op.xp
    A = M if M.dtype == op.dtype else xp.astype(M, op.dtype)

    def rmatmat(Y):
        return xp.conj(xp.conj(Y).T @ A).T

    return LinearOperator(op.shape, op.dtype, xp, matvec=lambda x: A @ x,
                          matmat=lambda X: A @ X, rmatvec=lambda y: rmatmat(y[:, None])[:, 0],
                          rmatmat=rmatmat, device=op.device, normal=op._normal,
                          rnormal=op._rnormal)


def _check_n_iter(n_iter: Any, k: int, mn: int) -> int:
    if isinstance(n_iter, str):
        if n_iter != "auto":
            raise ValueError(f"`n_iter` must be 'auto' or a non-negative integer; "
                             f"got n_iter={n_iter!r}.")
        return 7 if k < 0.1 * mn else 4
    return val.check_int(n_iter, name="n_iter", low=0)


def randomized_svd(M: Any, n_components: int, *, n_oversamples: int = 10,
                   n_iter: int | str = "auto", power_iteration_normalizer: str = "auto",
                   transpose: bool | str = "auto", flip_sign: bool = True,
                   random_state: Any = None, method: str = "range_finder",
                   compute: bool = False) -> SVDResult:
    """Truncated SVD by randomized range finding (scikit-learn's ``randomized_svd``).

    A Gaussian test matrix ``Ω`` with ``l = n_components + n_oversamples``
    columns probes the range of ``M``: ``Y = M Ω``, then ``n_iter`` power
    passes ``Y <- M (Mᴴ Y)``, re-normalised after every product; ``Q``
    orthonormal with the range of ``Y``; ``B = Qᴴ M``, and the SVD of the
    small ``B`` gives the singular triplets (Halko, Martinsson & Tropp).
    With ``method='block_krylov'`` the blocks of every pass are kept and
    orthonormalised against each other (Musco & Musco), and the final
    Rayleigh-Ritz uses the whole Krylov basis: for the same number of
    passes, more accurate on slowly decaying spectra.  The basis holds at
    most ``min(m, n)`` columns; passes it has no room for run as power
    passes on the first block.

    Parameters
    ----------
    M : array, sparse matrix or operator, shape (m, n)
        A dense array of any supported namespace (NumPy, CuPy, torch, JAX,
        array-api-strict, Dask chunked by rows), a scipy or cupyx sparse
        matrix, or an operator with ``matmat`` and ``rmatmat`` (or
        ``matvec``/``rmatvec``).  Never modified.
    n_components : int
        Number of singular triplets, ``1 <= n_components <= min(m, n)``.
    n_oversamples : int, default=10
        Extra random vectors; the block size is ``l = min(n_components +
        n_oversamples, min(m, n))``.
    n_iter : int or 'auto', default='auto'
        Power passes (each one product with ``M`` and one with ``Mᴴ``).
        'auto': 7 when ``n_components < 0.1 min(m, n)``, else 4
        (scikit-learn's rule).
    power_iteration_normalizer : {'auto', 'QR', 'LU', 'cholqr2', 'none'}, default='auto'
        How blocks are re-normalised between products.  'auto' and 'cholqr2'
        use Cholesky-QR2 (four matrix products and a host Cholesky of
        an ``l x l`` Gram matrix), shifted Cholesky-QR3 when the block is ill
        conditioned, and Householder QR when it is numerically rank
        deficient, so they stay accurate in float32.  'QR' is Householder QR
        in the array's namespace, 'LU' scikit-learn's pivoted ``P L`` (in the
        namespace, one column at a time), 'none' no normalisation (only for
        small ``n_iter``: small singular directions underflow otherwise).
        The last block is always orthonormalised ('QR' for 'QR', Cholesky-QR
        otherwise).  Unlike scikit-learn, whose 'auto' means 'LU' (or 'none'
        for ``n_iter <= 2``).  On Dask arrays every normaliser but 'none' is
        a tall-skinny QR inside the graph (Cholesky-QR2 with its checks and
        fallbacks on each row block, Householder QR of the stacked ``R``
        factors), with no trip to the host; the subspaces, hence the
        results, are those of the other normalisers in exact arithmetic.
    transpose : bool or 'auto', default='auto'
        Work on ``Mᴴ``; 'auto' does so when ``m < n``.
    flip_sign : bool, default=True
        Make the entry of largest magnitude of each column of ``U`` real and
        positive (scikit-learn's ``svd_flip`` with ``u_based_decision``).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Source of the test matrix (drawn on the host, so every backend sees
        the same numbers).  The draws differ from scikit-learn's for the same
        seed; the results agree to the accuracy of the method.
    method : {'range_finder', 'block_krylov'}, default='range_finder'
        Halko-Martinsson-Tropp or randomized block Krylov.
    compute : bool, default=False
        For Dask input: return Dask arrays, ``U`` row-chunked like ``M``
        (False, the default: Dask in, Dask out; their blocks are already
        computed or being computed on the workers), or NumPy arrays (True).
        Ignored for every other input.

    Returns
    -------
    SVDResult
        ``(U, S, Vh)``: ``U`` (m, k), ``S`` (k,) **descending** in the real
        working dtype, ``Vh`` (k, n), in the namespace and on the device of
        ``M`` (NumPy for scipy sparse input and for Dask input with
        ``compute=True``; the blocks of every pass are computed either way,
        the lazy outputs are one small product from them).
        ``info.converged`` is all True (the method has no stopping test),
        ``info.residual_norms`` is NaN (the true residual ``||M v - σ u||``
        would cost one more product, see Notes),
        ``info.n_iter`` the number of power passes, ``info.n_matvec`` the
        products with ``M`` and ``Mᴴ`` counted per column, and
        ``info.history`` holds ``"n_matvec"`` and ``"singular_values"``, one
        row per ``M``-side block and a last row with the result: estimates of
        the top ``k`` read off the ``R`` factor of ``M Z`` (``Z``
        orthonormal; NaN for the first block ``M Ω``, for the 'LU' and 'none'
        normalisers and for the projected blocks of 'block_krylov').

    Raises
    ------
    ValueError
        ``M`` not 2-D or holding NaN/Inf, ``n_components`` out of range, a
        negative ``n_oversamples`` or ``n_iter``, or an unknown
        ``power_iteration_normalizer``, ``transpose`` or ``method``.
    TypeError
        ``M`` is an operator without an adjoint product, or an argument has
        the wrong type.

    See Also
    --------
    sklearn.utils.extmath.randomized_svd : The peer this signature copies.
    randomized_eigh : The same idea for Hermitian matrices (Nyström for PSD).
    svds : Partial SVD to a tolerance.

    Notes
    -----
    Cost: ``2 n_iter + 2`` products of ``M`` or ``Mᴴ`` with ``l`` columns
    (block Krylov: the same; the final ``Mᴴ Q`` reuses the products of
    earlier passes); on a dense NumPy ``M`` larger than the cache, each
    power pass of the range finder with a Cholesky-QR normaliser makes
    its two products in one read of ``M`` (see the user guide), one
    orthonormalisation of an ``(m, l)`` or ``(n, l)`` block per product
    (about ``4 m l²`` flops), a Householder QR of ``Mᴴ Q`` and an SVD of
    an ``l x l`` (block Krylov: ``(n_iter+1) l`` square) triangular matrix
    on the host.  Host synchronisations: one
    ``l x l`` matrix per orthonormalisation, one at the end.  The residuals
    ``||Mᴴ u - σ v||`` vanish by construction (``||M v - σ u||`` when the
    transpose is worked on: ``transpose=True``, or 'auto' with ``m < n``);
    the other residual is not available from the products made, so it is
    reported as NaN rather than paid for.  Dask input (chunked by rows) with
    ``method='range_finder'`` is one task graph, submitted once: per pass one task per row block
    (``Y_i = M_i Z``, its QR ``Q_i R_i`` in memory, ``P_i = M_iᴴ Q_i``) and
    a tall-skinny QR tree over the ``R_i`` that sums ``Mᴴ Q`` from the
    ``P_i``; the ``l x l`` SVD runs in a task, and the host waits once, for
    the singular values.  'block_krylov' and 'none' on Dask run the generic
    code with Dask products, persisted once per pass.

    References
    ----------
    N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure with
    randomness", SIAM Review 53(2), 217-288, 2011.
    C. Musco and C. Musco, "Randomized block Krylov methods for stronger and
    faster approximate singular value decomposition", NeurIPS 2015.
    Y. Yamamoto et al., "Roundoff error analysis of the CholeskyQR2
    algorithm", ETNA 44, 306-326, 2015; T. Fukaya et al., "Shifted
    Cholesky QR for computing the QR factorization of ill-conditioned
    matrices", SIAM J. Sci. Comput. 42(1), A477-A503, 2020.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> from eigarray.testing import matrix_with_singular_values
    >>> s_true = 0.5 ** np.arange(30)
    >>> A, _, _ = matrix_with_singular_values(200, 100, s_true, rng=0)
    >>> U, S, Vt = eigarray.randomized_svd(A, 5, random_state=0)
    >>> bool(np.allclose(S, s_true[:5], rtol=1e-12))
    True
    >>> U.shape, Vt.shape
    ((200, 5), (5, 100))
    """
    first_check = _sketch_check(M, "M")
    op = _adapt(M, "M", check_finite=first_check is None)
    m, n = op.shape
    mn = min(m, n)
    k = val.check_int(n_components, name="n_components", low=1, high=mn,
                      rule=f"1 <= n_components <= min(m, n) = {mn}")
    p = val.check_int(n_oversamples, name="n_oversamples", low=0)
    q = _check_n_iter(n_iter, k, mn)
    how = val.check_choice(power_iteration_normalizer, _NORMALIZERS,
                           name="power_iteration_normalizer")
    if isinstance(transpose, str) and transpose == "auto":
        transpose = m < n
    if not isinstance(transpose, bool):
        raise ValueError(f"`transpose` must be True, False or 'auto'; got transpose={transpose!r}.")
    flip_sign = val.check_bool(flip_sign, name="flip_sign")
    method = val.check_choice(method, _SVD_METHODS, name="method")
    compute = val.check_bool(compute, name="compute")
    rng = ns.host_rng(random_state, name="random_state")

    xp = op.xp
    if ns.is_dask_array(M) and method == "range_finder" and how != "none":
        # One task graph, tall-skinny QR normalisation; for Mᴴ without the sign flip,
        # which belongs to the U of M (a small lazy step below).
        result = _dask_svd(M, k, l=min(k + p, mn), n_iter=q, rng=rng, transpose=transpose,
                           flip_sign=flip_sign and not transpose,
                           compute=compute and not transpose)
        if not transpose:
            return result
    else:
        result = svd_impl(op, k, n_oversamples=p, n_iter=q, normalizer=how, method=method,
                          rng=rng, transpose=transpose, first_check=first_check)
    U, S, Vh = result
    if flip_sign:
        U, Vh = flip_signs(xp, U, Vh)
    if ns.is_dask_array(U) and compute:
        U, S, Vh = (ns.to_host_numpy(x) for x in _dask_compute(U, S, Vh))
    return SVDResult(U, S, Vh, info=result.info)


def _dask_compute(*arrays: Any) -> tuple:
    """Compute several Dask arrays in one graph evaluation."""
    return sys.modules["dask"].compute(*arrays)     # loaded: the arrays are Dask arrays


def _qr(xp: Any, Y: Any) -> tuple[Any, Any]:
    """Householder QR in the namespace (Dask: tall-skinny QR, ``Q`` and ``R`` evaluated once)."""
    if not ns.is_dask_array(Y):
        return householder_qr(xp, Y)
    Q, R = xp.linalg.qr(Y)
    Q, R = sys.modules["dask"].persist(Q, R)
    return Q, ns.to_host_numpy(R)


# ---------------------------------------------------------------------------
# Randomized SVD of a row-chunked Dask array: one task graph, one wait.
#
# Every pass of the range finder is one task per row block and a small
# reduction.  Block ``i`` computes ``Y_i = A_i Z``, its QR ``Y_i = Q1_i R_i``
# in memory and ``P_i = A_iᴴ Q1_i`` in one task (the block is read twice
# while it is at hand).  The stacked ``R_i`` are the leaves of a tall-skinny
# QR: a node stacks the ``R`` of its children, ``[R_a; R_b] = Qc R``
# (Householder), and since ``Q = diag(Q1_a, Q1_b) Qc`` the node's ``Aᴴ Q`` is
# ``P_a Qc_a + P_b Qc_b``.  The root holds ``Aᴴ Q`` for the orthonormal ``Q``
# of ``A Z`` without ``Q`` ever being formed or moved, and orthonormalises it
# (an ``(n, l)`` block, in the task) into the next ``Z``.  The QR of a block
# in memory is :func:`cholesky_qr`: Cholesky-QR2 where the Gram matrix's
# condition check allows it, else shifted Cholesky-QR3 or Householder, decided
# inside the task; so both sides are orthonormal to working accuracy in every
# pass and no Gram matrix of a whole side is ever formed.  After the last pass
# the root's ``Aᴴ Q = Bᴴ`` goes through Householder QR and the ``l x l`` SVD,
# and ``U = Q W`` is one product per row block with the ``Qc`` blocks on its
# path from the root.  The host waits once, for the singular values.

def _block_qr(xb: Any, Y: Any, cplx: bool, eps: float) -> tuple[Any, Any]:
    """``Y = Q R`` for a block in memory: Cholesky-QR2 with the checks and fallbacks of
    :func:`cholesky_qr` (shifted Cholesky-QR3, Householder), ``R`` in ``Y``'s dtype."""
    if Y.shape[0] < 2 * Y.shape[1]:
        return xb.linalg.qr(Y)
    Q, R, _ = cholesky_qr(xb, Y, cplx=cplx, eps=eps)
    return Q, _to_xp(R, xb, Y.dtype, like=Y)


def _dask_leaf(Ab: Any, Z: Any, cplx: bool, eps: float, keep: bool) -> tuple:
    """Row block ``A_b``: ``(A_bᴴ Q1, R, Q1 if keep else None)`` with ``A_b Z = Q1 R``."""
    if isinstance(Z, tuple):
        Z = Z[0]
    xb = ns.array_namespace(Ab)
    if ns.array_namespace(Z) is not xb:
        Z = ns.from_host_numpy(ns.to_host_numpy(Z), xb, like=Ab)
    Q1, R = _block_qr(xb, Ab @ Z, cplx, eps)
    P = xb.conj(xb.conj(Q1).T @ Ab).T if cplx else Ab.T @ Q1
    return P, R, (Q1 if keep else None)


def _dask_node(parts: list, normalize: bool, cplx: bool, eps: float) -> tuple:
    """Merge TSQR children: ``(Aᴴ Q, R, Qc blocks)``; ``normalize``: ``(orth(Aᴴ Q), R, None)``."""
    xb = ns.array_namespace(parts[0][1])
    Qc, R = xb.linalg.qr(xb.concat([p[1] for p in parts], axis=0))
    blocks = []
    P = None
    start = 0
    for p in parts:
        stop = start + p[1].shape[0]
        blocks.append(Qc[start:stop, ...])
        term = p[0] @ blocks[-1]
        P = term if P is None else P + term
        start = stop
    if normalize:
        return _block_qr(xb, P, cplx, eps)[0], R, None
    return P, R, blocks


def _dask_finish(root: tuple, rounds: list, k: int, cplx: bool) -> tuple:
    """Last pass: Rayleigh-Ritz on ``Bᴴ = Aᴴ Q``; ``(W, V, s, svals of each pass's R)``."""
    Bh, R, _ = root
    xb = ns.array_namespace(R)
    dtype = Bh.dtype
    wide = xb.complex128 if cplx else xb.float64          # the small problem in double
    Q2, Rb = xb.linalg.qr(xb.astype(Bh, wide))
    X, s, Wh = xb.linalg.svd(Rb, full_matrices=False)
    W = xb.astype((xb.conj(Wh).T if cplx else Wh.T)[:, :k], dtype)
    V = xb.astype(Q2 @ X[:, :k], dtype)
    s = xb.astype(s, ns.real_dtype(xb, dtype))
    return W, V, s, [xb.linalg.svdvals(r[1])[:k] for r in rounds[1:]]


def _dask_u(leaf: tuple, path: list, fin: tuple) -> tuple:
    """``U_i = Q1_i Qc_path W`` and the entry of largest magnitude of each of its columns."""
    M = fin[0]
    for node, idx in path:
        M = node[2][idx] @ M
    U = leaf[2] @ M
    xb = ns.array_namespace(U)
    if U.shape[0] == 0:                                       # an empty row block
        return U, xb.zeros((U.shape[1],), dtype=U.dtype, device=ns.device(U))
    idx = xb.argmax(xb.abs(U), axis=0)
    top = xb.take(xb.reshape(U.T, (-1,)), idx + xb.arange(U.shape[1]) * U.shape[0])
    return U, top


def _dask_signs(tops: list, cplx: bool) -> Any:
    """Scikit-learn's ``svd_flip`` factors from the largest entries of the row blocks of ``U``.

    The first block holding a column's largest magnitude wins, as ``argmax`` over ``U`` does.
    """
    xb = ns.array_namespace(tops[0])
    best = tops[0]
    for t in tops[1:]:
        best = xb.where(xb.abs(t) > xb.abs(best), t, best)
    mag = xb.abs(best)
    safe = xb.where(mag > 0, mag, xb.ones_like(mag))
    c = xb.conj(best) / xb.astype(safe, best.dtype) if cplx else best / safe
    return xb.where(mag > 0, c, xb.ones_like(c))


def _dask_scale_u(u: tuple, c: Any) -> Any:
    """A row block of ``U`` with its columns scaled by ``c``."""
    return u[0] * c[None, :]


def _dask_vh(fin: tuple, c: Any, cplx: bool) -> Any:
    """``Vh = (V c)ᴴ``, the rows of ``Vᴴ`` scaled by ``conj(c)`` to match ``U c``."""
    V = fin[1] if c is None else fin[1] * c[None, :]          # Vh = Vᴴ: rows times conj(c)
    return ns.array_namespace(V).conj(V).T if cplx else V.T


def _dask_tree(items: list, split_every: int, normalize: bool, delayed: Any, cplx: bool,
               eps: float) -> tuple:
    """Reduce TSQR leaves to a root; returns the root and, per leaf, its path from the root."""
    paths: list[list] = [[] for _ in items]
    members = [[i] for i in range(len(items))]
    while True:
        groups = [range(g, min(g + split_every, len(items)))
                  for g in range(0, len(items), split_every)]
        last = len(groups) == 1
        nodes, merged = [], []
        for grp in groups:
            node = delayed(_dask_node)([items[j] for j in grp], normalize and last, cplx, eps)
            nodes.append(node)
            merged.append([])
            for pos, j in enumerate(grp):
                for leaf in members[j]:
                    paths[leaf].insert(0, (node, pos))
                merged[-1].extend(members[j])
        if last:
            return nodes[0], paths
        items, members = nodes, merged


def _dask_svd(A: Any, k: int, *, l: int, n_iter: int, rng: Any, flip_sign: bool,
              compute: bool, transpose: bool = False, split_every: int = 8) -> SVDResult:
    """Randomized range finder on a row-chunked Dask array as one task graph (see above).

    Both sides orthonormalised in every pass (what every normaliser but
    'none' means on Dask: the spans, hence the results, are those of the
    other normalisers in exact arithmetic).  The graph is
    persisted and the host waits once, for the singular values (and the
    history); ``U`` and ``Vh`` are lazy views of the persisted blocks, or
    NumPy arrays when ``compute``.  ``transpose``: the factorisation of
    ``Aᴴ`` (rechunked by rows), handed back as that of ``A``; ``flip_sign``
    then applies to the ``V`` of ``Aᴴ``, so the caller flips instead.
    ``split_every``: children per node of the TSQR reduction tree.
    """
    dask = sys.modules["dask"]
    da = sys.modules["dask.array"]
    delayed = dask.delayed
    xp = ns.array_namespace(A)
    hx = ns.numpy_namespace()
    dtype = ns.working_dtype(xp, A.dtype, name="M")
    if A.dtype != dtype:
        A = xp.astype(A, dtype)
    cplx = ns.is_complex(xp, dtype)
    if transpose:
        A = xp.conj(A).T if cplx else A.T
    A = ns.one_column_chunk(A)
    m, n = A.shape
    eps = ns.eps(xp, dtype)
    Omega = _gaussian(hx, n, l, dtype, rng, None)
    blocks = list(A.to_delayed().ravel())
    rows = A.chunks[0]

    Z = delayed(Omega)
    rounds = []
    for it in range(n_iter + 1):
        leaves = [delayed(_dask_leaf)(b, Z, cplx, eps, it == n_iter) for b in blocks]
        root, paths = _dask_tree(leaves, split_every, it < n_iter, delayed, cplx, eps)
        rounds.append(root)
        Z = root
    fin = delayed(_dask_finish)(root, rounds, k, cplx)
    us = [delayed(_dask_u)(leaf, path, fin) for leaf, path in zip(leaves, paths, strict=True)]
    c = delayed(_dask_signs)([u[1] for u in us], cplx) if flip_sign else None
    ublocks = [delayed(_dask_scale_u)(u, c) if flip_sign else u[0] for u in us]
    U = da.concatenate([da.from_delayed(u, (r, k), dtype=dtype) for u, r in zip(ublocks, rows,
                                                                                strict=True)])
    Vh = da.from_delayed(delayed(_dask_vh)(fin, c, cplx), (k, n), dtype=dtype)
    if compute:
        U, Vh, small = dask.compute(U, Vh, fin)
        U, Vh = ns.to_host_numpy(U), ns.to_host_numpy(Vh)
    else:
        U, Vh, fin = dask.persist(U, Vh, fin)
        (small,) = dask.compute(fin)
    s = ns.to_host_numpy(small[2])
    svals = [hx.full(k, hx.nan)] + [hx.asarray(ns.to_host_numpy(v), dtype="float64")
                                    for v in small[3]]            # M Ω: Ω is not orthonormal
    real = ns.real_dtype(xp, dtype)
    S = hx.astype(hx.asarray(s[:k]), real)
    if not compute:
        S = _to_xp(S, xp, real, None)
    history = {"n_matvec": hx.asarray([(2 * j + 1) * l for j in range(n_iter + 1)]
                                      + [(2 * n_iter + 2) * l]),
               "singular_values": hx.asarray(svals + [hx.asarray(s[:k], dtype="float64")])}
    info = ConvergenceInfo(hx.ones(k, dtype=bool), hx.full(k, hx.nan), n_iter,
                           (2 * n_iter + 2) * l, history)
    if transpose:
        U, Vh = (xp.conj(Vh).T, xp.conj(U).T) if cplx else (Vh.T, U.T)
    return SVDResult(U, S, Vh, info=info)


# ---------------------------------------------------------------------------
# Randomized Hermitian eigendecomposition

# 'nystrom' refuses a sampled core ``Qᴴ A Q`` with an eigenvalue below
# ``-_PSD_SLACK sqrt(n) eps ||A Q||_F``: far beyond the rounding of a PSD
# matrix's core (about ``eps ||A||``), far below any genuine negative
# eigenvalue worth the name.
_PSD_SLACK = 100.0


def eigh_impl(op: LinearOperator, k: int, *, method: str, n_oversamples: int, n_iter: int,
              rng: Any) -> EighResult:
    """Randomized eigendecomposition of a bound Hermitian operator (validated arguments).

    Returns the ``k`` wanted eigenpairs (largest for 'nystrom', largest in
    magnitude for 'range_finder'), eigenvalues ascending.
    """
    op, scale = scaled_operator(op)
    xp = op.xp
    hx = ns.numpy_namespace()
    n = op.shape[0]
    dtype = op.dtype
    cplx = ns.is_complex(xp, dtype)
    eps = ns.eps(xp, dtype)
    real = ns.real_dtype(xp, dtype)
    l = min(k + n_oversamples, n)
    start = op.n_matvec
    history: dict[str, list] = {"n_matvec": []}

    Omega = _gaussian(xp, n, l, dtype, rng, op.device)
    Q, _ = _orthonormalize(xp, Omega, "auto", cplx=cplx, eps=eps)
    del Omega
    for _ in range(n_iter):                       # subspace iteration: Q <- orth(A Q)
        Q, _ = _orthonormalize(xp, _matmat(op, Q), "auto", cplx=cplx, eps=eps)
        history["n_matvec"].append(op.n_matvec - start)
    Y = _matmat(op, Q)                            # A Q, (n, l)
    history["n_matvec"].append(op.n_matvec - start)
    T = (xp.conj(Q).T @ Y) if cplx else (Q.T @ Y)
    T = hx.asarray(ns.to_host_numpy(T), dtype="complex128" if cplx else "float64")
    T = (T + hx.conj(T.T)) / 2

    if method == "nystrom":
        # Tropp et al. 2017, Algorithm 3: shift by ν, Cholesky of the core
        # Qᴴ (A + ν I) Q, E = (Y + ν Q) C⁻¹, eigenvalues σ(E)² - ν.
        ynorm = math.sqrt(float(xp.sum(_colnorms2(xp, Y))))
        # floored at the working precision's smallest normal: C⁻¹ must not overflow it
        tiny = float(hx.finfo(hx.float32 if eps > 1e-10 else hx.float64).tiny)
        nu = max(math.sqrt(n) * eps * ynorm, tiny)
        # The core of a PSD matrix is PSD to rounding; a shift alone would
        # always make its Cholesky succeed, and hide an indefinite A.
        lowest = float(hx.linalg.eigvalsh(T)[0])
        if lowest < -_PSD_SLACK * nu:
            raise ValueError(f"`A` is not positive semidefinite: its Rayleigh quotient on the "
                             f"sampled subspace has the eigenvalue {lowest * scale():.3g}; "
                             f"method='nystrom' needs a PSD matrix, use "
                             f"method='range_finder'.")
        C = None
        while C is None:
            try:
                C = hx.conj(hx.linalg.cholesky(T + nu * hx.eye(l)).T)
            except ValueError:                    # not positive definite: A is not PSD enough
                nu *= 10.0
                if nu > 10.0 * max(ynorm, 1.0):
                    raise ValueError("`A` is not positive semidefinite; use "
                                     "method='range_finder'.") from None
        E = _to_xp_mat(xp, Y + nu * Q, hx.linalg.inv(C), dtype)
        Qe, Re = _qr(xp, E)
        Wl, sig, _ = hx.linalg.svd(Re, full_matrices=False)
        lam = hx.maximum(sig ** 2 - nu, 0.0)
        sel = hx.arange(k)[::-1]                  # the k largest, ascending
        w = lam[sel]
        X = Qe @ _to_xp(Wl[:, sel], xp, dtype, like=Qe)
        res = hx.full(k, hx.nan)
    else:
        # Rayleigh-Ritz on Qᴴ A Q; the residuals come from the product A Q already made.
        theta, S = hx.linalg.eigh(T)
        order = hx.argsort(-hx.abs(theta), stable=True)[:k]
        order = order[hx.argsort(theta[order], stable=True)]
        w = theta[order]
        Sk = _to_xp(S[:, order], xp, dtype, like=Q)
        X = Q @ Sk
        Rr = Y @ Sk - X * _to_xp(w, xp, dtype, like=Q)[None, :]
        res = ns.to_host_numpy(xp.linalg.vector_norm(Rr, axis=0)).astype("float64")
    W = _to_xp(hx.asarray(w, dtype="float64") * scale(), xp, real, like=X)
    info = ConvergenceInfo(hx.ones(k, dtype=bool), res * scale(), n_iter, op.n_matvec - start,
                           {key: hx.asarray(v) for key, v in history.items()})
    return EighResult(W, X, info=info)


def _colnorms2(xp: Any, Y: Any) -> Any:
    """Squared column norms of ``Y`` (real)."""
    sq = xp.sum(xp.real(Y * xp.conj(Y)) if ns.is_complex(xp, Y.dtype) else Y * Y, axis=0)
    return sq


def _to_xp_mat(xp: Any, Y: Any, M: Any, dtype: Any) -> Any:
    return Y @ _to_xp(M, xp, dtype, like=Y)


def randomized_eigh(A: Any, k: int, *, method: str = "nystrom", n_oversamples: int = 10,
                    n_iter: int | str = "auto", rng: Any = None) -> EighResult:
    """A few eigenpairs of a Hermitian matrix by randomized subspace methods.

    Gaussian test vectors ``Ω`` (``l = k + n_oversamples`` columns) are
    orthonormalised and pushed through ``n_iter`` steps of subspace iteration
    ``Q <- orth(A Q)``; then, with ``Y = A Q``:

    * ``'nystrom'`` (positive semidefinite ``A``): the stable fixed-rank
      Nyström approximation of Tropp et al. (2017), ``A ≈ Y (Qᴴ Y)⁺ Yᴴ``
      computed with a shift ``ν = sqrt(n) eps ||Y||_F``: ``C = chol(Qᴴ Y +
      ν I)``, ``E = (Y + ν Q) C⁻¹``, and the eigenpairs ``(σ_i(E)² - ν,
      u_i(E))``.  It returns the ``k`` largest eigenvalues, is more accurate
      than Rayleigh-Ritz for the same products, and assumes ``A`` is PSD.
    * ``'range_finder'`` (any Hermitian ``A``): Rayleigh-Ritz on
      ``Qᴴ A Q = Qᴴ Y``; it returns the ``k`` eigenvalues largest in
      magnitude.

    Parameters
    ----------
    A : array, sparse matrix or operator, shape (n, n)
        Hermitian (positive semidefinite for 'nystrom').  Never modified.
    k : int
        Number of eigenpairs, ``1 <= k <= n``.
    method : {'nystrom', 'range_finder'}, default='nystrom'
    n_oversamples : int, default=10
        Extra test vectors (``l = min(k + n_oversamples, n)``).
    n_iter : int or 'auto', default='auto'
        Subspace iteration steps (one product with ``l`` columns each);
        'auto': 7 when ``k < 0.1 n``, else 4.
    rng : None, int or numpy.random.Generator, optional
        Source of the test vectors (drawn on the host).

    Returns
    -------
    EighResult
        ``(eigenvalues, eigenvectors)``: eigenvalues **ascending**, shape
        (k,), real working dtype; eigenvectors as columns, shape (n, k); in
        the namespace and on the device of ``A``.  ``info.converged`` is all
        True; ``info.residual_norms`` are the true ``||A x - λ x||`` for
        'range_finder' (from the product ``A Q`` already made) and NaN for
        'nystrom'; ``info.n_matvec`` counts products per column.

    Raises
    ------
    ValueError
        Non-square ``A``, NaN/Inf, ``k`` out of range, an unknown
        ``method``, or for 'nystrom' a matrix that is not positive
        semidefinite on the sampled subspace (see Notes).

    See Also
    --------
    numpy.linalg.eigh : Every eigenpair of a dense matrix.
    randomized_svd : The randomized SVD.
    eigsh : Lanczos, to a tolerance.

    Notes
    -----
    Cost: ``n_iter + 1`` products with ``l`` columns, one Cholesky-QR2
    (or QR) of an ``(n, l)`` block per product, and for 'nystrom' one
    Householder QR of ``E``; host problems are ``l x l``.  Host
    synchronisations: one ``l x l`` matrix per orthonormalisation and one
    at the end.  'nystrom' tests its assumption on the sampled core
    ``Qᴴ A Q``, the Rayleigh quotient on the subspace the iteration found:
    a negative eigenvalue there beyond rounding (below ``-100 sqrt(n) eps
    ||A Q||_F``) raises.  Negative eigenvalues of ``A`` that are small next
    to the wanted ones, and missed by the subspace, go unseen; they perturb
    the result by about their size.

    References
    ----------
    J. A. Tropp, A. Yurtsever, M. Udell and V. Cevher, "Fixed-rank
    approximation of a positive-semidefinite matrix from streaming data",
    NeurIPS 2017.
    N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure with
    randomness", SIAM Review 53(2), 217-288, 2011.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> from eigarray.testing import matrix_with_spectrum
    >>> lam = 0.7 ** np.arange(100)
    >>> A, _ = matrix_with_spectrum(lam, rng=0)
    >>> w, V = eigarray.randomized_eigh(A, 4, rng=0)
    >>> bool(np.allclose(w, lam[:4][::-1], rtol=1e-10))
    True
    """
    op = aslinearoperator(A, name="A")
    if op.xp is None:
        op = op.bind(ns.numpy_namespace())
    n = val.check_square_shape(op.shape, name="A")
    k = val.check_int(k, name="k", low=1, high=n, rule=f"1 <= k <= n = {n}")
    method = val.check_choice(method, _EIGH_METHODS, name="method")
    p = val.check_int(n_oversamples, name="n_oversamples", low=0)
    q = _check_n_iter(n_iter, k, n)
    rng = ns.host_rng(rng)
    return eigh_impl(op, k, method=method, n_oversamples=p, n_iter=q, rng=rng)
