"""Numba (CPU) and numba-cuda (GPU) kernels; they import nothing of eigarray."""
