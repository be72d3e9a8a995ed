"""Device function shared by the CUDA Jacobi kernels: Rutishauser's rotation.

Kept apart so that the one-thread and one-block kernels compute the very same
``c``, ``s`` and diagonal update as each other (and as the CPU kernel).
"""

from __future__ import annotations

import math

from numba import cuda

__all__ = ["rotation"]


@cuda.jit(device=True)
def rotation(dp, dq, r):
    """Rutishauser's ``c``, ``s = t c`` and ``t r`` for an entry of modulus ``r``.

    ``t = sign(d) / (|d| + sqrt(1 + d^2))`` with ``d = (dq - dp) / (2 r)``,
    evaluated through ``min(|dq - dp|, 2 r) / max(...)`` so nothing overflows.
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
