"""Spectral tools for deep learning: Hessian eigenpairs and spectral densities.

Algorithms: :func:`hessian_eigsh` runs the block thick-restart Lanczos
solver of :mod:`eigarray._lanczos` (or, with ``method='power'``, subspace
iteration) on an operator built from a Hessian-vector-product callable.
:func:`spectral_density` is stochastic Lanczos quadrature (Ubaru, Chen & Saad
2017): from each Rademacher probe ``z``, ``m`` steps of Lanczos with full
reorthogonalisation (classical Gram-Schmidt, repeated under the DGKS
criterion) build a tridiagonal ``T_m`` whose eigenvalues ``θ_i`` and squared
first eigenvector components ``τ_i²`` are the nodes and weights of the Gauss
quadrature rule of the measure ``zᵀ δ(A - t) z / n``; averaged over probes
they estimate the spectral density of ``A``.

Storage: the Lanczos basis of one probe is the rows of an ``(m, n)`` array in
the namespace of the iteration and on its device; the tridiagonal matrices,
the quadrature nodes and weights and the smoothed density are host NumPy.
The namespace of the iteration is the caller's, except for torch and JAX on
the CPU: there the iteration runs on NumPy arrays (a Lanczos step is a few
small vector operations, where those frameworks' per-call dispatch and, for
JAX, compilation per shape cost far more than the arithmetic), the product
callable still receives and returns the caller's arrays (torch: zero-copy
views; JAX: one copy each way), and the results go back to the caller's
namespace at the end.

Host synchronisation: one per Gram-Schmidt pass of each Lanczos step (the
projection coefficients and the norm), and per probe one transfer of the
probe vector to the device.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

from . import _namespace as ns
from . import _validate as val
from ._lanczos import _product_error_note, lanczos
from ._linalg import _host_dtype, project_out, row_norms, set_rows
from ._operator import LinearOperator, _dtype_in, aslinearoperator
from ._power import subspace_iteration
from ._result import EighResult, NoConvergence, report_nonconvergence

__all__ = ["SpectralDensity", "hessian_eigsh", "spectral_density"]

_METHODS = ("lanczos", "power")
_WHICH = ("LA", "SA", "LM", "BE")
_KINDS = ("gaussian", "lorentzian")

# Default smoothing width of spectral_density, as a fraction of the spread of
# the quadrature nodes, and default number of grid points.
_SIGMA_FRACTION = 0.01
# Nodes that spread over fewer than this many float64 eps of their magnitude
# coincide to rounding (a matrix Q (2.5 I) Qᵀ formed in floating point: a
# spread of 8.9e-16): 1% of such a spread is below the resolution of the
# grid, which then held 3 distinct points of 1001, and the density
# integrated to 14 instead of 1.
_ROUNDING_SPREAD_EPS = 1000.0
_GRID_POINTS = 1001
# The default grid reaches this many widths past the extreme nodes.
_GRID_MARGIN = 6.0
# A Lanczos step whose new coupling beta is below this many times
# n^(1/4) eps ||A|| has found an invariant subspace to rounding (a cluster of
# eigenvalues a few eps ||A|| wide counts as one).  What rounding leaves
# there grows slowly with n (38 eps ||A|| at n = 90, 66 at n = 1000, dense);
# a factor sqrt(n) took a float32 bulk 1,700 eps ||A|| wide beside an
# outlier for one cluster (n = 10,000: 3 steps).  Stopping changes no moment
# of degree < 2 j of the rule and the higher ones by O(beta²); going on past
# a breakdown adds nodes of weight O(beta²).
_BREAKDOWN = 30.0


# --------------------------------------------------------------------------
# Adapting a product callable
# --------------------------------------------------------------------------

def _resolve_namespace(xp: Any, v0: Any) -> Any:
    """The (array-api-compat) namespace of the iteration: ``v0``'s, else ``xp``, else NumPy."""
    if v0 is not None and ns.is_array_api_obj(v0):
        return ns.array_namespace(v0)
    if xp is None:
        return ns.numpy_namespace()
    asarray = getattr(xp, "asarray", None)
    if not callable(asarray):
        raise TypeError("`xp` must be an array namespace (a module such as numpy, torch, "
                        f"jax.numpy or array_api_strict); got {xp!r}.")
    return ns.array_namespace(asarray(0.0))


