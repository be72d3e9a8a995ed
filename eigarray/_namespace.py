"""Array namespaces, devices, dtypes and DLPack hops.

This is the only module of eigarray that imports ``array_api_compat``.  It
answers, for any input array, which namespace (``xp``) and device it lives on,
which floating dtype a solver works in, what the machine epsilon of that dtype
is, and how to hand the data to a Numba (host) or CUDA (device) kernel without
copying it.  Optional frameworks are recognised through array-api-compat's
``is_*_array`` checks, which look in ``sys.modules`` and never import anything.
"""

from __future__ import annotations

from typing import Any

import array_api_compat as _compat
import numpy as np

is_numpy_array = _compat.is_numpy_array
is_cupy_array = _compat.is_cupy_array
is_torch_array = _compat.is_torch_array
is_jax_array = _compat.is_jax_array
is_dask_array = _compat.is_dask_array
is_array_api_obj = _compat.is_array_api_obj
device = _compat.device
to_device = _compat.to_device
is_numpy_namespace = _compat.is_numpy_namespace
is_cupy_namespace = _compat.is_cupy_namespace
is_torch_namespace = _compat.is_torch_namespace
is_jax_namespace = _compat.is_jax_namespace
is_dask_namespace = _compat.is_dask_namespace
is_array_api_strict_namespace = _compat.is_array_api_strict_namespace

__all__ = [
    "array_namespace",
    "numpy_namespace",
    "working_dtype",
    "dtype_name",
    "dtype_framework",
    "real_dtype",
    "is_complex",
    "eps",
    "to_host_numpy",
    "from_host_numpy",
    "as_numpy_view",
    "as_cupy_view",
    "from_cupy",
    "host_rng",
    "persist",
    "one_column_chunk",
    "is_traced",
    "refuse_traced",
    "complex_from_parts",
]


def is_torch_sparse(x: Any) -> bool:
    """True for a torch tensor with a sparse layout (COO, CSR, CSC, BSR, BSC)."""
    return is_torch_array(x) and str(x.layout) != "torch.strided"


def is_traced(x: Any) -> bool:
    """True for a JAX tracer (under ``jit``, ``vmap`` or ``grad``): its values are unknown."""
    return is_jax_array(x) and any(c.__name__ == "Tracer" for c in type(x).__mro__)


def refuse_traced(x: Any, *, name: str) -> None:
    """A TypeError naming ``name`` for a JAX tracer (solvers branch on values)."""
    if is_traced(x):
        raise TypeError(f"`{name}` is a JAX tracer: eigarray's solvers decide on the values "
                        f"they compute (convergence, checks), so they cannot run under "
                        f"jax.jit, vmap or grad. Call them outside the traced function (on "
                        f"concrete arrays), or through jax.pure_callback.")


def array_namespace(*arrays: Any) -> Any:
    """Return the (array-api-compat wrapped) namespace shared by ``arrays``."""
    return _compat.array_namespace(*arrays)


def numpy_namespace() -> Any:
    """The array-api-compat NumPy namespace."""
    import array_api_compat.numpy as xnp

    return xnp


def is_complex(xp: Any, dtype: Any) -> bool:
    """True when ``dtype`` is a complex floating dtype of ``xp``."""
    return xp.isdtype(dtype, "complex floating")


def real_dtype(xp: Any, dtype: Any) -> Any:
    """The real floating dtype of the same precision as ``dtype``."""
    if dtype == xp.complex64:
        return xp.float32
    if dtype == xp.complex128:
        return xp.float64
    return dtype


def same_namespace(a: Any, b: Any) -> bool:
    """Whether two namespaces are the same module.

    Compared by name, an array-api-compat wrapper (``array_api_compat.torch``)
    as the module it wraps (``torch``): callers pass either.
    """
    def base(m: Any) -> Any:
        name = getattr(m, "__name__", m)
        return name.removeprefix("array_api_compat.") if isinstance(name, str) else name

    return base(a) == base(b)


