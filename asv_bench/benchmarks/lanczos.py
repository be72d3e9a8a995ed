"""Thick-restart Lanczos (:func:`eigarray.eigsh`) against ARPACK, on every backend.

Every benchmark is parametrised over the backend, the problem size and the
implementation (eigarray or its peer), so that ratios come from one run
(scipy's ``benchmarks/benchmarks/sparse_linalg_svds.py`` keeps its baseline
the same way).  The problem is the anisotropic 2-D Dirichlet Laplacian
``kron(I, T) + 0.7 kron(T, I)`` on a ``size x size`` grid, whose eigenvalues
are known exactly; the request is the ``k=10`` largest (``which='LA'``) to
``tol=1e-8``, from the starting vector drawn with ``rng=0``.

A wrong answer never posts a time: the shared ``setup_cache`` solves every
combination once, and :class:`Lanczos` skips (raises ``NotImplementedError``
in ``setup``) any combination whose largest relative eigenvalue error exceeds
``1e-6`` or that did not converge.  The same verified solve supplies the
numbers of :class:`LanczosWork` (operator applications, eigenvalue error), so
those cost no solve of their own; they live in their own class so that their
``setup`` needs no warm-up.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

# ``eigarray`` comes through ``common``, which finds the checkout when the
# "existing" environment has no installed eigarray.
from .common import (
    BACKENDS,
    anisotropic_laplacian,
    eigarray,
    synchronize,
    to_backend_operator,
    to_host,
)

K = 10
WHICH = "LA"
TOL = 1e-8
SEED = 0
#: A combination whose largest relative eigenvalue error exceeds this is
#: not timed (it would be a time for a wrong answer).
MAX_REL_ERROR = 1e-6

SIZES = [32, 64]  # grid side; the matrix has order size**2
IMPLS = ["eigarray", "scipy-arpack"]


def _count_matvecs(A):
    """``(scipy LinearOperator, counter)``: ``A`` with its products counted."""
    from scipy.sparse.linalg import LinearOperator

    counter = [0]

    def matvec(x):
        counter[0] += 1
        return A @ x

    return LinearOperator(A.shape, matvec=matvec, dtype=A.dtype), counter


def _solver(backend: str, size: int, impl: str):
    """A callable ``solve(maxiter=None)`` that runs the benchmarked solve once, synchronised.

    Raises ``NotImplementedError`` for combinations that do not exist.
    """
    A, _ = anisotropic_laplacian(size)
    if impl == "scipy-arpack":
        if backend != "numpy":
            raise NotImplementedError("ARPACK runs on NumPy/scipy input only")
        from scipy.sparse.linalg import eigsh as arpack_eigsh

        v0 = np.random.default_rng(SEED).standard_normal(A.shape[0])  # eigarray's own start

        def solve(maxiter=None):
            return arpack_eigsh(A, k=K, which=WHICH, tol=TOL, v0=v0, maxiter=maxiter)

        return solve
    if impl != "eigarray":
        raise NotImplementedError(f"unknown implementation {impl!r}")
    op = to_backend_operator(A, backend)

    def solve(maxiter=None):
        result = eigarray.eigsh(op, k=K, which=WHICH, tol=TOL, rng=SEED, maxiter=maxiter)
        synchronize(result.eigenvectors)
        return result

    return solve


def _check(backend: str, size: int, impl: str) -> dict:
    """Solve once; the largest relative eigenvalue error and the product count."""
    A, exact = anisotropic_laplacian(size)
    wanted = exact[-K:]
    if impl == "scipy-arpack" and backend == "numpy":
        from scipy.sparse.linalg import eigsh as arpack_eigsh

        op, counter = _count_matvecs(A)
        v0 = np.random.default_rng(SEED).standard_normal(A.shape[0])
        w, _ = arpack_eigsh(op, k=K, which=WHICH, tol=TOL, v0=v0)
        n_matvec = counter[0]
    elif impl == "scipy-arpack":
        raise NotImplementedError("ARPACK runs on NumPy/scipy input only")
    else:
        op = to_backend_operator(A, backend)
        result = eigarray.eigsh(op, k=K, which=WHICH, tol=TOL, rng=SEED,
                                on_nonconvergence="raise")
        synchronize(result.eigenvectors)
        w, n_matvec = to_host(result.eigenvalues), result.info.n_matvec
    w = np.sort(np.asarray(w, dtype=np.float64))
    error = float(np.max(np.abs(w - wanted) / np.abs(wanted)))
    return {"max_rel_error": error, "n_matvec": int(n_matvec)}


class _LanczosCase:
    """Parameters and the one verified solve per combination, shared by the classes below."""

    param_names = ["backend", "size", "impl"]
    params = [list(BACKENDS), SIZES, IMPLS]
    timeout = 300

    def setup_cache(self):
        """Solve every combination once: ``{(backend, size, impl): (status, detail)}``.

        Both classes inherit this one function, so asv runs it once for both.
        """
        from scipy.sparse.linalg import ArpackNoConvergence

        checks = {}
        for backend, size, impl in itertools.product(*self.params):
            try:
                checks[backend, size, impl] = ("ok", _check(backend, size, impl))
            except NotImplementedError as exc:
                checks[backend, size, impl] = ("skip", str(exc))
            except (eigarray.NoConvergence, ArpackNoConvergence) as exc:
                checks[backend, size, impl] = ("skip", f"did not converge: {exc}")
            except Exception as exc:  # noqa: BLE001 - a crash fails this combination in setup
                checks[backend, size, impl] = ("error", f"{type(exc).__name__}: {exc}")
        return checks

    setup_cache.timeout = 900

    @staticmethod
    def _checked(checks, backend, size, impl) -> dict:
        """The verified solve of this combination; skips what does not exist or failed."""
        status, detail = checks[backend, size, impl]
        if status == "skip":
            raise NotImplementedError(detail)
        if status == "error":
            raise RuntimeError(f"eigsh failed for {backend}/{size}/{impl}: {detail}")
        return detail


class Lanczos(_LanczosCase):
    """Time and peak memory of ``eigsh(A, k=10, which='LA', tol=1e-8)``.

    Combinations whose answer misses ``MAX_REL_ERROR`` are skipped, not timed.
    """

    number = 1  # one solve is far above timer resolution
    repeat = (1, 5, 30.0)
    warmup_time = 0  # setup warms up instead (JIT compilation, caches)

    def setup(self, checks, backend, size, impl):
        detail = self._checked(checks, backend, size, impl)
        if detail["max_rel_error"] > MAX_REL_ERROR:
            raise NotImplementedError(
                f"wrong answer, not timed: max relative eigenvalue error "
                f"{detail['max_rel_error']:.3g} > {MAX_REL_ERROR:g}")
        self.solve = _solver(backend, size, impl)
        if impl == "eigarray":
            # Warm-up, one restart of the very operator timed: Numba kernels
            # loaded from their cache, JAX per-shape programs compiled, torch
            # kernels initialised.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
                self.solve(maxiter=1)

    def time_eigsh(self, checks, backend, size, impl):
        self.solve()

    def peakmem_eigsh(self, checks, backend, size, impl):
        self.solve()


class LanczosWork(_LanczosCase):
    """Operator applications and eigenvalue error of the verified solve.

    Posted even when the error exceeds ``MAX_REL_ERROR``, so that an accuracy
    regression shows up as a jump here while its timings go missing.
    """

    def setup(self, checks, backend, size, impl):
        self.check = self._checked(checks, backend, size, impl)

    def track_n_matvec(self, checks, backend, size, impl):
        return self.check["n_matvec"]

    track_n_matvec.unit = "matvecs"

    def track_max_rel_error(self, checks, backend, size, impl):
        return self.check["max_rel_error"]

    track_max_rel_error.unit = "relative error"
