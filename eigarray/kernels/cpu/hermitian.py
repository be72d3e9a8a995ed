"""Numba kernels for ``V diag(f) Vᴴ`` over a stack of small matrices.

The reconstruction step of a matrix function (:mod:`eigarray._matfuncs`):
given eigenvectors ``V`` and weights, ``W Wᴴ`` with ``W = V diag(h)``
(``squared``, for ``f = h² >= 0``) or ``V diag(f) Vᴴ``.  NumPy's batched
matmul hands each small product to BLAS on its own, at a per-call cost
that dwarfs a 16 x 16 product, and the weighting and the symmetrisation
are passes of their own; here one thread takes a run of matrices, builds
the weighted transpose in a scratch block that stays in cache, and forms
each row of the result as a sum of scaled rows (the inner loop runs along
a contiguous row, without reassociation, so it vectorises and keeps
BLAS's order of summation).  The upper triangle is mirrored into the
lower, so the result is Hermitian to the last bit, with a real diagonal.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _one(V, f, squared, X, Wt, Ut, acc):
    n = V.shape[0]
    for i in range(n):
        for k in range(n):
            w = V[i, k] * f[k]
            Wt[k, i] = w
            Ut[k, i] = np.conj(w) if squared else np.conj(V[i, k])
    for i in range(n):
        acc[:] = 0
        for k in range(n):
            a = Wt[k, i]
            for j in range(n):      # the whole row: a loop that vectorises
                acc[j] += a * Ut[k, j]
        X[i, i] = acc[i].real
        for j in range(i + 1, n):
            X[i, j] = acc[j]
            X[j, i] = np.conj(acc[j])


@njit(cache=True)
def _run(V, f, squared, X, b0, b1):
    n = V.shape[-1]
    Wt = np.empty((n, n), dtype=V.dtype)
    Ut = np.empty((n, n), dtype=V.dtype)
    acc = np.empty(n, dtype=V.dtype)
    for b in range(b0, b1):
        _one(V[b], f[b], squared, X[b], Wt, Ut, acc)


@njit(cache=True)
def hermitian_product_serial(V, f, squared, X):
    """``X[b] = V[b] diag(f[b]) V[b]ᴴ`` (``W Wᴴ``, ``W = V[b] diag(f[b])``, if ``squared``)."""
    _run(V, f, squared, X, 0, V.shape[0])


@njit(parallel=True, cache=True)
def hermitian_product(V, f, squared, X, n_chunks):
    """:func:`hermitian_product_serial` over ``n_chunks`` runs of matrices, in parallel."""
    B = V.shape[0]
    for c in prange(n_chunks):
        _run(V, f, squared, X, c * B // n_chunks, (c + 1) * B // n_chunks)
