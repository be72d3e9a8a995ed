"""Device function shared by the CUDA Jacobi kernels: Rutishauser's rotation.

The formula lives in :mod:`eigarray.kernels.rotation`, shared with the CPU
kernel; this module compiles it once as a CUDA device function.
"""

from __future__ import annotations

from numba import cuda

from ..rotation import rotation as _formula

__all__ = ["rotation"]

rotation = cuda.jit(device=True)(_formula)
