"""Blocked power iteration (``subspace_iteration``, ``spectral_norm``) against its peers.

Parametrised over backend, size and implementation, as :mod:`.lanczos`:

* :class:`SubspaceIteration` times ``subspace_iteration(A, 10, which='LA',
  tol=1e-8, rng=0)`` on a dense symmetric ``n x n`` matrix ``Q diag(λ) Qᵀ``
  (:func:`eigarray.testing.matrix_with_spectrum`, seed 0) with the known
  eigenvalues ``λ_i = max(0.8**i, 1e-12)``: plain (``impl='eigarray'``), with
  a degree-8 Chebyshev filter (``'eigarray-chebyshev'``), and scipy's ARPACK
  ``eigsh`` (``'scipy-arpack'``, NumPy only, same ``k``, ``which``, ``tol``).
* :class:`SpectralNorm` times the largest singular value of the ``m x n``
  matrix of :mod:`.randomized` (``σ_1 = 1``, ``σ_2 = 0.7``) from a cold start,
  ``spectral_norm(A, n_iter=30, rng=0)`` (``'eigarray'``), against the
  backend's own dense 2-norm (``'native-norm2'``: ``numpy.linalg.norm(A, 2)``,
  ``torch.linalg.matrix_norm(A, 2)``, ``jax.numpy.linalg.norm(A, 2)``,
  ``cupy.linalg.norm(A, 2)``: a full SVD).
* :class:`SpectralNormStep` times the training-loop use: one iteration
  ``spectral_norm(A, n_iter=1, state=state)`` from the converged state.

A wrong answer never posts a time: each timing class skips a combination
whose largest relative eigenvalue / singular-value error exceeds
``MAX_REL_ERROR`` (checked once, in ``setup_cache``).  The ``...Work``
classes post that error and, for ``subspace_iteration``, the operator
applications of the verified solve (ARPACK's counted on a scipy operator).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from .common import BACKENDS, eigarray, require_backend, synchronize, to_host
from .randomized import (
    MAX_REL_ERROR,
    SEED,
    SHAPES,
    _CheckedCase,
    _require,
    _shape,
    decaying_singular_values,
    dense_to_backend,
)

K = 10
WHICH = "LA"
TOL = 1e-8
DECAY = 0.8
CHEBYSHEV_DEGREE = 8
NORM_ITER = 30

SIZES = [300, 1000]
SUBSPACE_IMPLS = ["eigarray", "eigarray-chebyshev", "scipy-arpack"]
NORM_IMPLS = ["eigarray", "native-norm2"]


@functools.lru_cache
def decaying_symmetric(n: int):
    """``(A, eigenvalues)``: float64 symmetric ``n x n``, eigenvalues ``max(0.8**i, 1e-12)``.

    ``eigenvalues`` are ascending.  Treat both as read-only: they are shared.
    """
    from eigarray.testing import matrix_with_spectrum

    lam = np.maximum(DECAY ** np.arange(n, dtype=np.float64), 1e-12)
    A, _ = matrix_with_spectrum(lam, rng=SEED)
    return np.ascontiguousarray(A), np.sort(lam)


def _max_rel_error(w, exact: np.ndarray) -> float:
    w = np.sort(np.asarray(to_host(w), dtype=np.float64))
    return float(np.max(np.abs(w - exact) / np.abs(exact)))


# ----------------------------------------------------------------------------
# subspace_iteration
# ----------------------------------------------------------------------------


def _subspace_solver(backend: str, n: int, impl: str):
    """``(solve, check)``: the timed call (synchronised) and a call returning ``(w, n_matvec)``."""
    A, _ = decaying_symmetric(n)
    if impl == "scipy-arpack":
        if backend != "numpy":
            raise NotImplementedError("ARPACK runs on NumPy/scipy input only")
        from scipy.sparse.linalg import LinearOperator
        from scipy.sparse.linalg import eigsh as arpack_eigsh

        v0 = np.random.default_rng(SEED).standard_normal(n)

        def solve():
            return arpack_eigsh(A, k=K, which=WHICH, tol=TOL, v0=v0)

        def check():
            counter = [0]

            def matvec(x):
                counter[0] += 1 if x.ndim == 1 else x.shape[1]
                return A @ x

            op = LinearOperator(A.shape, matvec=matvec, matmat=matvec, dtype=A.dtype)
            w, _ = arpack_eigsh(op, k=K, which=WHICH, tol=TOL, v0=v0)
            return w, counter[0]

        return solve, check
    if impl not in ("eigarray", "eigarray-chebyshev"):
        raise NotImplementedError(f"unknown implementation {impl!r}")
    _require("subspace_iteration")
    Ab = dense_to_backend(A, backend)
    degree = CHEBYSHEV_DEGREE if impl == "eigarray-chebyshev" else 0

    def run(maxiter=None, on_nonconvergence="warn"):
        res = eigarray.subspace_iteration(Ab, K, which=WHICH, tol=TOL, rng=SEED,
                                          chebyshev_degree=degree, maxiter=maxiter,
                                          on_nonconvergence=on_nonconvergence)
        synchronize(res.eigenvectors)
        return res

    def check():
        res = run(on_nonconvergence="raise")
        return res.eigenvalues, int(res.info.n_matvec)

    run.warmup = lambda: run(maxiter=1)
    return run, check


class _SubspaceCase(_CheckedCase):
    param_names = ["backend", "n", "impl"]
    params = [list(BACKENDS), SIZES, SUBSPACE_IMPLS]

    def setup_cache(self):
        return self._solve_all()

    setup_cache.timeout = 900

    @staticmethod
    def _check(backend, n, impl) -> dict:
        _, check = _subspace_solver(backend, n, impl)
        w, n_matvec = check()
        _, lam = decaying_symmetric(n)
        return {"max_rel_error": _max_rel_error(w, lam[-K:]), "n_matvec": n_matvec}


class SubspaceIteration(_SubspaceCase):
    """Time and peak memory of ``subspace_iteration(A, 10, which='LA', tol=1e-8)``."""

    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0

    def setup(self, checks, backend, n, impl):
        self._accurate(checks, backend, n, impl)
        self.solve, _ = _subspace_solver(backend, n, impl)
        warmup = getattr(self.solve, "warmup", self.solve)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", getattr(eigarray, "ConvergenceWarning", Warning))
            warmup()

    def time_subspace_iteration(self, checks, backend, n, impl):
        self.solve()

    def peakmem_subspace_iteration(self, checks, backend, n, impl):
        self.solve()


class SubspaceIterationWork(_SubspaceCase):
    """Operator applications and eigenvalue error of the verified solve."""

    def setup(self, checks, backend, n, impl):
        self.check = self._checked(checks, backend, n, impl)

    def track_n_matvec(self, checks, backend, n, impl):
        return self.check["n_matvec"]

    track_n_matvec.unit = "matvecs"

    def track_max_rel_error(self, checks, backend, n, impl):
        return self.check["max_rel_error"]

    track_max_rel_error.unit = "relative error"


# ----------------------------------------------------------------------------
# spectral_norm
# ----------------------------------------------------------------------------


def _native_norm2(backend: str):
    if backend == "numpy":
        return lambda A: np.linalg.norm(A, 2)
    if backend == "torch":
        import torch

        return lambda A: torch.linalg.matrix_norm(A, 2)
    if backend == "jax":
        import jax.numpy as jnp

        return lambda A: jnp.linalg.norm(A, 2)
    import cupy

    return lambda A: cupy.linalg.norm(A, 2)


def _norm_solver(backend: str, shape: str, impl: str):
    """The timed call, synchronised, returning the estimate of ``σ_1``."""
    A, _ = decaying_singular_values(*_shape(shape))
    Ab = dense_to_backend(A, backend)
    if impl == "native-norm2":
        norm2 = _native_norm2(backend)

        def solve():
            sigma = norm2(Ab)
            synchronize(sigma)
            return sigma

        return solve
    if impl != "eigarray":
        raise NotImplementedError(f"unknown implementation {impl!r}")
    _require("spectral_norm")

    def solve():
        sigma, state = eigarray.spectral_norm(Ab, n_iter=NORM_ITER, rng=SEED)
        synchronize(sigma)
        return sigma

    return solve


def _norm_error(sigma, exact: float) -> float:
    return float(abs(float(to_host(sigma)) - exact) / exact)


class _NormCase(_CheckedCase):
    param_names = ["backend", "shape", "impl"]
    params = [list(BACKENDS), SHAPES, NORM_IMPLS]

    def setup_cache(self):
        return self._solve_all()

    setup_cache.timeout = 900

    @staticmethod
    def _check(backend, shape, impl) -> dict:
        _, sigma = decaying_singular_values(*_shape(shape))
        return {"max_rel_error": _norm_error(_norm_solver(backend, shape, impl)(), sigma[0])}


class SpectralNorm(_NormCase):
    """Time of the 2-norm: 30 power iterations from a cold start, or the native dense norm."""

    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0

    def setup(self, checks, backend, shape, impl):
        self._accurate(checks, backend, shape, impl)
        self.solve = _norm_solver(backend, shape, impl)
        self.solve()

    def time_spectral_norm(self, checks, backend, shape, impl):
        self.solve()


class SpectralNormWork(_NormCase):
    """Relative error of the verified 2-norm."""

    def setup(self, checks, backend, shape, impl):
        self.check = self._checked(checks, backend, shape, impl)

    def track_max_rel_error(self, checks, backend, shape, impl):
        return self.check["max_rel_error"]

    track_max_rel_error.unit = "relative error"


class SpectralNormStep:
    """One persistent power iteration, ``spectral_norm(A, n_iter=1, state=state)``.

    The state is the converged one of a cold ``n_iter=30`` call; the step is
    not timed when its estimate misses ``MAX_REL_ERROR``.
    """

    param_names = ["backend", "shape"]
    params = [list(BACKENDS), SHAPES]
    number = 10
    repeat = (1, 10, 10.0)
    warmup_time = 0
    timeout = 120

    def setup(self, backend, shape):
        require_backend(backend)
        _require("spectral_norm")
        A, sigma = decaying_singular_values(*_shape(shape))
        self.A = dense_to_backend(A, backend)
        _, self.state = eigarray.spectral_norm(self.A, n_iter=NORM_ITER, rng=SEED)
        est, _ = eigarray.spectral_norm(self.A, n_iter=1, state=self.state)   # warm-up
        error = _norm_error(est, sigma[0])
        if error > MAX_REL_ERROR:
            raise NotImplementedError(
                f"wrong answer, not timed: relative error {error:.3g} > {MAX_REL_ERROR:g}")

    def time_spectral_norm_step(self, backend, shape):
        sigma, _ = eigarray.spectral_norm(self.A, n_iter=1, state=self.state)
        synchronize(sigma)
