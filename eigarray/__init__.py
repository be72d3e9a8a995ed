"""eigarray: eigensolvers that run on the array you already have.

Thick-restart Lanczos (:func:`eigsh`, :func:`lanczos`) for a few eigenpairs of
a Hermitian matrix or operator, and batched Jacobi (:func:`eigh_batched`) for
every eigenpair of many small Hermitian matrices, written once against the
Python Array API standard: NumPy (with Numba kernels), CuPy, torch, JAX and
array-api-strict arrays in, the same kind of array out.
"""

from ._jacobi import eigh_batched, jacobi_eigh
from ._lanczos import LanczosState, eigsh, lanczos
from ._operator import LinearOperator, aslinearoperator
from ._result import ConvergenceInfo, ConvergenceWarning, EighResult, NoConvergence, SVDResult

__version__ = "0.1.0"

__all__ = [
    "ConvergenceInfo",
    "ConvergenceWarning",
    "EighResult",
    "LanczosState",
    "LinearOperator",
    "NoConvergence",
    "SVDResult",
    "__version__",
    "aslinearoperator",
    "eigh_batched",
    "eigsh",
    "jacobi_eigh",
    "lanczos",
]
