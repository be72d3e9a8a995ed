"""``EigenLayer.fit`` against scikit-learn's PCA, on every backend.

The data is ``U diag(σ) Vᵀ + 1 μᵀ`` with ``U`` orthonormal and centred, so
the exact explained variances are ``σ² / (m - 1)``: a decaying top of ``K``
values over a noise floor, and a mean large against the noise, which is
where an uncentred covariance loses digits.  Parametrised over the backend,
the shape and dtype, and the implementation:

* ``'eigarray-covariance'``: ``EigenLayer(K, solver='covariance')``, the
  blocked scatter and a dense eigendecomposition (one pass over ``X``);
* ``'eigarray-randomized'``: ``EigenLayer(K, solver='randomized')``,
  randomized block Krylov on the implicitly centred data;
* ``'sklearn'``: ``sklearn.decomposition.PCA(K)`` (``svd_solver='auto'``,
  NumPy only).

As in :mod:`.randomized`, ``setup_cache`` fits every combination once and a
combination whose largest relative error in ``explained_variance_`` exceeds
``MAX_REL_ERROR`` is not timed; :class:`EigenLayerWork` posts that error.
"""

from __future__ import annotations

import functools

import numpy as np

from .common import BACKENDS, eigarray, require_backend, synchronize
from .randomized import _CheckedCase, dense_to_backend

K = 16
SEED = 0
#: A fit whose largest relative explained-variance error exceeds this is not timed.
MAX_REL_ERROR = 1e-3

CASES = ["50000x64-float32", "20000x256-float64"]   # m x d - dtype
IMPLS = ["eigarray-covariance", "eigarray-randomized", "sklearn"]


@functools.lru_cache
def pca_problem(m: int, d: int, dtype: str):
    """``(X, explained_variance)``: rank-``d`` data with a known spectrum (read-only, shared)."""
    rng = np.random.default_rng(SEED)
    ev = np.concatenate([100.0 * 0.8 ** np.arange(K), np.full(d - K, 0.05)])
    G = rng.standard_normal((m, d))
    G -= G.mean(axis=0)
    U, _ = np.linalg.qr(G)
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (U * np.sqrt(ev * (m - 1))) @ V.T + rng.standard_normal(d) * 3.0
    return np.ascontiguousarray(X, dtype=dtype), ev


def _case(case: str) -> tuple[int, int, str]:
    shape, dtype = case.split("-")
    m, d = (int(x) for x in shape.split("x"))
    return m, d, dtype


def _fitter(backend: str, case: str, impl: str):
    """``fit()``: the benchmarked call (synchronised), returning explained variances."""
    X, _ = pca_problem(*_case(case))
    if impl == "sklearn":
        if backend != "numpy":
            raise NotImplementedError("scikit-learn runs on NumPy input only")
        try:
            from sklearn.decomposition import PCA
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed") from None
        return lambda: PCA(K, random_state=SEED).fit(X).explained_variance_
    if not hasattr(eigarray, "EigenLayer"):
        raise NotImplementedError("eigarray.EigenLayer is not available in this checkout")
    if backend == "jax" and X.dtype == np.float32:
        raise NotImplementedError("the float32 case runs on NumPy, torch and CuPy")
    solver = impl.split("-", 1)[1]
    Xb = dense_to_backend(X, backend)

    def fit():
        ev = eigarray.EigenLayer(K, solver=solver, random_state=SEED).fit(Xb).explained_variance_
        synchronize(ev)
        return ev

    return fit


def _max_rel_error(ev, exact: np.ndarray) -> float:
    from .common import to_host

    got = np.asarray(to_host(ev), dtype=np.float64)
    return float(np.max(np.abs(got - exact[:K]) / exact[:K]))


class _LayerCase(_CheckedCase):
    param_names = ["backend", "case", "impl"]
    params = [list(BACKENDS), CASES, IMPLS]

    def setup_cache(self):
        return self._solve_all()

    setup_cache.timeout = 900

    @staticmethod
    def _check(backend, case, impl) -> dict:
        require_backend(backend)
        fit = _fitter(backend, case, impl)
        _, ev = pca_problem(*_case(case))
        return {"max_rel_error": _max_rel_error(fit(), ev)}

    def _accurate(self, checks, *combo) -> dict:
        detail = self._checked(checks, *combo)
        if detail["max_rel_error"] > MAX_REL_ERROR:
            raise NotImplementedError(
                f"wrong answer, not timed: max relative explained-variance error "
                f"{detail['max_rel_error']:.3g} > {MAX_REL_ERROR:g}")
        return detail


class EigenLayerFit(_LayerCase):
    """Time and peak memory of ``fit`` with ``K = 16`` components."""

    number = 1
    repeat = (1, 7, 30.0)
    warmup_time = 0  # setup warms up instead

    def setup(self, checks, backend, case, impl):
        self._accurate(checks, backend, case, impl)
        self.fit = _fitter(backend, case, impl)
        self.fit()   # warm-up: Numba's cache, JAX compilation, thread pools

    def time_fit(self, checks, backend, case, impl):
        self.fit()

    def peakmem_fit(self, checks, backend, case, impl):
        self.fit()


class EigenLayerWork(_LayerCase):
    """Largest relative error of ``explained_variance_`` of the verified fit."""

    def setup(self, checks, backend, case, impl):
        self.check = self._checked(checks, backend, case, impl)

    def track_max_rel_error(self, checks, backend, case, impl):
        return self.check["max_rel_error"]

    track_max_rel_error.unit = "relative error"
