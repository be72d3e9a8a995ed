"""Array-API building blocks shared by the solvers.

Basis storage convention: an orthonormal basis of ``j`` vectors of length
``n`` is held as the *rows* of a ``(j, n)`` array ``B``.  Rows are contiguous,
so projecting onto the basis (``B @ w``) and removing the projection
(``w - h @ B``) are matrix-vector products over one contiguous block, and a
thick restart is one matrix product ``Yᴴ B``.

Host synchronisation: :func:`project_out` brings the projection
coefficients and the row norms to the host once per pass;
:func:`orthonormalize_rows` one scalar per row pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_extra as xpx

from . import _namespace as ns
from ._dispatch import _THIN_ROWS, RowWork, host_iteration, row_combination

__all__ = [
    "host_iteration",
    "set_rows",
    "project_out",
    "project_out_gram",
    "orthonormalize_rows",
    "combine_rows",
    "iteration_scale",
    "random_vector",
    "scaled_operator",
    "thin_product",
    "row_norms",
    "gram",
    "householder_qr",
    "cholesky_qr",
    "lu_normalize",
]

# Daniel-Gragg-Kaufman-Stewart criterion: a second Gram-Schmidt pass is needed
# when the first removed more than 1 - 1/sqrt(2) of the vector's norm.
_DGKS = 1.0 / math.sqrt(2.0)


def set_rows(B: Any, idx: Any, values: Any) -> Any:
    """``B[idx, ...] = values`` in place where the namespace allows (JAX: a copy)."""
    if type(B).__module__ == "numpy":     # the hot case, once per Lanczos step: no dispatch
        B[idx, ...] = values
        return B
    return xpx.at(B, (idx, ...)).set(values)


# Blocks of up to this many rows are multiplied one row at a time (see
# eigarray._dispatch._THIN_ROWS for why).
_THIN = _THIN_ROWS


def thin_product(xp: Any, Bs: Any, W: Any, cplx: bool) -> Any:
    """``Bs Wᴴ`` (conjugate-linear in ``W``) for a block of rows ``W``."""
    if W.shape[0] > _THIN:
        return xp.conj(Bs @ xp.conj(W).T) if cplx else Bs @ W.T
    if cplx:
        return xp.stack([xp.conj(Bs @ xp.conj(W[c, ...])) for c in range(W.shape[0])], axis=1)
    return xp.stack([Bs @ W[c, ...] for c in range(W.shape[0])], axis=1)


def row_norms(xp: Any, W: Any) -> Any:
    """Euclidean norms of the rows of ``W``, as a host float64 array."""
    # sqrt of the row-wise inner products: one fused pass (a norm reduction
    # makes several), which matters at one call per operator application.
    sq = xp.vecdot(W, W, axis=-1)
    sq = xp.real(sq) if xp.isdtype(sq.dtype, "complex floating") else sq
    return ns.to_host_numpy(xp.sqrt(sq)).astype("float64")


def project_out(xp: Any, B: Any, size: int, W: Any, *, cplx: bool,
                norms_before: Any = None,
                skip_below: float = 0.0, work: RowWork | None = None) -> tuple[Any, Any, Any]:
    """:func:`project_out_gram` without the Gram matrix."""
    return project_out_gram(xp, B, size, W, cplx=cplx, norms_before=norms_before,
                            skip_below=skip_below, work=work)[:3]


def project_out_gram(xp: Any, B: Any, size: int, W: Any, *, cplx: bool,
                     norms_before: Any = None, skip_below: float = 0.0,
                     work: RowWork | None = None) -> tuple[Any, Any, Any, Any]:
    """Orthogonalise the rows of ``W`` against the rows ``B[:size]``.

    Classical Gram-Schmidt as two matrix products per pass (``C = B Wᴴ``,
    ``W -= Cᵀ B``), repeated while some row lost more than ``1 - 1/sqrt(2)``
    of its norm in the last pass (the criterion of Daniel, Gragg, Kaufman and
    Stewart, which makes classical Gram-Schmidt as good as modified
    Gram-Schmidt to working precision).  One read of the basis serves every
    row of ``W``: a block of rows costs about what a single row does.

    Parameters
    ----------
    W : array, shape (b, n)
    norms_before : host array, shape (b,), optional
        Row norms of ``W`` if the caller knows them.
    skip_below : float, default=0
        When every coefficient of the first pass is at most ``skip_below``
        times its row's norm, ``W`` is returned as it is (with zero
        coefficients): the rows are already orthogonal to the basis to that
        level, and the pass that would subtract the projection is saved.
    work : RowWork, optional
        Update the NumPy array ``W`` in place through these scratch rows.

    Returns
    -------
    W : array, shape (b, n)
        The orthogonalised rows.
    C : host array, shape (size, b)
        Projection coefficients ``B[:size] Wᴴ`` summed over the passes.
    norms : host array, shape (b,)
        Row norms after orthogonalisation.
    gram : host array, shape (b, b), or None
        The Gram matrix ``conj(W) Wᵀ`` of the returned rows, when the fused
        kernels formed it (``work`` in an iteration with parallel steps, see
        :func:`eigarray._dispatch.host_iteration`), else None.
    """
    hx = ns.numpy_namespace()
    if norms_before is None:
        norms_before = row_norms(xp, W)
    C = hx.zeros((size, W.shape[0]), dtype="complex128" if cplx else "float64")
    if size == 0:
        return W, C, norms_before, None
    # With parallel steps (see eigarray._dispatch.host_iteration) a pass is
    # two sweeps of the fused kernels, each reading the basis once for every
    # row of W, and the second giving the Gram matrix of what is left: NumPy
    # reads the basis once per row and product.  Not when the kernels are
    # serial: BLAS's threads, reading it twice as often, are faster then
    # (2.6 ms against 3.5 ms on 40,000 rows, 120 of them, on 2 cores).
    fused = work is not None and work.parallel
    if ns.is_jax_namespace(xp):
        # Fixed shapes, so that JAX compiles each product once, not once per size.
        Bs = B
        mask = xp.astype(xp.arange(B.shape[0]) < size, B.dtype)[:, None]
    else:
        Bs, mask = B[:size, ...], None
    norms, G = norms_before, None
    for it in range(3):
        if fused:
            Ch = work.subtract_measure(W, hx.zeros((W.shape[0], 0)), W[:0], Bs)
        else:
            Cd = thin_product(xp, Bs, W, cplx)
            if mask is not None:
                Cd = Cd * mask
            Ch = ns.to_host_numpy(Cd)[:size]
        if it == 0 and skip_below > 0.0 and bool(
                hx.all(hx.max(hx.abs(Ch), axis=0) <= skip_below * norms_before)):
            break
        if fused:
            G = work.subtract_gram(W, Ch, Bs)
            after = gram_norms(G)
        else:
            if work is not None:
                W = work.sub(W, Cd.T, Bs)
            else:
                W = W - (Cd.T @ Bs if W.shape[0] > _THIN else
                         xp.stack([Cd[:, c] @ Bs for c in range(W.shape[0])], axis=0))
            after = row_norms(xp, W)
        C += Ch
        norms_before, norms = norms, after
        if bool(hx.all(norms >= _DGKS * norms_before)):
            break
    return W, C, norms, G


def gram_norms(G: Any) -> Any:
    """Row norms (host float64) from the Gram matrix of a block of rows."""
    hx = ns.numpy_namespace()
    return hx.sqrt(hx.maximum(hx.real(hx.diagonal(G)), 0.0)).astype("float64")


def orthonormalize_rows(xp: Any, B: Any, size: int, W: Any, norms: Any, *, cplx: bool,
                        breakdown: float, rng: Any,
                        work: RowWork | None = None, gram: Any = None) -> tuple[Any, Any, Any]:
    """Orthonormalise the rows of ``W`` (already orthogonal to ``B[:size]``).

    ``W = Rᵀ Q`` row by row (Gram-Schmidt, repeated under the DGKS test) with
    ``R`` upper triangular; a row that loses most of its norm to the rows
    before it is orthogonalised against the basis again, since the rounding
    errors of its earlier projections are no longer small relative to it.
    A row whose remaining norm is at most ``breakdown`` is dependent on the
    basis (an invariant subspace): it is replaced by a random
    vector orthogonal to the basis and to the rows before it, with a zero
    diagonal entry in ``R``.  Returns ``Q``, ``R`` (host) and the number of
    rows that could not be replaced because the basis already spans the space
    (those rows of ``Q`` are zero).  With ``work`` (a NumPy ``W``), ``W`` is
    orthonormalised in place and returned as ``Q``.

    With ``gram``, the host Gram matrix ``conj(W) Wᵀ`` of a NumPy ``W`` and
    ``work`` with the fused kernels, the rows are orthonormalised in one
    pass, ``Q = R⁻ᵀ W`` with ``R`` the Cholesky factor of ``gram``, when
    every row keeps at least ``1/sqrt(2)`` of its norm against the rows
    before it (the test the Gram-Schmidt loop applies, which bounds the
    condition number of ``W``, so that the Cholesky factor is as accurate
    as Gram-Schmidt's coefficients) and none falls to ``breakdown``;
    otherwise by the loop.
    """
    hx = ns.numpy_namespace()
    if gram is not None and work is not None and work.fused:
        R = work.orthonormalize(W, gram, breakdown)
        if R is not None:
            return W, R, 0
    b = W.shape[0]
    n = W.shape[1]
    R = hx.zeros((b, b), dtype="complex128" if cplx else "float64")
    rows = []
    lost = 0
    for c in range(b):
        w = W[c, ...]
        before = float(norms[c])
        nw = before
        for again in range(3 if rows else 0):
            if again:
                # Cancellation: what is left is of the order of the rounding
                # errors of earlier projections, which were small only
                # relative to the row's norm; orthogonalise it against the
                # basis again (the coefficients, O(eps ||w||), stay out of R).
                w = project_out(xp, B, size, w[None, :], cplx=cplx, work=work)[0][0, ...]
                before = nw
            for i, q in enumerate(rows):
                d = xp.vecdot(q, w)
                w = work.axpy(w, d, q) if work is not None else w - d * q
                R[i, c] += complex(d) if cplx else float(d)
            nw = float(xp.linalg.vector_norm(w))
            if nw >= _DGKS * before or nw <= breakdown:
                break
        if nw > breakdown:
            R[c, c] = nw
            if work is not None:
                w /= nw
                rows.append(w)
            else:
                rows.append(w / nw)
            continue
        q = None
        if size + len(rows) < n:
            r = random_vector(xp, n, W.dtype, rng, ns.device(W))
            Q = xp.stack(rows, axis=0) if rows else None
            # Project until a pass keeps most of what it was given (DGKS): a
            # basis filling most of the space leaves a small but clean part.
            before = float(xp.linalg.vector_norm(r))
            floor = ns.eps(xp, W.dtype) * math.sqrt(n) * before
            for _ in range(4):
                r, _, _ = project_out(xp, B, size, r[None, :], cplx=cplx)
                r = r[0, ...]
                if Q is not None:
                    d = xp.conj(Q @ xp.conj(r)) if cplx else Q @ r
                    r = r - d @ Q
                no = float(xp.linalg.vector_norm(r))
                if no >= _DGKS * before or no <= floor:
                    break
                before = no
            if no >= _DGKS * before and no > floor:
                q = r / no
        if q is None:
            lost += 1
            q = xp.zeros_like(w)
        if work is not None:
            W[c, ...] = q
            q = W[c, ...]
        rows.append(q)
    return (W if work is not None else xp.stack(rows, axis=0)), R, lost


def combine_rows(xp: Any, B: Any, Y: Any, *, start: int, stop: int, chunk: int = 4096) -> Any:
    """Replace ``B[start:start+p]`` by ``Yᵀ B[start:stop]`` (``Y`` is ``(stop-start, p)``).

    For namespaces with in-place writes the product runs over column chunks of
    ``chunk`` entries, so the temporary is ``p x chunk`` instead of ``p x n``.
    ``Y`` lives in namespace ``xp`` already.
    """
    p = Y.shape[1]
    n = B.shape[1]
    Yt = Y.T
    if ns.is_jax_namespace(xp) or n <= chunk:
        return set_rows(B, slice(start, start + p), Yt @ B[start:stop, ...])
    if row_combination(Yt, B, start, stop, chunk):
        return B
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        B[start:start + p, c0:c1] = Yt @ B[start:stop, c0:c1]
    return B


def iteration_scale(xp: Any, W: Any, dtype: Any,
                    length: int | None = None) -> float | None:
    """A power of two to divide the products by, from the first nonzero block of them.

    1.0 unless ``W``'s entries are so large or small (beyond ``2^±(emax/4)``
    after a factor ``sqrt(n)``: ``2^±256`` in float64, ``2^±32`` in float32)
    that sums of their squares, which norms and Gram matrices form, could
    overflow or underflow; a power of two scales exactly.  None when ``W``
    is all zero (a product of vectors in the operator's null space says
    nothing of its scale): the caller asks again with the next product.
    ``length``: that of the vectors in ``W`` (default: its rows,
    ``W.shape[-1]``).
    """
    top = float(xp.max(xp.abs(W)))
    if top == 0.0:
        return None
    if not math.isfinite(top):
        return 1.0                                # the caller reports NaN and Inf
    # The binary exponent of max|W| sqrt(n), from exponents: the product
    # itself overflowed for max|W| near the largest float (a 50 x 50 matrix
    # of norm 1.2e308 went unscaled, and its products overflowed).
    n = W.shape[-1] if length is None else length
    e = math.frexp(top)[1] + math.frexp(math.sqrt(n))[1]
    emax = math.frexp(float(xp.finfo(ns.real_dtype(xp, dtype)).max))[1]
    if -(emax // 4) <= e <= emax // 4:
        return 1.0
    # No smaller than the smallest normal number (a product null only to
    # rounding, or a matrix of subnormal entries, would otherwise give a
    # scale whose reciprocal overflows) and no larger than the reciprocal of
    # that, itself representable.
    return math.ldexp(1.0, min(max(e - 1, -(emax - 2)), emax - 2))


def scaled_operator(op: Any) -> tuple[Any, Callable[[], float]]:
    """``A / s`` for a bound operator, ``s`` a power of two set by its first nonzero product.

    Returns the operator (products counted on it) and a function giving
    ``s`` (1.0 while every product has been zero); see
    :func:`iteration_scale`.
    Solvers whose norms and Gram matrices would overflow or underflow on
    ``A`` run on ``A / s`` and multiply values and residuals by ``s``.  On
    Dask, where reading the first product's scale would compute it once
    more, the operator is returned as it is (``s = 1``).
    """
    from ._operator import LinearOperator

    xp = op.xp
    if ns.is_dask_namespace(xp):
        return op, lambda: 1.0
    box: list = [None]

    def fix(y: Any, length: int) -> Any:
        if box[0] is None:
            box[0] = iteration_scale(xp, y, op.dtype, length)
        s = box[0]
        return y if s is None or s == 1.0 else y * (1.0 / s)

    def matvec(x: Any) -> Any:
        return fix(op.matvec(x), op.shape[0])

    def matmat(X: Any) -> Any:
        return fix(op.matmat(X), op.shape[0])

    def rmatvec(y: Any) -> Any:
        return fix(op.rmatvec(y), op.shape[1])

    def rmatmat(Y: Any) -> Any:
        return fix(op.rmatmat(Y), op.shape[1])

    def normal(X: Any) -> tuple[Any, Any]:
        if box[0] is None or box[0] == 1.0:
            Y, Z = op.normal_matmat(X)
            Y = fix(Y, op.shape[0])
            # Unscaled, or A X = 0 (no scale yet), whose Aᴴ (A X) is 0 exactly.
            if box[0] is None or box[0] == 1.0:
                return Y, Z
        else:
            Y = matmat(X)
        # A scaled: Aᴴ (A X) itself would leave the exponent range (or has,
        # on the first call); the adjoint product of the scaled A X instead.
        return Y, rmatmat(Y)

    adjoint = op.has_adjoint
    scaled = LinearOperator(op.shape, op.dtype, xp, matvec=matvec, matmat=matmat,
                            rmatvec=rmatvec if adjoint else None,
                            rmatmat=rmatmat if adjoint else None, device=op.device,
                            normal=normal if op.has_normal else None)
    scaled.inner = op                       # the operator whose products these are
    return scaled, lambda: 1.0 if box[0] is None else box[0]


def check_start(op: Any, X: Any, n: int, *, name: str, block: bool = False,
                note: str = "") -> Any:
    """A caller's starting vector ``(n,)`` (or block ``(n, p)``) for ``op``: a copy
    in its namespace, on its device (when it names one) and in its working dtype.

    A vector is also divided by its largest magnitude, so that its norm is
    in range.  Raises a TypeError or ValueError naming ``name`` for an
    object that is no array, a wrong shape (``note`` follows the expected
    shape in the message), a dtype that holds no numbers, a complex start
    for a real operator (its imaginary part would be dropped), NaN or Inf,
    and a zero vector.
    """
    xp = op.xp
    want = f"({n}, p) with p >= 1" if block else f"({n},)"
    if not ns.is_array_api_obj(X):
        raise TypeError(f"`{name}` must be an array of shape {want}; got {type(X).__name__}.")
    if block and X.ndim == 1:
        X = X[:, None]
    shape = tuple(X.shape)
    if not (len(shape) == 2 and shape[0] == n and shape[1] >= 1 if block else shape == (n,)):
        raise ValueError(f"`{name}` must have shape {want}{note} to match `A`; "
                         f"got shape={shape}.")
    if not ns.same_namespace(ns.array_namespace(X), xp):
        X = ns.from_host_numpy(ns.to_host_numpy(X), xp)
    if op.device is not None and ns.device(X) != op.device:
        X = ns.to_device(X, op.device)
    kinds = ("bool", "integral", "real floating", "complex floating")
    try:
        numeric = ns.array_namespace(X).isdtype(X.dtype, kinds)
    except (TypeError, ValueError):
        numeric = False
    if not numeric:
        raise TypeError(f"`{name}` must hold numbers; got dtype={X.dtype}.")
    if xp.isdtype(X.dtype, "complex floating") and not ns.is_complex(xp, op.dtype):
        raise TypeError(f"`{name}` is complex but `A` is real ({op.dtype}); pass a real "
                        f"`{name}`.")
    X = xp.astype(X, op.dtype, copy=True)
    if ns.is_dask_namespace(xp):
        return X
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"`{name}` must not contain NaN or Inf.")
    if block:
        return X
    largest = xp.max(xp.abs(X))
    if float(largest) == 0.0:
        raise ValueError(f"`{name}` must not be the zero vector.")
    return X / xp.astype(largest, X.dtype)


def random_vector(xp: Any, n: int, dtype: Any, rng: Any, device: Any = None) -> Any:
    """A random vector drawn on the host (standard normal) and moved to ``xp``."""
    hx = ns.numpy_namespace()
    if ns.is_complex(xp, dtype):
        x = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    else:
        x = rng.standard_normal(n)
    x = hx.asarray(x, dtype=_host_dtype(dtype))
    out = ns.from_host_numpy(x, xp, like=None)
    out = xp.asarray(out, dtype=dtype)
    if device is not None and ns.device(out) != device:
        out = ns.to_device(out, device)
    return out


def _host_dtype(dtype: Any) -> str:
    # a dtype object ("float32", "torch.float32") or a scalar class
    # ("<class 'jax.numpy.float32'>", JAX's namespace gives those)
    name = getattr(dtype, "__name__", None) or str(dtype).rsplit(".", 1)[-1]
    return {"complex64": "complex64", "complex128": "complex128",
            "float32": "float32", "float64": "float64"}.get(name, "float64")


# ---------------------------------------------------------------------------
# Column orthonormalisers for blocks of column vectors (randomized methods).
#
# Storage convention here: a block is an ``(m, l)`` array of ``l`` columns,
# with ``l`` small (tens to a few hundred) and ``m`` large; every operation on
# it is a matrix-matrix product, and the only host problems are ``l x l``.

def gram(xp: Any, Y: Any, cplx: bool) -> Any:
    """``Yᴴ Y`` as a host float64/complex128 array (one host synchronisation)."""
    G = xp.conj(Y).T @ Y if cplx else Y.T @ Y
    hx = ns.numpy_namespace()
    G = hx.asarray(ns.to_host_numpy(G), dtype="complex128" if cplx else "float64")
    return (G + hx.conj(G.T)) / 2


def _apply_host(xp: Any, Y: Any, M: Any) -> Any:
    """``Y @ M`` for a small host matrix ``M``, moved to ``Y``'s namespace and dtype."""
    Md = ns.from_host_numpy(ns.numpy_namespace().asarray(M), xp, like=Y)
    if Md.dtype != Y.dtype:
        Md = xp.astype(Md, Y.dtype)
    return Y @ Md


