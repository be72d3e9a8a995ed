"""Randomized SVD and ``svds`` against scikit-learn, torch and ARPACK, on every backend.

Every benchmark is parametrised over the backend, the matrix shape and the
implementation (eigarray or its peer), so that ratios come from one run, as
in :mod:`.lanczos`.  The problem is an ``m x n`` matrix ``U diag(σ) Vᵀ`` with
Haar-random orthonormal factors (:func:`eigarray.testing.matrix_with_singular_values`,
seed 0) and the known singular values ``σ_i = max(0.7**i, 1e-12)``.

* :class:`RandomizedSVD` times ``randomized_svd(A, 10, n_oversamples=10,
  n_iter=4, random_state=0)`` (``impl='eigarray'``), scikit-learn's
  ``randomized_svd`` with the same arguments (``'sklearn'``, NumPy only) and
  ``torch.svd_lowrank(A, q=20, niter=4)`` (``'torch-lowrank'``, torch only):
  the same ten passes over ``A`` with twenty columns each.
* :class:`Svds` times ``svds(A, k=10, tol=1e-8)`` with each of eigarray's
  solvers (``'eigarray-lanczos'``, ``'eigarray-randomized'``,
  ``'eigarray-power'``) and scipy's ARPACK ``svds`` (``'scipy-arpack'``,
  NumPy only, from the same starting vector).

A wrong answer never posts a time: ``setup_cache`` solves every combination
once and the timing classes skip (``NotImplementedError`` in ``setup``) a
combination whose largest relative error in the ten singular values exceeds
``MAX_REL_ERROR``.  The ``...Work`` classes post that error and the number of
operator applications (products with ``A`` or ``Aᵀ``, counted per column) of
the same verified solve; scikit-learn's and torch's counts are their fixed
schedules ``(2 + 2 n_iter) (k + n_oversamples)``, as neither takes an
operator that could count.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from .common import BACKENDS, eigarray, require_backend, synchronize, to_host

K = 10
N_OVERSAMPLES = 10
N_ITER = 4
SVDS_TOL = 1e-8
SEED = 0
DECAY = 0.7
#: A combination whose largest relative singular-value error exceeds this is
#: not timed (it would be a time for a wrong answer).
MAX_REL_ERROR = 1e-6

SHAPES = ["1000x100", "4000x400"]   # m x n
RSVD_IMPLS = ["eigarray", "sklearn", "torch-lowrank"]
SVDS_IMPLS = ["eigarray-lanczos", "eigarray-randomized", "eigarray-power", "scipy-arpack"]


# ----------------------------------------------------------------------------
# Problem builders (lru_cached, append-only) and backend helpers
# ----------------------------------------------------------------------------


@functools.lru_cache
def decaying_singular_values(m: int, n: int):
    """``(A, sigma)``: float64 ``m x n`` matrix with singular values ``max(0.7**i, 1e-12)``.

    ``sigma`` is descending.  Treat both as read-only: they are shared.
    """
    from eigarray.testing import matrix_with_singular_values

    sigma = np.maximum(DECAY ** np.arange(min(m, n), dtype=np.float64), 1e-12)
    A, _, _ = matrix_with_singular_values(m, n, sigma, rng=SEED)
    return np.ascontiguousarray(A), sigma


def dense_to_backend(A: np.ndarray, backend: str):
    """The dense host array ``A`` as an array of ``backend`` (shared memory where possible)."""
    require_backend(backend)
    if backend == "numpy":
        return A
    if backend == "torch":
        import torch

        return torch.from_numpy(A)
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.asarray(A)
    import cupy

    return cupy.asarray(A)


def counting_operator(A: np.ndarray):
    """``(scipy LinearOperator, counter)``: ``A`` with its products counted per column."""
    from scipy.sparse.linalg import LinearOperator

    counter = [0]

    def count(X):
        counter[0] += 1 if X.ndim == 1 else X.shape[1]

    def matmat(X):
        count(X)
        return A @ X

    def rmatmat(X):
        count(X)
        return A.T @ X

    op = LinearOperator(A.shape, matvec=matmat, rmatvec=rmatmat, matmat=matmat,
                        rmatmat=rmatmat, dtype=A.dtype)
    return op, counter


def _shape(shape: str) -> tuple[int, int]:
    m, n = (int(x) for x in shape.split("x"))
    return m, n


def _require(name: str) -> None:
    if not hasattr(eigarray, name):
        raise NotImplementedError(f"eigarray.{name} is not available in this checkout")


def _max_rel_error(s, sigma: np.ndarray) -> float:
    s = np.sort(np.asarray(to_host(s), dtype=np.float64))[::-1]
    exact = sigma[: s.size]
    return float(np.max(np.abs(s - exact) / exact))


class _CheckedCase:
    """One verified solve per combination in ``setup_cache``, shared by a time and a work class.

    Subclasses define ``params``, ``param_names``, ``_check(*params) -> dict``
    with at least ``max_rel_error``, and ``setup_cache`` returning
    ``self._solve_all()``.
    """

    timeout = 300

    def _solve_all(self) -> dict:
        """``{params: (status, detail)}`` for every combination.

        Each case class calls this from its own ``setup_cache``: asv keys the
        cache by the function's source line, so one inherited ``setup_cache``
        would hand every class the first class's checks.
        """
        checks = {}
        for combo in itertools.product(*self.params):
            try:
                checks[combo] = ("ok", self._check(*combo))
            except NotImplementedError as exc:
                checks[combo] = ("skip", str(exc))
            except Exception as exc:  # noqa: BLE001 - a crash fails this combination in setup
                checks[combo] = ("error", f"{type(exc).__name__}: {exc}")
        return checks

    @staticmethod
    def _checked(checks, *combo) -> dict:
        status, detail = checks[combo]
        if status == "skip":
            raise NotImplementedError(detail)
        if status == "error":
            raise RuntimeError(f"{'/'.join(map(str, combo))} failed: {detail}")
        return detail

    def _accurate(self, checks, *combo) -> dict:
        detail = self._checked(checks, *combo)
        if detail["max_rel_error"] > MAX_REL_ERROR:
            raise NotImplementedError(
                f"wrong answer, not timed: max relative singular-value error "
                f"{detail['max_rel_error']:.3g} > {MAX_REL_ERROR:g}")
        return detail


# ----------------------------------------------------------------------------
# randomized_svd
# ----------------------------------------------------------------------------


def _rsvd_solver(backend: str, shape: str, impl: str):
    """``(solve, n_matvec)``: the benchmarked call, synchronised, and its product count.

    ``solve()`` returns the singular values; ``n_matvec()`` runs once more on
    a counting operator where the implementation accepts one.
    """
    A, _ = decaying_singular_values(*_shape(shape))
    if impl == "sklearn":
        if backend != "numpy":
            raise NotImplementedError("scikit-learn runs on NumPy input only")
        try:
            from sklearn.utils.extmath import randomized_svd
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed") from None

        def solve():
            return randomized_svd(A, K, n_oversamples=N_OVERSAMPLES, n_iter=N_ITER,
                                  random_state=SEED)[1]

        # scikit-learn validates M as an array (no operator to count on); its
        # schedule is fixed: one product to start, two per power iteration, one
        # for B = QᵀM, each with n_components + n_oversamples columns.
        def n_matvec():
            return (2 + 2 * N_ITER) * (K + N_OVERSAMPLES)

        return solve, n_matvec
    if impl == "torch-lowrank":
        if backend != "torch":
            raise NotImplementedError("torch.svd_lowrank runs on torch input only")
        require_backend("torch")
        import torch

        T = dense_to_backend(A, "torch")

        def solve():
            torch.manual_seed(SEED)
            U, S, V = torch.svd_lowrank(T, q=K + N_OVERSAMPLES, niter=N_ITER)
            return S[:K]

        return solve, lambda: (2 + 2 * N_ITER) * (K + N_OVERSAMPLES)
    if impl != "eigarray":
        raise NotImplementedError(f"unknown implementation {impl!r}")
    _require("randomized_svd")
    Ab = dense_to_backend(A, backend)

    def run():
        res = eigarray.randomized_svd(Ab, K, n_oversamples=N_OVERSAMPLES, n_iter=N_ITER,
                                      random_state=SEED)
        synchronize(res[0])
        return res

    return (lambda: run()[1]), (lambda: int(run().info.n_matvec))


class _RandomizedCase(_CheckedCase):
    param_names = ["backend", "shape", "impl"]
    params = [list(BACKENDS), SHAPES, RSVD_IMPLS]

    def setup_cache(self):
        return self._solve_all()

    setup_cache.timeout = 900

    @staticmethod
    def _check(backend, shape, impl) -> dict:
        solve, n_matvec = _rsvd_solver(backend, shape, impl)
        _, sigma = decaying_singular_values(*_shape(shape))
        return {"max_rel_error": _max_rel_error(solve(), sigma), "n_matvec": int(n_matvec())}


class RandomizedSVD(_RandomizedCase):
    """Time and peak memory of ``randomized_svd(A, 10, n_oversamples=10, n_iter=4)``."""

    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0  # setup warms up instead

    def setup(self, checks, backend, shape, impl):
        self._accurate(checks, backend, shape, impl)
        self.solve, _ = _rsvd_solver(backend, shape, impl)
        self.solve()   # warm-up: JAX compilation, torch and BLAS thread pools

    def time_randomized_svd(self, checks, backend, shape, impl):
        synchronize(self.solve())

    def peakmem_randomized_svd(self, checks, backend, shape, impl):
        self.solve()


class RandomizedSVDWork(_RandomizedCase):
    """Products with ``A``/``Aᵀ`` (per column) and singular-value error of the verified solve."""

    def setup(self, checks, backend, shape, impl):
        self.check = self._checked(checks, backend, shape, impl)

    def track_n_matvec(self, checks, backend, shape, impl):
        return self.check["n_matvec"]

    track_n_matvec.unit = "matvecs"

    def track_max_rel_error(self, checks, backend, shape, impl):
        return self.check["max_rel_error"]

    track_max_rel_error.unit = "relative error"


# ----------------------------------------------------------------------------
# svds
# ----------------------------------------------------------------------------


def _svds_solver(backend: str, shape: str, impl: str):
    """``(solve, n_matvec)`` for ``svds(A, k=10, tol=1e-8)``; see :func:`_rsvd_solver`."""
    A, _ = decaying_singular_values(*_shape(shape))
    if impl == "scipy-arpack":
        if backend != "numpy":
            raise NotImplementedError("scipy's svds runs on NumPy/scipy input only")
        from scipy.sparse.linalg import svds as scipy_svds

        v0 = np.random.default_rng(SEED).standard_normal(min(A.shape))

        def solve():
            return scipy_svds(A, k=K, tol=SVDS_TOL, v0=v0, solver="arpack",
                              return_singular_vectors=False)

        def n_matvec():
            op, counter = counting_operator(A)
            scipy_svds(op, k=K, tol=SVDS_TOL, v0=v0, solver="arpack")
            return counter[0]

        return solve, n_matvec
    if not impl.startswith("eigarray-"):
        raise NotImplementedError(f"unknown implementation {impl!r}")
    _require("svds")
    solver = impl.removeprefix("eigarray-")
    Ab = dense_to_backend(A, backend)

    def run():
        res = eigarray.svds(Ab, k=K, tol=SVDS_TOL, solver=solver, rng=SEED)
        synchronize(res[0])
        return res

    return (lambda: run()[1]), (lambda: int(run().info.n_matvec))


class _SvdsCase(_CheckedCase):
    param_names = ["backend", "shape", "impl"]
    params = [list(BACKENDS), SHAPES, SVDS_IMPLS]

    def setup_cache(self):
        return self._solve_all()

    setup_cache.timeout = 900

    @staticmethod
    def _check(backend, shape, impl) -> dict:
        solve, n_matvec = _svds_solver(backend, shape, impl)
        _, sigma = decaying_singular_values(*_shape(shape))
        return {"max_rel_error": _max_rel_error(solve(), sigma), "n_matvec": int(n_matvec())}


class Svds(_SvdsCase):
    """Time and peak memory of ``svds(A, k=10, tol=1e-8)``, per solver."""

    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0

    def setup(self, checks, backend, shape, impl):
        self._accurate(checks, backend, shape, impl)
        self.solve, _ = _svds_solver(backend, shape, impl)
        self.solve()

    def time_svds(self, checks, backend, shape, impl):
        synchronize(self.solve())

    def peakmem_svds(self, checks, backend, shape, impl):
        self.solve()


class SvdsWork(_SvdsCase):
    """Products with ``A``/``Aᵀ`` and singular-value error of the verified ``svds`` solve."""

    def setup(self, checks, backend, shape, impl):
        self.check = self._checked(checks, backend, shape, impl)

    def track_n_matvec(self, checks, backend, shape, impl):
        return self.check["n_matvec"]

    track_n_matvec.unit = "matvecs"

    def track_max_rel_error(self, checks, backend, shape, impl):
        return self.check["max_rel_error"]

    track_max_rel_error.unit = "relative error"
