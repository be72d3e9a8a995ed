"""Problem builders and backend helpers shared by the benchmarks.

Builders are cached with :func:`functools.lru_cache` and are append-only, as
in numpy's ``benchmarks/benchmarks/common.py``: changing a problem changes
what every stored result measured, so a new problem gets a new builder and an
old builder is never edited.

Every problem is built on the host from scipy and moved to the backend, so
every backend (and every peer) sees the same matrix and the same starting
vector (``rng=0``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import warnings

import array_api_compat
import numpy as np

try:
    import eigarray
except ImportError:
    # asv's "existing" environment expects an installed project; fall back to
    # the checkout this suite belongs to (asv_bench/benchmarks/ -> the root)
    # so that `asv check -E existing` also works before `pip install -e .`.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    import eigarray

from eigarray.testing import laplacian_2d

__all__ = [
    "BACKENDS",
    "ANISOTROPY",
    "anisotropic_laplacian",
    "require_backend",
    "to_backend_operator",
    "to_host",
    "synchronize",
]

#: Backends a benchmark may be parametrised over, in this order.
BACKENDS = ("numpy", "torch", "jax", "cupy")

#: Anisotropy of the 2-D Laplacian ``kron(I, T) + a kron(T, I)``: with
#: ``a != 1`` its eigenvalues are simple (no degenerate pairs to blur timings).
ANISOTROPY = 0.7


# ----------------------------------------------------------------------------
# Problem builders (lru_cached, append-only)
# ----------------------------------------------------------------------------


@functools.lru_cache
def anisotropic_laplacian(side: int):
    """``(A, eigenvalues)``: the ``side x side`` Dirichlet Laplacian, anisotropy 0.7.

    ``A`` is a float64 ``scipy.sparse.csr_array`` of order ``side**2``;
    ``eigenvalues`` are all its exact eigenvalues, ascending.  Treat both as
    read-only: they are shared by every caller.
    """
    A, exact = laplacian_2d(side, side, anisotropy=ANISOTROPY)
    A.sort_indices()
    return A, exact


# ----------------------------------------------------------------------------
# Backends
# ----------------------------------------------------------------------------


def require_backend(backend: str) -> None:
    """Raise ``NotImplementedError`` (asv: skipped) when ``backend`` cannot run here."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "numpy":
        return
    if importlib.util.find_spec(backend) is None:
        raise NotImplementedError(f"{backend} is not installed")
    if backend == "jax":
        import jax

        # Benchmarks compare float64 results; JAX needs x64 for that.
        jax.config.update("jax_enable_x64", True)
    if backend == "cupy":
        import cupy

        try:
            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise NotImplementedError("cupy is installed but sees no GPU")
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            raise NotImplementedError(f"cupy is installed but CUDA is unusable: {exc}") from None


def _torch_csr(A):
    import torch

    with warnings.catch_warnings():
        # "Sparse CSR tensor support is in beta state": known, not news.
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(A.indptr.astype(np.int64)),
            torch.from_numpy(A.indices.astype(np.int64)),
            torch.from_numpy(np.ascontiguousarray(A.data)),
            size=A.shape,
            dtype=torch.float64,
            check_invariants=False,
        )


def _jax_operator(A):
    import jax
    import jax.numpy as jnp
    from jax.experimental import sparse as jsparse

    A_bcoo = jsparse.BCOO.from_scipy_sparse(A)
    matvec = jax.jit(lambda x: A_bcoo @ x)
    xp = array_api_compat.array_namespace(jnp.zeros(1, dtype=jnp.float64))
    # Compile the product once here, so that timings do not include it.
    matvec(jnp.zeros(A.shape[0], dtype=jnp.float64)).block_until_ready()
    return matvec, xp


def to_backend_operator(A, backend: str):
    """What a user of ``backend`` would hand to :func:`eigarray.eigsh` for ``A``.

    numpy: the scipy CSR matrix itself; torch: a ``torch.sparse_csr_tensor``;
    jax: a matrix-free :class:`eigarray.LinearOperator` around a jitted
    ``jax.experimental.sparse.BCOO`` product (a dense JAX array would need
    ``n**2`` memory); cupy: a ``cupyx.scipy.sparse.csr_matrix`` on the GPU.

    A fresh :class:`eigarray.LinearOperator` is returned for jax each call, so
    its ``n_matvec`` counter starts at zero.
    """
    require_backend(backend)
    if backend == "numpy":
        return A
    if backend == "torch":
        return _torch_csr(A)
    if backend == "jax":
        matvec, xp = _jax_operator(A)
        return eigarray.aslinearoperator(matvec, shape=A.shape, xp=xp)
    import cupyx.scipy.sparse as cusparse

    return cusparse.csr_matrix(A)


def to_host(x) -> np.ndarray:
    """A host NumPy copy of an array of any backend (synchronises a GPU)."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def synchronize(x) -> None:
    """Wait until the computation producing ``x`` has finished on its device.

    A no-op for NumPy and for torch on the CPU; waits for the current CUDA
    device for CuPy and for torch CUDA tensors, and for JAX (which dispatches
    asynchronously even on the CPU) blocks on the array itself.  Call it on
    the output of every timed call, or the time is that of the launch.
    """
    if x is None or isinstance(x, np.ndarray):
        return
    if array_api_compat.is_cupy_array(x):
        import cupy

        cupy.cuda.Device().synchronize()
    elif array_api_compat.is_torch_array(x):
        if x.device.type == "cuda":
            import torch

            torch.cuda.synchronize(x.device)
    elif array_api_compat.is_jax_array(x):
        x.block_until_ready()
