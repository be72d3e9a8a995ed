"""eigarray: eigensolvers that run on the array you already have.

Thick-restart Lanczos (:func:`eigsh`, :func:`lanczos`) for a few eigenpairs of
a Hermitian matrix or operator, and batched Jacobi (:func:`eigh_batched`) for
every eigenpair of many small Hermitian matrices, written once against the
Python Array API standard: NumPy (with Numba kernels), CuPy, torch, JAX and
array-api-strict arrays in, the same kind of array out.
"""

from ._jacobi import eigh_batched, jacobi_eigh
from ._lanczos import LanczosState, eigsh, lanczos
from ._layers import PCA, EigenLayer, TruncatedSVD
from ._matfuncs import PolarResult, expm, funm, inv_sqrtm, logm, polar, powm, sqrtm
from ._operator import LinearOperator, aslinearoperator
from ._power import PowerState, SpectralNormState, spectral_norm, subspace_iteration
from ._randomized import randomized_eigh, randomized_svd
from ._result import ConvergenceInfo, ConvergenceWarning, EighResult, NoConvergence, SVDResult
from ._svds import svds

__version__ = "0.1.0"

__all__ = [
    "ConvergenceInfo",
    "ConvergenceWarning",
    "EigenLayer",
    "EighResult",
    "LanczosState",
    "LinearOperator",
    "NoConvergence",
    "PCA",
    "PolarResult",
    "PowerState",
    "SVDResult",
    "SpectralNormState",
    "TruncatedSVD",
    "__version__",
    "aslinearoperator",
    "eigh_batched",
    "eigsh",
    "expm",
    "funm",
    "inv_sqrtm",
    "jacobi_eigh",
    "lanczos",
    "logm",
    "polar",
    "powm",
    "randomized_eigh",
    "randomized_svd",
    "spectral_norm",
    "sqrtm",
    "subspace_iteration",
    "svds",
]
