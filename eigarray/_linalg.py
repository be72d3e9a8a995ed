"""Array-API building blocks shared by the solvers.

Basis storage convention: an orthonormal basis of ``j`` vectors of length
``n`` is held as the *rows* of a ``(j, n)`` array ``B``.  Rows are contiguous,
so projecting onto the basis (``B @ w``) and removing the projection
(``w - h @ B``) are matrix-vector products over one contiguous block, and a
thick restart is one matrix product ``Yᴴ B``.

Host synchronisation: :func:`orthogonalize` brings the ``j`` projection
coefficients and one norm to the host per call; nothing else here does.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_extra as xpx

from . import _namespace as ns

__all__ = [
    "set_rows",
    "orthogonalize",
    "combine_rows",
    "random_vector",
]

# Daniel-Gragg-Kaufman-Stewart criterion: a second Gram-Schmidt pass is needed
# when the first removed more than 1 - 1/sqrt(2) of the vector's norm.
_DGKS = 1.0 / math.sqrt(2.0)


def set_rows(B: Any, idx: Any, values: Any) -> Any:
    """``B[idx, ...] = values`` in place where the namespace allows (JAX: a copy)."""
    return xpx.at(B, (idx, ...)).set(values)


def _project(xp: Any, Bj: Any, w: Any, cplx: bool) -> Any:
    # h = Bj^H w, computed without materialising conj(Bj).
    return xp.conj(Bj @ xp.conj(w)) if cplx else Bj @ w


def orthogonalize(xp: Any, B: Any, j: int, w: Any, *, cplx: bool,
                  norm_before: float | None = None) -> tuple[Any, Any, float]:
    """Orthogonalise ``w`` against the rows ``B[:j]`` by classical Gram-Schmidt.

    One pass over the basis block, and a second one unless the first kept
    more than ``1/sqrt(2)`` of the norm (Daniel, Gragg, Kaufman & Stewart):
    this is what makes classical Gram-Schmidt as good as modified
    Gram-Schmidt to working precision, with matrix-vector products only.

    Parameters
    ----------
    norm_before : float, optional
        ``||w||`` if the caller knows it already.

    Returns
    -------
    w : array
        The orthogonalised vector.
    h : host array, shape (j,)
        Projection coefficients ``B[:j]ᴴ w`` summed over the passes.
    norm_after : float
        ``||w||`` after orthogonalisation (host float).
    """
    hx = ns.numpy_namespace()
    if norm_before is None:
        norm_before = float(xp.linalg.vector_norm(w))
    if j == 0:
        return w, hx.zeros(0), norm_before
    if ns.is_jax_namespace(xp):
        # Fixed shapes, so that JAX compiles each product once, not once per j.
        Bj = B
        mask = xp.astype(xp.arange(B.shape[0]) < j, B.dtype)
    else:
        Bj, mask = B[:j, ...], None
    h = None
    for _ in range(3):
        c = _project(xp, Bj, w, cplx)
        if mask is not None:
            c = c * mask
        w = w - c @ Bj
        ch = ns.to_host_numpy(c)[:j]
        h = hx.asarray(ch, copy=True) if h is None else h + ch
        norm_after = float(xp.linalg.vector_norm(w))
        if norm_after >= _DGKS * norm_before:
            break
        norm_before = norm_after
    return w, h, norm_after


def combine_rows(xp: Any, B: Any, Y: Any, *, start: int, stop: int, chunk: int = 8192) -> Any:
    """Replace ``B[start:start+p]`` by ``Yᵀ B[start:stop]`` (``Y`` is ``(stop-start, p)``).

    For namespaces with in-place writes the product runs over column chunks of
    ``chunk`` entries, so the temporary is ``p x chunk`` instead of ``p x n``.
    ``Y`` lives in namespace ``xp`` already.
    """
    p = Y.shape[1]
    n = B.shape[1]
    Yt = Y.T
    if ns.is_jax_namespace(xp) or n <= chunk:
        return set_rows(B, slice(start, start + p), Yt @ B[start:stop, ...])
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        B[start:start + p, c0:c1] = Yt @ B[start:stop, c0:c1]
    return B


def random_vector(xp: Any, n: int, dtype: Any, rng: Any, device: Any = None) -> Any:
    """A random vector drawn on the host (standard normal) and moved to ``xp``."""
    hx = ns.numpy_namespace()
    if ns.is_complex(xp, dtype):
        x = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    else:
        x = rng.standard_normal(n)
    x = hx.asarray(x, dtype=_host_dtype(dtype))
    out = ns.from_host_numpy(x, xp, like=None)
    out = xp.asarray(out, dtype=dtype)
    if device is not None and ns.device(out) != device:
        out = ns.to_device(out, device)
    return out


def _host_dtype(dtype: Any) -> str:
    name = str(dtype).rsplit(".", 1)[-1]
    return {"complex64": "complex64", "complex128": "complex128",
            "float32": "float32", "float64": "float64"}.get(name, "float64")
