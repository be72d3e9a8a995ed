"""The one place that picks a Numba CPU kernel, a numba-cuda kernel or Array API.

Algorithm modules never import a kernel: they call the functions here, which
look at the arrays they are given and choose.  Numba and numba-cuda are imported
on the first call that needs them, never at ``import eigarray``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["csr_product"]


def _csr_kernels():
    from .kernels.cpu import csr

    return csr


# Below this many multiply-adds a product runs on one thread: starting a
# parallel region costs more than the work.
_PARALLEL_MIN_WORK = 100_000


def _num_threads(work: int) -> int:
    if work < _PARALLEL_MIN_WORK:
        return 1
    import numba

    return numba.get_num_threads()


def csr_product(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, X: Any,
                n_rows: int) -> np.ndarray:
    """``A @ X`` for a host CSR matrix and a NumPy vector or block ``X``.

    Runs the parallel Numba kernel (threads follow ``numba.set_num_threads``).
    """
    kernels = _csr_kernels()
    dtype = np.result_type(data.dtype, X.dtype)
    if X.ndim == 1:
        y = np.empty(n_rows, dtype=dtype)
        kernels.csr_matvec(indptr, indices, data, X, y, _num_threads(data.shape[0]))
        return y
    X = np.ascontiguousarray(X)
    Y = np.empty((n_rows, X.shape[1]), dtype=dtype)
    kernels.csr_matmat(indptr, indices, data, X, Y, _num_threads(data.shape[0] * X.shape[1]))
    return Y