def _resolve_dtype(xp: Any, dtype: Any, v0: Any) -> Any:
    """``dtype``, else ``v0``'s, else the namespace's default real floating dtype."""
    if dtype is None:
        if v0 is not None and ns.is_array_api_obj(v0):
            dtype = v0.dtype
        else:
            dtype = xp.asarray(0.0).dtype
        name = "v0" if v0 is not None else "dtype"
    else:
        try:
            dtype = _dtype_in(xp, dtype, name="dtype")
        except TypeError as exc:
            raise TypeError(f"`dtype` must be a floating dtype; got dtype={dtype!r} "
                            f"({exc}).") from None
        name = "dtype"
    out = ns.working_dtype(xp, dtype, name=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # JAX warns as it truncates
        made = xp.zeros(1, dtype=out).dtype
    if made != out:
        out = getattr(out, "__name__", out)
        raise TypeError(f"`{name}` is {out}, which the namespace {xp.__name__} makes as "
                        f"{made} (JAX: enable 64-bit types with "
                        f"jax.config.update('jax_enable_x64', True)); pass dtype={made}.")
    return out


def _placement(xp: Any, dtype: Any, v0: Any, device: Any) -> Any:
    """A small array of ``xp`` on the device of the iteration (``v0``, else ``device``)."""
    if device is None and v0 is not None and ns.is_array_api_obj(v0):
        return v0
    try:
        return xp.zeros((1,), dtype=dtype, device=device)
    except Exception as exc:   # the namespace decides what a device is
        raise ValueError(f"`device` must be a device of {xp.__name__}; got "
                         f"device={device!r} ({exc}).") from None


def _iterates_on_host(xp: Any, like: Any) -> bool:
    """Whether the iteration runs on NumPy views for a CPU torch or JAX caller.

    A Lanczos step is a handful of small vector operations, for which the
    per-call dispatch (and, for JAX, compilation per shape) of those
    frameworks costs far more than the arithmetic; their CPU arrays convert
    to and from NumPy without copying (torch) or with one copy (JAX).
    """
    if ns.is_torch_namespace(xp):
        return like.device.type == "cpu"
    if ns.is_jax_namespace(xp):
        return getattr(ns.device(like), "platform", None) == "cpu"
    return False


def _user_stacklevel() -> int:
    """The ``stacklevel`` at which a warning names the first frame outside eigarray.

    For a warning raised from inside a product, several solver frames deep
    (the depth depends on the solver); the caller's frame is what the user
    can act on.
    """
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _check_product_dtype(out: Any, xp: Any, dtype: Any, *, name: str) -> None:
    """Refuse a complex product in a real solve; warn about a less precise product.

    ``out`` is the first product, in the namespace ``fn`` answered in;
    ``dtype`` is the working dtype, of ``xp``.  Both cases would otherwise
    pass through the cast to the working dtype: a complex product loses its
    imaginary part (the spectrum of ``Re(A)`` comes back, flagged
    converged), and a float32 product in a float64 solve carries rounding
    noise that a float64 tolerance takes hundreds of restarts to see
    through, when it does at all.
    """
    oxp = ns.array_namespace(out)
    if not oxp.isdtype(out.dtype, ("real floating", "complex floating")):
        return                                      # integers and booleans are exact
    got, want = (ns.dtype_name(t) or str(t) for t in (out.dtype, dtype))
    if ns.is_complex(oxp, out.dtype) and not ns.is_complex(xp, dtype):
        cplx = "complex64" if want == "float32" else "complex128"
        raise TypeError(f"`{name}` returned a complex array ({got}) in a real solve "
                        f"(dtype={want}), whose imaginary part would be dropped; for a "
                        f"complex Hermitian operator pass a complex `dtype` "
                        f"(dtype={cplx}).")
    bits = oxp.finfo(ns.real_dtype(oxp, out.dtype)).bits
    if bits < xp.finfo(ns.real_dtype(xp, dtype)).bits:
        # half precision products: no solve runs below float32 (working_dtype)
        lower = "complex64" if ns.is_complex(xp, dtype) else "float32"
        advice = (f"compute the products in {want}" if want == lower else
                  f"pass dtype={lower} to solve in the precision of the products")
        warnings.warn(f"`{name}` returned a {got} array in a {want} solve: the products "
                      f"are accurate to {got} only, and a tolerance of {want} can cost "
                      f"hundreds of extra products or not be met; {advice}.",
                      RuntimeWarning, stacklevel=_user_stacklevel())


def _product_operator(fn: Any, n: int, dtype: Any, xp: Any, like: Any, *,
                      name: str) -> tuple[LinearOperator, Any]:
    """``fn`` (a vector product ``v -> A v``) as a bound, checked :class:`LinearOperator`.

    ``fn`` always receives vectors of ``xp`` of ``dtype`` on the device of
    ``like``.  Its products are checked for type, shape and finiteness
    (naming ``name``), the first one also for its dtype (a complex product
    in a real solve raises, a less precise one warns: see
    :func:`_check_product_dtype`), detached from an autograd graph (torch),
    moved into the namespace of the iteration when ``fn`` answers in another
    one (through the host), and cast to the working dtype.  For CPU torch
    and JAX callers the operator iterates on NumPy (see
    :func:`_iterates_on_host`); the second value is then ``(xp, like)``,
    where the results go back to (else None).
    """
    if not callable(fn):
        raise TypeError(f"`{name}` must be a callable v -> {'H v' if name == 'hvp' else 'A v'}; "
                        f"got {type(fn).__name__}.")
    hosted = _iterates_on_host(xp, like)
    if hosted:
        it_xp = ns.numpy_namespace()
        it_dtype = getattr(it_xp, _host_dtype(dtype))
    else:
        it_xp, it_dtype = xp, dtype

    first = True

    def product(v: Any) -> Any:
        nonlocal first
        out = fn(ns.from_host_numpy(v, xp, like=like) if hosted else v)
        if not ns.is_array_api_obj(out):
            hint = (" (torch.autograd.functional.hvp returns a tuple, jax.jvp and "
                    "torch.func.jvp a pair: take its second element)"
                    if isinstance(out, tuple) else "")
            raise TypeError(f"`{name}` must return an array of shape ({n},); got "
                            f"{type(out).__name__}{hint}.")
        if tuple(out.shape) != (n,):
            raise ValueError(f"`{name}` must return an array of shape ({n},) for a vector of "
                             f"shape ({n},); got an array of shape {tuple(out.shape)}.")
        if first:                                   # the first product's dtype decides
            _check_product_dtype(out, it_xp, it_dtype, name=name)
            first = False
        if ns.is_torch_array(out) and out.requires_grad:
            out = out.detach()
        if hosted:
            out = ns.to_host_numpy(out)
        elif not ns.same_namespace(ns.array_namespace(out), it_xp):
            out = ns.from_host_numpy(ns.to_host_numpy(out), it_xp, like=v)
        if out.dtype != it_dtype:
            out = it_xp.astype(out, it_dtype)
        if not bool(it_xp.all(it_xp.isfinite(out))):
            raise ValueError(f"`{name}` returned NaN or Inf for a finite vector (a diverged "
                             f"model, or an overflow in the product).")
        return out

    op = aslinearoperator(product, shape=(n, n), dtype=it_dtype, xp=it_xp, name=name)
    op.device = None if hosted else ns.device(like)
    return op, ((xp, like) if hosted else None)


def _to_caller(result: EighResult, caller: Any) -> EighResult:
    """``result`` with its arrays moved back to the caller's namespace (see above)."""
    if caller is None:
        return result
    xp, like = caller
    w, V = (ns.from_host_numpy(a, xp, like=like) for a in result)
    return EighResult(w, V, info=result.info)


# --------------------------------------------------------------------------
# hessian_eigsh
# --------------------------------------------------------------------------

def default_tol(xp: Any, dtype: Any) -> float:
    """Default relative tolerance of :func:`hessian_eigsh`: ``sqrt(eps)`` of ``dtype``."""
    return math.sqrt(ns.eps(xp, dtype))


def default_hessian_ncv(k: int, n: int) -> int:
    """Default basis size of :func:`hessian_eigsh`: ``min(n, max(3 k, k + 30))``."""
    return min(n, max(3 * k, k + 30))


def hessian_eigsh(hvp: Callable, n: int, k: int = 6, *, which: str = "LA", v0: Any = None,
                  method: str = "lanczos", tol: float | None = None,
                  maxiter: int | None = None, ncv: int | None = None, rng: Any = None,
                  dtype: Any = None, xp: Any = None, device: Any = None,
                  callback: Callable | None = None,
                  on_nonconvergence: str = "warn") -> EighResult:
    """Top (or bottom) eigenpairs of a Hessian seen only through Hessian-vector products.

    The Hessian ``H`` of a loss with respect to ``n`` (flattened) parameters
    is never formed: ``hvp(v)`` returns ``H v`` for a vector ``v`` of length
    ``n`` in the caller's namespace (torch, JAX, NumPy, ...), typically by
    forward-over-reverse automatic differentiation.  ``method='lanczos'``
    (the default) runs block thick-restart Lanczos with full
    reorthogonalisation (:func:`eigarray.lanczos`); ``method='power'`` runs
    subspace iteration, which needs more products but only ``O(k n)``
    memory.

    Parameters
    ----------
    hvp : callable
        ``v -> H v`` for ``v`` of shape ``(n,)``; returns an array of shape
        ``(n,)``, in the namespace of ``v`` (an array of another namespace is
        moved through the host, a torch tensor that requires grad is
        detached).  ``H`` must be symmetric; ``hvp`` must not modify ``v``
        (for CPU torch it may share memory with the Lanczos basis).
    n : int
        Number of parameters (order of ``H``).
    k : int, default=6
        Number of eigenpairs, ``0 < k < n``.
    which : {'LA', 'SA', 'LM', 'BE'}, default='LA'
        Largest algebraic (the sharpest directions), smallest algebraic (the
        most negative curvature), largest magnitude, or both ends.
    v0 : array, shape (n,), optional
        Starting vector; its namespace, device and dtype are those of the
        iteration unless ``dtype`` says otherwise (default: random, drawn
        from ``rng``).
    method : {'lanczos', 'power'}, default='lanczos'
        Thick-restart Lanczos or subspace (block power) iteration.
    tol : float, optional
        Relative accuracy: a pair is converged when ``||H v - λ v|| <= tol
        ||H||`` (``||H||`` estimated from the iteration).  Default:
        ``sqrt(eps)`` of the working dtype (1.5e-8 in float64, 3.5e-4 in
        float32).  The eigenvalue error is then about ``tol² ||H||² / gap``,
        near working precision for well separated eigenvalues, at a
        fraction of the products ``tol=0`` (working precision) needs; float32
        HVPs are too noisy for much smaller tolerances.
    maxiter : int, optional
        Maximum number of restarts (Lanczos) or iterations (power); the
        solver's default when None.
    ncv : int, optional
        Lanczos basis size, ``k < ncv <= n``; default ``min(n, max(3 k, k +
        30))``.  Memory is ``(ncv + 2) n`` numbers of the working dtype.
        Lanczos only.
    rng : None, int or numpy.random.Generator, optional
        Source of the random starting and restart vectors.
    dtype : dtype, optional
        Working dtype of the vectors passed to ``hvp`` (a dtype of the
        namespace, a NumPy dtype or its name).  Default: the dtype of
        ``v0``, else the default floating dtype of the namespace (float64 for
        NumPy, ``torch.get_default_dtype()`` for torch, float32 for JAX
        unless x64 is enabled).  Use the dtype of the model's parameters:
        products less precise than ``dtype`` warn, and complex products need
        a complex ``dtype``.
    xp : array namespace, optional
        Namespace of the vectors (``numpy``, ``torch``, ``jax.numpy``, ...)
        when ``v0`` is not given; default NumPy.
    device : optional
        Device of the vectors when ``v0`` is not given (e.g. ``"cuda"``
        for a torch model on the GPU); default the namespace's default.
    callback : callable, optional
        Called after each restart (iteration) with the solver's state;
        returning ``True`` stops it (see :func:`eigarray.lanczos`).
    on_nonconvergence : {'warn', 'raise'}, default='warn'
        What to do when some pairs miss the tolerance within ``maxiter``.

    Returns
    -------
    EighResult
        ``(eigenvalues, eigenvectors)``: eigenvalues ascending, shape (k,);
        eigenvectors as columns, shape (n, k); in the namespace and on the
        device of the iteration.  ``result.info.n_matvec`` counts the
        Hessian-vector products, ``result.info.residual_norms`` holds the
        true residual norms ``||H v - λ v||`` (one more block of products).

    Raises
    ------
    TypeError
        When ``hvp`` is not callable, returns something other than an array
        or returns a complex array when ``dtype`` is real, or ``n``, ``k``
        are not integers.
    ValueError
        When ``n < 1``, ``k`` is outside ``0 < k < n``, ``hvp`` returns an
        array of the wrong shape, or ``which``, ``method`` are unknown.
    NoConvergence
        With ``on_nonconvergence='raise'``, when some pairs did not converge.

    Warns
    -----
    ConvergenceWarning
        When some pairs did not converge (they are still returned, flagged).
    RuntimeWarning
        Once per call, when the first product is less precise than the
        working dtype (a float32 model in a float64 solve): the tolerance
        of the working dtype may then cost hundreds of extra products or
        not be met.  ``dtype=float32`` solves at the products' precision.

    See Also
    --------
    eigarray.lanczos : The solver underneath, on any operator.
    spectral_density : The whole spectrum, smoothed, from the same products.

    Notes
    -----
    Cost per Hessian-vector product (Lanczos): the product itself, usually
    two to three times a gradient, plus one or two Gram-Schmidt passes over
    the ``(ncv, n)`` basis.  Host synchronisations: a few per product.
    The iteration starts from a block of two vectors, so a double eigenvalue
    (frequent in Hessians of networks with symmetric units) is found twice;
    when the converged values hold two copies of one value, a cycle from a
    fresh random block looks for more before the iteration stops (see
    :func:`eigarray.eigsh`), so that an eigenvalue with many copies (network
    Hessians have large null spaces) is found as many times as ``k``
    allows.  ``method='power'`` iterates a block of ``max(2 k, k + 8)``
    vectors and finds every copy up to ``k`` as well.

    In torch, write the loss as a function of one flat parameter vector
    (``torch.func.functional_call`` with the parameters unflattened from it)
    and take ``torch.func.jvp(torch.func.grad(loss), (theta,), (v,))[1]``
    (forward over reverse) or ``torch.autograd.functional.hvp(loss, theta,
    v)[1]``; in JAX, ``jax.jvp(jax.grad(f), (x,), (v,))[1]``
    (forward over reverse).  See :doc:`spectral` for complete examples.

    References
    ----------
    K. Wu and H. Simon, "Thick-restart Lanczos method for large symmetric
    eigenvalue problems", SIAM J. Matrix Anal. Appl. 22(2), 602-616, 2000.
    B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural
    Computation 6(1), 147-160, 1994.

    Examples
    --------
    The Hessian of ``f(x) = ½ xᵀ H x`` is ``H``:

    >>> import numpy as np
    >>> from eigarray.spectral import hessian_eigsh
    >>> from eigarray.testing import matrix_with_spectrum
    >>> H, _ = matrix_with_spectrum(np.linspace(-1.0, 10.0, 200), rng=0)
    >>> w, V = hessian_eigsh(lambda v: H @ v, 200, k=3, rng=0)
    >>> np.round(w, 6)
    array([ 9.889447,  9.944724, 10.      ])
    """
    val.check_callable_or_none(callback, name="callback")
    if not callable(hvp):
        raise TypeError(f"`hvp` must be a callable v -> H v; got {type(hvp).__name__}.")
    n = val.check_int(n, name="n", low=1, rule="n >= 1")
    method = val.check_choice(method, _METHODS, name="method")
    which = val.check_choice(which, _WHICH, name="which")
    val.check_choice(on_nonconvergence, ("warn", "raise"), name="on_nonconvergence")
    if v0 is not None:
        if not ns.is_array_api_obj(v0):
            raise TypeError(f"`v0` must be an array of shape ({n},); got {type(v0).__name__}.")
        if tuple(v0.shape) != (n,):
            raise ValueError(f"`v0` must have shape ({n},) to match `n`; got "
                             f"shape={tuple(v0.shape)}.")
    xp = _resolve_namespace(xp, v0)
    dtype = _resolve_dtype(xp, dtype, v0)
    if (v0 is not None and ns.is_complex(ns.array_namespace(v0), v0.dtype)
            and not ns.is_complex(xp, dtype)):
        raise TypeError(f"`v0` is complex but `dtype` is real ({dtype}); pass a real `v0` or "
                        f"a complex `dtype`.")
    like = _placement(xp, dtype, v0, device)
    op, caller = _product_operator(hvp, n, dtype, xp, like, name="hvp")
    tol = default_tol(xp, dtype) if tol is None else val.check_tol(tol, name="tol")
    k = val.check_int(k, name="k", low=1, high=n - 1, rule=f"0 < k < n = {n}")
    if method == "power" and which == "BE":
        raise ValueError("`which='BE'` needs method='lanczos'; subspace iteration serves "
                         "'LA', 'SA' and 'LM'.")
    if method == "power" and ncv is not None:
        raise ValueError(f"`ncv` is the Lanczos basis size: it needs method='lanczos'; got "
                         f"ncv={ncv!r} with method='power'.")
    if v0 is not None and caller is not None:
        v0 = ns.to_host_numpy(v0)                  # the iteration runs on NumPy

    if method == "power":
        result = _power(op, k, which=which, v0=v0, tol=tol, maxiter=maxiter, rng=rng,
                        callback=callback)
    else:
        if ncv is None:
            ncv = default_hessian_ncv(k, n)
        result = _unreported(lanczos, op, k, which=which, ncv=ncv, tol=tol, maxiter=maxiter,
                             v0=v0, rng=rng, callback=callback)
    result = _to_caller(result, caller)
    # The warning names our caller; for Lanczos, also products that stopped it.
    report_nonconvergence(result, on_nonconvergence, detail=_product_error_note(result))
    return result


def _unreported(solver: Callable, op: LinearOperator, k: int, **kwargs: Any) -> EighResult:
    """``solver``'s result, converged or not (non-convergence is reported by the caller)."""
    try:
        return solver(op, k, on_nonconvergence="raise", **kwargs)
    except NoConvergence as exc:
        return exc.result


def _power(op: LinearOperator, k: int, *, which: str, v0: Any, tol: float, maxiter: Any,
           rng: Any, callback: Any) -> EighResult:
    """``method='power'``: :func:`eigarray.subspace_iteration` on the HVP operator."""
    kwargs: dict[str, Any] = {"which": which, "tol": tol, "maxiter": maxiter, "rng": rng,
                              "callback": callback}
    if v0 is not None:
        kwargs["X0"] = v0[:, None]                 # a starting block of one column
    return _unreported(subspace_iteration, op, k, **kwargs)


# --------------------------------------------------------------------------
# spectral_density
# --------------------------------------------------------------------------

class SpectralDensity(NamedTuple):
    """Stochastic Lanczos quadrature of a spectrum (host NumPy values).

    Attributes
    ----------
    nodes : numpy.ndarray, shape (n_probes, n_steps)
        Gauss quadrature nodes (Ritz values) of each probe, ascending; a
        probe whose Lanczos sequence stopped early (an invariant subspace,
        or ``n_steps > n``) has NaN in its unused slots.
    weights : numpy.ndarray, shape (n_probes, n_steps)
        Quadrature weights (squared first components of the eigenvectors of
        the tridiagonal matrix); each row sums to 1, unused slots are 0.
    grid : numpy.ndarray, shape (n_grid,)
        Points where the smoothed density is evaluated.
    density : numpy.ndarray, shape (n_grid,)
        Smoothed spectral density on ``grid``; as a function on the real
        line it integrates to 1.
    """

    nodes: Any
    weights: Any
    grid: Any
    density: Any

    def expectation(self, f: Callable) -> float:
        """Estimate of ``trace(f(A)) / n``: mean over probes of ``Σ_i τ_i² f(θ_i)``.

        ``f`` takes and returns host NumPy arrays (element-wise).
        """
        if not callable(f):
            raise TypeError(f"`f` must be callable, such as numpy.exp; got {type(f).__name__}.")
        hx = ns.numpy_namespace()
        used = hx.isfinite(self.nodes)
        # unused slots (a probe that stopped early) take a node of their own
        # probe, so that f sees only values in the spectrum (log, 1/t, ...)
        theta = hx.where(used, self.nodes, self.nodes[:, :1])
        values = hx.where(used, f(theta), 0.0)
        return float(hx.mean(hx.sum(self.weights * values, axis=1)))

    def moments(self, j: Any) -> Any:
        """Estimates of ``trace(A^j) / n`` (a float, or an array for a sequence of ``j``).

        For each probe the estimate is exactly the Hutchinson estimate
        ``zᵀ A^j z / n`` when ``j < 2 * n_steps`` (Gauss quadrature is exact
        for polynomials of degree up to ``2 m - 1``), so its error is the
        Hutchinson error: with Rademacher probes, standard deviation
        ``sqrt(2 (||A^j||_F² - Σ_i (A^j)_ii²) / n_probes) / n``.
        """
        hx = ns.numpy_namespace()
        if getattr(j, "ndim", None) == 0:
            j = j.item()                             # a 0-d array: its number
        if isinstance(j, (list, tuple)) or getattr(j, "ndim", 0) > 0:
            orders = [val.check_int(i, name="j", low=0, rule="j >= 0")
                      for i in hx.reshape(hx.asarray(j), (-1,)).tolist()]
            return hx.asarray([self.expectation(lambda t, i=i: t ** i) for i in orders],
                              dtype=hx.float64)
        j = val.check_int(j, name="j", low=0, rule="j >= 0")
        return self.expectation(lambda t: t ** j)

    def density_at(self, x: Any, *, sigma: float | None = None,
                   kind: str = "gaussian") -> Any:
        """The smoothed density at the points ``x`` (host), with any width or kernel.

        ``sigma=None`` applies the default rule of :func:`spectral_density`
        (1% of the spread of the nodes).
        """
        hx = ns.numpy_namespace()
        kind = val.check_choice(kind, _KINDS, name="kind")
        x = _host_points(x, name="x")
        sigma = _default_sigma(self.nodes) if sigma is None else _check_sigma(sigma)
        return _smooth(self.nodes, self.weights, x, sigma, kind, hx)


def _check_sigma(sigma: Any) -> float:
    try:
        s = val.check_tol(sigma, name="sigma")
    except ValueError:                               # negative, NaN or infinite
        s = 0.0
    if not s > 0.0:
        raise ValueError(f"`sigma` must be a positive finite number; got sigma={sigma!r}.")
    return s


def _host_points(x: Any, *, name: str) -> Any:
    hx = ns.numpy_namespace()
    arr = ns.to_host_numpy(x) if ns.is_array_api_obj(x) else x
    try:
        arr = hx.asarray(arr)
        if hx.isdtype(arr.dtype, "complex floating"):
            raise TypeError                         # the cast would drop the imaginary part
        arr = hx.asarray(arr, dtype=hx.float64)
    except (TypeError, ValueError):
        of = f" of dtype {x.dtype}" if hasattr(x, "dtype") else ""
        raise TypeError(f"`{name}` must be a 1-D array of real numbers; got "
                        f"{type(x).__name__}{of}.") from None
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array; got shape {tuple(arr.shape)}.")
    if not bool(hx.all(hx.isfinite(arr))):
        raise ValueError(f"`{name}` must not contain NaN or Inf.")
    return arr


def _default_sigma(nodes: Any) -> float:
    """``_SIGMA_FRACTION`` of the spread of the nodes (of their magnitude if they
    coincide, to rounding: see ``_ROUNDING_SPREAD_EPS``)."""
    hx = ns.numpy_namespace()
    finite = nodes[hx.isfinite(nodes)]
    lo, hi = float(hx.min(finite)), float(hx.max(finite))
    scale = hi - lo
    magnitude = max(abs(lo), abs(hi))
    if not scale > _ROUNDING_SPREAD_EPS * float(hx.finfo(hx.float64).eps) * magnitude:
        scale = magnitude
    if not scale > 0.0:
        scale = 1.0
    return _SIGMA_FRACTION * scale


def _smooth(nodes: Any, weights: Any, x: Any, sigma: float, kind: str, hx: Any) -> Any:
    """``mean_p Σ_i w_pi K_σ(x - θ_pi)`` on the host, in chunks of the grid."""
    used = hx.isfinite(nodes)
    theta = nodes[used]
    w = weights[used] / nodes.shape[0]
    out = hx.zeros(x.shape, dtype=hx.float64)
    chunk = max(1, 2**20 // max(1, theta.shape[0]))
    for c0 in range(0, x.shape[0], chunk):
        d = x[c0:c0 + chunk, None] - theta[None, :]
        if kind == "gaussian":
            K = hx.exp(-0.5 * (d / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))
        else:
            K = (sigma / math.pi) / (d * d + sigma * sigma)
        out[c0:c0 + chunk] = K @ w
    return out


def _lanczos_quadrature(op: LinearOperator, q: Any, m: int, *, cplx: bool) -> tuple[Any, Any]:
    """``m`` steps of Lanczos from the unit vector ``q``: nodes and weights of T_m.

    Full reorthogonalisation against every previous basis row (CGS2 under the
    DGKS criterion).  Stops early when a product falls into the span of the
    basis (an invariant subspace: the quadrature is then exact).
    """
    xp = op.xp
    hx = ns.numpy_namespace()
    n = op.shape[0]
    eps = ns.eps(xp, op.dtype)
    B = xp.zeros((m, n), dtype=op.dtype, device=ns.device(q))
    B = set_rows(B, 0, q)
    alpha: list[float] = []
    beta: list[float] = []
    anorm = 0.0
    for j in range(m):
        W = op.matvec(B[j, ...])[None, :]
        before = row_norms(xp, W)
        anorm = max(anorm, float(before[0]))
        W, C, norms = project_out(xp, B, j + 1, W, cplx=cplx, norms_before=before)
        alpha.append(float(C[j, 0].real))
        if j == m - 1:
            break
        b = float(norms[0])
        if not b > _BREAKDOWN * eps * anorm * n ** 0.25:
            break                                   # invariant subspace to rounding
        beta.append(b)
        B = set_rows(B, j + 1, W[0, ...] / b)
    size = len(alpha)
    T = hx.zeros((size, size), dtype=hx.float64)
    idx = hx.arange(size)
    T[idx, idx] = hx.asarray(alpha)
    if size > 1:
        T[idx[:-1], idx[1:]] = hx.asarray(beta)
        T[idx[1:], idx[:-1]] = hx.asarray(beta)
    theta, S = hx.linalg.eigh(T)
    tau2 = S[0, :] ** 2
    return theta, tau2 / hx.sum(tau2)


def rademacher_probes(n_probes: int, n: int, rng: Any) -> Any:
    """The probes of :func:`spectral_density`: rows of ``2 rng.integers(0, 2, (n_probes, n)) - 1``.

    Drawn on the host, in one call, as float64; documented so that a test or
    a user can reproduce them.  ``rng``: None, an int seed or a
    ``numpy.random.Generator``.
    """
    n_probes = val.check_int(n_probes, name="n_probes", low=1)
    n = val.check_int(n, name="n", low=1)
    rng = ns.host_rng(rng)
    hx = ns.numpy_namespace()
    return hx.asarray(2 * rng.integers(0, 2, size=(n_probes, n)) - 1, dtype=hx.float64)


def spectral_density(matvec: Callable, n: int, *, n_probes: int = 10, n_steps: int = 30,
                     rng: Any = None, xp: Any = None, dtype: Any = None, device: Any = None,
                     sigma: float | None = None, grid: Any = None,
                     kind: str = "gaussian") -> SpectralDensity:
    """Spectral density of a symmetric operator by stochastic Lanczos quadrature.

    For each of ``n_probes`` Rademacher vectors ``z`` (entries ±1), ``n_steps``
    Lanczos steps with full reorthogonalisation from ``z / ||z||`` give a
    tridiagonal matrix ``T``; its eigenvalues ``θ_i`` and the squared first
    components ``τ_i²`` of its eigenvectors are the nodes and weights of the
    Gauss quadrature of the measure ``Σ_k (zᵀ u_k)² δ(t - λ_k) / n``, whose
    expectation over ``z`` is the spectral density ``Σ_k δ(t - λ_k) / n``.
    The rules are averaged over the probes and broadened by a Gaussian (or
    Lorentzian) kernel into a smooth density.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` for ``v`` of shape ``(n,)`` (a Hessian-vector product,
        for a Hessian), as ``hvp`` in :func:`hessian_eigsh`; ``A`` must be
        symmetric (Hermitian) and ``matvec`` must not modify ``v``.
    n : int
        Order of ``A``, ``n >= 1``.
    n_probes : int, default=10
        Number of random probes, ``n_probes >= 1``.  The stochastic error of
        every estimate falls like ``1 / sqrt(n_probes)``.
    n_steps : int, default=30
        Lanczos steps per probe, ``n_steps >= 1`` (capped at ``n``).  Costs
        ``n_steps`` products per probe and ``n_steps n`` numbers of memory.
    rng : None, int or numpy.random.Generator, optional
        Source of the probes, drawn on the host as the rows of
        ``2 * rng.integers(0, 2, size=(n_probes, n)) - 1`` (the same numbers
        on every backend).
    xp : array namespace, optional
        Namespace of the vectors passed to ``matvec`` (``numpy``, ``torch``,
        ``jax.numpy``, ...); default NumPy.
    dtype : dtype, optional
        Working dtype of the vectors (default: the namespace's default
        floating dtype; see :func:`hessian_eigsh`).  Products less precise
        than ``dtype`` warn; complex products need a complex ``dtype``.
    device : optional
        Device of the vectors (default: the namespace's default).
    sigma : float, optional
        Width of the broadening kernel (standard deviation of the Gaussian,
        half width of the Lorentzian).  Default: 1% of the spread of the
        nodes (of their magnitude when they coincide to rounding).
    grid : array, shape (n_grid,), optional
        Points where the density is evaluated.  Default: 1001 points from
        6 ``sigma`` below the smallest node to 6 ``sigma`` above the largest.
    kind : {'gaussian', 'lorentzian'}, default='gaussian'
        Broadening kernel.

    Returns
    -------
    SpectralDensity
        ``(nodes, weights, grid, density)``, host NumPy: nodes and weights
        of shape ``(n_probes, n_steps)`` (each row of weights sums to 1;
        unused slots of an early-stopped probe hold NaN nodes and zero
        weights), the grid and the density on it.  ``.moments(j)`` estimates
        ``trace(A^j) / n``, ``.expectation(f)`` estimates ``trace(f(A)) / n``
        and ``.density_at(x, sigma=...)`` re-evaluates the density.

    Raises
    ------
    TypeError
        When ``matvec`` is not callable or returns something other than an
        array or returns a complex array when ``dtype`` is real, ``grid``
        is not real, or ``n``, ``n_probes``, ``n_steps`` are not integers.
    ValueError
        When ``n``, ``n_probes`` or ``n_steps`` is below 1, ``matvec``
        returns an array of the wrong shape, ``sigma`` is not positive,
        ``grid`` is not a finite 1-D array, or ``kind`` is unknown.

    Warns
    -----
    RuntimeWarning
        Once per call, when the first product is less precise than the
        working dtype (as in :func:`hessian_eigsh`).

    See Also
    --------
    hessian_eigsh : A few extreme eigenpairs to working accuracy.

    Notes
    -----
    Cost: ``n_probes * min(n_steps, n)`` products, plus per step one or two
    Gram-Schmidt passes over the basis of the probe (``O(n_steps n)``).
    Host synchronisations: one per Gram-Schmidt pass.  Moments of order
    ``j < 2 n_steps`` of each probe's rule are exact (Gauss quadrature), so
    their error is the Hutchinson estimator's alone; the Gaussian kernel
    moves the second moment of the smoothed density by ``sigma²``.  A
    Lorentzian has heavy tails: a node at distance ``d`` from an end of the
    grid loses ``arctan(sigma / d) / π ≈ sigma / (π d)`` of its weight past
    that end, so a grid of width ``L`` centred on the mass misses about
    ``4 sigma / (π L)`` of it.  On the default grid (``sigma`` 1% of the
    spread of the nodes, a margin of 6 ``sigma``) that is 1.1% for mass at
    the centre, 1.8% for a uniform spectrum and 5.6% for mass at the two
    extreme nodes; ``density_at`` on a wider grid shows the tails.

    References
    ----------
    S. Ubaru, J. Chen and Y. Saad, "Fast estimation of tr(f(A)) via
    stochastic Lanczos quadrature", SIAM J. Matrix Anal. Appl. 38(4),
    1075-1099, 2017.
    B. Ghorbani, S. Krishnan and Y. Xiao, "An investigation into neural net
    optimization via Hessian eigenvalue density", ICML 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from eigarray.spectral import spectral_density
    >>> lam = np.repeat([1.0, 2.0, 4.0], 100)          # three distinct eigenvalues
    >>> A = np.diag(lam)
    >>> sd = spectral_density(lambda v: A @ v, 300, n_probes=4, rng=0)
    >>> np.round(np.nanmax(sd.nodes), 12), int(np.isfinite(sd.nodes[0]).sum())
    (np.float64(4.0), 3)
    >>> bool(abs(np.trapezoid(sd.density, sd.grid) - 1) < 1e-6)
    True
    """
    if not callable(matvec):
        raise TypeError(f"`matvec` must be a callable v -> A v; got {type(matvec).__name__}.")
    n = val.check_int(n, name="n", low=1, rule="n >= 1")
    n_probes = val.check_int(n_probes, name="n_probes", low=1, rule="n_probes >= 1")
    n_steps = val.check_int(n_steps, name="n_steps", low=1, rule="n_steps >= 1")
    kind = val.check_choice(kind, _KINDS, name="kind")
    sigma = None if sigma is None else _check_sigma(sigma)
    grid = None if grid is None else _host_points(grid, name="grid")
    rng = ns.host_rng(rng)
    xp = _resolve_namespace(xp, None)
    dtype = _resolve_dtype(xp, dtype, None)
    like = _placement(xp, dtype, None, device)
    op, caller = _product_operator(matvec, n, dtype, xp, like, name="matvec")
    hx = ns.numpy_namespace()
    like = like if caller is None else None            # where the probes go
    cplx = ns.is_complex(op.xp, op.dtype)

    m = min(n_steps, n)
    Z = rademacher_probes(n_probes, n, rng)
    nodes = hx.full((n_probes, n_steps), hx.nan, dtype=hx.float64)
    weights = hx.zeros((n_probes, n_steps), dtype=hx.float64)
    for p in range(n_probes):
        q = ns.from_host_numpy(Z[p, :] / math.sqrt(n), op.xp, like=like)
        q = op.xp.astype(q, op.dtype) if q.dtype != op.dtype else q
        theta, tau2 = _lanczos_quadrature(op, q, m, cplx=cplx)
        nodes[p, :theta.shape[0]] = theta
        weights[p, :theta.shape[0]] = tau2

    if sigma is None:
        sigma = _default_sigma(nodes)
    if grid is None:
        finite = nodes[hx.isfinite(nodes)]
        lo = float(hx.min(finite)) - _GRID_MARGIN * sigma
        hi = float(hx.max(finite)) + _GRID_MARGIN * sigma
        grid = hx.linspace(lo, hi, _GRID_POINTS, dtype=hx.float64)
    density = _smooth(nodes, weights, grid, sigma, kind, hx)
    return SpectralDensity(nodes, weights, grid, density)
