"""The eigen layer: principal component analysis and truncated SVD as estimators.

Algorithm: :class:`EigenLayer` (alias :class:`PCA`) fits the top principal
components of a data matrix ``X`` (``m`` samples by ``d`` features) by one of

* ``'covariance'``: the scatter matrix ``(X - 1 μᵀ)ᵀ (X - 1 μᵀ)`` is built a
  block of rows at a time (one GEMM per block in the data's dtype, each
  block centred on its own mean) and the blocks are merged exactly by the pairwise update
  of Chan, Golub & LeVeque, in float64 where the namespace has it; the
  ``d x d`` covariance is then eigendecomposed by :func:`eigarray.eigh_batched`
  (a batch of one).  :meth:`EigenLayer.partial_fit` runs the same merge over
  the caller's chunks, so streaming and one-shot fits agree to rounding.
  With fewer samples than features ``fit`` works in sample space: the
  Householder QR ``Xcᵀ = Q R`` of the centred data, then the SVD of the
  ``m x m`` triangle (``O(m² d)`` instead of ``O(d³)``);
* ``'randomized'``: the randomized SVD (Halko, Martinsson & Tropp; by
  default its block Krylov variant) of the centred data, applied implicitly
  through an operator ``V -> X V - 1 (μᵀ V)`` that forms no centred copy
  unless the data's offset exceeds 8 times its spread (``_centring``);
* ``'lanczos'``: thick-restart Lanczos (:func:`eigarray.lanczos`) on the
  covariance operator ``v -> Xᵀ (X v - 1 μᵀ v) / (m - 1)``, matrix-free.

:class:`TruncatedSVD` is the same without centring (latent semantic analysis
on sparse term-document matrices), by the randomized SVD or by
:func:`eigarray.svds`.  Signs follow scikit-learn's ``svd_flip``: the entry of
largest magnitude of each component is positive.

Storage: fitted arrays live in the namespace and on the device of the data
they were fitted on (float32 data keeps float32 attributes; the scatter matrix
of ``partial_fit`` is kept in float64).  ``transform`` of an array of another
namespace or device converts the fitted projection once and caches it, then
applies it with that namespace's own operations, so the map stays
differentiable in torch and traceable by ``jax.jit``.

Host synchronisation: a handful per ``fit`` (the finiteness check of the
input, convergence flags of the eigensolver, and, for ``n_components`` given
as a variance fraction or ``'mle'``, the spectrum); ``transform``
synchronises once for the finiteness check of eager input and never under
``jax.jit`` or autograd tracing.  ``score_samples`` also reads
``noise_variance_`` (and, when it is 0, ``explained_variance_``) on the host.

scikit-learn is never imported by ``import eigarray``: the estimator protocol
(``get_params``, ``set_params``, ``__sklearn_tags__``, ``NotFittedError``) is
implemented here and scikit-learn's classes are imported lazily where needed.
"""

from __future__ import annotations

import inspect
import math
import numbers
import threading
from typing import Any

from . import _dispatch
from . import _namespace as ns
from . import _validate as val
from ._jacobi import eigh_batched
from ._lanczos import default_ncv, lanczos
from ._operator import aslinearoperator
from ._randomized import svd_impl
from ._svds import svds

__all__ = ["EigenLayer", "PCA", "TruncatedSVD"]

_SOLVERS = ("auto", "covariance", "randomized", "lanczos")
_WHITEN = (False, True, "pca", "zca")
# Rows per block when the scatter matrix is accumulated: a shifted copy of
# ``_BLOCK_ELEMENTS`` entries (8 MiB in float32) stays in cache for its
# product, whatever the number of samples.
_BLOCK_ELEMENTS = 1 << 21
# 'auto' forms the covariance up to this many features (sklearn's threshold).
_AUTO_MAX_FEATURES = 1000
# Derived attributes that partial_fit computes on first access.
_DERIVED = ("components_", "explained_variance_", "explained_variance_ratio_",
            "singular_values_", "mean_", "noise_variance_", "n_components_",
            "n_samples_", "n_features_in_")


# Serialises the lazy fit of a stream (see EigenLayer.__getattr__).
_FINALIZE_LOCK = threading.RLock()


class _NotFittedError(ValueError, AttributeError):
    """Stand-in for ``sklearn.exceptions.NotFittedError`` when scikit-learn is absent."""


class _UnfinishedStream(ValueError, AttributeError):
    """The samples streamed in so far give no fit (too few of them for a
    covariance, or for ``n_components``): no fitted attribute.

    Also an AttributeError, so that ``hasattr(layer, "components_")`` is
    False; the stream stays open, and every access raises again.
    """


def _not_fitted(estimator: Any) -> Exception:
    msg = (f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' "
           f"with appropriate arguments before using this estimator.")
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return _NotFittedError(msg)
    return NotFittedError(msg)


# --------------------------------------------------------------------------
# The scikit-learn estimator protocol, without scikit-learn.
# --------------------------------------------------------------------------

