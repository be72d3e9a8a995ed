"""Functions of Hermitian matrices and the polar decomposition, batched.

Algorithm: a function of a real symmetric or complex Hermitian matrix is
computed from its eigendecomposition ``A = V diag(λ) Vᴴ`` as
``f(A) = V diag(f(λ)) Vᴴ``.  The eigendecomposition of the whole
``(..., n, n)`` stack comes from the batched Jacobi solver
(:func:`eigarray.eigh_batched`, which itself runs a ``prange`` over LAPACK
for larger ``n``); the reconstruction is one batched matrix product, ``W Wᴴ``
with ``W = V diag(sqrt f(λ))`` when ``f >= 0`` (square roots, inverse square
roots, exponentials, powers of positive matrices), ``(V diag f(λ)) Vᴴ``
otherwise, followed by ``X/2 + Xᴴ/2``, which makes the result Hermitian to
the last bit (halving first, it cannot overflow where ``X`` does not).  The
polar decomposition ``A = U H`` comes from the singular value decomposition
of the namespace (``xp.linalg.svd``) or from the scaled Newton-Schulz
iteration ``X <- X (3I - XᴴX) / 2``, matrix products only, on ``A`` scaled
by a power of two (exact) so that its norm neither overflows nor underflows.

Storage: ``(..., n, n)`` stacks in (``(..., m, n)``, ``m >= n``, for
:func:`polar`), results of the same shape in the caller's namespace, dtype
and device.

Host synchronisation: the finiteness check of the input, the convergence
flags of the eigensolver and, without ``clip=True``, the smallest eigenvalue
of every matrix for the definiteness check; for ``expm`` and ``powm``,
whether some ``f(λ)`` is large enough for the product to overflow and, if
so, the power of two that scales each matrix.
Newton-Schulz brings one scalar per matrix to the host to scale ``A``, then
one per iteration.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from . import _dispatch
from . import _namespace as ns
from . import _validate as val
from ._jacobi import default_max_sweeps, eigh_impl, finite_triangle, report
from ._result import (
    ConvergenceInfo,
    _ResultTuple,
    report_nonconvergence,
)

__all__ = ["PolarResult", "expm", "funm", "inv_sqrtm", "logm", "polar", "powm", "sqrtm"]

_NS_MAX_ITER = 100


class PolarResult(_ResultTuple):
    """``(U, H)`` of a polar decomposition ``A = U H``, plus ``info``.

    Unpacks as ``u, h = polar(A)``.  ``info`` is a :class:`ConvergenceInfo`
    with one entry per matrix of the stack: ``converged`` and, for
    Newton-Schulz, ``residual_norms`` (``||UᴴU - I||_F``), ``n_iter`` and the
    per-iteration ``history["orthogonality"]``.
    """

    _fields = ("U", "H")


# ---------------------------------------------------------------------------
# validation and the eigendecomposition
# ---------------------------------------------------------------------------

def _validate_stack(A: Any, *, name: str = "A", tall: bool = False,
                    UPLO: str | None = None) -> tuple[Any, Any]:
    """Namespace and working-dtype copy (or the array itself) of a checked stack.

    With ``UPLO``, only the triangle it names must be finite (see
    :func:`eigarray._jacobi.finite_triangle`).
    """
    A = val.as_array(A, name=name)
    xp = ns.array_namespace(A)
    if A.ndim < 2:
        what = "(..., m, n) with m >= n" if tall else "(..., n, n)"
        raise ValueError(f"`{name}` must have at least 2 dimensions {what}; got shape "
                         f"{tuple(A.shape)}.")
    m, n = int(A.shape[-2]), int(A.shape[-1])
    if tall and m < n:
        raise ValueError(f"`{name}` must have at least as many rows as columns (m >= n) in its "
                         f"last two dimensions; got shape {tuple(A.shape)}.")
    if not tall and m != n:
        raise ValueError(f"`{name}` must be square in its last two dimensions; got shape "
                         f"{tuple(A.shape)}.")
    dtype = ns.working_dtype(xp, A.dtype, name=name)
    if ns.is_dask_array(A):
        raise NotImplementedError(f"`{name}`: Dask arrays are not supported by the matrix "
                                  f"functions; map them over the chunks of the batch.")
    if ns.is_torch_array(A) and A.requires_grad:
        A = A.detach()                    # not differentiable: read detached
    if dtype != A.dtype:
        A = xp.astype(A, dtype)
    if UPLO is None:
        val.check_finite(xp, A, name=name)
    else:
        A = finite_triangle(xp, A, UPLO, name=name)
    return xp, A


def _eigh(xp: Any, A: Any, UPLO: str) -> tuple[Any, Any]:
    """Eigenvalues (ascending) and eigenvectors of a validated stack."""
    result = eigh_impl(xp, A, UPLO=UPLO, tol=ns.eps(xp, A.dtype),
                       max_sweeps=default_max_sweeps(int(A.shape[-1])))
    report(result, "warn",
           what="eigendecompositions (matrix function of their approximation)")
    return result.eigenvalues, result.eigenvectors


def _where_batch(batch: tuple, flat_index: int) -> str:
    """``A[i, j]`` for the matrix at ``flat_index`` of a stack with ``batch`` shape."""
    idx = []
    for size in reversed(batch):
        flat_index, r = divmod(flat_index, size)
        idx.append(r)
    return "A[" + ", ".join(str(i) for i in reversed(idx)) + "]" if batch else "A"


def _floor(xp: Any, w: Any) -> Any:
    """Per matrix ``n eps max|λ|``: eigenvalues below it are rounding noise."""
    n = w.shape[-1]
    return (n * ns.eps(xp, w.dtype)) * xp.max(xp.abs(w), axis=-1)


def _definite(xp: Any, w: Any, *, strict: bool, clip: bool, fname: str,
              name: str = "A") -> Any:
    """Check (or, with ``clip``, enforce) semi-definiteness or definiteness.

    ``strict=False`` (semi-definite): every ``λ >= -n eps max|λ|`` is needed;
    eigenvalues in between are rounding noise and become 0 (with ``clip`` all
    negative eigenvalues do).  ``strict=True`` (definite): every ``λ > n eps
    max|λ|``; with ``clip``, the eigenvalues the check would reject (at or
    below the floor) are raised to it, and no other.  Where the floor
    underflows to 0 (``max|λ|`` subnormal, or 0), every positive eigenvalue
    passes the check and is kept; the others are raised to the smallest
    positive number of the dtype, the floor rounded up.
    """
    floor = _floor(xp, w)
    if not clip:
        wmin = xp.min(w, axis=-1)
        bad_dev = (wmin <= floor) if strict else (wmin < -floor)
        bad = ns.to_host_numpy(bad_dev).reshape(-1)
        if bad.size and bool(bad.any()):
            first = int(bad.argmax())
            wmin_h = ns.to_host_numpy(wmin).reshape(-1)[first]
            floor_h = ns.to_host_numpy(floor).reshape(-1)[first]
            batch = tuple(w.shape[:-1])
            where = _where_batch(batch, first)
            count = f"{int(bad.sum())} of {bad.size} matrices are not; " if batch else ""
            if strict:
                rule = f"positive definite (every eigenvalue > n eps max|λ| = {floor_h:.3g})"
                fix = "raise the eigenvalues below that floor to it"
            else:
                rule = (f"positive semi-definite (every eigenvalue >= -n eps max|λ| = "
                        f"{-floor_h:.3g})")
                fix = "clip negative eigenvalues to 0"
            raise ValueError(
                f"`{name}` must be {rule} for {fname}; {count}{where} has smallest eigenvalue "
                f"{wmin_h:.6g}. Pass clip=True to {fix}.")
    zero = xp.zeros_like(w)
    if not strict:
        return xp.where(w > zero, w, zero)
    if not clip:
        return w
    # The smallest subnormal, 2^-1074 (float64) or 2^-149 (float32), exactly.
    finfo = xp.finfo(w.dtype)
    tiny = float(finfo.smallest_normal) * float(finfo.eps)
    lo = xp.where(floor > 0, floor, xp.full_like(floor, tiny))[..., None]
    return xp.where(w > lo, w, lo)


def _mH(xp: Any, X: Any) -> Any:
    Xt = xp.matrix_transpose(X)
    return xp.conj(Xt) if ns.is_complex(xp, X.dtype) else Xt


def _reconstruct(xp: Any, V: Any, *, fw: Any = None, half: Any = None,
                 log_weight: Callable[[Any, Any], Any] | None = None) -> Any:
    """``V diag(f) Vᴴ``, Hermitian to the last bit.

    Give ``half`` with ``half² = f`` when ``f >= 0`` (then ``W Wᴴ`` with
    ``W = V diag(half)``), else ``fw = f``.  One batched product, made
    Hermitian to the last bit by :func:`_weighted_product`.

    Functions that can overflow (``exp``, powers) also give
    ``log_weight(xp, mask)``, the log of ``|half|`` (or ``|fw|``) where
    ``mask`` holds.  When some weight is large enough for the product to
    overflow (one host synchronisation to find out), those weights are
    scaled down by their matrix's largest, multiplied separately and scaled
    back after the product (each part apart, for complex input): an entry
    that overflows is ``±inf`` with its true sign, an entry the large
    weights do not reach keeps the value of the others (a plain product
    would make ``0 · inf = NaN`` of both).  The
    scale is a power of two, applied exactly to weights that are finite, so
    that a result near the largest float keeps the accuracy of the others.
    """
    squared = half is not None
    weights = half if squared else fw
    real = ns.real_dtype(xp, V.dtype)
    if log_weight is not None:
        n = V.shape[-1]
        big_log = (math.log(float(xp.finfo(real).max)) - math.log(max(n, 1)) - 1.0)
        big_log = big_log / 2 if squared else big_log
        big = xp.abs(weights) > math.exp(big_log)
        if bool(xp.any(big)):
            logs = xp.where(big, log_weight(xp, big), xp.asarray(-xp.inf, dtype=real))
            shift = xp.max(logs, axis=-1, keepdims=True) - big_log
            shift = xp.where(shift > 0, shift, xp.zeros_like(shift))   # no big weight: 0
            # The shift rounded up to a power of two 2^k, applied as two
            # factors 2^(k//2), 2^(k - k//2) (each representable): finite
            # weights are scaled down and the product scaled back exactly.
            # Weights that overflowed, and matrices whose 2^k is beyond the
            # two factors, take exp(log - shift) and exp(shift) instead.
            hx = ns.numpy_namespace()
            shift_h = hx.asarray(ns.to_host_numpy(shift), dtype=hx.float64)
            emax = math.frexp(float(xp.finfo(real).max))[1]
            k = hx.ceil(shift_h / math.log(2.0))
            ok_h = k <= 2 * (emax - 2)
            k = hx.where(ok_h, k, 0.0).astype(hx.int64)
            k1 = k // 2

            def dev(a: Any) -> Any:
                return xp.astype(ns.from_host_numpy(a, xp, like=weights), real)

            ok = dev(ok_h.astype(hx.float64)) > 0
            down1, down2 = dev(hx.ldexp(1.0, -k1)), dev(hx.ldexp(1.0, k1 - k))
            up1, up2 = dev(hx.ldexp(1.0, k1)), dev(hx.ldexp(1.0, k - k1))
            shift = xp.where(ok, dev(k * math.log(2.0)), shift)
            by_log = xp.sign(weights) * xp.exp(logs - shift)
            exact = xp.isfinite(weights) & ok
            scaled = xp.where(exact, weights * down1 * down2, by_log)
            scaled = xp.where(big, scaled, xp.zeros_like(weights))
            rest = xp.where(big, xp.zeros_like(weights), weights)
            Xb = _weighted_product(xp, V, scaled, squared)
            X = _weighted_product(xp, V, rest, squared)
            # exp(shift) only where the powers of two are not used (0 * inf: NaN)
            by_exp = xp.exp(xp.where(ok, xp.zeros_like(shift), shift))
            ok = ok[..., None]
            up1, up2, by_exp = (a[..., None] for a in (up1, up2, by_exp))
            up = xp.where(ok, _scaled(xp, _scaled(xp, Xb, up1), up2), _scaled(xp, Xb, by_exp))
            if squared:
                up = xp.where(ok, _scaled(xp, _scaled(xp, up, up1), up2),
                              _scaled(xp, up, by_exp))
            # Sums and real scalings of Hermitian matrices: still Hermitian bitwise.
            return xp.where(Xb == 0, X, up + X)
    return _weighted_product(xp, V, weights, squared)


def _scaled(xp: Any, X: Any, f: Any) -> Any:
    """``X * f`` for a real ``f``, part by part when ``X`` is complex.

    A complex ``X`` times ``f`` is a complex product, which makes the other
    part of an entry that overflowed ``inf * 0 = NaN``.
    """
    if not ns.is_complex(xp, X.dtype):
        return X * f
    f = xp.astype(f, ns.real_dtype(xp, X.dtype))
    return ns.complex_from_parts(xp, xp.real(X) * f, xp.imag(X) * f)


def _symmetrise(xp: Any, X: Any) -> Any:
    """``X/2 + Xᴴ/2``: Hermitian to the last bit, and finite wherever ``X`` is.

    Entry ``(i, j)`` and the conjugate of entry ``(j, i)`` add the same two
    numbers (IEEE addition commutes, conjugation and halving are exact), so
    they are equal bitwise.  Halving before adding, unlike ``(X + Xᴴ)/2``,
    cannot overflow for entries above half the largest float.
    """
    return X * 0.5 + _mH(xp, X) * 0.5


def _weighted_product(xp: Any, V: Any, weights: Any, squared: bool) -> Any:
    """``W Wᴴ`` with ``W = V diag(weights)`` if ``squared``, else ``V diag(weights) Vᴴ``.

    Hermitian to the last bit: small NumPy stacks through the Numba kernel
    (:func:`eigarray._dispatch.hermitian_product`), which forms one triangle
    and mirrors it, the rest through matmul and :func:`_symmetrise`.
    """
    X = _dispatch.hermitian_product(V, weights, squared)
    if X is not None:
        return X
    W = V * xp.astype(weights, V.dtype, copy=False)[..., None, :]
    return _symmetrise(xp, W @ _mH(xp, W) if squared else W @ _mH(xp, V))


def _apply(A: Any, UPLO: str, body: Callable[[Any, Any], dict]) -> Any:
    UPLO = val.check_choice(UPLO, ("L", "U"), name="UPLO")
    xp, A = _validate_stack(A, UPLO=UPLO)
    if A.shape[-1] == 0:
        return xp.zeros_like(A)
    w, V = _eigh(xp, A, UPLO)
    # Entries that overflow are documented to come back as inf: no NumPy warning.
    with ns.numpy_namespace().errstate(over="ignore"):
        return _reconstruct(xp, V, **body(xp, w))


# ---------------------------------------------------------------------------
# public functions of Hermitian matrices
# ---------------------------------------------------------------------------

def sqrtm(A: Any, *, clip: bool = False, UPLO: str = "L") -> Any:
    """Principal square root of each positive semi-definite matrix of a stack.

    ``A^{1/2} = V diag(λ^{1/2}) Vᴴ`` from the eigendecomposition of every
    matrix by :func:`eigarray.eigh_batched`, assembled as ``W Wᴴ`` with
    ``W = V diag(λ^{1/4})``, so the result is Hermitian positive
    semi-definite and exactly Hermitian (bitwise).

    Parameters
    ----------
    A : array, shape (..., n, n)
        Real symmetric or complex Hermitian positive semi-definite stack, any
        leading batch shape (empty included).  NumPy, CuPy, torch, JAX or any
        Array API array; integers and booleans are promoted to float64.
    clip : bool, default=False
        When False, an eigenvalue below ``-n eps max|λ|`` (``eps`` of the
        working dtype, per matrix) raises ``ValueError``, and the ones between
        that and 0, rounding noise, are taken as 0.  When True, every negative
        eigenvalue is set to 0: the result is the square root of the nearest
        positive semi-definite matrix (in the Frobenius norm).
    UPLO : {'L', 'U'}, default='L'
        Which triangle of ``A`` is read, as in :func:`numpy.linalg.eigh`.

    Returns
    -------
    array, shape (..., n, n)
        ``S`` with ``S @ S = A``, Hermitian positive semi-definite, in the
        namespace, dtype (the working dtype) and on the device of ``A``.

    Raises
    ------
    ValueError
        For ``ndim < 2``, non-square matrices, NaN or Inf in the triangle
        read, a bad ``UPLO``, or
        (without ``clip``) a matrix that is not positive semi-definite; the
        message names the first such matrix and its smallest eigenvalue.
    TypeError
        For a non-numeric dtype (half precision promotes to float32).

    Warns
    -----
    ConvergenceWarning
        If the eigensolver did not converge for some matrix (rare).

    See Also
    --------
    scipy.linalg.sqrtm : Schur-based square root of one general matrix.
    inv_sqrtm, powm, funm, eigarray.eigh_batched

    Notes
    -----
    Cost: one batched eigendecomposition (``O(n^3)`` per matrix) and one
    batched product ``W Wᴴ`` (``n^3`` multiply-adds per matrix).  Host
    synchronisations: the finiteness check, the eigensolver's convergence
    flags and, without ``clip``, the smallest eigenvalues.

    References
    ----------
    N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM,
    2008, chapter 6.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> A = np.array([[[4.0, 0.0], [0.0, 9.0]], [[2.0, 1.0], [1.0, 2.0]]])
    >>> S = eigarray.sqrtm(A)
    >>> S[0]
    array([[2., 0.],
           [0., 3.]])
    >>> bool(np.allclose(S @ S, A))
    True
    """
    clip = val.check_bool(clip, name="clip")

    def body(xp: Any, w: Any) -> dict:
        w = _definite(xp, w, strict=False, clip=clip, fname="sqrtm")
        return {"half": xp.sqrt(xp.sqrt(w))}

    return _apply(A, UPLO, body)


def inv_sqrtm(A: Any, *, clip: bool = False, UPLO: str = "L") -> Any:
    """Inverse principal square root of each positive definite matrix of a stack.

    ``A^{-1/2} = V diag(λ^{-1/2}) Vᴴ`` from :func:`eigarray.eigh_batched`,
    assembled as ``W Wᴴ`` with ``W = V diag(λ^{-1/4})``: exactly Hermitian.
    This is the whitening (ZCA, Mahalanobis) transform of a covariance matrix.

    Parameters
    ----------
    A : array, shape (..., n, n)
        Real symmetric or complex Hermitian positive definite stack.
    clip : bool, default=False
        When False, an eigenvalue at or below ``n eps max|λ|`` (per matrix)
        raises ``ValueError``.  When True, those eigenvalues, and no others,
        are raised to that floor (a regularised inverse square root,
        ``||result||`` at most ``(n eps max|λ|)^{-1/2}``); where the floor
        underflows to 0 (``max|λ|`` subnormal), positive eigenvalues are kept
        and the others raised to the smallest positive number of the dtype.
    UPLO : {'L', 'U'}, default='L'
        Which triangle of ``A`` is read.

    Returns
    -------
    array, shape (..., n, n)
        ``A^{-1/2}``, Hermitian positive definite, in the namespace, dtype and
        on the device of ``A``.

    Raises
    ------
    ValueError
        As :func:`sqrtm`, with positive definiteness required.
    TypeError
        For a non-numeric dtype (half precision promotes to float32).

    Warns
    -----
    ConvergenceWarning
        If the eigensolver did not converge for some matrix (rare).

    See Also
    --------
    scipy.linalg.fractional_matrix_power : with ``t = -0.5``, one matrix.
    sqrtm, powm, eigarray.eigh_batched

    Notes
    -----
    Same cost and synchronisations as :func:`sqrtm`.  The relative error of
    the result grows with ``cond(A)^{1/2}``.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> A = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> R = eigarray.inv_sqrtm(A)
    >>> bool(np.allclose(R @ A @ R, np.eye(2)))
    True
    """
    clip = val.check_bool(clip, name="clip")

    def body(xp: Any, w: Any) -> dict:
        w = _definite(xp, w, strict=True, clip=clip, fname="inv_sqrtm")
        return {"half": 1.0 / xp.sqrt(xp.sqrt(w))}

    return _apply(A, UPLO, body)


def expm(A: Any, *, UPLO: str = "L") -> Any:
    """Exponential of each Hermitian matrix of a stack.

    ``exp(A) = V diag(e^λ) Vᴴ`` from :func:`eigarray.eigh_batched`,
    assembled as ``W Wᴴ`` with ``W = V diag(e^{λ/2})``: Hermitian positive
    definite, exactly Hermitian.  Unlike Padé scaling and squaring, the
    cost does not depend on ``||A||`` (there are no squarings); the
    relative error grows with ``||A||``, the condition number of the
    exponential of a Hermitian matrix, as that of any method does.

    Parameters
    ----------
    A : array, shape (..., n, n)
        Real symmetric or complex Hermitian stack (any spectrum).
    UPLO : {'L', 'U'}, default='L'
        Which triangle of ``A`` is read.

    Returns
    -------
    array, shape (..., n, n)
        ``exp(A)``, in the namespace, dtype and on the device of ``A``
        (entries overflow to ``inf`` when ``λ_max`` exceeds the log of the
        largest float).

    Raises
    ------
    ValueError
        For ``ndim < 2``, non-square matrices, NaN or Inf in the triangle
        read, or a bad ``UPLO``.
    TypeError
        For a non-numeric dtype (half precision promotes to float32).

    Warns
    -----
    ConvergenceWarning
        If the eigensolver did not converge for some matrix (rare).

    See Also
    --------
    scipy.linalg.expm : Padé scaling and squaring for one general matrix.
    logm, funm, eigarray.eigh_batched

    Notes
    -----
    One batched eigendecomposition and one batched product; host
    synchronisations: the finiteness check and the convergence flags.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> E = eigarray.expm(np.array([[0.0, 0.0], [0.0, 1.0]]))
    >>> bool(np.allclose(E, np.diag([1.0, np.e])))
    True
    """

    def body(xp: Any, w: Any) -> dict:
        return {"half": xp.exp(w * 0.5), "log_weight": lambda xp, mask: w * 0.5}

    return _apply(A, UPLO, body)


def logm(A: Any, *, clip: bool = False, UPLO: str = "L") -> Any:
    """Principal logarithm of each positive definite matrix of a stack.

    ``log(A) = V diag(log λ) Vᴴ`` from :func:`eigarray.eigh_batched`,
    symmetrised to be exactly Hermitian.

    Parameters
    ----------
    A : array, shape (..., n, n)
        Real symmetric or complex Hermitian positive definite stack.
    clip : bool, default=False
        When False, an eigenvalue at or below ``n eps max|λ|`` (per matrix)
        raises ``ValueError``; when True it is raised to that floor (where
        the floor underflows to 0, ``max|λ|`` subnormal, positive eigenvalues
        are kept and the others raised to the smallest positive number of
        the dtype).  A matrix that passes the check is never changed.
    UPLO : {'L', 'U'}, default='L'
        Which triangle of ``A`` is read.

    Returns
    -------
    array, shape (..., n, n)
        ``log(A)``, Hermitian, in the namespace, dtype and on the device of
        ``A``.

    Raises
    ------
    ValueError
        As :func:`sqrtm`, with positive definiteness required.
    TypeError
        For a non-numeric dtype (half precision promotes to float32).

    Warns
    -----
    ConvergenceWarning
        If the eigensolver did not converge for some matrix (rare).

    See Also
    --------
    scipy.linalg.logm : inverse scaling and squaring for one general matrix.
    expm, funm, eigarray.eigh_batched

    Notes
    -----
    Same cost and synchronisations as :func:`sqrtm`.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> L = eigarray.logm(np.diag([1.0, np.e]))
    >>> bool(np.allclose(L, np.diag([0.0, 1.0])))
    True
    """
    clip = val.check_bool(clip, name="clip")

    def body(xp: Any, w: Any) -> dict:
        w = _definite(xp, w, strict=True, clip=clip, fname="logm")
        return {"fw": xp.log(w)}

    return _apply(A, UPLO, body)


def powm(A: Any, p: float, *, clip: bool = False, UPLO: str = "L") -> Any:
    """Real power ``A^p`` of each Hermitian matrix of a stack.

    ``A^p = V diag(λ^p) Vᴴ`` from :func:`eigarray.eigh_batched`.  What ``A``
    must satisfy depends on ``p``:

    * ``p`` a non-negative integer: nothing (any Hermitian ``A``);
    * ``p > 0`` not an integer: positive semi-definite, as :func:`sqrtm`;
    * ``p < 0``: positive definite, as :func:`inv_sqrtm` (for a negative
      integer power of an indefinite matrix use :func:`funm`).

    Parameters
    ----------
    A : array, shape (..., n, n)
        Real symmetric or complex Hermitian stack.
    p : float
        The exponent, a finite real number.
    clip : bool, default=False
        As in :func:`sqrtm` (``p > 0``) or :func:`inv_sqrtm` (``p < 0``);
        no effect for non-negative integers.
    UPLO : {'L', 'U'}, default='L'
        Which triangle of ``A`` is read.

    Returns
    -------
    array, shape (..., n, n)
        ``A^p``, exactly Hermitian, in the namespace, dtype and on the device
        of ``A``.

    Raises
    ------
    ValueError
        As :func:`sqrtm`, a non-finite ``p``, or a matrix that is not
        (semi-)definite when ``p`` needs it.
    TypeError
        For a ``p`` that is not a real number or a non-numeric dtype (half
        precision promotes to float32).

    Warns
    -----
    ConvergenceWarning
        If the eigensolver did not converge for some matrix (rare).

    See Also
    --------
    scipy.linalg.fractional_matrix_power : Schur-Padé for one general matrix.
    sqrtm, inv_sqrtm, funm

    Notes
    -----
    Same cost and synchronisations as :func:`sqrtm`; no definiteness check,
    hence one synchronisation fewer, for non-negative integers.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> A = np.diag([4.0, 16.0])
    >>> bool(np.allclose(eigarray.powm(A, 1.5), np.diag([8.0, 64.0])))
    True
    >>> bool(np.allclose(eigarray.powm(A, -0.5), np.diag([0.5, 0.25])))
    True
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"`p` must be a real number; got p={p!r}.")
    p = float(p)
    if not math.isfinite(p):
        raise ValueError(f"`p` must be finite; got p={p!r}.")
    clip = val.check_bool(clip, name="clip")
    integer = p == math.floor(p)
    if p == 0.0:
        # A^0 = I for every Hermitian A, exactly (V Vᴴ is I only to rounding).
        UPLO = val.check_choice(UPLO, ("L", "U"), name="UPLO")
        xp, A = _validate_stack(A, UPLO=UPLO)
        n = A.shape[-1]
        return xp.zeros_like(A) + xp.eye(n, dtype=A.dtype, device=ns.device(A))

    def body(xp: Any, w: Any) -> dict:
        def log_weight(q: float) -> Callable[[Any, Any], Any]:
            # log |w^q| where the weight is large (|w| > 0 there)
            return lambda xp, mask: q * xp.log(xp.where(mask, xp.abs(w), xp.ones_like(w)))

        if integer and p >= 0:
            if p % 2 == 0:
                return {"half": w ** (p / 2), "log_weight": log_weight(p / 2)}
            return {"fw": w ** p, "log_weight": log_weight(p)}
        w = _definite(xp, w, strict=p < 0, clip=clip, fname=f"powm with p={p:g}")
        return {"half": w ** (p / 2), "log_weight": log_weight(p / 2)}

    return _apply(A, UPLO, body)