def working_dtype(xp: Any, dtype: Any, *, name: str = "A") -> Any:
    """The floating dtype a solver works in for an input of ``dtype``.

    Booleans and integers promote to float64 (as ``numpy.linalg`` does),
    float16 and bfloat16 promote to float32 and torch's complex32 to
    complex64 (no solver keeps half precision accurate),
    float32/float64/complex64/complex128 are kept.  NumPy's are returned
    as ``numpy.dtype`` objects (``dtype('float64')``, not the scalar type).

    Raises
    ------
    TypeError
        For any other dtype (extended precision, strings, objects, ...),
        naming the argument.
    """
    if isinstance(dtype, np.dtype) and not dtype.isnative:
        dtype = dtype.newbyteorder("=")         # big-endian data: computed natively
    for keep in ("float32", "float64", "complex64", "complex128"):
        if dtype == getattr(xp, keep, None):
            return _as_numpy_dtype(dtype)
    try:
        if xp.isdtype(dtype, ("bool", "integral")):
            return _as_numpy_dtype(xp.float64)
        half = xp.isdtype(dtype, "real floating") and xp.finfo(dtype).bits < 32
        extended = xp.isdtype(dtype, "real floating") and not half
        # finfo of torch's complex32 describes its float16 parts.
        complex_half = xp.isdtype(dtype, "complex floating") and xp.finfo(dtype).bits < 32
    except (TypeError, ValueError):
        half = extended = complex_half = False
    if half:                                    # float16, bfloat16
        return _as_numpy_dtype(xp.float32)
    if complex_half:                            # torch.complex32
        return xp.complex64
    if extended:
        raise TypeError(f"`{name}` has dtype={dtype}: extended precision is not supported "
                        f"(it would be computed in lower precision); convert to float64.")
    raise TypeError(
        f"`{name}` must have a real or complex floating, integer or boolean "
        f"dtype; got dtype={dtype}."
    )


def _as_numpy_dtype(dtype: Any) -> Any:
    """NumPy's scalar types (``numpy.float64``) as dtypes; other dtypes unchanged."""
    if isinstance(dtype, type) and issubclass(dtype, np.generic):
        return np.dtype(dtype)
    return dtype


