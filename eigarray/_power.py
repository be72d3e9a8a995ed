"""Blocked power iteration: subspace iteration, its SVD form, and the spectral norm.

Algorithm: subspace (block power) iteration with Rayleigh-Ritz at every step
and locking (Rutishauser 1970; Saad, *Numerical Methods for Large Eigenvalue
Problems*, ch. 5), optionally accelerated by Chebyshev polynomial filtering
(Zhou & Saad 2007).  A block ``X`` of ``p`` orthonormal columns and its
product ``W = A X`` are kept together; Rayleigh-Ritz on ``Xᴴ W`` (a ``p x p``
problem solved on the host) rotates both, which gives the Ritz values and,
from ``W S - X S Θ``, the exact residual of every Ritz vector without a further
product.  Converged leading Ritz vectors are *locked*: they are never
multiplied again and the active columns are kept orthogonal to them.  The next
block is ``orth(f(A) X)`` where ``f`` is a shift ``A - σ I`` (no extra product:
``W - σ X``) or a Chebyshev polynomial of degree ``d`` that damps the unwanted
part of the spectrum (``d - 1`` extra products, the first one being ``W``).
Orthonormalisation is BLAS-3: one Householder QR (``xp.linalg.qr``; dask's
tall-skinny QR on a row-chunked Dask array) of ``[X_locked, Y_active]``,
whose trailing factor is the active block orthonormalised against the locked
vectors (block Gram-Schmidt with Householder's stability).

The SVD form (:func:`svd_impl`) iterates ``V <- orth(Aᴴ orth(A V))`` with
Rayleigh-Ritz through the SVD of the ``p x p`` triangular factor of ``A V``;
:func:`spectral_norm` is the single-vector form with a persistent state, as
``torch.nn.utils.parametrizations.spectral_norm``.

Storage: the block ``X`` and its product ``W`` are ``(n, p)`` arrays
(columns are the vectors) in the operator's namespace and on its device; the
first ``n_locked`` columns hold the locked vectors, so every array keeps its
shape through the iteration (JAX compiles each operation once) and only the
products see the narrower active block.  Small projected problems live on
the host in float64 or complex128.

Host synchronisation: once per iteration for the ``p x p`` projected matrix
and once for the ``p`` residual norms (plus one per step of the 16-step
Lanczos run that bounds the spectrum).  Dask iterates are persisted once per
iteration so the task graph does not grow.  :func:`spectral_norm` on a dense
array does not synchronise at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from . import _namespace as ns
from . import _validate as val
from ._lanczos import _product_error_note as _lanczos_note
from ._linalg import check_start, scaled_operator, set_rows
from ._operator import LinearOperator, aslinearoperator
from ._result import ConvergenceInfo, EighResult, SVDResult, report_nonconvergence
from ._result import callback_stops as _stops

__all__ = [
    "subspace_iteration",
    "spectral_norm",
    "svd_impl",
    "PowerState",
    "SpectralNormState",
]

_WHICH = ("LA", "SA", "LM")

# Iterations allowed by default; every iteration costs ``p`` products (times
# the Chebyshev degree), so past this the problem wants Lanczos instead.
DEFAULT_MAXITER = 1000

# Steps of the Lanczos run that bounds the spectrum for the shift and the
# Chebyshev filter (Zhou & Saad use 10 to 20; the bound is max θ + ||f||).
_BOUND_STEPS = 16

# Products less accurate than the tolerance (float32 arithmetic in a
# float64 operator, an operator slightly off Hermitian).  The residuals are
# computed from the products, so they stop decreasing near the products'
# error ``δ ||A||``, and a ``tol`` below it used to run to ``maxiter`` (1000
# iterations, 12,016 products for k = 4 on a 200 x 200 float64 matrix applied
# in float32).  The projected matrix measures ``δ``: for products exact to
# rounding ``Xᴴ (A X)`` is Hermitian to about one eps ``||A||`` (RMS entry
# of the active block at most 1.1 eps, measured over 300 runs: Laplacians,
# random and graded matrices, real and complex, float32 and float64, every
# ``which``, with and without the filter, converged or stopped by maxiter);
# with products in error by ``E`` its asymmetry is ``Xᴴ E - Eᴴ X``, whose
# entries are about ``δ ||A|| sqrt(2 / n)`` for an error with no preferred
# direction (float32 products at n = 200: 3.6e-9 ||A||, 16 million eps of
# float64).  Once the median over the last _NOISE_WINDOW iterations passes
# _ASYMMETRY_EPS eps, ``δ`` is estimated as that RMS times
# ``sqrt(n / 2)`` (float32 products: 3.3e-8 to 4.9e-8, 1.2e-8 to 1.6e-8 for
# 'SA', where the error is smaller along the wanted vectors), and the
# iteration stops once the largest wanted residual is within _FLOOR_RATIO
# of ``δ ||A||`` (measured at its end: 0.2 to 3.5 times at n = 200 or 300, 5
# to 13 times on 12,000 and 60,000-row Laplacians) and has not halved over
# the last half of the iterations since it came that close (at least
# _NOISE_WINDOW): a residual that falls geometrically from ``r0`` halves in
# the last half whenever it is below ``r0 / 4``, so only a plateau stops it.  The pairs above the
# tolerance stay flagged.
#
# _ASYMMETRY_EPS is seven times the largest median asymmetry measured for
# exact products (0.96 eps over 90 more runs: random, graded and complex
# matrices of 100 to 1,000 rows, Laplacians of 3,000 and 30,000, float32 and
# float64, 'LA', 'SA', 'LM', with and without the filter).  A gate at
# 1000 eps (_lanczos._NOISE_EPS: Lanczos's Gram-Schmidt leftovers measure
# ``δ`` itself) missed the errors that the asymmetry shrinks by
# ``sqrt(2 / n)``: at n = 300 (a Laplacian, k = 4, tol 0), products in error
# by 30 to 1000 eps ran to maxiter, 1000 iterations and 12,016 products;
# from 300 eps on they now stop after 629 to 661 iterations (the run with
# exact products converges after 804).  Errors below about 100 eps at that
# size stay under the gate.  The SVD form measures the products' error in
# the same way, through an inconsistency of up to 6.9 eps for exact
# products (see svd_impl), and gates at _SVD_INCONSISTENCY_EPS.
_NOISE_WINDOW = 10
_FLOOR_RATIO = 30.0
_ASYMMETRY_EPS = 8.0
_SVD_INCONSISTENCY_EPS = 50.0


class PowerState(NamedTuple):
    """What a ``callback`` of :func:`subspace_iteration` sees after every iteration.

    Attributes
    ----------
    n_iter : int
        Iterations (Rayleigh-Ritz steps) completed.
    n_matvec : int
        Operator applications so far.
    ritz_values : numpy.ndarray, shape (k,)
        Current approximations of the wanted eigenvalues, ascending.
    residual_estimates : numpy.ndarray, shape (k,)
        Their residual norms ``||A x - θ x||``.
    n_converged : int
        How many of them meet the tolerance.
    """

    n_iter: int
    n_matvec: int
    ritz_values: Any
    residual_estimates: Any
    n_converged: int


class SpectralNormState(NamedTuple):
    """The persistent vectors of :func:`spectral_norm`.

    Attributes
    ----------
    u : array, shape (m,)
        Current left singular vector estimate (unit norm).
    v : array, shape (n,)
        Current right singular vector estimate (unit norm).
    """

    u: Any
    v: Any


_NON_FINITE = ("`A` returned NaN or Inf for a finite block (a NaN in a matrix-free operator, "
               "or an overflow).")


def default_block_size(k: int, n: int) -> int:
    """eigarray's default block for ``k`` wanted pairs: ``min(n, max(2k, k + 8))``."""
    return min(n, max(2 * k, k + 8))