def funm(A: Any, f: Callable[[Any], Any], *, UPLO: str = "L") -> Any:
    """``f(A)`` for a scalar function ``f`` and each Hermitian matrix of a stack.

    ``f(A) = V diag(f(λ)) Vᴴ`` from :func:`eigarray.eigh_batched`,
    symmetrised to be exactly Hermitian.  ``f`` is applied once, to the
    whole ``(..., n)`` array of eigenvalues.

    Parameters
    ----------
    A : array, shape (..., n, n)
        Real symmetric or complex Hermitian stack.
    f : callable
        Maps an array of eigenvalues (real dtype, in the namespace of ``A``,
        shape ``(..., n)``) to a real array of the same shape, elementwise;
        for instance ``lambda w: xp.tanh(w)`` or ``lambda w: w / (1 + w)``.
        No definiteness is checked: ``f`` sees the eigenvalues as they are.
    UPLO : {'L', 'U'}, default='L'
        Which triangle of ``A`` is read.

    Returns
    -------
    array, shape (..., n, n)
        ``f(A)``, exactly Hermitian, in the namespace, dtype and on the device
        of ``A``.

    Raises
    ------
    ValueError
        As :func:`expm`, or when ``f`` returns an array of another shape or a
        complex dtype (the result would not be Hermitian).
    TypeError
        When ``f`` is not callable or does not return an array of the
        namespace of its input (a NumPy array for a torch input, say).

    Warns
    -----
    ConvergenceWarning
        If the eigensolver did not converge for some matrix (rare).

    See Also
    --------
    scipy.linalg.funm : Schur-Parlett for one general matrix.
    sqrtm, expm, logm, powm

    Notes
    -----
    One batched eigendecomposition, one call of ``f`` and one batched
    product.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> A = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> C = eigarray.funm(A, np.cos)
    >>> w, V = np.linalg.eigh(A)
    >>> bool(np.allclose(C, (V * np.cos(w)) @ V.T))
    True
    """
    if not callable(f):
        raise TypeError(f"`f` must be callable; got {type(f).__name__}.")

    def body(xp: Any, w: Any) -> dict:
        fw = f(w)
        if not hasattr(fw, "shape") or not hasattr(fw, "dtype"):
            raise TypeError(f"`f` must return an array; got {type(fw).__name__}.")
        try:
            same = ns.same_namespace(ns.array_namespace(fw), xp)
        except TypeError:
            same = False
        if not same:
            raise TypeError(f"`f` must return an array of the namespace of its input "
                            f"({type(w).__module__}.{type(w).__name__}); got "
                            f"{type(fw).__module__}.{type(fw).__name__}.")
        if tuple(fw.shape) != tuple(w.shape):
            raise ValueError(f"`f` must return an array of the shape of its input "
                             f"{tuple(w.shape)}; got shape {tuple(fw.shape)}.")
        if xp.isdtype(fw.dtype, "complex floating"):
            raise ValueError(f"`f` must return real values (the result would not be "
                             f"Hermitian); got dtype={fw.dtype}.")
        return {"fw": xp.astype(fw, w.dtype, copy=False)}

    return _apply(A, UPLO, body)


