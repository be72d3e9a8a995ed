"""Device functions shared by the CUDA Jacobi kernels.

``rotation`` is Rutishauser's formula from :mod:`eigarray.kernels.rotation`,
shared with the CPU kernel and compiled here once as a CUDA device function.
``round_robin_pair`` is pair ``k`` of round ``r`` of the parallel ordering
(:func:`eigarray._jacobi_reference.round_robin_pairs`).
``left`` and ``right`` apply a rotation ``J = [[c, s e], [-conj(s e), c]]``
to a pair of entries: ``left`` to rows ``p, q`` of ``J^H A``, ``right`` to
columns ``p, q`` of ``A J`` (and of ``V J``).
"""

from __future__ import annotations

from numba import cuda

from ..rotation import rotation as _formula

__all__ = ["left", "right", "rotation", "round_robin_pair"]

rotation = cuda.jit(device=True)(_formula)


@cuda.jit(device=True)
def left(c, se, x, y):
    """``(x', y')`` of rows ``p, q`` of ``J^H [x; y]``."""
    return c * x - se * y, se.conjugate() * x + c * y


@cuda.jit(device=True)
def right(c, se, x, y):
    """``(x', y')`` of columns ``p, q`` of ``[x, y] J``."""
    return c * x - se.conjugate() * y, se * x + c * y


@cuda.jit(device=True)
def round_robin_pair(r, k, N):
    """``(p, q)``, ``p < q``, of pair ``k`` in round ``r`` for even order ``N``.

    Pair 0 is ``(r, N - 1)``; pair ``k > 0`` is ``((r + k) % (N - 1), (r - k)
    % (N - 1))``.  The ``N / 2`` pairs of a round are disjoint, and the
    ``N - 1`` rounds cover every pair once.
    """
    if k == 0:
        a = N - 1
        b = r
    else:
        a = (r + k) % (N - 1)
        b = (r - k + N - 1) % (N - 1)
    return min(a, b), max(a, b)