# ---------------------------------------------------------------------------
# small helpers


def _host_dtype(cplx: bool) -> str:
    return "complex128" if cplx else "float64"


def _to_device(xp: Any, a: Any, dtype: Any, like: Any) -> Any:
    out = ns.from_host_numpy(ns.numpy_namespace().asarray(a), xp, like=like)
    return xp.astype(out, dtype) if out.dtype != dtype else out


def _adjoint(xp: Any, X: Any, cplx: bool) -> Any:
    return xp.conj(X).T if cplx else X.T


def _settle(xp: Any, X: Any) -> Any:
    """Persist a Dask iterate in one column chunk (the layout Dask's tall-skinny QR needs).

    The next iteration's graph then starts from data.
    """
    return ns.persist(ns.one_column_chunk(X))


def _random_block(xp: Any, n: int, p: int, dtype: Any, rng: Any, like: Any) -> Any:
    """``(n, p)`` standard normal block drawn on the host, moved to ``xp``."""
    hx = ns.numpy_namespace()
    if ns.is_complex(xp, dtype):
        Z = rng.standard_normal((n, p)) + 1j * rng.standard_normal((n, p))
    else:
        Z = rng.standard_normal((n, p))
    return _to_device(xp, hx.asarray(Z), dtype, like)


def _col_norms(xp: Any, R: Any) -> Any:
    """Column norms of ``R`` as a host float64 array (one synchronisation)."""
    return ns.to_host_numpy(xp.linalg.vector_norm(R, axis=0)).astype("float64")


def _masks(xp: Any, p: int, nlock: int, dtype: Any, like: Any) -> tuple[Any, Any]:
    """Row vectors selecting the locked (first ``nlock``) and the active columns."""
    hx = ns.numpy_namespace()
    locked = (hx.arange(p) < nlock).astype("float64")
    return _to_device(xp, locked, dtype, like), _to_device(xp, 1.0 - locked, dtype, like)


def _orth(xp: Any, Z: Any, X: Any, nlock: int, like: Any) -> Any:
    """Orthonormalise the active columns of ``Z`` against the locked columns of ``X``.

    Householder QR of ``[X_locked, Z_active]`` (one BLAS-3 factorisation of
    the fixed-width block; on Dask its tall-skinny QR): its trailing columns
    are an orthonormal basis of the part of ``Z_active`` orthogonal to the
    locked vectors, which are then put back exactly.
    """
    if nlock == 0:
        Q, _ = xp.linalg.qr(ns.one_column_chunk(Z))
        return Q
    keep, active = _masks(xp, Z.shape[1], nlock, Z.dtype, like)
    Q, _ = xp.linalg.qr(ns.one_column_chunk(Z * active + X * keep))
    return Q * active + X * keep


def _active_product(op: LinearOperator, X: Any, nlock: int, fill: Any, *,
                    adjoint: bool = False) -> Any:
    """``A X`` (or ``Aᴴ X``) on the active columns; the locked ones are taken from ``fill``.

    Only ``p - nlock`` columns are multiplied; the result keeps the block's
    full width, so that every other operation keeps its shape.
    """
    xp = op.xp
    product = op.rmatmat if adjoint else op.matmat
    if nlock == 0:
        return product(X)
    return xp.concat([fill[:, :nlock], product(X[:, nlock:])], axis=1)


def _block_diag_eye(hx: Any, p: int, nlock: int, S: Any, host_dtype: str) -> Any:
    """``diag(I_nlock, S)`` on the host: rotates the active columns only."""
    F = hx.eye(p, dtype=host_dtype)
    F[nlock:, nlock:] = S
    return F


def _order(theta: Any, which: str) -> Any:
    """Indices of ``theta`` from most to least wanted."""
    hx = ns.numpy_namespace()
    if which == "LA":
        return hx.argsort(-theta, stable=True)
    if which == "SA":
        return hx.argsort(theta, stable=True)
    return hx.argsort(-hx.abs(theta), stable=True)


def _check_int(value: Any, **kwargs: Any) -> int:
    """:func:`_validate.check_int` for an argument that may not be None."""
    out = val.check_int(value, **kwargs)
    assert out is not None
    return out


def _bind(A: Any, start: Any) -> LinearOperator:
    op = aslinearoperator(A)
    if op.xp is None:
        if start is not None and ns.is_array_api_obj(start):
            op = op.bind(ns.array_namespace(start), device=ns.device(start))
        else:
            op = op.bind(ns.numpy_namespace())
    return op


# ---------------------------------------------------------------------------
# spectrum bounds


