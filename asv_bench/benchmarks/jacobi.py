"""Batched Jacobi (``eigarray.eigh_batched``) against the backends' own ``eigh``.

``TimeEighBatched`` times one call over backend x n x batch for eigarray and
for the backend's LAPACK/cuSOLVER ``eigh`` (``impl``), so the two compare as
a ratio from one run; ``TrackEighBatched`` records the worst LAPACK ratios
(scaled residual and orthogonality, threshold 30) of eigarray's result.  A
result that misses the accuracy standard skips its timing.
"""

from __future__ import annotations

import functools

import numpy as np

from .common import BACKENDS, require_backend, synchronize, to_host

import eigarray  # noqa: E402  (common puts the checkout on the path if needed)

CASES = ["3x100000", "8x20000", "32x2000", "64x500"]   # n x batch
IMPLS = ["eigarray", "native"]
THRESHOLD = 30.0


@functools.lru_cache(maxsize=None)
def symmetric_stack(n: int, batch: int) -> np.ndarray:
    """Random symmetric float64 stack, seeded (append-only builder)."""
    X = np.random.default_rng(0).standard_normal((batch, n, n))
    return (X + np.swapaxes(X, -1, -2)) / 2


def _to_backend(A: np.ndarray, backend: str):
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


def _native(backend: str):
    if backend == "numpy":
        return np.linalg.eigh
    if backend == "torch":
        import torch

        return torch.linalg.eigh
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.linalg.eigh
    import cupy

    return cupy.linalg.eigh


def _ratios(A: np.ndarray, w, V, eps: float) -> tuple[float, float]:
    w, V = to_host(w), to_host(V)
    n = A.shape[-1]
    k = min(256, A.shape[0])
    R = np.einsum("bij,bjk->bik", A[:k], V[:k]) - V[:k] * w[:k, None, :]
    anorm = np.linalg.norm(A[:k], axis=(1, 2))
    res = np.linalg.norm(R, axis=(1, 2)) / (n * anorm * eps)
    G = np.einsum("bji,bjk->bik", V[:k], V[:k]) - np.eye(n)
    orth = np.linalg.norm(G, axis=(1, 2)) / (n * eps)
    return float(res.max()), float(orth.max())


class TimeEighBatched:
    params = [list(BACKENDS), CASES, IMPLS]
    param_names = ["backend", "case", "impl"]
    timeout = 300

    def setup(self, backend, case, impl):
        require_backend(backend)
        n, batch = (int(x) for x in case.split("x"))
        self.host = symmetric_stack(n, batch)
        self.A = _to_backend(self.host, backend)
        self.fn = eigarray.eigh_batched if impl == "eigarray" else _native(backend)
        w, V = self.fn(self.A)          # compiles, and checks the answer
        r, o = _ratios(self.host, w, V, np.finfo(np.float64).eps)
        if r >= THRESHOLD or o >= THRESHOLD:
            raise NotImplementedError(f"inaccurate result: ratios {r:.3g}, {o:.3g}")

    def time_eigh(self, backend, case, impl):
        w, V = self.fn(self.A)
        synchronize(V)


class TrackEighBatched:
    params = [list(BACKENDS), CASES]
    param_names = ["backend", "case"]
    timeout = 300
    unit = "LAPACK ratio"

    def setup(self, backend, case):
        require_backend(backend)
        n, batch = (int(x) for x in case.split("x"))
        self.host = symmetric_stack(n, batch)
        self.res = eigarray.eigh_batched(_to_backend(self.host, backend))

    def track_residual_ratio(self, backend, case):
        return _ratios(self.host, *self.res, np.finfo(np.float64).eps)[0]

    def track_orthogonality_ratio(self, backend, case):
        return _ratios(self.host, *self.res, np.finfo(np.float64).eps)[1]