class _Estimator:
    """``get_params``/``set_params``/tags/``repr`` in the scikit-learn way."""

    _accepts_sparse = False

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def get_params(self, deep: bool = True) -> dict:
        """Parameters of this estimator (scikit-learn protocol)."""
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params: Any) -> _Estimator:
        """Set parameters (scikit-learn protocol; validated at ``fit``, not here)."""
        valid = self.get_params(deep=True)
        nested: dict[str, dict] = {}
        for key, value in params.items():
            key, sep, sub = key.partition("__")
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {self!r}. "
                                 f"Valid parameters are: {self._get_param_names()!r}.")
            if sep:
                nested.setdefault(key, {})[sub] = value
            else:
                setattr(self, key, value)
                valid[key] = value
        for key, sub_params in nested.items():
            valid[key].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for key in self._get_param_names():
            default = sig.parameters[key].default
            value = getattr(self, key, None)
            if value is not default and not (type(value) is type(default) and value == default):
                parts.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
                    input_tags=InputTags(sparse=self._accepts_sparse))

    def _more_tags(self) -> dict:
        # scikit-learn < 1.6
        return {"preserves_dtype": ["float64", "float32"],
                "X_types": ["2darray", "sparse"] if self._accepts_sparse else ["2darray"]}

    def __sklearn_is_fitted__(self) -> bool:
        return "n_features_in_" in self.__dict__ or "_scatter" in self.__dict__

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if "_converted" in state:
            state["_converted"] = {}
        return state

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """``fit(X).transform(X)``."""
        return self.fit(X, y, **fit_params).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        """Names of the output columns: the class name in lower case and an index.

        As scikit-learn names the outputs of its projections (``pca0``,
        ``pca1``, ...).  ``input_features``, if given, must have
        ``n_features_in_`` entries, equal to ``feature_names_in_`` when the
        estimator was fitted on a data frame; the output names do not
        depend on it.
        """
        self._check_fitted()
        n_in = self.n_features_in_
        if input_features is not None:
            if len(input_features) != n_in:
                raise ValueError(f"input_features should have length equal to number of "
                                 f"features ({n_in}), got {len(input_features)}")
            fitted = self.__dict__.get("feature_names_in_")
            if fitted is not None and list(input_features) != list(fitted):
                raise ValueError("input_features is not equal to feature_names_in_")
        prefix = type(self).__name__.lower()
        names = [f"{prefix}{i}" for i in range(self._n_outputs())]
        return ns.numpy_namespace().asarray(names, dtype=object)

    def set_output(self, *, transform: str | None = None) -> _Estimator:
        """Output container of ``transform`` and ``fit_transform`` (scikit-learn's API).

        ``'pandas'`` wraps NumPy results in a data frame whose columns are
        :meth:`get_feature_names_out` (and whose index is the input's, for a
        pandas input); ``'default'`` returns arrays; None leaves the setting
        unchanged.  Results of other namespaces (torch, JAX, ...) are
        returned as they are.
        """
        if transform is None:
            return self
        val.check_choice(transform, ("default", "pandas"), name="transform")
        if transform == "pandas":
            import importlib.util

            if importlib.util.find_spec("pandas") is None:
                raise ImportError("set_output(transform='pandas') needs pandas installed.")
        # scikit-learn's attribute: ``clone`` carries it over.
        self._sklearn_output_config = {"transform": transform}
        return self

    def _wrap_output(self, out: Any, X: Any) -> Any:
        """``out`` in the container :meth:`set_output` (or scikit-learn's config) asks for."""
        import sys

        config = self.__dict__.get("_sklearn_output_config", {}).get("transform")
        if config is None:
            # (getattr: another thread may be importing scikit-learn right now)
            get_config = getattr(sys.modules.get("sklearn"), "get_config", None)
            config = get_config().get("transform_output", "default") if get_config \
                else "default"
        if config != "pandas" or type(out).__module__ != "numpy":
            return out
        import pandas as pd

        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(out, columns=list(self.get_feature_names_out()), index=index)

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise _not_fitted(self)

    # -- input validation ---------------------------------------------------

    def _check_X(self, X: Any, *, name: str = "X", reset: bool, sparse_ok: bool = False,
                 min_samples: int = 1, check_finite: bool = True) -> tuple[Any, Any]:
        """Validate ``X``; returns ``(X, xp)`` with ``X`` in its working dtype.

        ``check_finite=False`` leaves the NaN/Inf test to the caller
        (:func:`_check_finite`), which may fold it into its own pass.
        """
        self._check_feature_names(_feature_names(X), reset=reset)
        if _is_sparse(X):
            if not sparse_ok:
                raise TypeError(
                    f"A sparse matrix was passed as `{name}` but {type(self).__name__} needs "
                    f"dense data (centring makes it dense): use TruncatedSVD for sparse "
                    f"input, or convert with `{name}.toarray()`.")
            return self._check_sparse(X, name=name, reset=reset)
        if ns.is_torch_sparse(X):
            raise TypeError(f"`{name}` is a sparse torch tensor ({X.layout}); "
                            f"{type(self).__name__} takes dense arrays"
                            + (" or scipy sparse matrices" if sparse_ok else "")
                            + f": convert it with `{name}.to_dense()`"
                            + (" or to scipy.sparse" if sparse_ok else "") + ".")
        if not ns.is_array_api_obj(X) or (ns.is_numpy_array(X) and X.dtype.kind in "OUSV"):
            X = _host_array(X, name=name)
        xp = ns.array_namespace(X)
        if X.ndim != 2:
            raise ValueError(
                f"`{name}` must be a 2-D array of shape (n_samples, n_features); got an array "
                f"of shape {tuple(X.shape)}. Reshape your data with X.reshape(-1, 1) for a "
                f"single feature or X.reshape(1, -1) for a single sample.")
        if xp.isdtype(X.dtype, "complex floating"):
            raise ValueError(f"Complex data not supported: `{name}` has dtype {X.dtype}; "
                             f"{type(self).__name__} works on real data.")
        dtype = ns.working_dtype(xp, X.dtype, name=name)
        m, d = int(X.shape[0]), int(X.shape[1])
        if m < min_samples:
            raise ValueError(f"Found array with {m} sample(s) (shape={tuple(X.shape)}) while a "
                             f"minimum of {min_samples} is required by "
                             f"{type(self).__name__}; `{name}` needs n_samples >= "
                             f"{min_samples}.")
        if d < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a "
                             f"minimum of 1 is required by {type(self).__name__}.")
        self._check_n_features(d, reset=reset)
        if ns.is_torch_array(X) and X.requires_grad and reset:
            X = X.detach()
        if dtype != X.dtype:
            X = xp.astype(X, dtype)
        if check_finite:
            # the sum is finite for finite data short of overflow: one pass, no temporary
            _check_finite(xp, X, xp.sum(X), name=name)
        return X, xp

    def _check_sparse(self, X: Any, *, name: str, reset: bool) -> tuple[Any, Any]:
        hx = ns.numpy_namespace()
        if X.ndim != 2:
            raise ValueError(f"`{name}` must be 2-D; got shape {X.shape}.")
        if hx.isdtype(X.dtype, "complex floating"):
            raise ValueError(f"Complex data not supported: `{name}` has dtype {X.dtype}.")
        m, d = X.shape
        if m < 1:
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                             f"of 1 is required by {type(self).__name__}.")
        if d < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                             f"of 1 is required by {type(self).__name__}.")
        self._check_n_features(d, reset=reset)
        X = X.tocsr()
        dtype = ns.working_dtype(hx, X.dtype, name=name)
        if X.dtype != dtype:
            X = X.astype(dtype)
        if not bool(hx.all(hx.isfinite(X.data))):
            raise ValueError(f"Input contains NaN or infinity: `{name}` must not contain NaN "
                             f"or Inf.")
        return X, hx

    def _check_feature_names(self, names: Any, *, reset: bool) -> None:
        """Record (``reset``) or check the column names of a data frame, as scikit-learn does."""
        if reset:
            if names is None:
                self.__dict__.pop("feature_names_in_", None)
            else:
                self.feature_names_in_ = names
            return
        fitted = self.__dict__.get("feature_names_in_")
        if fitted is None and names is None:
            return
        import warnings

        cls = type(self).__name__
        if names is None:
            warnings.warn(f"X does not have valid feature names, but {cls} was fitted with "
                          f"feature names", UserWarning, stacklevel=4)
        elif fitted is None:
            warnings.warn(f"X has feature names, but {cls} was fitted without feature names",
                          UserWarning, stacklevel=4)
        elif list(names) != list(fitted):
            # scikit-learn's message, which its checks match
            message = "The feature names should match those that were passed during fit.\n"
            unseen = sorted(set(names) - set(fitted))
            missing = sorted(set(fitted) - set(names))
            for title, group in (("Feature names unseen at fit time:", unseen),
                                 ("Feature names seen at fit time, yet now missing:", missing)):
                if group:
                    message += title + "\n" + "".join(f"- {c}\n" for c in group[:5])
                    message += "- ...\n" if len(group) > 5 else ""
            if not unseen and not missing:
                message += "Feature names must be in the same order as they were in fit.\n"
            raise ValueError(message)

    def _check_n_features(self, d: int, *, reset: bool) -> None:
        if reset:
            return
        expected = self.__dict__.get("n_features_in_", self.__dict__.get("_n_features"))
        if expected is not None and d != expected:
            raise ValueError(f"X has {d} features, but {type(self).__name__} is expecting "
                             f"{expected} features as input.")

    # -- fitted arrays in the caller's namespace ------------------------------

    def _fitted_in(self, xp: Any, like: Any, dtype: Any, names: tuple[str, ...]) -> tuple:
        """The fitted arrays ``names`` in namespace ``xp``, on ``like``'s device, in ``dtype``."""
        arrays = tuple(self.__dict__[n] for n in names)
        fxp = ns.array_namespace(*arrays)
        same_ns = getattr(fxp, "__name__", fxp) == getattr(xp, "__name__", xp)
        dev = None if ns.is_jax_namespace(xp) else ns.device(like)
        if same_ns and (dev is None or ns.device(arrays[0]) == dev) and arrays[0].dtype == dtype:
            return arrays
        cache = self.__dict__.setdefault("_converted", {})
        key = (getattr(xp, "__name__", str(xp)), str(dev), str(dtype), names)
        if key not in cache and _is_traced(like):
            cache = {}                   # converted under a JAX trace: do not keep tracers
        if key not in cache:
            out = []
            for a in arrays:
                if same_ns and (dev is None or ns.device(a) == dev):
                    b = a
                else:
                    host = ns.to_host_numpy(a)
                    b = ns.from_host_numpy(host, xp, like=None if dev is None else like)
                out.append(xp.astype(b, dtype) if b.dtype != dtype else b)
            cache[key] = tuple(out)
        return cache[key]


def _is_sparse(X: Any) -> bool:
    import sys

    mod = sys.modules.get("scipy.sparse")
    return mod is not None and mod.issparse(X)


def _is_traced(X: Any) -> bool:
    """True for a JAX tracer (under ``jit``/``grad``): no host synchronisation allowed."""
    return ns.is_traced(X)


def _feature_names(X: Any) -> Any:
    """The column names of a data frame as a NumPy object array, when all are strings.

    None for arrays, and for frames whose columns are not named by strings
    (as scikit-learn reads them); a frame mixing string and other names is
    refused.
    """
    if type(X).__module__.split(".")[0] not in ("pandas", "polars") or \
            not hasattr(X, "columns"):
        return None
    names = list(X.columns)
    strings = [isinstance(c, str) for c in names]
    if not any(strings):
        return None
    if not all(strings):
        raise TypeError("Feature names are only supported if all input features have string "
                        "names; convert the column names of `X` to strings.")
    return ns.numpy_namespace().asarray(names, dtype=object)


def _host_array(X: Any, *, name: str) -> Any:
    """Lists, pandas frames and other array-likes as a NumPy array."""
    hx = ns.numpy_namespace()
    try:
        A = hx.asarray(X)
    except Exception as exc:
        raise TypeError(f"`{name}` must be an array or array-like of numbers; got "
                        f"{type(X).__name__} ({exc}).") from None
    if A.dtype.kind in "OUSV":
        try:
            A = hx.astype(A, hx.float64)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"`{name}` must hold numbers: {exc}") from None
    return A


def _check_finite(xp: Any, X: Any, summary: Any, *, name: str,
                  overflow: str | None = None) -> None:
    """Raise for NaN or Inf in ``X``, given an array ``summary`` computed from all of it.

    A NaN or Inf anywhere in ``X`` makes a sum over it non-finite; a finite
    ``summary`` (a sum, or the column sums and scatter of a pass the caller
    makes anyway) proves ``X`` finite, and only a non-finite one, which may
    be overflow, costs a scan of ``X``.  When ``X`` is finite and ``overflow``
    names what ``summary`` is, its overflow is an error too.
    """
    if not _is_traced(X) and not bool(xp.all(xp.isfinite(summary))):
        if not bool(xp.all(xp.isfinite(X))):
            raise ValueError(f"Input contains NaN or infinity: `{name}` must not contain NaN "
                             f"or Inf.")
        if overflow is not None:
            raise _overflow_error(xp, X, name=name, what=overflow)


def _moments_overflow(xp: Any, X: Any) -> bool:
    """Whether sums of squares of ``X``'s entries may overflow its dtype."""
    largest = float(xp.max(xp.abs(X)))
    limit = float(xp.finfo(X.dtype).max)
    return largest > 0 and (2 * math.log(largest) + math.log(X.shape[0] * X.shape[1])
                            > math.log(limit))


def _overflow_error(xp: Any, X: Any, *, name: str, what: str) -> ValueError:
    """The error for finite data whose second moments overflow the working precision."""
    largest = float(xp.max(xp.abs(X)))
    return ValueError(f"`{name}` is finite, but {what} overflows {X.dtype} (largest "
                      f"|entry| {largest:.3g}): scale `{name}` down.")


def _check_underflow(xp: Any, X: Any, mean: Any, second: Any, terms: int, *, name: str,
                     what: str) -> None:
    """Raise when the squares of ``X - mean`` underflow the working precision.

    ``second``: sums of ``terms`` of those squares (a scatter matrix, or the
    sum of them all).  A product that underflows is off by up to half the
    smallest subnormal number, ``eps * smallest_normal``, so ``terms`` of them
    stay within ``eps`` of the largest sum as long as it is at least ``terms *
    smallest_normal``.  Below that, an eigendecomposition of the sums is
    noise (data scaled by 1e-170 gave components at right angles to the true
    ones, with no error, where overflow at the other end raises); only then
    is ``X`` scanned, to tell such data from data with no spread at all.
    """
    if _is_traced(X):
        return
    tiny = float(xp.finfo(second.dtype).smallest_normal)
    if not float(xp.max(second)) < terms * tiny:
        return
    largest = float(xp.max(xp.abs(X - mean)))
    if largest > 0.0:
        raise ValueError(f"`{name}` deviates so little from its mean (largest |x - mean| "
                         f"{largest:.3g}) that {what} underflows {second.dtype}: scale "
                         f"`{name}` up.")


