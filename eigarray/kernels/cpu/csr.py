"""Numba kernels for products with a CSR matrix, parallel over rows.

Row ``i`` of the result depends only on row ``i`` of the matrix, so the rows
are split across threads with ``prange`` and no write is shared.  Sums are
accumulated in float64 (complex128 for complex data), one rounding at the end.
"""

from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True)
def csr_matvec(indptr, indices, data, x, y):
    """``y = A @ x`` for the CSR matrix ``(data, indices, indptr)``."""
    for i in prange(y.shape[0]):
        acc = 0.0
        for jj in range(indptr[i], indptr[i + 1]):
            acc += data[jj] * x[indices[jj]]
        y[i] = acc


@njit(parallel=True, cache=True)
def csr_matmat(indptr, indices, data, X, Y):
    """``Y = A @ X`` for C-contiguous blocks ``X`` (n, p) and ``Y`` (m, p)."""
    p = X.shape[1]
    for i in prange(Y.shape[0]):
        for c in range(p):
            Y[i, c] = 0.0
        for jj in range(indptr[i], indptr[i + 1]):
            a = data[jj]
            j = indices[jj]
            for c in range(p):
                Y[i, c] += a * X[j, c]