def _cholesky_upper(G: Any) -> Any:
    """Upper triangular ``R`` with ``Rᴴ R = G``, or None when ``G`` is not positive definite."""
    hx = ns.numpy_namespace()
    try:
        L = hx.linalg.cholesky(G)
    except ValueError:          # numpy.linalg.LinAlgError is a ValueError
        return None
    if not bool(hx.all(hx.isfinite(L))):
        return None
    return hx.conj(L.T)


def _well_conditioned(G: Any, eps: float) -> bool:
    """Whether Cholesky-QR on a block with Gram matrix ``G`` is safe (``cond² eps l`` small)."""
    hx = ns.numpy_namespace()
    w = hx.linalg.eigvalsh(G)
    return bool(w[-1] > 0 and w[0] > 64.0 * G.shape[0] * eps * w[-1])


def _cholqr_pass(xp: Any, Y: Any, G: Any) -> tuple[Any, Any]:
    """One Cholesky-QR pass given ``G = Yᴴ Y``: ``(Y R⁻¹, R)`` or ``(None, None)``."""
    hx = ns.numpy_namespace()
    R = _cholesky_upper(G)
    if R is None:
        return None, None
    return _apply_host(xp, Y, hx.linalg.inv(R)), R


def householder_qr(xp: Any, Y: Any) -> tuple[Any, Any]:
    """Thin Householder QR of ``Y`` in its own namespace; ``R`` returned on the host."""
    Q, R = xp.linalg.qr(Y)
    return Q, ns.to_host_numpy(R)