def _acc_dtype(xp: Any, dtype: Any) -> Any:
    """float64 for accumulation where the namespace has it (JAX without x64: float32)."""
    if ns.is_jax_namespace(xp) and xp.zeros(()).dtype != xp.float64:
        return dtype                                     # JAX without x64
    return xp.float64


def _block_rows(m: int, d: int) -> int:
    return max(1, min(m, _BLOCK_ELEMENTS // max(d, 1)))


def _scatter(xp: Any, X: Any, acc: Any) -> tuple[int, Any, Any]:
    """``(n, mean, scatter)`` of the rows of ``X``, accumulated over blocks of rows.

    The data are shifted by the mean ``c`` of the first block (close to the
    mean of the whole, so that nothing cancels), a block of rows at a time
    small enough to stay in cache: one pass over ``X``.  Each shifted block
    ``Z`` adds ``Zᴴ Z`` (BLAS ``syrk`` on NumPy, through
    :func:`eigarray._dispatch.gram`) and its column sums, in ``acc``; the
    scatter about the exact mean is ``Σ ZᴴZ - n z̄ z̄ᴴ`` with ``z̄`` the mean of
    the shifted data, a correction of the order of the shift's error.
    Real C-ordered host data (NumPy, and CPU torch and JAX arrays through a
    zero-copy view) take :func:`eigarray._dispatch.shifted_scatter` (the
    shift and the column sums in one Numba pass into a buffer in cache, the
    scatter through BLAS ``syrk``).
    """
    m = int(X.shape[0])
    step = _block_rows(m, int(X.shape[1]))
    host = None if _is_traced(X) else _dispatch.shifted_scatter(X, step)
    if host is not None:                    # host data: one pass, Numba + BLAS
        c, G, s = (xp.astype(ns.from_host_numpy(a, xp, like=X), acc) for a in host)
        zbar = s / m
        return m, c + zbar, G - m * (zbar[:, None] * zbar[None, :])
    c = xp.mean(X[:step, ...], axis=0)
    G, s = None, None
    for i in range(0, m, step):
        Z = X[i:i + step, ...] - c
        Gb = xp.astype(_dispatch.gram(xp, Z), acc)
        sb = xp.astype(xp.sum(Z, axis=0), acc)
        G, s = (Gb, sb) if G is None else (G + Gb, s + sb)
    zbar = s / m
    M = G - m * (zbar[:, None] * zbar[None, :])
    return m, xp.astype(c, acc) + zbar, M


def _merge(na: int, ma: Any, Ma: Any, nb: int, mb: Any, Mb: Any) -> tuple[int, Any, Any]:
    """Chan, Golub & LeVeque's pairwise update of (count, mean, scatter)."""
    if na == 0:
        return nb, mb, Mb
    n = na + nb
    delta = mb - ma
    M = Ma + Mb + (na * nb / n) * (delta[:, None] * delta[None, :])
    return n, ma + (nb / n) * delta, M


def _flip_rows(xp: Any, V: Any) -> Any:
    """scikit-learn's ``svd_flip`` on rows: the entry of largest magnitude is positive."""
    d = V.shape[1]
    idx = xp.argmax(xp.abs(V), axis=1)
    pick = xp.arange(d)[None, :] == idx[:, None]
    lead = xp.sum(xp.where(pick, V, xp.zeros_like(V)), axis=1)
    one = xp.ones_like(lead)
    return V * xp.where(lead < 0, -one, one)[:, None]


def _check_n_components(value: Any, *, m: int, d: int, solver: str, allow_fraction: bool,
                        cls: str) -> Any:
    """The resolved count (int) or fraction (float) from ``n_components``."""
    high = min(m, d)
    if solver == "lanczos" and high < 2:
        raise ValueError(f"solver='lanczos' needs min(n_samples, n_features) >= 2 (a partial "
                         f"eigensolver leaves at least one pair out); got n_samples = {m}, "
                         f"n_features = {d}: use solver='covariance'.")
    if value is None:
        return high if solver != "lanczos" else high - 1
    if isinstance(value, str):                       # 'mle', as _check_params ensured
        if not allow_fraction:
            raise ValueError(
                f"`n_components='mle'` needs the full spectrum: use solver='covariance' (or "
                f"'auto'), not solver={solver!r}.")
        if m < d:
            raise ValueError(
                f"`n_components='mle'` needs n_samples >= n_features (Minka's criterion "
                f"assesses the whole spectrum of the covariance); got n_samples = {m}, "
                f"n_features = {d}.")
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, (numbers.Integral, bool)):
        if not (0.0 < float(value) < 1.0):
            raise ValueError(
                f"`n_components` must be an integer with 1 <= n_components <= min(n_samples, "
                f"n_features) = {high}, a float in (0, 1) (a fraction of explained variance) "
                f"or None; got n_components={value!r}.")
        if not allow_fraction:
            raise ValueError(
                f"`n_components` as a variance fraction needs the full spectrum: use "
                f"solver='covariance' (or 'auto'), not solver={solver!r}; got "
                f"n_components={value!r}.")
        return float(value)
    if solver == "lanczos":
        rule = (f"0 < n_components < min(n_samples, n_features) = {high} for "
                f"solver='lanczos' (n_samples = {m}, n_features = {d})")
        return val.check_int(value, name="n_components", low=1, high=high - 1, rule=rule)
    rule = (f"1 <= n_components <= min(n_samples, n_features) = {high} "
            f"(n_samples = {m}, n_features = {d})")
    return val.check_int(value, name="n_components", low=1, high=high, rule=rule)


def _resolve_n_components(k: Any, all_ev: Any, total: Any, *, limit: int, m: int,
                          eps: float) -> int:
    """The number of components kept, from ``k`` as :func:`_check_n_components` resolved it.

    A count is returned as it is; for a fraction, the fewest components whose
    explained variance exceeds it (scikit-learn's rule), at most ``limit``;
    for ``'mle'``, Minka's choice (:func:`_infer_dimension`) from the whole
    spectrum ``all_ev`` (descending) of ``m`` samples, computed in a dtype
    of machine epsilon ``eps`` (the accumulation's, float64 but for JAX
    without x64: float32 data has float64 scatter, whose small eigenvalues
    are genuine).
    """
    if isinstance(k, str):
        spectrum = ns.to_host_numpy(all_ev)
        d = int(spectrum.shape[0])
        # Eigenvalues of a covariance carry an absolute error of order
        # d eps λ_max: below that they are zero (where scikit-learn takes 1e-15,
        # whatever the units of the data).
        floor = d * eps * float(spectrum[0]) if d else 0.0
        return _infer_dimension(spectrum, m, floor=floor)
    if not isinstance(k, float):
        return k
    hx = ns.numpy_namespace()
    ratio = ns.to_host_numpy(all_ev / total)
    return min(int(hx.searchsorted(hx.cumulative_sum(ratio), k, side="right")) + 1, limit)


def _infer_dimension(spectrum: Any, n_samples: int, *, floor: float) -> int:
    """Minka's maximum-likelihood choice of the number of principal components.

    The rank ``r`` in ``[1, d - 1]`` that maximises the Laplace approximation
    of the evidence of a probabilistic PCA model of rank ``r`` (Minka 2000),
    given the covariance's eigenvalues ``spectrum`` (descending,
    host NumPy) of ``n_samples`` samples: scikit-learn's
    ``_assess_dimension`` and ``_infer_dimension``, with its absolute 1e-15
    replaced by ``floor``, the size below which eigenvalues are
    indistinguishable from zero.  A rank whose ``r``-th eigenvalue is not
    above ``floor`` is not assessed, and the noise variance is at least
    ``floor``.  0 when no rank is assessed (a spectrum of zeros, one
    feature), as scikit-learn.  A rank whose evidence is not finite (exactly
    repeated eigenvalues, where the approximation degenerates) is skipped.

    The sum over pairs of eigenvalues is updated from rank to rank, so
    the whole search costs ``O(d²)`` (scikit-learn's loops ``O(d³)``).
    """
    hx = ns.numpy_namespace()
    lam = hx.astype(hx.asarray(spectrum), hx.float64)
    d = int(lam.shape[0])
    n = float(n_samples)
    log_n = math.log(n)
    best, best_ll = 0, -math.inf
    pu = 0.0
    inner = 0.0             # Σ_{i<j<r} log((λi - λj)(1/λj - 1/λi))
    cross = 0.0             # Σ_{i<r<=j} log(λi - λj)
    # sums of the smallest eigenvalues, from the smallest up: no cancellation
    tails = hx.flip(hx.cumulative_sum(hx.flip(lam)))
    with hx.errstate(divide="ignore", invalid="ignore"):
        log_lam = hx.log(lam)
        for r in range(1, d):
            i = r - 1                                    # the eigenvalue this rank adds
            pu += -math.log(2.0) + math.lgamma((d - i) / 2.0) - math.log(math.pi) * (d - i) / 2
            if not lam[i] > floor:
                break                                    # every later rank is smaller still
            gaps_in = hx.log(lam[:i] - lam[i])           # pairs (j, i), j < i, now both kept
            inner += float(hx.sum(2.0 * gaps_in - log_lam[:i]) - i * log_lam[i])
            cross += float(hx.sum(hx.log(lam[i] - lam[r:])) - hx.sum(gaps_in))
            v = max(floor, float(tails[r]) / (d - r))
            pl = -float(hx.sum(log_lam[:r])) * n / 2.0
            pv = -math.log(v) * n * (d - r) / 2.0
            params = d * r - r * (r + 1) / 2.0
            pp = math.log(2.0 * math.pi) * (params + r) / 2.0
            pairs = r * (d - 1) - r * (r - 1) / 2.0
            pa = inner + cross + (d - r) * float(hx.sum(hx.log(1.0 / v - 1.0 / lam[:r]))) \
                + pairs * log_n
            ll = pu + pl + pv + pp - pa / 2.0 - r * log_n / 2.0
            if math.isfinite(ll) and ll > best_ll:
                best, best_ll = r, ll
    return best


# Products with ``X - 1 μᵀ`` formed as ``X V - 1 (μᵀ V)`` carry rounding
# errors of order eps ||X||, not eps ||X - 1 μᵀ||: where the data's offset
# makes the first more than this many times the second, the data is centred
# explicitly (a copy, as scikit-learn's randomized PCA always makes).
_IMPLICIT_CENTRING_MAX_RATIO = 8.0


def _centring(xp: Any, X: Any, mean: Any, total: Any) -> tuple[Any, Any]:
    """``(Y, c)`` with ``Y - 1 cᵀ`` the centred data, for :class:`_CenteredData`.

    ``(X, mean)`` (nothing copied) unless the offset ``||1 μᵀ||_F`` exceeds
    ``_IMPLICIT_CENTRING_MAX_RATIO`` times the spread ``||X - 1 μᵀ||_F``
    (``total`` is the sum of the per-feature variances); then the centred
    copy and its remaining mean (the rounding of the first centring).
    """
    m = int(X.shape[0])
    if not _is_traced(X):
        spread = float(total) * (m - 1)
        offset = m * float(xp.sum(mean * mean))
        if not math.isfinite(spread) or \
                offset <= (_IMPLICIT_CENTRING_MAX_RATIO ** 2 - 1.0) * spread:
            return X, mean
    Y = X - mean
    return Y, xp.mean(Y, axis=0)


class _CenteredData:
    """``X - 1 μᵀ`` as an operator, never formed: products are ``X V - 1 (μᵀ V)``."""

    def __init__(self, X: Any, mean: Any, xp: Any):
        self.X, self.mean, self.xp = X, mean, xp
        self.shape = tuple(int(s) for s in X.shape)
        self.dtype = X.dtype

    def matmat(self, V: Any) -> Any:
        return self.X @ V - (self.mean @ V)[None, :]

    def matvec(self, v: Any) -> Any:
        return self.X @ v - self.mean @ v

    def rmatmat(self, Y: Any) -> Any:
        return self.X.T @ Y - self.mean[:, None] * self.xp.sum(Y, axis=0)[None, :]

    def rmatvec(self, y: Any) -> Any:
        return self.X.T @ y - self.mean * self.xp.sum(y)


class _CovarianceOperator:
    """``v -> (X - 1 μᵀ)ᵀ (X - 1 μᵀ) v / (m - 1)``, applied matrix-free."""

    def __init__(self, X: Any, mean: Any, xp: Any):
        self.centred = _CenteredData(X, mean, xp)
        d = int(X.shape[1])
        self.shape = (d, d)
        self.dtype = X.dtype
        self.scale = 1.0 / (int(X.shape[0]) - 1)

    def matmat(self, V: Any) -> Any:
        return self.centred.rmatmat(self.centred.matmat(V)) * self.scale

    def matvec(self, v: Any) -> Any:
        return self.centred.rmatvec(self.centred.matvec(v)) * self.scale

    rmatmat = matmat
    rmatvec = matvec


def _resolve_n_iter(n_iter: Any, k: int, m: int, d: int, method: str) -> int:
    if isinstance(n_iter, str) and n_iter == "auto":
        small = k < 0.1 * min(m, d)
        if method == "block_krylov":
            # Krylov blocks converge like a Chebyshev filter of the same degree:
            # 3 blocks match the accuracy of 7 power iterations (measured on
            # the benchmark's spectra) at under half the products.
            return 3 if small else 2
        return 7 if small else 4                         # scikit-learn's rule
    return val.check_int(n_iter, name="n_iter", low=0)


def _randomized(op: Any, k: int, *, n_oversamples: int, n_iter: int, rng: Any,
                method: str = "range_finder") -> tuple:
    """``(U, S, Vh)`` of a bound operator through the randomized SVD (lazy import)."""
    m, n = op.shape
    res = svd_impl(op, k, n_oversamples=n_oversamples, n_iter=n_iter, normalizer="auto",
                   method=method, rng=rng, transpose=m < n)
    return res[0], res[1], res[2]


# --------------------------------------------------------------------------
# EigenLayer / PCA
# --------------------------------------------------------------------------

class EigenLayer(_Estimator):
    """Principal component analysis in any array namespace: the eigen layer.

    Fits a projection onto the top principal components of ``X`` (samples as
    rows) by an eigendecomposition of its covariance, by a randomized SVD of
    the centred data or by Lanczos on the covariance operator, then projects
    (``transform``), reconstructs (``inverse_transform``) and optionally
    whitens, PCA- or ZCA-style.  On NumPy input it is a scikit-learn
    estimator: it has :class:`sklearn.decomposition.PCA`'s fitted
    attributes and methods (``fit``, ``transform``, ``fit_transform``,
    ``inverse_transform``, ``get_covariance``, ``get_precision``,
    ``score_samples``, ``score``, ``get_feature_names_out``,
    ``set_output``), passes scikit-learn's estimator checks and works in a
    ``Pipeline`` and a ``GridSearchCV``.  Its solver parameters have their
    own names (see Notes for the correspondence).  On torch, JAX, CuPy or
    array-api-strict input it fits and transforms in that namespace, on the
    data's device, and the fitted map can be applied inside a differentiable
    or jitted computation.

    Parameters
    ----------
    n_components : int, float, 'mle' or None, default=None
        Components kept: an integer ``1 <= k <= min(n_samples, n_features)``,
        a float in ``(0, 1)`` (keep the fewest components whose explained
        variance ratio sums past it; covariance solver only), ``'mle'``
        (Minka's maximum-likelihood choice, as scikit-learn; covariance
        solver only, ``n_samples >= n_features``; between 1 and
        ``n_features - 1``, or 0 for constant data or one feature), or None
        for ``min(n_samples, n_features)`` (``- 1`` for ``'lanczos'``).
        scikit-learn treats eigenvalues below 1e-15 as zero for ``'mle'``;
        here the cut-off is ``n_features eps λ_max`` (``eps`` of the float64
        accumulation, whatever the data's dtype), so the choice does not
        depend on the data's units (scikit-learn keeps no component of data
        scaled by 1e-10).
    whiten : {False, True, 'pca', 'zca'}, default=False
        ``True``/``'pca'``: scale the projections to unit variance;
        ``'zca'``: whiten and rotate back to feature space,
        ``(X - μ) V diag(λ^{-1/2}) Vᵀ`` (shape ``(n, n_features)``, the whitened
        data closest to the original).
    solver : {'auto', 'covariance', 'randomized', 'lanczos'}, default='auto'
        ``'auto'`` takes ``'covariance'`` when ``n_features <= 1000``, when
        ``n_components`` is None, a fraction or ``'mle'``, or when
        ``n_components >= 0.8 min(n_samples, n_features)``; ``'randomized'``
        otherwise.
    n_oversamples : int, default=10
        Extra random vectors of the randomized range finder.
    n_iter : int or 'auto', default='auto'
        Power iterations (``'range_finder'``) or extra Krylov blocks
        (``'block_krylov'``) of the randomized solver.  ``'auto'``: 3 Krylov
        blocks when ``n_components < 0.1 min(n_samples, n_features)``, else 2;
        for ``'range_finder'`` scikit-learn's 7, else 4.
    randomized_method : {'auto', 'block_krylov', 'range_finder'}, default='auto'
        The randomized solver's scheme: randomized block Krylov (``'auto'``
        while its blocks of ``n_components + n_oversamples`` columns fit in
        ``min(n_samples, n_features)``; the accuracy of scikit-learn's 7
        power iterations for fewer passes over the data) or the range
        finder with power iterations (scikit-learn's; ``'auto'`` otherwise).
    random_state : None, int, numpy.random.Generator or RandomState, default=None
        Seed of the randomized and Lanczos solvers (random blocks are drawn on
        the host, so every namespace sees the same numbers).
    copy : bool, default=True
        Accepted for scikit-learn compatibility: the input is never modified.
    tol : float, default=0.0
        Tolerance of the Lanczos solver (0: working precision).

    Attributes
    ----------
    components_ : array, shape (k, n_features)
        Principal axes, rows, by decreasing explained variance (``k = n_components_``).
    explained_variance_ : array, shape (k,)
        Variance along each axis (eigenvalues of the covariance, ``ddof=1``).
    explained_variance_ratio_ : array, shape (k,)
        Fraction of the total variance along each axis.
    singular_values_ : array, shape (k,)
        Singular values of the centred data.
    mean_ : array, shape (n_features,)
        Per-feature mean.
    noise_variance_ : 0-d array
        Mean of the discarded eigenvalues (probabilistic PCA's noise variance).
    n_components_ : int
    n_samples_ : int
    n_features_in_ : int
    feature_names_in_ : array of str, shape (n_features,)
        Column names of a data frame fitted on (only then set); a frame given
        later must have the same columns in the same order.
    n_samples_seen_ : int
        Samples merged by :meth:`partial_fit` (and by a covariance ``fit``).

    See Also
    --------
    sklearn.decomposition.PCA : The peer, NumPy only.
    TruncatedSVD : The same without centring, for sparse data.
    eigarray.eigh_batched : The eigensolver of the covariance path.

    Notes
    -----
    Cost: ``'covariance'`` one pass over ``X`` and ``m d²`` flops, plus an
    ``O(d³)`` eigendecomposition (for ``m < d``: ``O(m² d)``, a QR of the
    centred data and the SVD of its ``m x m`` triangle); ``'randomized'``
    ``2 (n_iter + 1)`` products of ``X`` or ``Xᵀ`` with ``k + n_oversamples`` vectors (block Krylov
    keeps every block and ends with a Rayleigh-Ritz step on all of them), plus
    two passes for the mean and the total variance; ``'lanczos'`` two passes
    over ``X`` per block of Lanczos vectors.  Explained variances from the covariance carry an
    absolute error of order ``eps λ_max`` (relative accuracy of the smallest
    ones is lost to ``λ_max / λ``, as for any method that squares the data).
    Signs follow scikit-learn's ``svd_flip``.

    :meth:`score_samples`, :meth:`score` and :meth:`get_precision` do not
    depend on ``whiten``; scikit-learn's do (see :meth:`score_samples`).

    Parameters of :class:`sklearn.decomposition.PCA` and their counterparts
    here (a scikit-learn name that this class lacks is refused, as any
    unknown keyword is):

    ======================================  ======================================
    scikit-learn                            eigarray
    ======================================  ======================================
    ``n_components``                        the same, with the same values
    ``whiten``                              the same, plus ``'zca'``
    ``copy``, ``n_oversamples``             the same
    ``random_state``                        the same
    ``tol`` (of ``'arpack'``)               ``tol`` (of ``'lanczos'``)
    ``svd_solver='covariance_eigh'``        ``solver='covariance'``
    ``svd_solver='arpack'``                 ``solver='lanczos'``
    ``svd_solver='randomized'``             ``solver='randomized'`` with
                                            ``randomized_method='range_finder'``
    ``svd_solver='full'``                   none (LAPACK SVD of the centred
                                            data); ``'covariance'`` gives the
                                            same attributes to ``eps λ_max``
    ``svd_solver='auto'``                   ``solver='auto'`` (another rule)
    ``iterated_power``                      ``n_iter`` (its ``'auto'`` is
                                            scikit-learn's for
                                            ``'range_finder'`` only)
    ``power_iteration_normalizer``          none (the randomized solver uses
                                            :func:`eigarray.randomized_svd`'s
                                            ``'auto'``)
    ======================================  ======================================

    References
    ----------
    T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a
    pairwise algorithm for computing sample variances", COMPSTAT 1982.
    N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure with
    randomness", SIAM Review 53(2), 2011.
    T. P. Minka, "Automatic choice of dimensionality for PCA", NIPS 2000.
    M. E. Tipping and C. M. Bishop, "Probabilistic principal component
    analysis", J. R. Statist. Soc. B 61(3), 1999.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 3)) * [3.0, 1.0, 0.1]
    >>> pca = eigarray.EigenLayer(n_components=2).fit(X)
    >>> np.round(pca.explained_variance_ratio_, 3)
    array([0.903, 0.096])
    >>> pca.transform(X).shape
    (500, 2)
    """

    def __init__(self, n_components: Any = None, *, whiten: Any = False, solver: str = "auto",
                 n_oversamples: int = 10, n_iter: Any = "auto",
                 randomized_method: str = "auto", random_state: Any = None,
                 copy: bool = True, tol: float = 0.0):
        self.n_components = n_components
        self.whiten = whiten
        self.solver = solver
        self.n_oversamples = n_oversamples
        self.n_iter = n_iter
        self.randomized_method = randomized_method
        self.random_state = random_state
        self.copy = copy
        self.tol = tol

    # -- lazy finalisation after partial_fit -------------------------------

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        if name in _DERIVED and d.get("_pending"):
            self._finish_stream()
            if name in d:
                return d[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _finish_stream(self) -> None:
        """Fit a pending stream from its scatter matrix, once.

        One thread finalises; the others wait for it.  The thread that
        finalises does not come back for an attribute it has yet to set (the
        lock is reentrant; "_finalizing" is its own mark).
        """
        d = self.__dict__
        with _FINALIZE_LOCK:
            if d.get("_pending") and not d.get("_finalizing"):
                try:
                    self._finalize_scatter()
                except ValueError as exc:
                    if isinstance(exc, AttributeError):
                        raise
                    raise _UnfinishedStream(str(exc)) from None

    def __sklearn_is_fitted__(self) -> bool:
        return "n_features_in_" in self.__dict__ or bool(self.__dict__.get("_pending"))

    def _check_params(self) -> tuple[str, Any]:
        whiten = self.whiten
        if type(whiten).__name__ in ("bool", "bool_"):      # numpy's bool too
            whiten = bool(whiten)
        if not any(whiten is w or (isinstance(whiten, str) and whiten == w) for w in _WHITEN):
            raise ValueError(f"`whiten` must be one of False, True, 'pca', 'zca'; got "
                             f"whiten={whiten!r}.")
        whiten = {False: None, True: "pca"}.get(whiten, whiten) if not isinstance(whiten, str) \
            else whiten
        solver = val.check_choice(self.solver, _SOLVERS, name="solver")
        val.check_bool(self.copy, name="copy")
        ns.check_rng(self.random_state, name="random_state")
        val.check_int(self.n_oversamples, name="n_oversamples", low=0)
        if not (isinstance(self.n_iter, str) and self.n_iter == "auto"):
            val.check_int(self.n_iter, name="n_iter", low=0)
        val.check_tol(self.tol, name="tol")
        val.check_choice(self.randomized_method, ("auto", "block_krylov", "range_finder"),
                         name="randomized_method")
        if isinstance(self.n_components, str) and self.n_components != "mle":
            raise ValueError(f"`n_components` must be an integer, a float in (0, 1), 'mle' or "
                             f"None; got n_components={self.n_components!r}.")
        return solver, whiten

    def _choose_solver(self, solver: str, m: int, d: int) -> str:
        if solver != "auto":
            return solver
        k = self.n_components
        if k is None or isinstance(k, (float, str)) or d <= _AUTO_MAX_FEATURES:
            return "covariance"
        if isinstance(k, numbers.Integral) and k < 0.8 * min(m, d):
            return "randomized"
        return "covariance"

    # -- fitting -------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> EigenLayer:
        """Fit the principal axes of ``X`` (rows are samples).

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
            Real data of any supported namespace (or array-like, read as NumPy).
            Needs at least two samples.
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For NaN or Inf, fewer than two samples, no feature, complex data,
            or a bad ``n_components``, ``whiten``, ``solver`` or ``n_iter``;
            for data whose second moments overflow or underflow the working
            precision (the covariance and Lanczos solvers square the data:
            entries beyond about 1e150 or deviations below about 1e-154 in
            float64), with the advice to scale it.
        TypeError
            For sparse input (use :class:`TruncatedSVD`) or a non-numeric dtype.
        """
        solver, whiten = self._check_params()
        X, xp = self._check_X(X, reset=True, min_samples=1, check_finite=False)
        m, d = int(X.shape[0]), int(X.shape[1])
        if m < 2:
            raise ValueError(f"`X` must have at least 2 samples to estimate a covariance; got "
                             f"n_samples = {m}.")
        solver = self._choose_solver(solver, m, d)
        k = _check_n_components(self.n_components, m=m, d=d, solver=solver,
                                allow_fraction=solver == "covariance", cls=type(self).__name__)
        if solver != "covariance":
            _check_finite(xp, X, xp.sum(X), name="X")
        self._reset()
        if solver == "covariance" and m < d and not ns.is_dask_array(X):
            self._fit_sample_space(xp, X, whiten=whiten)
            return self
        if solver == "covariance":
            acc = _acc_dtype(xp, X.dtype)
            with ns.numpy_namespace().errstate(invalid="ignore", over="ignore"):
                n, mean, M = _scatter(xp, X, acc)
            M = ns.persist(M)                    # Dask: one pass for the checks and the fit
            # NaN/Inf anywhere reach the scatter
            _check_finite(xp, X, M, name="X", overflow="its scatter matrix")
            _check_underflow(xp, X, mean, M, m, name="X", what="its scatter matrix")
            self._scatter, self._mean_acc, self.n_samples_seen_ = M, mean, n
            self._dtype = X.dtype
            self._n_features = d
            self._finalize_scatter(whiten=whiten)
            return self
        mean = xp.mean(X, axis=0)
        with ns.numpy_namespace().errstate(over="ignore", invalid="ignore"):
            total = ns.persist(_total_variance(xp, X, mean))   # overflow: reported below
        if solver == "lanczos":
            # Its products square the data (the covariance operator).
            _check_underflow(xp, X, mean, total * (m - 1), m * d, name="X",
                             what="its covariance")
        rng = ns.host_rng(self.random_state, name="random_state")
        try:
            Xc, offset = _centring(xp, X, mean, total)
            V, ev, S = self._solve_iterative(xp, Xc, offset, k, solver=solver, rng=rng)
        except Exception as exc:
            # Finite data whose products overflow fail inside the solver.
            if _moments_overflow(xp, X):
                raise _overflow_error(xp, X, name="X", what="a product with it") from exc
            raise
        if not _is_traced(X) and not bool(xp.all(xp.isfinite(ev))) \
                and _moments_overflow(xp, X):
            raise _overflow_error(xp, X, name="X", what="a product with it")
        self._store(xp, V, ev, S, mean, total, m=m, d=d, whiten=whiten, all_ev=None)
        return self

    def _solve_iterative(self, xp: Any, X: Any, mean: Any, k: int, *, solver: str,
                         rng: Any) -> tuple[Any, Any, Any]:
        """Axes (rows), variances and singular values by the randomized or Lanczos solver."""
        m, d = int(X.shape[0]), int(X.shape[1])
        if solver == "randomized":
            op = aslinearoperator(_CenteredData(X, mean, xp), xp=xp, dtype=X.dtype, name="X")
            method = self.randomized_method
            if method == "auto":
                # Block Krylov while its blocks fit in the data's rank;
                # otherwise the range finder, with its own pass count.
                l = min(k + self.n_oversamples, m, d)
                blocks = 1 + _resolve_n_iter(self.n_iter, k, m, d, "block_krylov")
                method = "block_krylov" if blocks * l <= min(m, d) else "range_finder"
            n_iter = _resolve_n_iter(self.n_iter, k, m, d, method)
            _, S, Vh = _randomized(op, k, n_oversamples=self.n_oversamples, n_iter=n_iter,
                                   rng=rng, method=method)
            ev = S * S / (m - 1)
            V = Vh
        else:
            op = aslinearoperator(_CovarianceOperator(X, mean, xp), xp=xp, dtype=X.dtype,
                                  name="X")
            # The block Lanczos stops one row short of a basis spanning the
            # whole space for odd d (reported): a smaller basis for the block
            # of two, or a single vector when even that would span it.
            block, ncv = None, None
            if default_ncv(k, d) >= d:
                ncv = default_ncv(k, d, 1)
                block = 1 if ncv >= d else None
            w, W = lanczos(op, k, which="LA", tol=self.tol, rng=rng, block_size=block, ncv=ncv)
            ev = xp.flip(xp.clip(w, min=0.0), axis=0)
            V = xp.flip(W, axis=1).T
            S = xp.sqrt(ev * (m - 1))
        return V, ev, S

    def _fit_sample_space(self, xp: Any, X: Any, *, whiten: Any) -> None:
        """The covariance solver for fewer samples than features.

        The ``d x d`` covariance has rank below ``m``: its eigenpairs are
        those of the centred data's SVD, ``Xc = Rᵀ Qᵀ`` (Householder QR of
        ``Xcᵀ``, ``d x m``) followed by the SVD of the ``m x m`` triangle,
        ``O(m² d)`` work instead of the ``O(d³)`` of the covariance.  The
        data is centred in float64 (two passes), and the scatter matrix,
        needed only if ``partial_fit`` continues this fit, is kept as its
        factors ``V`` and ``σ²``.
        """
        m, d = int(X.shape[0]), int(X.shape[1])
        acc = _acc_dtype(xp, X.dtype)
        Xc = xp.astype(X, acc)
        mean = xp.mean(Xc, axis=0)
        Xc = Xc - mean
        shift = xp.mean(Xc, axis=0)                       # the first mean's rounding
        Xc, mean = Xc - shift, mean + shift
        scatter = xp.sum(Xc * Xc)
        _check_finite(xp, X, scatter, name="X", overflow="its sum of squares")
        _check_underflow(xp, X, mean, scatter, m * d, name="X", what="its sum of squares")
        Q, R = xp.linalg.qr(xp.matrix_transpose(Xc))      # Xcᵀ = Q R
        _, sigma, Zt = xp.linalg.svd(xp.matrix_transpose(R), full_matrices=False)
        V = Zt @ xp.matrix_transpose(Q)                   # Xc = P diag(σ) V
        s2 = sigma * sigma
        self._scatter_factors = (V, s2)
        self._mean_acc, self.n_samples_seen_ = mean, m
        self._dtype, self._n_features = X.dtype, d
        k = _check_n_components(self.n_components, m=m, d=d, solver="covariance",
                                allow_fraction=True, cls=type(self).__name__)
        all_ev = s2 / (m - 1)
        total = scatter / (m - 1)
        k = _resolve_n_components(k, all_ev, total, limit=m, m=m, eps=ns.eps(xp, all_ev.dtype))
        self._store(xp, V[:k, ...], all_ev[:k], sigma[:k], mean, total, m=m, d=d,
                    whiten=whiten, all_ev=all_ev, dtype=X.dtype)

    def partial_fit(self, X: Any, y: Any = None, check_input: bool = True) -> EigenLayer:
        """Merge a chunk of samples into the running mean and scatter matrix.

        The chunk's scatter matrix (one GEMM) and mean are merged exactly with
        the pairwise update of Chan, Golub & LeVeque, in float64; the
        eigendecomposition is recomputed on the first access of a fitted
        attribute or ``transform``.  Streaming the rows of ``X`` through
        ``partial_fit`` equals ``fit(X)`` with ``solver='covariance'`` to
        rounding.  A fit with that solver can be continued; after a fit by
        the randomized or Lanczos solver, which keep no scatter matrix,
        ``partial_fit`` warns and starts a new stream from ``X``.

        Parameters
        ----------
        X : array, shape (n_chunk, n_features)
        y : ignored
        check_input : bool, default=True
            Accepted for compatibility with scikit-learn's ``IncrementalPCA``.

        Returns
        -------
        self
        """
        self._check_params()
        factors = self.__dict__.pop("_scatter_factors", None)
        if factors is not None:                           # a fit in sample space
            V, s2 = factors
            self._scatter = ns.array_namespace(V).matrix_transpose(V) @ (s2[:, None] * V)
        fresh = self.__dict__.get("_scatter") is None
        if fresh and "components_" in self.__dict__:
            import warnings

            warnings.warn(f"partial_fit starts a new stream: this {type(self).__name__} was "
                          f"fitted by a solver that keeps no scatter matrix (randomized or "
                          f"lanczos), so the samples of that fit are not merged. Fit with "
                          f"solver='covariance' to continue a fit.", UserWarning, stacklevel=2)
        X, xp = self._check_X(X, reset=fresh)
        if not fresh:
            sxp = ns.array_namespace(self._scatter)
            if not ns.same_namespace(sxp, xp):
                X = ns.from_host_numpy(ns.to_host_numpy(X), sxp, like=self._scatter)
                xp = sxp
        with ns.numpy_namespace().errstate(invalid="ignore", over="ignore"):
            if fresh:
                n, mean, M = _scatter(xp, X, _acc_dtype(xp, X.dtype))
            else:
                nb, mb, Mb = _scatter(xp, X, self._scatter.dtype)
                n, mean, M = _merge(self.n_samples_seen_, self._mean_acc, self._scatter,
                                    nb, mb, Mb)
            M = ns.persist(M)
        _check_finite(xp, X, M, name="X", overflow="its scatter matrix")
        # Against the whole stream: a batch of nearly equal rows is data.
        _check_underflow(xp, X, mean, M, n, name="X", what="its scatter matrix")
        if fresh:
            self._reset()
            self._dtype = X.dtype
            self._n_features = int(X.shape[1])
        self._scatter, self._mean_acc, self.n_samples_seen_ = M, mean, n
        for name in _DERIVED:
            self.__dict__.pop(name, None)
        self.__dict__.pop("_converted", None)
        self._pending = True
        return self

    def _reset(self) -> None:
        for name in (*_DERIVED, "_scatter", "_scatter_factors", "_mean_acc",
                     "n_samples_seen_", "_pending",
                     "_converted", "_P", "_Q", "_dtype", "_n_features"):
            self.__dict__.pop(name, None)

    def _finalize_scatter(self, whiten: Any = "unset") -> None:
        """Eigendecompose the accumulated covariance and set the fitted attributes.

        The stream stays pending until the attributes are all set (other
        threads see a fitted estimator and wait in ``__getattr__``), and on
        an error (a later access raises again, a later ``partial_fit``
        continues it).
        """
        d = self.__dict__
        d["_finalizing"] = True
        try:
            self._finalize_checked(whiten)
            d["_pending"] = False
        finally:
            d.pop("_finalizing", None)

    def _finalize_checked(self, whiten: Any) -> None:
        if whiten == "unset":
            _, whiten = self._check_params()
        M, mean_acc, m = self._scatter, self._mean_acc, self.n_samples_seen_
        xp = ns.array_namespace(M)
        d = int(M.shape[0])
        if m < 2:
            raise _UnfinishedStream(f"`X` must have at least 2 samples to estimate a "
                                    f"covariance; got n_samples = {m}.")
        k = _check_n_components(self.n_components, m=m, d=d, solver="covariance",
                                allow_fraction=True, cls=type(self).__name__)
        C = M / (m - 1)
        w, V = eigh_batched(xp.reshape(C, (1, d, d)), sort="descending")
        all_ev = xp.clip(w[0, ...], min=0.0)
        total = xp.sum(xp.linalg.diagonal(C))
        k = _resolve_n_components(k, all_ev, total, limit=min(m, d), m=m,
                                  eps=ns.eps(xp, all_ev.dtype))
        ev = all_ev[:k]
        S = xp.sqrt(ev * (m - 1))
        self._store(xp, V[0, :, :k].T, ev, S, mean_acc, total, m=m, d=d, whiten=whiten,
                    all_ev=all_ev, dtype=self._dtype)

    def _store(self, xp: Any, V: Any, ev: Any, S: Any, mean: Any, total: Any, *, m: int,
               d: int, whiten: Any, all_ev: Any, dtype: Any = None) -> None:
        """Set sklearn's attributes from axes ``V`` (rows) and variances ``ev``."""
        dtype = V.dtype if dtype is None else dtype
        k = int(V.shape[0])
        V = _flip_rows(xp, V)
        lim = min(m, d)
        if k < lim:
            if all_ev is not None:
                noise = xp.mean(all_ev[k:lim])
            else:
                noise = (total - xp.sum(ev)) / (lim - k)
        else:
            noise = xp.zeros((), dtype=ev.dtype, device=ns.device(ev))
        cast = (lambda a: xp.astype(a, dtype) if a.dtype != dtype else a)  # noqa: E731
        self.components_ = cast(V)
        self.explained_variance_ = cast(ev)
        self.explained_variance_ratio_ = cast(ev / total)
        self.singular_values_ = cast(S)
        self.mean_ = cast(mean)
        self.noise_variance_ = cast(noise)
        self.n_components_ = k
        self.n_samples_ = m
        self.n_features_in_ = d
        Vt = self.components_.T
        ev = self.explained_variance_
        if whiten is None:
            P, Q = Vt, self.components_
        else:
            pos = ev > 0
            root = xp.sqrt(xp.where(pos, ev, xp.ones_like(ev)))
            inv = xp.where(pos, 1.0 / root, xp.zeros_like(root))
            P = Vt * inv[None, :]
            Q = root[:, None] * self.components_ * xp.astype(pos, dtype)[:, None]
            if whiten == "zca":
                P, Q = P @ self.components_, Vt @ Q
        self._P, self._Q = P, Q
        self._converted = {}

    # -- applying the fitted map ----------------------------------------------

    def transform(self, X: Any) -> Any:
        """Project ``X`` onto the principal axes (whitened if asked).

        Runs in ``X``'s namespace and on its device with that namespace's own
        operations, ``(X - mean_) @ P``: differentiable in torch, traceable by
        ``jax.jit``.  The fitted arrays are converted (and cached) when ``X``
        lives elsewhere than the data ``fit`` saw.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)

        Returns
        -------
        array, shape (n_samples, k) with ``k = n_components_``, or (n_samples, n_features) for ZCA
            In ``X``'s dtype: a model fitted in float64 projects float32
            data in float32, as a torch or JAX computation expects
            (scikit-learn returns float64).
        """
        self._check_fitted()
        if self.__dict__.get("_pending"):
            self._finish_stream()
        X_in = X
        X, xp = self._check_X(X, reset=False)
        mean, P = self._fitted_in(xp, X, X.dtype, ("mean_", "_P"))
        return self._wrap_output((X - mean) @ P, X_in)

    def _n_outputs(self) -> int:
        return int(self._P.shape[1])                 # n_components_, or n_features for ZCA

    def inverse_transform(self, X: Any) -> Any:
        """Map projections back to feature space: ``X @ Q + mean_``.

        Parameters
        ----------
        X : array, shape (n_samples, k) (n_features for ZCA)

        Returns
        -------
        array, shape (n_samples, n_features)
        """
        self._check_fitted()
        if self.__dict__.get("_pending"):
            self._finish_stream()
        if not ns.is_array_api_obj(X):
            X = _host_array(X, name="X")
        xp = ns.array_namespace(X)
        dtype = ns.working_dtype(xp, X.dtype, name="X")
        X = xp.astype(X, dtype) if dtype != X.dtype else X
        mean, Q = self._fitted_in(xp, X, dtype, ("mean_", "_Q"))
        if X.ndim != 2 or int(X.shape[1]) != int(Q.shape[0]):
            raise ValueError(f"`X` must have shape (n_samples, {int(Q.shape[0])}) for "
                             f"inverse_transform; got shape {tuple(X.shape)}.")
        return X @ Q + mean

    def get_covariance(self) -> Any:
        """Model covariance ``Vᵀ diag(max(λ - σ², 0)) V + σ² I`` (probabilistic PCA).

        ``V`` is ``components_``, ``λ`` ``explained_variance_`` and ``σ²``
        ``noise_variance_``; an array of their namespace, shape
        ``(n_features, n_features)``.  Independent of ``whiten``, unlike
        scikit-learn's (see :meth:`score_samples`).
        """
        self._check_fitted()
        V, ev, s2 = self.components_, self.explained_variance_, self.noise_variance_
        xp = ns.array_namespace(V)
        d = int(V.shape[1])
        diff = xp.where(ev > s2, ev - s2, xp.zeros_like(ev))
        return (V.T * diff[None, :]) @ V + s2 * xp.eye(d, dtype=V.dtype, device=ns.device(V))

    def get_precision(self) -> Any:
        """Model precision: the inverse of :meth:`get_covariance`, inverting no matrix.

        The matrix inversion lemma, as scikit-learn applies it, with the
        components ``V`` orthonormal: the inverse of ``Vᵀ diag(λ' - σ²) V +
        σ² I``, ``λ' = max(λ, σ²)``, is ``Vᵀ diag(1/λ' - 1/σ²) V + I / σ²``.
        With ``noise_variance_ = 0`` (all ``min(n_samples, n_features)``
        components kept) it is ``Vᵀ diag(1/λ) V``, the inverse when
        ``n_components_ = n_features`` and no ``λ`` is zero.  Independent of
        ``whiten`` (see :meth:`score_samples`).

        Returns
        -------
        array, shape (n_features, n_features)
            In the namespace and on the device of the fitted attributes.

        Raises
        ------
        ValueError
            When the model covariance is singular: ``noise_variance_ = 0``
            with fewer components than features (a fit on fewer samples
            than features, or ``n_components='mle'`` on constant data), or
            a zero ``explained_variance_``.  scikit-learn raises its
            ``LinAlgError`` (also a ValueError) for the first.
        """
        self._check_fitted()
        noise_free = self._noise_free()
        V, ev, s2 = self.components_, self.explained_variance_, self.noise_variance_
        xp = ns.array_namespace(V)
        if noise_free:
            inv_model, inv_noise = 1.0 / ev, xp.zeros_like(s2)
        else:
            inv_model, inv_noise = 1.0 / xp.where(ev > s2, ev, s2), 1.0 / s2
        d = int(V.shape[1])
        eye = xp.eye(d, dtype=V.dtype, device=ns.device(V))
        return (V.T * (inv_model - inv_noise)[None, :]) @ V + inv_noise * eye

    def _noise_free(self) -> bool:
        """Whether ``noise_variance_`` is 0, refusing a singular model covariance.

        Variances at or below ``n_features eps λ_max`` (``eps`` of the fitted
        attributes' dtype) count as zero: rounding leaves such a floor where
        the exact value is 0 (centred data with as many samples as features
        has rank one less), and a model built on it scores nonsense.  Read on
        the host from the fitted attributes (concrete even under ``jax.jit``);
        see :meth:`get_precision`.
        """
        hx = ns.numpy_namespace()
        V = self.components_
        ev = ns.to_host_numpy(self.explained_variance_).astype(hx.float64)
        s2 = float(ns.to_host_numpy(self.noise_variance_))
        k, d = int(V.shape[0]), int(V.shape[1])
        top = max(float(hx.max(ev)) if ev.size else 0.0, s2)
        floor = d * float(hx.finfo(ns.to_host_numpy(self.explained_variance_).dtype).eps) * top
        if s2 > floor:
            return False
        if k < d:
            raise ValueError(
                f"The model covariance is singular: `noise_variance_` ({s2:.3g}) is 0 to "
                f"working precision with n_components_ = {k} < n_features = {d}, so the "
                f"precision and the log-likelihood do not exist. Fit with n_components "
                f"below the rank of the data for a noise variance.")
        if not bool(hx.all(ev > floor)):
            raise ValueError(
                "The model covariance is singular: `noise_variance_` is 0 and "
                "`explained_variance_` has a zero to working precision (the data spans "
                "fewer than n_features dimensions: centred data with n_samples <= "
                "n_features does), so the precision and the log-likelihood do not exist. "
                "Fit fewer components.")
        return True

    def score_samples(self, X: Any) -> Any:
        """Log-likelihood of each sample under the probabilistic PCA model.

        The Gaussian density of Tipping & Bishop's probabilistic PCA with
        the fitted mean and :meth:`get_covariance` ``C`` (scikit-learn's
        ``PCA.score_samples``): ``-(d log 2π + log det C + (x - μ)ᵀ C⁻¹ (x -
        μ)) / 2`` for each row ``x``.  It is evaluated through the
        components, never forming ``C⁻¹``: with ``y = V (x - μ)`` and the
        residual ``r = x - μ - Vᵀ y``, the quadratic form is ``Σ y²/λ' +
        ‖r‖²/σ²`` and ``log det C = Σ log λ' + (d - k) log σ²``, in
        ``O(n_samples n_features k)`` operations.  Runs in ``X``'s namespace
        and on its device with that namespace's own operations (like
        :meth:`transform`).

        Independent of ``whiten``: whitening changes the projection, not
        the fitted model.  scikit-learn, from ``whiten=True``, scales the
        components by ``sqrt(explained_variance_)`` in ``get_covariance``,
        ``get_precision`` and hence here (scikit-learn issue #13898), so
        its values differ for whitened fits; eigarray gives every ``whiten``
        scikit-learn's values for ``whiten=False``.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)

        Returns
        -------
        array, shape (n_samples,)

        Raises
        ------
        ValueError
            For a singular model covariance (see :meth:`get_precision`), and
            for ``X`` as :meth:`transform`.

        References
        ----------
        M. E. Tipping and C. M. Bishop, "Probabilistic principal component
        analysis", J. R. Statist. Soc. B 61(3), 1999.
        """
        self._check_fitted()
        if self.__dict__.get("_pending"):
            self._finish_stream()
        X, xp = self._check_X(X, reset=False)
        noise_free = self._noise_free()
        mean, V, ev, s2 = self._fitted_in(
            xp, X, X.dtype, ("mean_", "components_", "explained_variance_", "noise_variance_"))
        k, d = int(V.shape[0]), int(V.shape[1])
        Xr = X - mean
        Y = Xr @ V.T
        if not noise_free:
            lam = xp.where(ev > s2, ev, s2)
            R = Xr - Y @ V                                # off the principal subspace
            quad = xp.sum(Y * Y / lam, axis=1) + xp.sum(R * R, axis=1) / s2
            logdet = xp.sum(xp.log(lam)) + (d - k) * xp.log(s2)
        else:                                             # k = d: V spans the space
            quad = xp.sum(Y * Y / ev, axis=1)
            logdet = xp.sum(xp.log(ev))
        return -0.5 * (quad + logdet + d * math.log(2.0 * math.pi))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood of the samples of ``X`` (:meth:`score_samples`), a float.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        ll = self.score_samples(X)
        return float(ns.array_namespace(ll).mean(ll))


PCA = EigenLayer


def _total_variance(xp: Any, X: Any, mean: Any) -> Any:
    """Sum of per-feature variances (ddof=1), one blocked pass, no cancellation."""
    m, d = int(X.shape[0]), int(X.shape[1])
    step = max(1, min(m, (1 << 16) // max(d, 1)))       # blocks that stay in cache
    total = None
    for i in range(0, m, step):
        Z = X[i:i + step, ...] - mean
        part = xp.sum(Z * Z)
        total = part if total is None else total + part
    return total / (m - 1)


def _sparse_total_variance(X: Any) -> float:
    """Sum of per-feature variances (ddof=0) of a scipy sparse matrix.

    Deviations from the mean are summed over the stored entries, and the
    implicit zeros add ``mean²`` each: ``E[x²] - E[x]²`` would cancel
    catastrophically on features far from zero mean.
    """
    hx = ns.numpy_namespace()
    m, d = X.shape
    C = X.tocoo(copy=True)
    C.sum_duplicates()
    mu = hx.bincount(C.col, weights=C.data.astype(hx.float64), minlength=d) / m
    dev = C.data.astype(hx.float64) - mu[C.col]
    stored = hx.bincount(C.col, minlength=d)
    ss = hx.bincount(C.col, weights=dev * dev, minlength=d) + (m - stored) * mu * mu
    return float(hx.sum(ss)) / m


# --------------------------------------------------------------------------
# TruncatedSVD
# --------------------------------------------------------------------------

class TruncatedSVD(_Estimator):
    """Truncated SVD of data without centring: latent semantic analysis.

    Computes the top ``n_components`` right singular vectors of ``X`` (dense
    of any namespace, or scipy sparse), by the randomized SVD or by
    :func:`eigarray.svds`, and projects onto them.  Unlike
    :class:`EigenLayer` the data is not centred, so sparse term-document
    matrices stay sparse.  On NumPy and scipy sparse input it is a
    scikit-learn estimator with :class:`sklearn.decomposition.TruncatedSVD`'s
    fitted attributes and methods (``fit``, ``transform``,
    ``fit_transform``, ``inverse_transform``, ``get_feature_names_out``,
    ``set_output``); it passes scikit-learn's estimator checks and works in
    a ``Pipeline`` and a ``GridSearchCV``.  Its parameters are
    scikit-learn's but for ``power_iteration_normalizer``, which it lacks
    (see Notes).

    Parameters
    ----------
    n_components : int, default=2
        Components kept, ``1 <= n_components <= min(n_samples, n_features)``
        (``< min(n_samples, n_features)`` for ``'lanczos'``).
    algorithm : {'randomized', 'lanczos', 'arpack'}, default='randomized'
        ``'lanczos'`` calls :func:`eigarray.svds` (thick-restart Lanczos
        bidiagonalisation); ``'arpack'``, scikit-learn's name for its
        Lanczos solver, is accepted for it: the same top ``n_components``
        singular triplets (to working precision with the default ``tol``),
        with the same rule ``n_components < min(n_samples, n_features)``.
        The value is kept as given (``get_params`` returns ``'arpack'``).
    n_iter : int, default=5
        Power iterations of the randomized solver.
    n_oversamples : int, default=10
        Extra random vectors of the randomized range finder.
    random_state : None, int, numpy.random.Generator or RandomState, default=None
    tol : float, default=0.0
        Tolerance of the Lanczos solver (0: working precision).

    Attributes
    ----------
    components_ : array, shape (n_components, n_features)
    explained_variance_ : array, shape (n_components,)
        Variance of each projection (``ddof=0``, as scikit-learn).
    explained_variance_ratio_ : array, shape (n_components,)
    singular_values_ : array, shape (n_components,)
        Descending.
    n_features_in_ : int
    feature_names_in_ : array of str, shape (n_features,)
        Column names of a data frame fitted on (only then set); a frame given
        later must have the same columns in the same order.

    See Also
    --------
    sklearn.decomposition.TruncatedSVD : The peer.
    EigenLayer : With centring (PCA).

    Notes
    -----
    Randomized: ``2 (n_iter + 1)`` products of ``X`` or ``Xᵀ`` with
    ``n_components + n_oversamples`` vectors.  Signs follow ``svd_flip``
    on the rows of ``components_``.

    scikit-learn's ``n_components``, ``algorithm`` (``'arpack'`` or
    ``'randomized'``), ``n_iter``, ``n_oversamples``, ``random_state`` and
    ``tol`` are the same here; ``power_iteration_normalizer`` has no
    counterpart (the randomized solver uses :func:`eigarray.randomized_svd`'s
    ``'auto'``), and is refused as any unknown keyword is.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, eigarray
    >>> X = sp.random(50, 30, density=0.2, random_state=0, format="csr")
    >>> svd = eigarray.TruncatedSVD(n_components=3, random_state=0).fit(X)
    >>> svd.transform(X).shape
    (50, 3)
    """

    _accepts_sparse = True

    def __init__(self, n_components: int = 2, *, algorithm: str = "randomized",
                 n_iter: int = 5, n_oversamples: int = 10, random_state: Any = None,
                 tol: float = 0.0):
        self.n_components = n_components
        self.algorithm = algorithm
        self.n_iter = n_iter
        self.n_oversamples = n_oversamples
        self.random_state = random_state
        self.tol = tol

    def fit(self, X: Any, y: Any = None) -> TruncatedSVD:
        """Fit the top right singular vectors of ``X``.

        Parameters
        ----------
        X : array or scipy sparse matrix, shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Fit and return ``U Σ``, the projections of ``X``."""
        return self._wrap_output(self._fit_transform(X), X)

    def _n_outputs(self) -> int:
        return int(self.components_.shape[0])

    def _fit_transform(self, X: Any) -> Any:
        algorithm = val.check_choice(self.algorithm, ("randomized", "lanczos", "arpack"),
                                     name="algorithm")
        n_iter = val.check_int(self.n_iter, name="n_iter", low=0)
        val.check_int(self.n_oversamples, name="n_oversamples", low=0)
        tol = val.check_tol(self.tol, name="tol")
        X, xp = self._check_X(X, reset=True, sparse_ok=True)
        m, d = int(X.shape[0]), int(X.shape[1])
        if algorithm != "randomized":                    # 'arpack' names 'lanczos' too
            high = min(m, d) - 1
            rule = (f"1 <= n_components < min(n_samples, n_features) = {min(m, d)} for "
                    f"algorithm={algorithm!r} (n_samples = {m}, n_features = {d})")
        else:
            high = min(m, d)
            rule = (f"1 <= n_components <= min(n_samples, n_features) = {min(m, d)} "
                    f"(n_samples = {m}, n_features = {d})")
        k = val.check_int(self.n_components, name="n_components", low=1, high=high, rule=rule)
        for name in ("components_", "explained_variance_", "explained_variance_ratio_",
                     "singular_values_", "n_features_in_", "_converted"):
            self.__dict__.pop(name, None)
        rng = ns.host_rng(self.random_state, name="random_state")
        op = aslinearoperator(X, name="X")
        if algorithm == "randomized":
            U, S, Vh = _randomized(op, k, n_oversamples=self.n_oversamples, n_iter=n_iter,
                                   rng=rng)
        else:
            U, S, Vh = svds(X, k, tol=tol, rng=rng, solver="lanczos")
            U, S, Vh = xp.flip(U, axis=1), xp.flip(S, axis=0), xp.flip(Vh, axis=0)
        vxp = ns.array_namespace(Vh)
        flipped = _flip_rows(vxp, Vh)
        signs = xp.sum(flipped * Vh, axis=1)             # +-1 per row
        U = U * signs[None, :]
        Xt = U * S[None, :]
        self.components_ = flipped
        self.singular_values_ = S
        self.n_features_in_ = d
        ev = xp.var(Xt, axis=0)
        if _is_sparse(X):
            full = _sparse_total_variance(X)
        else:
            full = xp.sum(xp.var(X, axis=0))
        self.explained_variance_ = ev
        self.explained_variance_ratio_ = ev / full
        self._converted = {}
        return Xt

    def transform(self, X: Any) -> Any:
        """Project ``X`` onto the components: ``X @ components_.T``.

        Parameters
        ----------
        X : array or scipy sparse matrix, shape (n_samples, n_features)

        Returns
        -------
        array, shape (n_samples, n_components)
        """
        self._check_fitted()
        X_in = X
        X, xp = self._check_X(X, reset=False, sparse_ok=True)
        if _is_sparse(X):
            V = ns.to_host_numpy(self.components_)
            out = ns.numpy_namespace().asarray(X @ V.T.astype(X.dtype, copy=False))
        else:
            (V,) = self._fitted_in(xp, X, X.dtype, ("components_",))
            out = X @ V.T
        return self._wrap_output(out, X_in)

    def inverse_transform(self, X: Any) -> Any:
        """Map projections back: ``X @ components_``."""
        self._check_fitted()
        if not ns.is_array_api_obj(X):
            X = _host_array(X, name="X")
        xp = ns.array_namespace(X)
        dtype = ns.working_dtype(xp, X.dtype, name="X")
        X = xp.astype(X, dtype) if dtype != X.dtype else X
        (V,) = self._fitted_in(xp, X, dtype, ("components_",))
        if X.ndim != 2 or int(X.shape[1]) != int(V.shape[0]):
            raise ValueError(f"`X` must have shape (n_samples, {int(V.shape[0])}) for "
                             f"inverse_transform; got shape {tuple(X.shape)}.")
        return X @ V
