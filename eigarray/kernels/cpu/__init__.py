"""Numba CPU kernels: preallocated outputs, no validation, ``cache=True``."""
