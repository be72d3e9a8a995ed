"""numba-cuda kernels and their launchers; they import nothing of eigarray.

Every kernel also runs under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).
"""