def cholesky_qr(xp: Any, Y: Any, *, cplx: bool, eps: float) -> tuple[Any, Any, str]:
    """Orthonormalise the columns of ``Y``: Cholesky-QR2, shifted Cholesky-QR3, or QR.

    * ``cond(Y)`` well below ``eps^(-1/2)`` (checked on the eigenvalues of
      the ``l x l`` Gram matrix): Cholesky-QR2 (Yamamoto et al. 2015), two
      passes of ``G = Yᴴ Y``, ``R = chol(G)``, ``Y R⁻¹``.  Four BLAS-3
      products with the ``(m, l)`` block, two host Cholesky factorisations.
    * Otherwise shifted Cholesky-QR3 (Fukaya et al. 2020): one pass on
      ``G + s I`` with ``s = (sqrt(m) + l) l eps ||G||``, which brings the
      condition number down to about ``s^(-1/2)``, then Cholesky-QR2.
    * When that still fails (the block is numerically rank deficient, e.g. an
      exactly low-rank matrix), or when ``Yᴴ Y`` overflows, Householder QR
      in the namespace; a ``Y`` that holds NaN or Inf raises ValueError.

    Returns ``(Q, R, how)`` with ``Y = Q R``, ``R`` an ``l x l`` host array
    and ``how`` in ``{'cholqr2', 'scholqr3', 'qr'}``.
    """
    hx = ns.numpy_namespace()
    m, l = Y.shape
    with hx.errstate(over="ignore", invalid="ignore"):   # checked below
        G = gram(xp, Y, cplx)
    R0 = None
    Y1 = Y
    how = "cholqr2"
    if not bool(hx.all(hx.isfinite(G))):
        if not bool(xp.all(xp.isfinite(Y))):
            raise ValueError("a product with the operator contains NaN or Inf (a NaN "
                             "in a matrix-free operator, or an overflow).")
        # Yᴴ Y overflows (a block past the square root of the largest
        # float): Householder QR scales its norms.
        Q, R = householder_qr(xp, Y)
        return Q, R, "qr"
    if not _well_conditioned(G, eps):
        norm = float(hx.linalg.eigvalsh(G)[-1])
        shift = (math.sqrt(m) + l) * l * eps * norm
        Y1, R0 = _cholqr_pass(xp, Y, G + shift * hx.eye(l))
        if Y1 is None:
            Q, R = householder_qr(xp, Y)
            return Q, R, "qr"
        G = gram(xp, Y1, cplx)
        how = "scholqr3"
        if not _well_conditioned(G, eps):
            Q, R = householder_qr(xp, Y)
            return Q, R, "qr"
    Q1, R1 = _cholqr_pass(xp, Y1, G)
    if Q1 is None:
        Q, R = householder_qr(xp, Y)
        return Q, R, "qr"
    Q, R2 = _cholqr_pass(xp, Q1, gram(xp, Q1, cplx))
    if Q is None:
        Q, R = householder_qr(xp, Y)
        return Q, R, "qr"
    R = R2 @ R1 if R0 is None else R2 @ R1 @ R0
    return Q, R, how


