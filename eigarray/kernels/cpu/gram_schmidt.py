"""Numba kernels for the classical Gram-Schmidt stages of a Lanczos step.

A Lanczos step orthogonalises its new block ``W`` (``r`` rows of length
``n``, a few) in stages: the coefficients known by symmetry are subtracted,
the coefficients on the block it was made from are measured and
subtracted, then those on the locked rows, and the block is
orthonormalised.  With NumPy each stage is a BLAS-2 call per row of ``W``,
and each reads ``W`` again.  Here the columns are walked in chunks of
``CHUNK`` entries that stay in cache while every coefficient row is
applied to them, and each measurement is taken in the same sweep as the
subtraction before it:

* :func:`subtract_measure`: ``W -= K P``, then ``C += conj(M) Wᵀ``, the
  coefficients of the updated ``W`` on the rows of ``M``;
* :func:`subtract_gram`: ``W -= Cᵀ M``, then ``G += conj(W) Wᵀ``, the Gram
  matrix that orthonormalises ``W`` by a Cholesky factor;
* :func:`transform_rows`: ``W = T W`` for a lower triangular ``T`` (the
  inverse of that factor's transpose).

A stage is measured after the previous stage's subtraction: measuring the
block and the locked rows in one sweep would leave in ``W`` what the
block's subtraction brings back along the locked rows (the block is
orthogonal to them only to rounding), and that grows by ``|α / β|`` a step.

Each kernel works on the column range ``c0:c1`` and adds to the
accumulators it is given (float64 or complex128: products and sums are
formed in that precision, float32 data included).  The kernels are
serial; their ``_chunks`` forms run them on their column chunks in
parallel, for an iteration that makes no threaded BLAS call between them
(a Numba thread pool woken between two BLAS calls competes with the BLAS
threads still spinning).  Sums are reassociated (``fastmath`` 'reassoc'
only: no flush of subnormals, no change to NaN or Inf handling), as a BLAS
dot product reassociates its sum into SIMD lanes, so that they vectorise;
each chunk's sum is added to its accumulator once.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

CHUNK = 4096

_REASSOC = {"reassoc"}


@njit(cache=True, fastmath=_REASSOC)
def _dot(x, y, like):
    """``Σ conj(x[i]) y[i]`` with products and sum in the dtype of the array ``like``."""
    t = like.dtype.type
    acc = t(0)
    for i in range(x.shape[0]):
        acc += np.conj(t(x[i])) * t(y[i])
    return acc


@njit(cache=True, fastmath=_REASSOC)
def _axpy(y, a, x):
    """``y -= a x``."""
    for i in range(y.shape[0]):
        y[i] -= a * x[i]


@njit(cache=True, fastmath=_REASSOC)
def subtract_measure(W, K, P, M, C, c0, c1):
    """On columns ``c0:c1``: ``W -= K P``, then ``C += conj(M) Wᵀ``.

    ``K`` is ``(r, q)`` for the ``q`` rows of ``P``, ``C`` is ``(m, r)``
    for the ``m`` rows of ``M``.
    """
    r = W.shape[0]
    for s0 in range(c0, c1, CHUNK):
        s1 = min(c1, s0 + CHUNK)
        for t in range(P.shape[0]):
            p = P[t, s0:s1]
            for c in range(r):
                _axpy(W[c, s0:s1], K[c, t], p)
        for a in range(M.shape[0]):
            m = M[a, s0:s1]
            for c in range(r):
                C[a, c] += _dot(m, W[c, s0:s1], C)


@njit(cache=True, fastmath=_REASSOC)
def subtract_gram(W, C, M, G, c0, c1):
    """On columns ``c0:c1``: ``W -= Cᵀ M``, then ``G += conj(W) Wᵀ`` (upper triangle)."""
    r = W.shape[0]
    for s0 in range(c0, c1, CHUNK):
        s1 = min(c1, s0 + CHUNK)
        for a in range(M.shape[0]):
            m = M[a, s0:s1]
            for c in range(r):
                _axpy(W[c, s0:s1], C[a, c], m)
        for c in range(r):
            w = W[c, s0:s1]
            for d in range(c + 1):
                G[d, c] += _dot(W[d, s0:s1], w, G)


@njit(cache=True, fastmath=_REASSOC)
def transform_rows(W, T, c0, c1):
    """On columns ``c0:c1``: ``W = T W`` for a lower triangular ``(r, r)`` ``T``.

    The rows are formed last to first, so each reads rows not yet replaced.
    """
    r = W.shape[0]
    for s0 in range(c0, c1, CHUNK):
        s1 = min(c1, s0 + CHUNK)
        for c in range(r - 1, -1, -1):
            w = W[c, s0:s1]
            tcc = T[c, c]
            for i in range(w.shape[0]):
                w[i] *= tcc
            for d in range(c):
                _axpy(w, -T[c, d], W[d, s0:s1])


# Parallel forms: the chunks of ``CHUNK`` columns are shared out among the
# threads, each chunk's sums going to its own slab ``[q]`` of ``scratch``;
# the slabs are then added to the accumulators in chunk order, as the serial
# kernels add each chunk's sum: both forms give the same bits, whatever the
# thread count.


@njit(cache=True)
def _add_in_order(scratch, out):
    for q in range(scratch.shape[0]):
        for a in range(out.shape[0]):
            for c in range(out.shape[1]):
                out[a, c] += scratch[q, a, c]


@njit(parallel=True, cache=True, fastmath=_REASSOC)
def subtract_measure_chunks(W, K, P, M, C, scratch):
    """:func:`subtract_measure` on all columns, the chunks in parallel
    (``scratch``: zeros, a slab per chunk of ``CHUNK`` columns, shaped as ``C``)."""
    n = W.shape[1]
    for q in prange(scratch.shape[0]):
        subtract_measure(W, K, P, M, scratch[q], q * CHUNK, min(n, (q + 1) * CHUNK))
    _add_in_order(scratch, C)


@njit(parallel=True, cache=True, fastmath=_REASSOC)
def subtract_gram_chunks(W, C, M, G, scratch):
    """:func:`subtract_gram` on all columns, the chunks in parallel (``scratch`` as
    for :func:`subtract_measure_chunks`, shaped as ``G``)."""
    n = W.shape[1]
    for q in prange(scratch.shape[0]):
        subtract_gram(W, C, M, scratch[q], q * CHUNK, min(n, (q + 1) * CHUNK))
    _add_in_order(scratch, G)


@njit(parallel=True, cache=True, fastmath=_REASSOC)
def transform_rows_chunks(W, T):
    """:func:`transform_rows` on all columns, the chunks in parallel."""
    n = W.shape[1]
    for q in prange((n + CHUNK - 1) // CHUNK):
        transform_rows(W, T, q * CHUNK, min(n, (q + 1) * CHUNK))