# ---------------------------------------------------------------------------
# polar decomposition
# ---------------------------------------------------------------------------

def polar(A: Any, *, method: str = "svd", tol: float | None = None,
          max_iter: int | None = None, on_nonconvergence: str = "warn") -> PolarResult:
    """Polar decomposition ``A = U H`` of each matrix of a stack.

    ``U`` has orthonormal columns and ``H`` is Hermitian positive
    semi-definite, the convention of ``scipy.linalg.polar(a, side='right')``.
    With ``method='svd'``, ``A = P diag(σ) Qᴴ`` from the namespace's
    batched ``xp.linalg.svd`` gives ``U = P Qᴴ`` and ``H = Q diag(σ) Qᴴ``.
    With ``method='newton_schulz'``, ``X_0 = A / ||A||_F`` (``A`` first
    scaled by a power of two, exactly, so that ``||A||_F`` neither
    overflows nor underflows) and
    ``X_{k+1} = X_k (3I - X_kᴴX_k) / 2`` (matrix products only, the
    GPU-friendly choice), which drives every singular value to 1, linearly
    (by a factor of about 1.5) while it is small and quadratically near 1,
    until ``||X_kᴴX_k - I||_F <= tol``; then ``U = X_k`` and ``H = Uᴴ A``.

    Parameters
    ----------
    A : array, shape (..., m, n), m >= n
        Real or complex stack, any leading batch shape.
    method : {'svd', 'newton_schulz'}, default='svd'
        How ``U`` is found.
    tol : float, optional
        Newton-Schulz only: stop when ``||XᴴX - I||_F <= tol`` for every
        matrix.  ``None`` (the default) or ``0`` mean working precision, as
        elsewhere in eigarray: ``tol = 10 n eps`` (``eps`` of the working
        dtype), and then one more step unless the iteration is at rounding
        level, so that ``U`` is orthonormal to working precision.
    max_iter : int, optional
        Newton-Schulz only: most iterations, default 100, enough for
        ``cond(A)`` up to about ``10^15`` in double precision
        (``log_{1.5}(sqrt(n) cond(A))`` linear steps, then a few quadratic ones).
    on_nonconvergence : {'warn', 'raise'}, default='warn'
        Newton-Schulz only: what to do when some matrix misses ``tol``.

    Returns
    -------
    PolarResult
        ``(U, H)``: shapes ``(..., m, n)`` and ``(..., n, n)``, in the
        namespace, dtype and on the device of ``A``; ``H`` is exactly
        Hermitian (bitwise).  ``result.info.converged`` (shape ``(...)``)
        flags each matrix; for Newton-Schulz ``info.residual_norms`` holds
        ``||UᴴU - I||_F``, ``info.n_iter`` the iterations and
        ``info.history["orthogonality"]`` the largest ``||XᴴX - I||_F`` per
        iteration.

    Raises
    ------
    ValueError
        For ``ndim < 2``, ``m < n``, NaN or Inf, an unknown ``method``, or a
        bad ``tol`` or ``max_iter``.
    TypeError
        For a non-numeric dtype (half precision promotes to float32).
    NoConvergence
        With ``on_nonconvergence='raise'``, if Newton-Schulz missed ``tol``.

    Warns
    -----
    ConvergenceWarning
        If Newton-Schulz did not reach ``tol`` within ``max_iter`` for some
        matrix, which happens when ``A`` is (numerically) rank deficient or
        so ill-conditioned that ``σ_min / ||A||_F`` cannot grow to 1 in
        ``max_iter`` steps.  The last iterate is returned, flagged.

    See Also
    --------
    scipy.linalg.polar : the same factorisation of one matrix, by SVD.
    sqrtm

    Notes
    -----
    ``svd``: one batched SVD (``O(m n^2)``) and two batched products; no host
    synchronisation beyond the finiteness check.  ``newton_schulz``: two
    batched products per iteration (``m n^2`` and ``n^2 m`` multiply-adds)
    and one host synchronisation per iteration (``||XᴴX - I||_F`` of every
    matrix), plus one before the first (the largest entry of every matrix,
    for the scaling).  ``U`` is unique, and ``H = (AᴴA)^{1/2}``, when ``A`` has full
    column rank.

    References
    ----------
    N. J. Higham, *Functions of Matrices: Theory and Computation*, SIAM,
    2008, chapter 8 (the Newton-Schulz iteration is equation (8.20)).

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0], [0.0, 1.0]])
    >>> U, H = eigarray.polar(A)
    >>> bool(np.allclose(U @ H, A)), bool(np.allclose(U.T @ U, np.eye(2)))
    (True, True)
    """
    method = val.check_choice(method, ("svd", "newton_schulz"), name="method")
    val.check_choice(on_nonconvergence, ("warn", "raise"), name="on_nonconvergence")
    xp, A = _validate_stack(A, tall=True)
    n = int(A.shape[-1])
    if tol is not None:
        tol = val.check_tol(tol, name="tol")
    polish = not tol                      # None or 0: working precision
    if polish:
        tol = 10.0 * max(n, 1) * ns.eps(xp, A.dtype)
    iters = val.check_int(_NS_MAX_ITER if max_iter is None else max_iter,
                          name="max_iter", low=0)
    assert iters is not None
    if method == "svd":
        return _polar_svd(xp, A)
    result = _polar_newton_schulz(xp, A, tol=tol, max_iter=iters, polish=polish)
    report_nonconvergence(result, on_nonconvergence, what="matrices")
    return result


