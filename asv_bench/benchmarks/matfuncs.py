"""Batched inverse square root (``eigarray.inv_sqrtm``) against the backends' own ``eigh``.

``TimeInvSqrtm`` times one call over backend x n x batch for eigarray and
for the backend's ``eigh`` followed by the same reconstruction in the
backend's matmul (``impl='native'``), so the two compare as a ratio from one
run; ``TrackInvSqrtm`` records eigarray's worst ``||R A R - I||_F / (n eps)``
(threshold 30).  A result that misses the standard skips its timing.
"""

from __future__ import annotations

import functools

import array_api_compat
import numpy as np

from .common import BACKENDS, require_backend, synchronize, to_host
from .jacobi import _native, _to_backend

import eigarray  # noqa: E402  (common puts the checkout on the path if needed)

CASES = ["16x10000", "64x500"]   # n x batch
IMPLS = ["eigarray", "native"]
THRESHOLD = 30.0


@functools.lru_cache(maxsize=None)
def spd_stack(n: int, batch: int) -> np.ndarray:
    """Seeded float64 stack of covariance-like SPD matrices (append-only builder)."""
    X = np.random.default_rng(n).standard_normal((batch, n, 2 * n))
    A = X @ np.swapaxes(X, -1, -2) / (2 * n) + 0.1 * np.eye(n)
    return (A + np.swapaxes(A, -1, -2)) / 2


def _native_inv_sqrtm(backend: str):
    eigh = _native(backend)

    def inv_sqrtm(A):
        xp = array_api_compat.array_namespace(A)
        w, V = eigh(A)
        W = V * (w ** -0.25)[..., None, :]
        X = W @ xp.matrix_transpose(W)
        return (X + xp.matrix_transpose(X)) / 2

    return inv_sqrtm


def _ratio(A: np.ndarray, R) -> float:
    k = min(256, A.shape[0])
    A, R = A[:k], to_host(R)[:k]
    n = A.shape[-1]
    err = np.linalg.norm(R @ A @ R - np.eye(n), axis=(1, 2)) / (n * np.finfo(np.float64).eps)
    return float(err.max())


class TimeInvSqrtm:
    params = [list(BACKENDS), CASES, IMPLS]
    param_names = ["backend", "case", "impl"]
    timeout = 300

    def setup(self, backend, case, impl):
        require_backend(backend)
        n, batch = (int(x) for x in case.split("x"))
        self.host = spd_stack(n, batch)
        self.A = _to_backend(self.host, backend)
        self.fn = eigarray.inv_sqrtm if impl == "eigarray" else _native_inv_sqrtm(backend)
        ratio = _ratio(self.host, self.fn(self.A))     # compiles, and checks the answer
        if ratio >= THRESHOLD:
            raise NotImplementedError(f"inaccurate result: ratio {ratio:.3g}")

    def time_inv_sqrtm(self, backend, case, impl):
        synchronize(self.fn(self.A))


class TrackInvSqrtm:
    params = [list(BACKENDS), CASES]
    param_names = ["backend", "case"]
    timeout = 300
    unit = "LAPACK ratio"

    def setup(self, backend, case):
        require_backend(backend)
        n, batch = (int(x) for x in case.split("x"))
        self.host = spd_stack(n, batch)
        self.R = eigarray.inv_sqrtm(_to_backend(self.host, backend))

    def track_identity_ratio(self, backend, case):
        return _ratio(self.host, self.R)