def lu_normalize(xp: Any, Y: Any) -> Any:
    """``P L`` of the partially pivoted LU factorisation ``Y = P L U`` (scikit-learn's "LU").

    The columns of ``P L`` span the columns of ``Y`` and are well scaled (unit
    pivots, multipliers at most 1 in magnitude), which is all a power
    iteration needs between products; they are not orthonormal.  Right-looking
    elimination, one column at a time (``l`` rank-1 updates of the trailing
    block, no host synchronisation): BLAS-2, meant for ``l`` in the tens.
    """
    m, l = Y.shape
    rows = xp.arange(m)
    live = xp.ones((m,), dtype=Y.dtype, device=ns.device(Y))   # 0 on pivot rows used
    cols = []
    W = Y
    for j in range(l):
        c = W[:, 0] * live
        p = xp.argmax(xp.abs(c))
        onehot = xp.astype(rows == p, Y.dtype)
        piv = xp.sum(c * onehot)
        piv = xp.where(xp.abs(piv) > 0, piv, xp.ones_like(piv))
        col = c / piv
        cols.append(col)
        if j + 1 < l:
            urow = onehot @ W[:, 1:]                 # row p of the trailing block
            W = W[:, 1:] - col[:, None] * urow[None, :]
        live = live * (1 - onehot)
    return xp.stack(cols, axis=1)