def _polar_svd(xp: Any, A: Any) -> PolarResult:
    hx = ns.numpy_namespace()
    batch = tuple(A.shape[:-2])
    P, s, Qh = xp.linalg.svd(A, full_matrices=False)
    U = P @ Qh
    H = _reconstruct(xp, _mH(xp, Qh), half=xp.sqrt(s))
    info = ConvergenceInfo(hx.ones(batch, dtype=hx.bool), hx.full(batch, hx.nan), 0, 0, {})
    return PolarResult(U, H, info=info)


def _pow2_scaled(xp: Any, A: Any) -> Any:
    """Each matrix of ``A`` times the power of two that puts ``max|a_ij|`` in [1/2, 1).

    One host synchronisation (the largest entry of every matrix).  The power
    is applied as two factors, each representable in the dtype (``2^1074``,
    for a float64 matrix of subnormals, is not), which keeps the product exact.
    """
    if math.prod(int(d) for d in A.shape) == 0:
        return A
    hx = ns.numpy_namespace()
    amax = ns.to_host_numpy(xp.max(xp.abs(A), axis=(-2, -1)))
    _, e = hx.frexp(hx.asarray(amax, dtype=hx.float64))       # e = 0 for a zero matrix
    k1 = (-e) // 2
    factors = [hx.ldexp(1.0, k).astype(amax.dtype) for k in (k1, -e - k1)]
    for f in factors:
        f = xp.astype(ns.from_host_numpy(hx.reshape(f, amax.shape), xp, like=A), A.dtype)
        A = A * f[..., None, None]
    return A


