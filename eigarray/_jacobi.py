"""Batched Hermitian eigensolver: cyclic Jacobi over a stack of small matrices.

Algorithm: two-sided cyclic Jacobi with Rutishauser's rotations, threshold
skipping and the relative stopping test of Demmel & Veselić
(``|a_ij| <= tol sqrt|a_ii a_jj|``), which computes every eigenvalue of a
graded positive definite matrix to high relative accuracy.  The public
function validates and routes; the work is done by

* NumPy arrays, and torch / JAX arrays on the CPU through a zero-copy DLPack
  view: the Numba kernel (``prange`` over the batch, SIMD across matrices)
  for ``n <= JACOBI_MAX_N`` (24); above, where Jacobi no longer pays, a
  lane-interleaved Householder tridiagonalisation + implicit QL kernel up to
  ``TRIDIAGONAL_MAX_N`` (128, normwise accuracy), and a Numba ``prange`` over
  LAPACK ``?syevd`` beyond;
* CuPy arrays, and torch CUDA tensors through DLPack: numba-cuda kernels with
  a round-robin ordering (up to ``n = 32`` the matrices stay in shared
  memory, ``128 / S`` of them per block, ``S >= n`` lanes each, and the input
  is read in place; up to ``n = 128`` one thread block per matrix rotates a
  working copy);
* any other namespace (array-api-strict, ...): the same algorithm written in
  the Array API (:mod:`eigarray._jacobi_reference`); Dask arrays map the NumPy
  kernel over their batch chunks.

Storage: ``(..., n, n)`` in, ``(..., n)`` eigenvalues and ``(..., n, n)``
eigenvectors (columns) out, in the caller's namespace and on its device.
Host synchronisation: one, to read the per-matrix convergence flags (none for
Dask, which stays lazy).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from . import _dispatch
from . import _namespace as ns
from . import _validate as val
from ._result import ConvergenceInfo, EighResult, report_nonconvergence

__all__ = ["eigh_batched", "jacobi_eigh"]


def default_max_sweeps(n: int) -> int:
    # Jacobi converges quadratically once the off-diagonal is small; a few
    # sweeps per doubling of n suffice in practice.  Generous on purpose.
    return 30 + 4 * max(1, math.ceil(math.log2(max(n, 2))))


def eigh_batched(A: Any, UPLO: str = "L", *, tol: float | None = None,
                 max_sweeps: int | None = None, sort: str = "ascending",
                 eigenvectors: bool = True, on_nonconvergence: str = "warn") -> EighResult:
    """All eigenpairs of every matrix in a stack of Hermitian matrices.

    Cyclic Jacobi with Rutishauser's rotations and the relative stopping
    criterion of Demmel & Veselić, batched over the leading dimensions: fast
    where LAPACK's per-matrix overhead dominates (``n`` from 2 to a few tens,
    batches of thousands to millions) and accurate where QR-based ``eigh`` is
    not (small eigenvalues of graded positive definite matrices).

    Parameters
    ----------
    A : array, shape (..., n, n)
        Real symmetric or complex Hermitian stack, any leading batch shape
        (including empty batches and ``n = 1``).  NumPy, CuPy, torch, JAX,
        Dask or any Array API array; integers and booleans are promoted to
        float64, float16 to float32.
    UPLO : {'L', 'U'}, default='L'
        Which triangle is read, as in :func:`numpy.linalg.eigh` (the other
        one and the imaginary part of the diagonal are ignored).
    tol : float, optional
        Relative threshold: a pair ``(i, j)`` is rotated only while
        ``|a_ij| > tol sqrt|a_ii a_jj|``; in (0, 1).  Default: machine
        epsilon of the working precision.
    max_sweeps : int, optional
        Most sweeps per matrix (default ``30 + 4 max(1, ceil(log2 n))``).
    sort : {'ascending', 'descending'}, default='ascending'
        Order of the eigenvalues (eigenvectors follow).
    eigenvectors : bool, default=True
        Whether to compute eigenvectors (``eigenvectors`` is None otherwise).
    on_nonconvergence : {'warn', 'raise'}, default='warn'
        What to do if some matrix is not converged after ``max_sweeps``.

    Returns
    -------
    EighResult
        ``(eigenvalues, eigenvectors)``: shape ``(..., n)`` (real dtype) and
        ``(..., n, n)`` with eigenvectors as columns, like
        :func:`numpy.linalg.eigh`, in the namespace and on the device of
        ``A``.  ``result.info.converged`` (shape ``(...)``) flags each matrix,
        ``result.info.history`` holds ``"sweeps"`` (per matrix) and ``"off"``
        (the relative off-diagonal measure reached, per matrix), and
        ``result.info.n_iter`` the largest sweep count (``max_sweeps`` when
        some matrix did not converge).  Matrices of order 25 to 128 in a
        stack of at least 8 go through a Householder + QL kernel instead
        (see Notes): their sweep count and measure are 0, or -1 and NaN
        (eigenvalues NaN too) for a matrix whose QL iteration failed.  For Dask input the
        result stays lazy, ``info`` is None, and eigenvalues of a matrix that
        did not converge are NaN.  Not differentiable: a torch tensor that
        requires gradients is read detached, and the results carry none.

    Raises
    ------
    ValueError
        For ``ndim < 2``, non-square trailing dimensions, NaN or Inf in the
        triangle read (not tested for Dask arrays, which stay lazy: NaN
        there gives NaN eigenpairs), or a bad ``UPLO``, ``sort``, ``tol`` or
        ``max_sweeps``.
    TypeError
        For a dtype that is neither numeric nor boolean.
    NoConvergence
        With ``on_nonconvergence='raise'``, if some matrix did not converge.

    Warns
    -----
    ConvergenceWarning
        If some matrix did not converge (it is still returned, flagged).

    See Also
    --------
    numpy.linalg.eigh : LAPACK's divide and conquer, one matrix at a time.

    Notes
    -----
    ``O(n^3)`` flops per sweep and matrix, about ``log n`` sweeps.  On the CPU
    the Jacobi kernel is used up to ``n = JACOBI_MAX_N`` (24); beyond, where
    Jacobi stops paying, a lane-interleaved Householder + implicit QL kernel
    (16 matrices per SIMD vector) up to ``n = 128`` and a ``prange`` over
    LAPACK ``?syevd`` above (the measured crossovers are in
    :doc:`batched`); the relative accuracy of small eigenvalues holds on the
    Jacobi path, the others are normwise accurate.  The first call with a
    new dtype and ``n > 24`` compiles the tridiagonal kernel (tens of
    seconds, once: the compiled code is cached on disk).  The input is never
    modified; NumPy, torch and JAX CPU inputs are read in place through
    DLPack.

    References
    ----------
    J. Demmel and K. Veselić, "Jacobi's method is more accurate than QR",
    SIAM J. Matrix Anal. Appl. 13(4), 1204-1245, 1992.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> A = np.array([[[2.0, 1.0], [1.0, 2.0]], [[4.0, 0.0], [0.0, 1.0]]])
    >>> w, V = eigarray.eigh_batched(A)
    >>> w
    array([[1., 3.],
           [1., 4.]])
    """
    A = val.as_array(A, name="A")
    xp = ns.array_namespace(A)
    if A.ndim < 2:
        raise ValueError(f"`A` must have at least 2 dimensions (..., n, n); got shape "
                         f"{tuple(A.shape)}.")
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"`A` must be square in its last two dimensions; got shape "
                         f"{tuple(A.shape)}.")
    UPLO = val.check_choice(UPLO, ("L", "U"), name="UPLO")
    sort = val.check_choice(sort, ("ascending", "descending"), name="sort")
    eigenvectors = val.check_bool(eigenvectors, name="eigenvectors")
    val.check_choice(on_nonconvergence, ("warn", "raise"), name="on_nonconvergence")
    dtype = ns.working_dtype(xp, A.dtype, name="A")
    n = int(A.shape[-1])
    eps = ns.eps(xp, dtype)
    if tol is None:
        tol = eps
    tol = val.check_tol(tol, name="tol")
    if tol == 0.0:
        raise ValueError("`tol` must be positive; got tol=0.0.")
    if tol >= 1.0:
        # An off-diagonal entry as large as the diagonal's would stop the
        # sweeps: the diagonal came back flagged converged.
        raise ValueError(f"`tol` must be below 1 (a relative threshold on the off-diagonal "
                         f"entries); got tol={tol!r}.")
    if max_sweeps is None:
        max_sweeps = default_max_sweeps(n)
    max_sweeps = val.check_int(max_sweeps, name="max_sweeps", low=1)
    if dtype != A.dtype:
        A = xp.astype(A, dtype)
    if ns.is_dask_array(A):
        return _dask(A, UPLO=UPLO, tol=tol, max_sweeps=max_sweeps, sort=sort,
                     eigenvectors=eigenvectors)
    A = finite_triangle(xp, A, UPLO, name="A")

    result = eigh_impl(xp, A, UPLO=UPLO, tol=tol, max_sweeps=max_sweeps, sort=sort,
                       eigenvectors=eigenvectors)
    report(result, on_nonconvergence)
    return result


jacobi_eigh = eigh_batched


def report(result: EighResult, policy: str, what: str = "matrices") -> None:
    """:func:`report_nonconvergence` worded for the kernel that failed.

    Jacobi reports the sweeps it used and the off-diagonal measure it
    reached; a failed QL iteration (measure NaN) has neither.
    """
    hx = ns.numpy_namespace()
    info = result.info
    failed = ~info.converged
    message = None
    if bool(failed.any()) and bool(hx.all(hx.isnan(info.residual_norms[failed]))):
        message = (f"{int(failed.sum())} of {failed.size} {what} did not converge: the "
                   f"tridiagonal QL iteration failed, and their eigenvalues are NaN.")
    report_nonconvergence(result, policy, what=what, steps="sweeps",
                          measure="relative off-diagonal measure", message=message)


def eigh_impl(xp: Any, A: Any, *, UPLO: str, tol: float, max_sweeps: int,
              sort: str = "ascending", eigenvectors: bool = True) -> EighResult:
    """:func:`eigh_batched` on a validated, finite stack of the working dtype.

    Returns the result with its convergence information; non-convergence is
    left for the caller to report (other functions built on it word their
    own warning).
    """
    n = int(A.shape[-1])
    batch = tuple(A.shape[:-2])
    w, V, sweeps, off = _solve(A, xp, UPLO=UPLO, tol=tol, max_sweeps=max_sweeps,
                               want_vectors=eigenvectors)
    if sort == "descending":
        w = xp.flip(w, axis=-1)
        V = xp.flip(V, axis=-1) if V is not None else None
    w = xp.reshape(w, batch + (n,))
    V = xp.reshape(V, batch + (n, n)) if V is not None else None
    sweeps_h = ns.to_host_numpy(sweeps).reshape(batch)
    off_h = ns.to_host_numpy(off).reshape(batch)
    converged = sweeps_h >= 0
    # An unconverged matrix (sweeps -1) used every sweep allowed.
    used = int(sweeps_h.max()) if sweeps_h.size else 0
    jacobi_failed = ~converged & ~ns.numpy_namespace().isnan(off_h)
    n_iter = max_sweeps if bool(jacobi_failed.any()) else max(used, 0)
    info = ConvergenceInfo(converged, off_h, n_iter, 0, {"sweeps": sweeps_h, "off": off_h})
    return EighResult(w, V, info=info)


def _solve(A: Any, xp: Any, *, UPLO: str, tol: float, max_sweeps: int,
           want_vectors: bool) -> tuple:
    """Route a validated stack to a kernel; returns flat ``(B, n)``/``(B, n, n)`` arrays."""
    n = int(A.shape[-1])
    flat = (math.prod(A.shape[:-2]), n, n)
    if ns.is_torch_array(A) and A.requires_grad:
        A = A.detach()                    # not differentiable: read detached
    host = ns.as_numpy_view(A)
    if host is not None:
        w, V, sweeps, off = _dispatch.batched_eigh_host(
            host.reshape(flat), upper=(UPLO == "U"), tol=tol, max_sweeps=max_sweeps,
            want_vectors=want_vectors)
        w = ns.from_host_numpy(w, xp, like=A)
        V = ns.from_host_numpy(V, xp, like=A) if V is not None else None
        return w, V, sweeps, off
    gpu = ns.as_cupy_view(A)
    if gpu is not None:
        gxp = ns.array_namespace(gpu)
        out = _dispatch.batched_eigh_cuda(gxp.reshape(gpu, flat), upper=(UPLO == "U"), tol=tol,
                                          max_sweeps=max_sweeps, want_vectors=want_vectors)
        if out is not None:
            w, V, sweeps, off = out
            return (ns.from_cupy(w, like=A), ns.from_cupy(V, like=A) if V is not None else None,
                    sweeps, off)
    from ._jacobi_reference import jacobi_eigh_xp

    full = xp.reshape(_hermitian(xp, A, UPLO), flat)
    return jacobi_eigh_xp(full, xp, tol=tol, max_sweeps=max_sweeps, want_vectors=want_vectors)


def finite_triangle(xp: Any, A: Any, UPLO: str, *, name: str) -> Any:
    """``A``, checked for NaN and Inf in the triangle ``UPLO`` reads (as NumPy's eigh).

    A non-finite entry in the other triangle is ignored: the Hermitian
    matrix the triangle describes (a new array) is returned instead.
    """
    if bool(xp.all(xp.isfinite(A))):
        return A
    H = _hermitian(xp, A, UPLO)
    if not bool(xp.all(xp.isfinite(H))):
        raise ValueError(f"`{name}` must not contain NaN or Inf.")
    return H


def _hermitian(xp: Any, A: Any, UPLO: str) -> Any:
    """The full Hermitian matrices whose ``UPLO`` triangle ``A`` holds (a new array)."""
    n = A.shape[-1]
    i = xp.arange(n)
    keep = (i[:, None] >= i[None, :]) if UPLO == "L" else (i[:, None] <= i[None, :])
    mirrored = xp.conj(xp.matrix_transpose(A)) if xp.isdtype(A.dtype, "complex floating") \
        else xp.matrix_transpose(A)
    return xp.where(keep, A, mirrored)


def _dask(A: Any, *, UPLO: str, tol: float, max_sweeps: int, sort: str,
          eigenvectors: bool) -> EighResult:
    """Map the NumPy kernel over the batch chunks of a Dask stack (stays lazy)."""
    n = int(A.shape[-1])
    A = A.rechunk({A.ndim - 2: -1, A.ndim - 1: -1})
    block = partial(_dispatch.batched_eigh_packed, upper=(UPLO == "U"), tol=tol,
                    max_sweeps=max_sweeps, want_vectors=eigenvectors,
                    descending=(sort == "descending"))
    both = A.map_blocks(block, chunks=A.chunks[:-1] + ((n + 1,),), dtype=A.dtype)
    xp = ns.array_namespace(A)
    w = both[..., n]
    if xp.isdtype(A.dtype, "complex floating"):
        w = xp.real(w)
    V = both[..., :n] if eigenvectors else None
    return EighResult(w, V, info=None)
