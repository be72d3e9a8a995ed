"""Numba kernel for the first and second moments of a block of rows.

:func:`shift_rows` subtracts a shift from a block of rows of a C-ordered
array into a buffer and adds the shifted rows to running column sums, in
one pass: the rows are read from memory once, and the buffer, small enough
to stay in cache, feeds the matrix product that forms the block's scatter.
Serial on purpose, and free of the GIL: the caller runs one per Python
thread, each thread on its own rows and buffer, with the product that
follows on one BLAS thread; a Numba thread pool woken between two BLAS
calls competes with BLAS threads still spinning (measured 2-7x slower on
2 cores).  Sums are accumulated in float64.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def shift_rows(X, r0, r1, c, out, sums):
    """``out[:r1-r0] = X[r0:r1] - c`` and ``sums += Σ_rows out`` (``sums`` float64)."""
    d = X.shape[1]
    for i in range(r0, r1):
        xi = X[i]
        oi = out[i - r0]
        for j in range(d):
            z = xi[j] - c[j]
            oi[j] = z
            sums[j] += z
