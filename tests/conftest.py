"""One backend fixture for the whole suite.

Backends are selected with ``EIGARRAY_TEST_BACKENDS`` (comma-separated names
of :class:`Backend`; default: every one installed).  Test data is drawn on the
host from seeded NumPy generators and moved to the backend with
:func:`to_backend`, so every backend sees the same matrix.
"""

from __future__ import annotations

import enum
import os

import numpy as np
import pytest


class Backend(enum.Enum):
    NUMPY = "numpy"
    NUMPY_READONLY = "numpy_readonly"
    ARRAY_API_STRICT = "array_api_strict"
    TORCH = "torch"
    JAX = "jax"
    CUPY = "cupy"

    @property
    def module(self) -> str:
        return {"numpy_readonly": "numpy"}.get(self.value, self.value)


def _available(b: Backend) -> bool:
    if b is Backend.CUPY:
        try:
            import cupy

            return cupy.cuda.runtime.getDeviceCount() > 0
        except Exception:
            return False
    try:
        __import__(b.module)
    except ImportError:
        return False
    return True


def _selected() -> list[Backend]:
    names = os.environ.get("EIGARRAY_TEST_BACKENDS")
    if names:
        return [Backend(name.strip()) for name in names.split(",") if name.strip()]
    return list(Backend)


def _param(b: Backend):
    marks = [] if _available(b) else [pytest.mark.skip(reason=f"{b.value} is not available")]
    return pytest.param(b, id=b.value, marks=marks)


@pytest.fixture(params=[_param(b) for b in _selected()])
def backend(request) -> Backend:
    b = request.param
    if b is Backend.JAX:
        import jax

        jax.config.update("jax_enable_x64", True)
    return b


def to_backend(a: np.ndarray, backend: Backend):
    """Move host array ``a`` to ``backend`` (same values, same dtype)."""
    a = np.array(a, copy=True)
    if backend is Backend.NUMPY:
        return a
    if backend is Backend.NUMPY_READONLY:
        a.setflags(write=False)
        return a
    if backend is Backend.ARRAY_API_STRICT:
        import array_api_strict

        return array_api_strict.asarray(a)
    if backend is Backend.TORCH:
        import torch

        return torch.from_numpy(a)
    if backend is Backend.JAX:
        import jax.numpy as jnp

        return jnp.asarray(a)
    if backend is Backend.CUPY:
        import cupy

        return cupy.asarray(a)
    raise AssertionError(backend)


def is_backend_array(x, backend: Backend) -> bool:
    """Whether ``x`` is an array of ``backend``'s own type."""
    import array_api_compat as compat

    return {
        Backend.NUMPY: compat.is_numpy_array,
        Backend.NUMPY_READONLY: compat.is_numpy_array,
        Backend.ARRAY_API_STRICT: lambda y: type(y).__module__.startswith("array_api_strict"),
        Backend.TORCH: compat.is_torch_array,
        Backend.JAX: compat.is_jax_array,
        Backend.CUPY: compat.is_cupy_array,
    }[backend](x)


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


def random_hermitian(n, dtype, rng):
    """A random Hermitian ``n x n`` matrix of ``dtype`` (real symmetric for real dtypes)."""
    X = rng.standard_normal((n, n))
    if np.issubdtype(dtype, np.complexfloating):
        X = X + 1j * rng.standard_normal((n, n))
    return ((X + X.conj().T) / 2).astype(dtype)


def reference(A, k, which):
    """The ``k`` eigenvalues of dense ``A`` that ``which`` asks for, ascending (LAPACK)."""
    ev = np.linalg.eigvalsh(A.astype(np.complex128))
    if which == "LA":
        return ev[-k:]
    if which == "SA":
        return ev[:k]
    if which == "LM":
        return np.sort(ev[np.argsort(-np.abs(ev), kind="stable")[:k]])
    return np.sort(np.r_[ev[: k // 2], ev[len(ev) - (k + 1) // 2:]])


def run_script_ok(code: str, *, timeout: float = 120) -> None:
    """Run ``code`` in a fresh interpreter from the repository root, under
    ``timeout`` seconds (a hang fails the test instead of stalling the
    suite), and assert that it exits cleanly and prints ``ok``."""
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
