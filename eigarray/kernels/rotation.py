"""Rutishauser's Jacobi rotation, one plain function for every kernel.

The CPU kernel compiles it with ``numba.njit`` and the CUDA kernels with
``numba.cuda.jit(device=True)``, so that all of them compute the very same
``c``, ``s`` and diagonal update.  Note for editors: Numba's cache is keyed on
the file of the kernel that inlines this function, so after changing it,
clear the ``__pycache__`` folders of ``kernels/cpu`` and ``kernels/cuda``.
"""

from __future__ import annotations

import math

__all__ = ["rotation"]


def rotation(dp, dq, r):
    """Rutishauser's rotation annihilating an entry of modulus ``r > 0``.

    ``theta = (dq - dp) / (2 r)``, ``t = sign(theta) / (|theta| +
    sqrt(1 + theta^2))``, evaluated with ``x = min(|theta|, 1 / |theta|)`` so
    that nothing overflows.  Returns ``c``, ``s = t c`` and ``t r``, the change
    of the diagonal.
    """
    delta = dq - dp
    adelta = abs(delta)
    twor = r + r
    small = adelta <= twor
    x = min(adelta, twor) / max(adelta, twor)
    q = math.sqrt(1.0 + x * x)
    t = (1.0 if small else x) / ((x if small else 1.0) + q)
    if delta < 0.0:
        t = -t
    c = 1.0 / math.sqrt(1.0 + t * t)
    return c, t * c, t * r