def spectrum_bounds(op: LinearOperator, rng: Any, steps: int = _BOUND_STEPS) -> tuple:
    """Lower and upper bounds of the spectrum of Hermitian ``op`` from a short Lanczos run.

    ``steps`` Lanczos steps with full reorthogonalisation give the tridiagonal
    ``T`` and the last residual norm ``β``; the bounds are
    ``min θ(T) - β`` and ``max θ(T) + β`` (Zhou & Li 2011, as used by Zhou &
    Saad's filtered subspace iteration).  Costs ``steps`` products and one
    host synchronisation per step.
    """
    xp = op.xp
    hx = ns.numpy_namespace()
    n = op.shape[0]
    dtype = op.dtype
    cplx = ns.is_complex(xp, dtype)
    matvec = op.matvec
    if ns.is_dask_namespace(xp):
        # A few single vectors: computed at once and kept on the host, so
        # that no step's graph depends on the steps before it.
        xp, dtype = hx, ns.to_host_numpy(xp.zeros(1, dtype=dtype)).dtype

        def matvec(x):
            return ns.to_host_numpy(op.matvec(x))
    m = min(n, steps)
    v = _random_block(xp, n, 1, dtype, rng, None)[:, 0]
    if op.device is not None and ns.device(v) != op.device:
        v = ns.to_device(v, op.device)
    v = v / xp.linalg.vector_norm(v)
    # The basis is the rows of a fixed (m, n) array (zero rows do not count),
    # so that every product keeps its shape (JAX compiles each shape once).
    B = set_rows(xp.zeros((m, n), dtype=dtype, device=ns.device(v)), 0, v)
    alphas: list[float] = []
    betas: list[float] = []
    beta = 0.0
    anorm = 0.0
    for j in range(m):
        w = matvec(v)
        for pass_ in range(2):                   # full reorthogonalisation (CGS2)
            c = (xp.conj(B) if cplx else B) @ w
            w = w - c @ B
            if pass_ == 0:
                c_alpha = c
        w = _settle(xp, w)
        nrm = xp.linalg.vector_norm(w)
        h = ns.to_host_numpy(xp.stack([c_alpha[j], xp.astype(nrm, dtype)]))   # one sync
        alpha, beta = float(hx.real(h[0])), float(hx.real(h[1]))
        if not (math.isfinite(alpha) and math.isfinite(beta)):
            raise ValueError(_NON_FINITE)
        alphas.append(alpha)
        anorm = max(anorm, abs(alpha) + beta)
        if j == m - 1 or beta <= ns.eps(xp, dtype) * anorm * n:
            break
        betas.append(beta)
        v = w / beta
        B = set_rows(B, j + 1, v)
    T = hx.diag(hx.asarray(alphas)) + hx.diag(hx.asarray(betas), 1) + hx.diag(
        hx.asarray(betas), -1)
    theta = hx.linalg.eigvalsh(T)
    return float(theta[0]) - beta, float(theta[-1]) + beta


def _chebyshev_filter(op: LinearOperator, X: Any, W: Any, nlock: int, active: Any,
                      degree: int, a: float, b: float, a0: float) -> Any:
    """``p_d(A) X`` damping ``[a, b]``, scaled to 1 at ``a0`` (Zhou & Saad's Algorithm 4.2).

    Applied to the active columns (the locked ones are zero throughout).
    ``W = A X`` is known, so the filter costs ``degree - 1`` products per
    active column.  The scaled three-term recurrence keeps every iterate of
    order one.
    """
    xp = op.xp
    e = (b - a) / 2.0
    c = (b + a) / 2.0
    sigma = e / (a0 - c)
    tau = 2.0 / sigma
    X = X * active
    Y = _settle(xp, (W - c * X) * (sigma / e) * active)
    for _ in range(1, degree):
        sigma_new = 1.0 / (tau - sigma)
        AY = _active_product(op, Y, nlock, Y)
        Y_new = (AY - c * Y) * (2.0 * sigma_new / e) - (sigma * sigma_new) * X
        X, Y = Y, Y_new                       # Dask: a graph of `degree` steps
        sigma = sigma_new
    return Y


# ---------------------------------------------------------------------------
# the products' own error (see _NOISE_WINDOW)


def _rms(D: Any, count: int) -> float:
    """Root mean square of ``count`` entries whose squares ``D`` holds (the rest are zero)."""
    hx = ns.numpy_namespace()
    return float(hx.linalg.norm(D)) / math.sqrt(count) if count else math.nan


def _product_error(noise: list[float], errors: list[float], eps: float, gate: float) -> float:
    """The products' error relative to ``||A||``, or 0 while it looks like rounding.

    ``noise`` holds the measured inconsistency (RMS entry relative to
    ``||A||``) per iteration, ``errors`` the products' error it implies;
    rounding leaves the inconsistency's median below ``gate`` eps.
    """
    hx = ns.numpy_namespace()
    recent = hx.asarray(noise[-_NOISE_WINDOW:])
    recent = recent[~hx.isnan(recent)]
    if recent.size < _NOISE_WINDOW // 2 or float(hx.median(recent)) <= gate * eps:
        return 0.0
    implied = hx.asarray(errors[-_NOISE_WINDOW:])
    return float(hx.median(implied[~hx.isnan(implied)]))