def _polar_newton_schulz(xp: Any, A: Any, *, tol: float, max_iter: int,
                         polish: bool) -> PolarResult:
    hx = ns.numpy_namespace()
    batch = tuple(A.shape[:-2])
    n = int(A.shape[-1])
    eye = xp.eye(n, dtype=A.dtype, device=ns.device(A))
    # U is that of any multiple of A: scale each matrix by a power of two
    # first (exact), so that the sum of squares in ||A||_F can neither
    # overflow nor underflow; H is formed from A itself below.
    X = _pow2_scaled(xp, A)
    nrm = xp.linalg.matrix_norm(X, ord="fro")
    nrm = xp.where(nrm > 0, nrm, xp.ones_like(nrm))
    X = X / xp.astype(nrm, A.dtype)[..., None, None]
    history: list[float] = []
    n_iter = 0
    floor = n * ns.eps(xp, A.dtype)
    while True:
        G = _mH(xp, X) @ X
        err = ns.to_host_numpy(xp.linalg.matrix_norm(G - eye, ord="fro")).astype(hx.float64)
        worst = float(err.max()) if err.size else 0.0
        # With the default tolerance, converged matrices take one more
        # (quadratic) step unless they are at rounding level already or
        # stopped improving, so that a stop just below ``tol`` still hands
        # back ``U`` orthonormal to working precision.
        polished = (not polish or worst <= floor
                    or (len(history) > 0 and worst > 0.5 * history[-1]))
        history.append(worst)
        if bool((err <= tol).all()) and polished or n_iter >= max_iter:
            break
        X = X @ ((3.0 * eye - G) * 0.5)
        n_iter += 1
    err = hx.reshape(err, batch)
    H = _symmetrise(xp, _mH(xp, X) @ A)
    info = ConvergenceInfo(err <= tol, err, n_iter, 0,
                           {"orthogonality": hx.asarray(history, dtype=hx.float64)})
    return PolarResult(X, H, info=info)