# Dtype names shared by the array frameworks (the Array API's, plus the
# half-precision ones that some add): what a dtype is translated by.
_DTYPE_NAMES = frozenset((
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128"))


def dtype_name(dtype: Any) -> str | None:
    """The name (``"float64"``) of a dtype of any framework; None for anything else.

    NumPy reads its own dtypes, JAX's, CuPy's and type names (``float``);
    others (``torch.float64``, ``array_api_strict.float64``) are known by
    the name they print.
    """
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype).rsplit(".", 1)[-1]
    return name if name in _DTYPE_NAMES else None


def dtype_framework(dtype: Any) -> str | None:
    """The top-level module of a dtype that NumPy cannot read (``"torch"``); None otherwise."""
    try:
        np.dtype(dtype)
    except TypeError:
        module = type(dtype).__module__.split(".")[0]
        return None if module == "builtins" else module     # a bad string is no framework's
    return None


def eps(xp: Any, dtype: Any) -> float:
    """Machine epsilon (unit roundoff times two) of ``dtype``."""
    return float(xp.finfo(real_dtype(xp, dtype)).eps)


def to_host_numpy(x: Any) -> np.ndarray:
    """A NumPy copy or view of ``x`` on the host (synchronises for GPU input).

    torch's bfloat16, which NumPy has no dtype for, comes back as float32
    (exactly).
    """
    if isinstance(x, np.ndarray):
        return x
    if is_cupy_array(x):
        return x.get()
    if is_torch_array(x):
        import torch

        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.detach().cpu().resolve_conj().resolve_neg().numpy()
    if is_dask_array(x):
        return np.asarray(x.compute())
    try:
        return np.from_dlpack(x)
    except (BufferError, TypeError, RuntimeError, AttributeError):
        return np.asarray(x)


def from_host_numpy(a: np.ndarray, xp: Any, like: Any = None) -> Any:
    """Move a host NumPy array into namespace ``xp`` on the device of ``like``."""
    if is_numpy_namespace(xp):
        return a
    dev = device(like) if like is not None else None
    if is_torch_namespace(xp):
        import torch

        t = torch.from_numpy(np.ascontiguousarray(a))
        return t if dev is None else t.to(dev)
    out = xp.asarray(a)
    if dev is not None and device(out) != dev:
        out = to_device(out, dev)
    return out


def complex_from_parts(xp: Any, re: Any, im: Any) -> Any:
    """``re + i im`` for real arrays of one shape, with no complex product.

    ``im * 1j`` is a complex product, whose real part ``im * 0`` is NaN where
    ``im`` is infinite; the parts are written as they are instead.
    """
    if is_torch_namespace(xp):
        import torch

        return torch.complex(re, im)
    if is_jax_namespace(xp):
        import jax

        return jax.lax.complex(re, im)
    if is_numpy_namespace(xp) or is_cupy_namespace(xp):
        out = xp.empty(re.shape, dtype=xp.result_type(re.dtype, xp.complex64))
        out.real, out.imag = re, im
        return out
    out = to_host_numpy(re) + 0j
    out.imag = to_host_numpy(im)
    return from_host_numpy(out, xp, like=re)


# torch dtypes that have no NumPy counterpart, so no NumPy view.
_NO_NUMPY_DTYPE = ("torch.bfloat16", "torch.complex32")


def as_numpy_view(x: Any) -> np.ndarray | None:
    """Zero-copy NumPy view of a host array of any DLPack-capable namespace.

    Returns None when ``x`` does not live in host memory (a GPU tensor) or
    cannot be viewed without copying.
    """
    if isinstance(x, np.ndarray):
        return x
    if is_cupy_array(x):
        return None
    if is_torch_array(x):
        if x.device.type != "cpu" or x.requires_grad or str(x.dtype) in _NO_NUMPY_DTYPE:
            return None
        return x.resolve_conj().resolve_neg().numpy()
    try:
        return np.from_dlpack(x)
    except (BufferError, TypeError, RuntimeError, AttributeError):
        return None


def as_cupy_view(x: Any) -> Any:
    """Zero-copy CuPy view of a GPU array of any DLPack-capable namespace.

    Returns None when ``x`` is not in GPU memory or CuPy is not installed.
    """
    if is_cupy_array(x):
        return x
    if is_torch_array(x) and x.device.type != "cuda":
        return None
    if is_numpy_array(x):
        return None
    try:
        import cupy
    except ImportError:
        return None
    try:
        return cupy.from_dlpack(x.detach() if is_torch_array(x) else x)
    except (BufferError, TypeError, RuntimeError, AttributeError, ValueError):
        return None


def from_cupy(x: Any, *, like: Any) -> Any:
    """A CuPy result back in the namespace of ``like`` (torch CUDA: zero-copy DLPack)."""
    if is_torch_array(like):
        import torch

        return torch.from_dlpack(x)
    return x


def check_rng(rng: Any, *, name: str = "rng") -> None:
    """Raise unless ``rng`` is None, a non-negative int, or a NumPy Generator or RandomState."""
    if rng is None or isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"`{name}` must be a non-negative seed; got {name}={rng}.")
        return
    raise TypeError(f"`{name}` must be None, an int, a numpy.random.Generator or a "
                    f"numpy.random.RandomState; got {rng!r}.")


def host_rng(rng: Any, *, name: str = "rng") -> np.random.Generator:
    """Normalise ``rng`` (see :func:`check_rng`) to a ``numpy.random.Generator``."""
    check_rng(rng, name=name)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(rng.randint(0, 2**31 - 1))
    return np.random.default_rng(rng)


def norm2(xp: Any, x: Any) -> Any:
    """Euclidean norm of a vector (0-d array, no host sync)."""
    return xp.linalg.vector_norm(x)


def persist(x: Any) -> Any:
    """A Dask array evaluated once and kept (in a cluster's memory when there is one).

    Iterations persist each block they will read again, so that no step's
    graph holds the steps before it; on a distributed client this returns at
    once (the work is scheduled, not awaited).  Other arrays pass unchanged.
    """
    return x.persist() if is_dask_array(x) else x


def one_column_chunk(x: Any) -> Any:
    """A 2-D Dask array rechunked to a single column chunk, the layout of Dask's tall-skinny QR.

    Other arrays pass unchanged.
    """
    if is_dask_array(x) and x.ndim == 2 and x.numblocks[1] > 1:
        return x.rechunk({1: -1})
    return x