def _at_floor(largest: list[float], floor: float) -> bool:
    """Whether the largest wanted residual has stopped at the products' error ``floor``.

    The iterations since it came within _FLOOR_RATIO of ``floor`` (the
    longest such run at the end) are more than _NOISE_WINDOW, and over the
    last half of them (at least _NOISE_WINDOW) it has not halved.  Counted
    over the whole run, the half took as long as the run itself to show a
    plateau: a run of 800 iterations reached ``maxiter`` first.
    """
    if floor <= 0.0:
        return False
    start = len(largest)
    while start > 0 and largest[start - 1] <= _FLOOR_RATIO * floor:
        start -= 1
    near = largest[start:]
    recent = max(_NOISE_WINDOW, len(near) // 2)
    if len(near) <= recent:
        return False
    return min(near[-recent:]) > 0.5 * min(near[:-recent])


def _product_error_note(result: Any) -> str | None:
    """What the warning adds when the products' own error stopped the iteration.

    Lanczos's note, which says where the error was measured: here in the
    projected matrix.
    """
    return _lanczos_note(result, where="the Rayleigh-Ritz matrix")


# ---------------------------------------------------------------------------
# subspace iteration


def _impl(op: LinearOperator, k: int, *, which: str, block_size: int, X0: Any, tol: float,
          maxiter: int, degree: int, rng: Any, callback: Callable | None) -> EighResult:
    """Subspace iteration with Rayleigh-Ritz and locking on ``op`` (validated arguments).

    The block ``X`` (``n x p``) and its product ``W = A X`` keep their width:
    the first ``nlock`` columns are the locked Ritz vectors (and their
    products), the others the active block, ordered from most to least
    wanted after each Rayleigh-Ritz step.  Only active columns are
    multiplied; rotations act on them alone (``diag(I, S)``), so the locked
    columns stay bit-for-bit unchanged.
    """
    # On A / s (s a power of two, 1 unless ||A|| is near the ends of the
    # exponent range); values and residuals are scaled back.
    op, scale = scaled_operator(op)
    xp = op.xp
    hx = ns.numpy_namespace()
    n = op.shape[0]
    p = block_size
    dtype = op.dtype
    cplx = ns.is_complex(xp, dtype)
    host_dtype = _host_dtype(cplx)
    real_dtype = ns.real_dtype(xp, dtype)
    eps = ns.eps(xp, dtype)
    tol = max(tol, eps * math.sqrt(n))
    matvec0 = op.n_matvec

    if X0 is None:
        X = _random_block(xp, n, p, dtype, rng, None)
    elif X0.shape[1] < p:
        X = xp.concat([X0, _random_block(xp, n, p - X0.shape[1], dtype, rng, X0)], axis=1)
    else:
        X = X0
    if op.device is not None and ns.device(X) != op.device:
        X = ns.to_device(X, op.device)
    like = X
    X = _settle(xp, _orth(xp, X, None, 0, like))

    lo = hi = 0.0
    anorm = 0.0
    if which != "LM":
        lo, hi = spectrum_bounds(op, rng)
        anorm = max(abs(lo), abs(hi))
    W = _settle(xp, op.matmat(X))

    locked_theta: list[float] = []
    nlock = 0
    history: dict[str, list] = {"ritz_values": [], "residual_estimates": [], "n_matvec": [],
                                "product_error": []}
    n_iter = 0
    stop_reason = None
    noise: list[float] = []      # asymmetry of the projected matrix (see _NOISE_WINDOW)
    errors: list[float] = []     # the products' error it implies
    largest: list[float] = []    # largest wanted residual

    while True:
        # 1. Rayleigh-Ritz on the active block; exact residuals from W.
        H = ns.to_host_numpy(_adjoint(xp, X, cplx) @ W).astype(host_dtype)[nlock:, nlock:]
        if not bool(hx.all(hx.isfinite(H))):
            raise ValueError(_NON_FINITE)
        theta_a, S = hx.linalg.eigh((H + hx.conj(H.T)) / 2)
        perm = _order(theta_a, which)
        theta_a = theta_a[perm]
        F = _to_device(xp, _block_diag_eye(hx, p, nlock, S[:, perm], host_dtype), dtype, like)
        X = _settle(xp, X @ F)
        W = _settle(xp, W @ F)
        theta = hx.concat([hx.asarray(locked_theta, dtype="float64"), theta_a])
        res = _col_norms(xp, W - X * _to_device(xp, theta, dtype, like))
        anorm = max(anorm, float(hx.max(hx.abs(theta))))
        threshold = tol * anorm
        # The products' own error (see _NOISE_WINDOW); a real H has no diagonal asymmetry.
        q = p - nlock
        asym = _rms(H - hx.conj(H.T), q * q if cplx else q * (q - 1))
        asym = asym / anorm if anorm else math.nan
        noise.append(asym)
        errors.append(asym * math.sqrt(n / 2))
        floor = _product_error(noise, errors, eps, _ASYMMETRY_EPS) * anorm
        largest.append(float(hx.max(res[:k])))

        done = res[:k] <= threshold
        n_iter += 1
        asc = hx.argsort(theta[:k], stable=True)
        history["ritz_values"].append(theta[:k][asc] * scale())
        history["residual_estimates"].append(res[:k][asc] * scale())
        history["n_matvec"].append(op.n_matvec - matvec0)
        history["product_error"].append(floor / anorm if floor > 0.0 else math.nan)
        if callback is not None:
            state = PowerState(n_iter, op.n_matvec - matvec0, theta[:k][asc] * scale(),
                               res[:k][asc] * scale(), int(hx.count_nonzero(done)))
            if _stops(callback(state)):
                stop_reason = "callback"
        # Residuals at the products' error (see _NOISE_WINDOW): none will go lower.
        at_floor = _at_floor(largest, floor)
        if bool(hx.all(done)) or n_iter >= maxiter or stop_reason or at_floor:
            break

        # 2. Lock the converged leading active pairs (a prefix, in order of preference).
        while nlock < k and res[nlock] <= threshold:
            locked_theta.append(float(theta[nlock]))
            nlock += 1
        keep, active = _masks(xp, p, nlock, dtype, like)

        # 3. Next block: shifted power step or Chebyshev filter, then orthonormalise.
        if which == "LM":
            Y = W
        else:
            worst, best = float(theta[-1]), float(theta[nlock])
            if which == "LA":
                a, b, far, a0 = lo, worst, lo, (best if best > worst else hi)
            else:
                a, b, far, a0 = worst, hi, hi, (best if best < worst else lo)
            if degree > 0 and b - a > eps * anorm and (a0 - b) * (a0 - a) > 0:
                Y = _chebyshev_filter(op, X, W, nlock, active, degree, a, b, a0)
            else:
                Y = W - far * X
        X = _settle(xp, _orth(xp, Y, X, nlock, like))
        W = _settle(xp, _active_product(op, X, nlock, W))

    # 4. The wanted pairs, ascending; residuals are those of the returned vectors.
    asc = hx.argsort(theta[:k], stable=True)
    Xk = xp.take(X, _to_device(xp, asc, xp.int64, like), axis=1)
    Xk = _settle(xp, Xk)
    w_out = _to_device(xp, theta[:k][asc] * scale(), real_dtype, like)
    info = ConvergenceInfo(res[:k][asc] <= threshold, res[:k][asc] * scale(), n_iter,
                           op.n_matvec - matvec0,
                           {key: hx.asarray(v_) for key, v_ in history.items()})
    return EighResult(w_out, Xk, info=info)


def subspace_iteration(A: Any, k: int, *, which: str = "LA", block_size: int | None = None,
                       X0: Any = None, tol: float = 0, maxiter: int | None = None,
                       chebyshev_degree: int = 0, rng: Any = None,
                       callback: Callable | None = None,
                       on_nonconvergence: str = "warn") -> EighResult:
    """Find ``k`` eigenpairs of a Hermitian operator by subspace iteration.

    Block power iteration with Rayleigh-Ritz at every step and locking,
    optionally accelerated by Chebyshev polynomial filtering (Zhou & Saad
    2007).  A block of ``block_size`` orthonormal vectors is multiplied by
    ``A`` (or a polynomial in ``A``) and re-orthonormalised; Rayleigh-Ritz
    on the block gives the Ritz pairs and, from the products already at
    hand, their exact residuals.  Converged leading pairs are locked: they
    are no longer multiplied, and the active vectors are kept orthogonal to
    them.  Its strength is the warm start: started from the eigenvectors of
    a nearby matrix (``X0``), it converges in a few iterations, which makes
    it the method for tracking the dominant subspace of a slowly changing
    matrix.  It runs on Dask arrays (square, chunked by rows) as well.

    Parameters
    ----------
    A : array, sparse matrix or operator, shape (n, n)
        Hermitian.  Anything :func:`eigarray.aslinearoperator` accepts, and
        Dask arrays.
    k : int
        Number of eigenpairs, ``0 < k < n``.
    which : {'LA', 'SA', 'LM'}, default='LA'
        Largest algebraic, smallest algebraic or largest magnitude
        eigenvalues.  'LA' and 'SA' iterate with ``A - σ I``, where ``σ`` is
        the bound of the far end of the spectrum from a 16-step Lanczos run,
        so that the wanted end dominates; 'LM' iterates with ``A``.
    block_size : int, optional
        Vectors in the block, ``k <= block_size <= n``.  The
        ``block_size - k`` guard vectors speed up convergence to the ratio
        ``|λ_{block_size+1} / λ_k|`` per iteration (for the shifted
        spectrum).  Default ``min(n, max(2k, k + 8))``, or more to hold
        every column of ``X0``.
    X0 : array, shape (n, p), optional
        Starting block (any namespace; it is copied): typically the
        eigenvectors of a previous, nearby problem.  Padded with random
        columns up to ``block_size``; ``p <= block_size``.  For a plain
        callable operator its namespace is the namespace of the iteration.
        A block that fills ``block_size`` (no random column) and spans an
        invariant subspace of ``A`` stays in it, as in any subspace
        iteration or LOBPCG: its pairs come back converged whether or not
        they are the wanted ones (e.g. eigenvectors of the wrong end).
    tol : float, default=0
        Relative accuracy: a pair is converged when its residual norm
        ``||A x - θ x||`` is at most ``tol * ||A||``, ``||A||`` estimated by
        the largest Ritz value magnitude and the Lanczos bounds of the
        spectrum.  0 means working precision: the floor of ``tol`` is
        ``eps * sqrt(n)`` (``eps`` of the working dtype), the rounding
        level of a residual computed from a product with ``A``.
    maxiter : int, optional
        Maximum number of iterations (Rayleigh-Ritz steps), default 1000.
        Each costs ``(block_size - n_locked) * max(chebyshev_degree, 1)``
        operator applications.
    chebyshev_degree : int, default=0
        Degree ``d`` of the Chebyshev filter; 0 is the plain (shifted) power
        step.  The filter damps the unwanted interval ``[a, b]``: for 'LA'
        from the Lanczos lower bound of the spectrum to the smallest Ritz
        value of the active block, for 'SA' from the largest Ritz value of
        the block to the Lanczos upper bound.  Not available with
        ``which='LM'`` (a ValueError).
    rng : None, int or numpy.random.Generator, optional
        Source of the random block and of the Lanczos starting vector.
    callback : callable, optional
        Called as ``callback(state)`` with a :class:`PowerState` after each
        iteration; returning ``True`` stops the iteration.
    on_nonconvergence : {'warn', 'raise'}, default='warn'
        What to do when some pairs miss the tolerance within ``maxiter``.

    Returns
    -------
    EighResult
        ``(eigenvalues, eigenvectors)``: eigenvalues ascending, shape (k,),
        real dtype of the working precision; eigenvectors as columns, shape
        (n, k); both in the namespace and on the device of ``A`` (or of
        ``X0`` for a callable).  ``result.info`` holds the residual norms of
        the returned pairs (computed from their products), per-pair
        ``converged`` flags, iterations, operator applications and a
        per-iteration ``history`` (``ritz_values``, ``residual_estimates``,
        ``n_matvec``, ``product_error``: see Notes).

    Raises
    ------
    ValueError
        For a non-square operator, ``k`` outside ``0 < k < n``, an unknown
        ``which``, ``block_size`` outside ``k <= block_size <= n``, a
        negative ``chebyshev_degree`` or one with ``which='LM'``, NaN or Inf
        in ``A`` (dense or sparse, not Dask) or ``X0``, or an ``X0`` of the
        wrong shape.
    NoConvergence
        With ``on_nonconvergence='raise'``, when some pairs did not converge.

    Warns
    -----
    ConvergenceWarning
        When some pairs did not converge (their values are still returned,
        flagged in ``result.info.converged``).

    See Also
    --------
    scipy.sparse.linalg.lobpcg : The block method scipy offers for the same task.
    eigsh : Thick-restart Lanczos, fewer operator applications from a cold start.

    Notes
    -----
    Cost per iteration: ``(block_size - n_locked) * max(d, 1)`` operator
    applications, one Householder QR of the ``(n, block_size)`` block
    ``[locked, active]`` (which orthonormalises the active vectors against
    the locked ones), and two products of ``(n, block_size)`` blocks with the
    ``block_size x block_size`` Ritz rotation.  Memory: about
    ``(3 + min(d, 2)) n block_size`` numbers.  Host synchronisations: the
    projected matrix and the residual norms, once each per iteration, and 16
    Lanczos steps once ('LA' and 'SA').  On Dask arrays the QR is dask's
    tall-skinny QR, the small problems are solved on the host, and every
    iterate is persisted.  The residuals are computed, not estimated:
    rounding keeps them above about ``0.1 to 0.8 eps sqrt(n) ||A||``
    (measured on dense random matrices), hence the floor ``eps sqrt(n)`` of
    ``tol``, well inside LAPACK's acceptance ratio ``30 n eps ||A||``.
    Products less accurate than ``tol`` (float32 arithmetic in a float64
    operator, an operator slightly off Hermitian) keep the residuals above
    their error: the asymmetry of the projected matrix ``Xᴴ A X``, about
    one eps ``||A||`` for products exact to rounding, measures it.  Once it
    passes ``8 eps ||A||``, the iteration stops when the largest wanted
    residual is within 30 times the products' error and has not halved over
    the last half of the iterations since it came that close, rather than
    running to ``maxiter``; the pairs
    above the tolerance are flagged not converged, the warning says why,
    and ``info.history["product_error"]`` holds that error (relative to
    ``||A||``) per iteration, NaN where it looks like rounding.

    References
    ----------
    Y. Zhou and Y. Saad, "A Chebyshev-Davidson algorithm for large symmetric
    eigenproblems", SIAM J. Matrix Anal. Appl. 29(3), 954-971, 2007.
    Y. Saad, *Numerical Methods for Large Eigenvalue Problems*, 2nd ed.,
    SIAM, 2011, ch. 5 and 7.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> from eigarray.testing import laplacian_2d
    >>> A, exact = laplacian_2d(12, 10)
    >>> w, V = eigarray.subspace_iteration(A, 3, which="LA", rng=0)
    >>> bool(np.allclose(w, exact[-3:], rtol=1e-10))
    True
    """
    op = _bind(A, X0)
    n = val.check_square_shape(op.shape, name="A")
    if n < 2:
        raise ValueError(
            f"`A` must be at least 2 x 2 for a partial eigensolver; got shape={op.shape}.")
    k = _check_int(k, name="k", low=1, high=n - 1, rule=f"0 < k < n = {n}")
    which = val.check_choice(which, _WHICH, name="which")
    chebyshev_degree = _check_int(chebyshev_degree, name="chebyshev_degree", low=0)
    if chebyshev_degree > 0 and which == "LM":
        raise ValueError("`chebyshev_degree` > 0 needs which='LA' or 'SA' (the filter damps "
                         f"one end of the spectrum); got which='LM', "
                         f"chebyshev_degree={chebyshev_degree}.")
    if X0 is not None:
        X0 = check_start(op, X0, n, name="X0", block=True)
    if block_size is None:
        block_size = default_block_size(k, n)
        if X0 is not None:
            block_size = min(n, max(block_size, X0.shape[1]))
    block_size = _check_int(block_size, name="block_size", low=k, high=n,
                            rule=f"k <= block_size <= n = {n} (k={k})")
    if X0 is not None and X0.shape[1] > block_size:
        raise ValueError(f"`X0` must have shape ({n}, p) with p <= block_size = {block_size}; "
                         f"got shape={tuple(X0.shape)}.")
    maxiter = val.check_int(maxiter, name="maxiter", low=1, allow_none=True)
    maxiter = DEFAULT_MAXITER if maxiter is None else maxiter
    tol = val.check_tol(tol, name="tol")
    val.check_callable_or_none(callback, name="callback")
    val.check_choice(on_nonconvergence, ("warn", "raise"), name="on_nonconvergence")
    rng = ns.host_rng(rng)
    result = _impl(op, k, which=which, block_size=block_size, X0=X0, tol=tol, maxiter=maxiter,
                   degree=chebyshev_degree, rng=rng, callback=callback)
    report_nonconvergence(result, on_nonconvergence, detail=_product_error_note(result))
    return result


# ---------------------------------------------------------------------------
# singular triplets (the engine of svds(..., solver='power'))


def svd_impl(op: LinearOperator, k: int, *, tol: float, maxiter: int | None,
             block_size: int | None, rng: Any) -> SVDResult:
    """Largest ``k`` singular triplets of ``op`` by block power iteration on ``AᴴA``.

    The contract of ``svds(..., solver='power')``: ``op`` is an adapted,
    bound and validated :class:`LinearOperator` of shape ``(m, n)`` with an
    adjoint, ``0 < k < min(m, n)``.  Each iteration computes ``Y = A V``,
    its QR factorisation ``Y = Q R`` and the SVD of the small ``R`` on the
    host (Rayleigh-Ritz), giving ``U = Q U_R``, ``σ`` and the rotated ``V``;
    then ``Z = Aᴴ U``, whose columns give the residuals
    ``||Aᴴ u - σ v||`` and, orthonormalised, the next ``V``.  ``AᴴA`` is
    never formed.  Converged leading triplets are locked (no longer
    multiplied; the active ``V`` is kept orthogonal to the locked ``V`` and
    ``A V`` to the locked ``U``).  Non-convergence is flagged in the result;
    reporting it is the caller's job.

    Parameters
    ----------
    op : LinearOperator, shape (m, n)
    k : int
    tol : float
        Relative tolerance on ``max(||A v - σ u||, ||Aᴴ u - σ v||) / σ_max``;
        floor (and meaning of 0) ``eps sqrt(max(m, n))``.
    maxiter : int or None
        Iterations (each ``2 (block_size - n_locked)`` products), default 1000.
    block_size : int or None
        Default ``min(m, n, max(2k, k + 8))``.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    SVDResult
        ``U (m, k)``, ``S (k,)`` descending (real working dtype), ``Vh (k, n)``
        in ``op``'s namespace; ``info.residual_norms`` are
        ``max(||A v - σ u||, ||Aᴴ u - σ v||)`` from the products, and
        ``info.n_matvec`` counts products with ``A`` and with ``Aᴴ``;
        ``info.history["product_error"]`` is the products' error relative to
        ``σ_max`` measured by ``Vᴴ (Aᴴ U) - diag(σ)`` (NaN at rounding
        level): past ``50 eps`` the iteration stops once the residuals
        stall near it (see :func:`subspace_iteration`).
    """
    op, scale = scaled_operator(op)           # see _impl
    xp = op.xp
    hx = ns.numpy_namespace()
    m, n = op.shape
    dtype = op.dtype
    cplx = ns.is_complex(xp, dtype)
    host_dtype = _host_dtype(cplx)
    real_dtype = ns.real_dtype(xp, dtype)
    rng = ns.host_rng(rng)
    p = default_block_size(k, min(m, n)) if block_size is None else block_size
    p = min(max(p, k), m, n)
    maxiter = DEFAULT_MAXITER if maxiter is None else maxiter
    tol = max(tol or 0.0, ns.eps(xp, dtype) * math.sqrt(max(m, n)))
    count0 = op.n_matvec + op.n_rmatvec

    V = _random_block(xp, n, p, dtype, rng, None)
    if op.device is not None and ns.device(V) != op.device:
        V = ns.to_device(V, op.device)
    like = V
    V = _settle(xp, _orth(xp, V, None, 0, like))
    U = None
    locked_s: list[float] = []
    locked_res: list[float] = []
    nlock = 0
    history: dict[str, list] = {"ritz_values": [], "residual_estimates": [], "n_matvec": [],
                                "product_error": []}
    n_iter = 0
    smax = 0.0
    noise: list[float] = []      # inconsistency of the two products (see _NOISE_WINDOW)
    errors: list[float] = []     # the products' error it implies
    largest: list[float] = []    # largest wanted residual
    while True:
        # Y = [U_locked, A V_active]: its QR projects A V_active off the locked U.
        Y = _settle(xp, _active_product(op, V, nlock, U))
        Q, R = xp.linalg.qr(Y)
        Rh = ns.to_host_numpy(R).astype(host_dtype)[nlock:, nlock:]
        if not bool(hx.all(hx.isfinite(Rh))):
            raise ValueError(_NON_FINITE)
        Ur, s_a, Wh = hx.linalg.svd(Rh)
        Fv = _to_device(xp, _block_diag_eye(hx, p, nlock, hx.conj(Wh.T), host_dtype), dtype, like)
        Fu = _to_device(xp, _block_diag_eye(hx, p, nlock, Ur, host_dtype), dtype, like)
        keep, active = _masks(xp, p, nlock, dtype, like)
        U = Q @ Fu if nlock == 0 else (Q @ Fu) * active + U * keep
        U = _settle(xp, U)
        V = _settle(xp, V @ Fv)
        Z = _settle(xp, _active_product(op, U, nlock, V, adjoint=True))
        s = hx.concat([hx.asarray(locked_s, dtype="float64"), s_a])
        # residual scale 1 on the locked columns, whose Y and Z columns are U and V
        s_res = _to_device(xp, hx.concat([hx.ones(nlock), s_a]), dtype, like)
        r1 = _col_norms(xp, Y @ Fv - U * s_res)
        r2 = _col_norms(xp, Z - V * s_res)
        res = hx.concat([hx.asarray(locked_res, dtype="float64"),
                         hx.maximum(r1, r2)[nlock:]]) if nlock else hx.maximum(r1, r2)
        smax = max(smax, float(s[0]) if s.size else 0.0)
        threshold = tol * smax
        # Vᴴ (Aᴴ U) on the active block is the adjoint of Uᴴ (A V) = diag(σ)
        # up to rounding (RMS entry at most 6.9 eps σ_max, measured over 104
        # runs, tall and wide, real and complex, float32 and float64); its
        # departure measures the products' error, with entries about
        # δ ||A|| sqrt(1/m + 1/n) (see _NOISE_WINDOW).  Costs one product
        # of (p, n) and (n, p) blocks and one host synchronisation more per
        # iteration.
        D = ns.to_host_numpy(_adjoint(xp, V, cplx) @ Z).astype(host_dtype)[nlock:, nlock:]
        q = p - nlock
        asym = _rms(D - hx.diag(s_a), q * q) / smax if smax else math.nan
        noise.append(asym)
        errors.append(asym / math.sqrt(1.0 / m + 1.0 / n))
        floor = _product_error(noise, errors, ns.eps(xp, dtype),
                               _SVD_INCONSISTENCY_EPS) * smax
        largest.append(float(hx.max(res[:k])))

        n_iter += 1
        history["ritz_values"].append(s[:k] * scale())
        history["residual_estimates"].append(res[:k] * scale())
        history["n_matvec"].append(op.n_matvec + op.n_rmatvec - count0)
        history["product_error"].append(floor / smax if floor > 0.0 else math.nan)
        # Residuals at the products' error: none will go lower.
        at_floor = _at_floor(largest, floor)
        if bool(hx.all(res[:k] <= threshold)) or n_iter >= maxiter or at_floor:
            break

        while nlock < k and res[nlock] <= threshold:
            locked_s.append(float(s[nlock]))
            locked_res.append(float(res[nlock]))
            nlock += 1
        # Z = [V_locked, Aᴴ U_active]; the next V is its active part orthonormalised.
        V = _settle(xp, _orth(xp, Z, V, nlock, like))

    order = hx.argsort(-s[:k], stable=True)
    idx = _to_device(xp, order, xp.int64, like)
    Uk, Vk = xp.take(U, idx, axis=1), xp.take(V, idx, axis=1)
    s_out = _to_device(xp, s[:k][order] * scale(), real_dtype, like)
    info = ConvergenceInfo(res[:k][order] <= threshold, res[:k][order] * scale(), n_iter,
                           op.n_matvec + op.n_rmatvec - count0,
                           {key: hx.asarray(v_) for key, v_ in history.items()})
    return SVDResult(_settle(xp, Uk), s_out, _settle(xp, _adjoint(xp, Vk, cplx)), info=info)


# ---------------------------------------------------------------------------
# spectral norm with a persistent state


def _normalize(xp: Any, x: Any, fallback: Any = None) -> Any:
    """``x / ||x||``, and ``fallback`` (or the zero vector) for a zero ``x``.

    No host synchronisation: the choice is an elementwise ``where``.  ``x``
    is divided by its largest magnitude first, so that the squares the norm
    sums neither overflow nor underflow, whatever the scale of ``A``.  An
    empty ``x`` (an ``A`` with no rows or columns) is returned as it is.
    """
    if x.shape[0] == 0:
        return x
    if fallback is not None:
        # Replaced before the division, not after: a where over the divided
        # zero vector would still send NaN through JAX's gradient of the norm.
        x = xp.where(xp.max(xp.abs(x)) == 0, fallback, x)
    for nrm in (xp.max(xp.abs(x)), None):
        nrm = xp.linalg.vector_norm(x) if nrm is None else nrm
        nrm = nrm + xp.astype(nrm == 0, nrm.dtype)
        x = x / xp.astype(nrm, x.dtype) if x.dtype != nrm.dtype else x / nrm
    return x


# Golden angle (radians): ``cos(i * _GOLDEN_ANGLE + 1/2)`` never repeats and
# is orthogonal to no structured vector (constants, alternating signs,
# unit vectors), unlike the all-ones vector.
_GOLDEN_ANGLE = 2.399963229728653


def _restart_vector(xp: Any, n: int, dtype: Any, like: Any) -> Any:
    """A fixed unit vector of length ``n``, built on ``like``'s device.

    Where a power iteration meets a zero vector (a zero ``A``, or a start in
    its null space), it goes on from this one instead, so that a state left
    by a zero matrix recovers once the matrix is not zero.
    """
    i = xp.arange(n, device=ns.device(like))
    f = xp.cos(xp.astype(i, ns.real_dtype(xp, dtype)) * _GOLDEN_ANGLE + 0.5)
    f = f / xp.linalg.vector_norm(f)
    return xp.astype(f, dtype)


def spectral_norm(A: Any, *, n_iter: int = 1, state: SpectralNormState | None = None,
                  rng: Any = None) -> tuple[Any, SpectralNormState]:
    """Largest singular value of ``A`` by power iteration with a persistent state.

    Power iteration on ``AᴴA`` through the products ``A v`` and ``Aᴴ u``
    (``AᴴA`` is never formed), exactly as
    ``torch.nn.utils.parametrizations.spectral_norm``: each iteration sets
    ``u = normalize(A v)`` and ``v = normalize(Aᴴ u)``, and the estimate is
    ``σ = uᴴ A v``.  Handing back the ``state`` of the previous call lets a
    training loop pay one iteration per step while the weights drift:
    ``sigma, state = spectral_norm(W, state=state)``.

    Parameters
    ----------
    A : array or operator, shape (m, n)
        A dense array of any namespace, or an operator with ``matvec`` and
        ``rmatvec`` (``rmatmat``) that :func:`eigarray.aslinearoperator`
        accepts.
    n_iter : int, default=1
        Power iterations in this call, ``>= 0``; 0 only re-evaluates ``σ``
        from ``state`` as it is (``u`` and ``v`` of unit norm, as this
        function returns them: ``uᴴ A v`` of other vectors is no estimate).
        On a first call (``state=None``) ask for more, e.g. 15 as torch
        does when it builds its parametrization.
    state : SpectralNormState, optional
        ``(u, v)`` returned by the previous call.  Default: ``v`` random
        (from ``rng``), unit norm.
    rng : None, int or numpy.random.Generator, optional
        Source of the random starting ``v`` (only when ``state`` is None).

    Returns
    -------
    sigma : array, shape ()
        The estimate ``uᴴ A v`` (real part), a 0-d array of the real working
        dtype in the caller's namespace (a NumPy scalar for NumPy input).
        It is below the largest singular value and approaches it as
        iterations accumulate.
    state : SpectralNormState
        The updated ``(u, v)``, to pass to the next call.

    Raises
    ------
    ValueError
        For an ``A`` that is not 2-D, a negative ``n_iter``, ``n_iter=0``
        without a ``state``, or a ``state`` whose vectors do not match ``A``.
    TypeError
        For an operator without an adjoint product.

    See Also
    --------
    torch.nn.utils.parametrizations.spectral_norm : The peer this mirrors.
    numpy.linalg.norm : ``norm(A, 2)`` computes the same value by a full SVD.
    subspace_iteration : Several leading eigenpairs.

    Notes
    -----
    Differentiability: like torch's, the iteration runs on the detached
    values (torch tensors are detached with ``.detach()``) and ``u``,
    ``v`` are constants, while ``σ = uᴴ A v`` is computed from ``A`` itself,
    so ``σ`` is differentiable with respect to ``A`` with gradient ``u vᴴ``
    (the gradient of the largest singular value).  On JAX, which has no
    detach without importing it, gradients also flow through the iteration.
    NaN in ``A`` is not checked (no host synchronisation); it gives a NaN
    ``σ``.  A zero ``A`` gives ``σ = 0``, as ``numpy.linalg.norm(A, 2)``
    does, and a state of fixed unit vectors from which the next call
    iterates (a zero vector, here or in a ``state`` handed in, is replaced
    by them, so that a layer initialised to zero recovers once trained); an
    empty ``A`` (no rows or columns) gives ``σ = 0`` and empty vectors.

    Cost per call: ``n_iter`` products with ``A`` and with ``Aᴴ``, plus one
    with ``A`` for ``σ``; no host synchronisation for dense arrays.

    References
    ----------
    T. Miyato, T. Kataoka, M. Koyama and Y. Yoshida, "Spectral normalization
    for generative adversarial networks", ICLR 2018.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> W = np.diag([3.0, 2.0, 1.0])
    >>> sigma, state = eigarray.spectral_norm(W, n_iter=30, rng=0)
    >>> round(float(sigma), 10)
    3.0
    """
    n_iter = _check_int(n_iter, name="n_iter", low=0)
    # Sparse tensors go through the operator path (their transposes are not
    # strided: ``A.T @ y`` fails on a torch CSR tensor).
    dense = (ns.is_array_api_obj(A) and not hasattr(A, "matvec")
             and "sparse" not in str(getattr(A, "layout", "")))
    if dense:
        xp = ns.array_namespace(A)
        if A.ndim != 2:
            raise ValueError(f"`A` must be a 2-D array or operator; got shape={tuple(A.shape)}.")
        dtype = ns.working_dtype(xp, A.dtype, name="A")
        if A.dtype != dtype:
            A = xp.astype(A, dtype)
        cplx = ns.is_complex(xp, dtype)
        Ad = A.detach() if ns.is_torch_array(A) else A    # the iteration carries no gradient

        def mv(x):
            return Ad @ x

        def rmv(y):
            return xp.conj(Ad).T @ y if cplx else Ad.T @ y

        shape = tuple(A.shape)
        like = A
    else:
        op = _bind(A, state.v if state is not None else None)
        if not op.has_adjoint:
            raise TypeError("`A` must provide the adjoint product (`rmatvec` or `rmatmat`) "
                            "for spectral_norm.")
        xp, dtype, shape, like = op.xp, op.dtype, op.shape, None
        mv, rmv = op.matvec, op.rmatvec
        cplx = ns.is_complex(xp, dtype)
    m, n = shape

    if state is None:
        if n_iter == 0:
            raise ValueError("`n_iter` must be at least 1 when no `state` is given; got n_iter=0.")
        v = _normalize(xp, _random_block(xp, n, 1, dtype, ns.host_rng(rng), like)[:, 0])
        u = None
    else:
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError("`state` must be a SpectralNormState(u, v); "
                            f"got {type(state).__name__}.")
        u, v = state
        if not (ns.is_array_api_obj(u) and ns.is_array_api_obj(v)):
            raise TypeError(f"`state` must hold two arrays (u, v); got "
                            f"({type(u).__name__}, {type(v).__name__}).")
        if tuple(u.shape) != (m,) or tuple(v.shape) != (n,):
            raise ValueError(f"`state` must hold u of shape ({m},) and v of shape ({n},) to "
                             f"match `A`; got {tuple(u.shape)} and {tuple(v.shape)}.")
        if not ns.same_namespace(ns.array_namespace(v), xp):   # as a v0 is, into A's
            u, v = (ns.from_host_numpy(ns.to_host_numpy(x), xp, like=like) for x in (u, v))
        if not cplx and any(xp.isdtype(x.dtype, "complex floating") for x in (u, v)):
            raise TypeError(f"`state` is complex but `A` is real ({dtype}); its imaginary "
                            f"part would be dropped: pass a real state.")
        v = xp.astype(v, dtype) if v.dtype != dtype else v
        u = xp.astype(u, dtype) if u.dtype != dtype else u
    fu = fv = None
    if n_iter and m and n:
        # A zero u or v (a zero A, now or in the call that left the state)
        # restarts from a fixed vector: without this a state left by a zero
        # A stays zero, and sigma 0, whatever A becomes.
        fu, fv = _restart_vector(xp, m, dtype, v), _restart_vector(xp, n, dtype, v)
        v = _normalize(xp, v, fv)
    for _ in range(n_iter):
        u = _normalize(xp, mv(v), fu)
        v = _normalize(xp, rmv(u), fv)
    if u is not None:
        u, v = _settle(xp, u), _settle(xp, v)   # Dask: the state is data, not a graph
    Av = A @ v if dense else mv(v)
    sigma = xp.sum(xp.conj(u) * Av) if cplx else xp.sum(u * Av)
    sigma = xp.real(sigma) if cplx else sigma
    return sigma, SpectralNormState(u, v)
