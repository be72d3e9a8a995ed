"""The one place that picks a Numba CPU kernel, a numba-cuda kernel or Array API.

Algorithm modules never import a kernel: they call the functions here, which
look at the arrays they are given and choose.  Numba and numba-cuda are imported
on the first call that needs them, never at ``import eigarray``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import math
import os
import threading
from typing import Any

import numpy as np

from . import _namespace as ns

__all__ = ["csr_product"]


def _csr_kernels():
    from .kernels.cpu import csr

    return csr


# Below this many multiply-adds a product runs on one thread.  Starting a
# parallel region costs more than that much work, and inside an iterative
# solver the cores are handed back and forth between Numba's thread pool
# and the BLAS library's after every product: measured on a 2-core machine,
# eigsh on a 40,000-row Laplacian (200,000 nonzeros) took 8.1 s with the
# parallel product and 3.1 s with the serial one.  (An iteration with
# parallel steps, which holds BLAS to one thread, splits every product: see
# host_iteration.)
_PARALLEL_MIN_WORK = 2_000_000


_LAUNCH_LOCK = threading.Lock()


def _launch(kernel: Any, *args: Any) -> Any:
    """Run a ``parallel=True`` kernel, one thread at a time under Numba's workqueue layer.

    The workqueue layer (Numba's fallback when neither OpenMP nor TBB can be
    loaded) aborts the process when two Python threads enter parallel
    regions at once; its launches are serialised here (as is the first
    launch of all, before the layer is chosen).  OpenMP and TBB launches run
    concurrently.
    """
    import numba

    try:
        serial = numba.threading_layer() == "workqueue"
    except ValueError:                         # no parallel region has run yet
        serial = True
    if not serial:
        return kernel(*args)
    with _LAUNCH_LOCK:
        return kernel(*args)


# Only one BLAS thread inside a prange over LAPACK calls; the limit is
# process-wide (threadpoolctl), so concurrent callers share one, set by the
# first to enter and lifted by the last to leave.
_BLAS_LIMIT = {"lock": threading.Lock(), "depth": 0, "limiter": None}


@contextlib.contextmanager
def _one_blas_thread():
    state = _BLAS_LIMIT
    with state["lock"]:
        if state["depth"] == 0:
            state["limiter"] = _blas_controller().limit(limits=1, user_api="blas")
        state["depth"] += 1
    try:
        yield
    finally:
        with state["lock"]:
            state["depth"] -= 1
            if state["depth"] == 0:
                state["limiter"].restore_original_limits()
                state["limiter"] = None


# An iteration on the host whose vectors are shorter than _FUSED_MIN_LENGTH
# makes its Gram-Schmidt passes and restarts through many small NumPy
# products, each a threaded BLAS call that hands the cores to BLAS threads and back.  On a
# loaded machine that is ruinous (2-core AMD EPYC with two other busy
# processes, eigsh, k = 6, tol 0, 900-row Laplacian: 0.58 s against 0.16 s
# on one BLAS thread, ARPACK 0.14 s), and on a quiet one it gains a little
# (0.064 s against 0.074 s; 2,500 and 3,969 rows: 0.127 against 0.128 s,
# 0.228 against 0.248 s; svds of a 2,000 x 1,500 sparse matrix: 0.111
# against 0.131 s).  So when the products make no BLAS call either (the
# CSR kernel), such iterations run on one BLAS thread.  Dense products are
# BLAS's own and gain from its threads on a quiet machine (900 x 900: 0.155 s
# threaded, 0.296 s on one thread): those iterations are left as they are.
# Vectors of _FUSED_MIN_LENGTH or more take the fused Numba kernels per step
# and BLAS only at restarts.


# A Lanczos iteration on long host vectors whose products are the CSR
# kernel's makes no BLAS call in its steps but small host ones: the product
# and the fused Gram-Schmidt kernels are Numba's.  From
# _PARALLEL_STEPS_MIN_LENGTH entries those run on every Numba thread, and
# BLAS on one thread for the whole iteration: a BLAS thread pool woken even
# once (by a restart's product) spins for a while after the call, competing
# with Numba's threads, which more than undoes their gain (2-core AMD EPYC,
# 200 x 200 anisotropic Laplacian, eigsh k = 10, tol 1e-8: 2.4 s against
# 1.2 s with serial steps).  The restart's matrix product then runs as one
# single-threaded BLAS call per thread on its share of the columns
# (:func:`row_combination`).  Shorter vectors keep serial steps: Numba's
# threads fall asleep during a step's host work, and waking them costs what
# splitting the step saves (measured on 2 cores, eigsh k = 10, tol 1e-8,
# median of 5 to 12 interleaved runs, serial against parallel steps: 40,000
# rows 1.38 s and 1.40 s; 90,000 rows, the square grid, 9.0 s and 6.8 s;
# 490,000 rows 53 s and 35 s).
_PARALLEL_STEPS_MIN_LENGTH = 65_536
_STEP_THREADS = contextvars.ContextVar("eigarray_step_threads", default=1)


def host_iteration(op: Any, n: int, *, parallel_steps: bool = False) -> Any:
    """Context for an iteration of ``op`` on vectors of length ``n``.

    When they are host vectors and the products are the CSR kernel's: one
    BLAS thread for short vectors, and for long ones with ``parallel_steps``
    (the caller orthogonalises with :class:`RowWork` and restarts with
    :func:`combine_rows <eigarray._linalg.combine_rows>`) one BLAS thread and
    the products and Gram-Schmidt kernels on every Numba thread (see the
    notes above).
    """
    if not (ns.is_numpy_namespace(op.xp) and op.kernel_products):
        return contextlib.nullcontext()
    if n < _FUSED_MIN_LENGTH:
        return _one_blas_thread()
    if parallel_steps and n >= _PARALLEL_STEPS_MIN_LENGTH and _threads() > 1:
        return _parallel_steps()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _parallel_steps():
    token = _STEP_THREADS.set(_threads())
    try:
        with _one_blas_thread():
            yield
    finally:
        _STEP_THREADS.reset(token)


# The threads of :func:`row_combination`, a pool per thread count (Numba's
# count is per Python thread, and a pool in use by one caller must not be
# shut down for another's), made on first use; a forked child, which
# inherits the pools but not their threads, makes its own.
_COLUMN_POOLS: dict[tuple[int, int], Any] = {}
_COLUMN_POOLS_LOCK = threading.Lock()

# Restart products below this many multiply-adds (about half a millisecond
# on one core) run as one BLAS call: handing shares to the pool costs more.
_SPLIT_MIN_WORK = 1 << 24


def row_combination(Yt: Any, B: Any, start: int, stop: int, chunk: int) -> bool:
    """``B[start:start+p] = Yt @ B[start:stop]`` for a NumPy ``B``, by column
    chunks, one share of the columns per thread of a pool (a small product on
    the calling thread), when the iteration runs parallel steps (see
    :func:`host_iteration`); False, doing nothing, otherwise.  BLAS releases
    the GIL, so the threads' calls run together.
    """
    threads = _STEP_THREADS.get()
    if threads == 1 or type(B).__module__ != "numpy":
        return False
    p = Yt.shape[0]
    n = B.shape[1]
    if p * (stop - start) * n < _SPLIT_MIN_WORK:
        threads = 1
    else:
        from concurrent.futures import ThreadPoolExecutor

        key = (os.getpid(), threads)
        with _COLUMN_POOLS_LOCK:
            if key not in _COLUMN_POOLS:
                _COLUMN_POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="eigarray")
            executor = _COLUMN_POOLS[key]
    Bs = B[start:stop, ...]

    def share(t: int) -> None:
        c0 = (n * t // threads) // chunk * chunk
        c1 = n if t == threads - 1 else (n * (t + 1) // threads) // chunk * chunk
        for s0 in range(c0, c1, chunk):
            s1 = min(c1, s0 + chunk)
            B[start:start + p, s0:s1] = Yt @ Bs[:, s0:s1]

    if threads == 1:
        share(0)
    else:
        for future in [executor.submit(share, t) for t in range(threads)]:
            future.result()
    return True


def _threads() -> int:
    import numba

    return numba.get_num_threads()


def _num_threads(work: int) -> int:
    if work < _PARALLEL_MIN_WORK:
        return _STEP_THREADS.get()
    import numba

    return numba.get_num_threads()


def csr_product(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, X: Any,
                n_rows: int, out_rows: np.ndarray | None = None) -> np.ndarray:
    """``A @ X`` for a host CSR matrix and a NumPy vector or block ``X``.

    Runs the parallel Numba kernel (threads follow ``numba.set_num_threads``).
    ``out_rows``, a C-contiguous ``(p, n_rows)`` array of the result's dtype
    for a vector (``p = 1``) or a block with contiguous columns, receives the
    result's transpose (a block of basis rows written in place).
    """
    kernels = _csr_kernels()
    dtype = np.result_type(data.dtype, X.dtype)
    if X.ndim == 1:
        y = np.empty(n_rows, dtype=dtype) if out_rows is None else out_rows[0]
        nb = _num_threads(data.shape[0])
        if nb == 1:   # not even an idle parallel region: it wakes the thread pool
            kernels.matvec_rows(indptr, indices, data, X, y, 0, n_rows)
        else:
            _launch(kernels.csr_matvec, indptr, indices, data, X, y, nb)
        return y
    if X.flags.f_contiguous and not X.flags.c_contiguous:
        # Columns are contiguous vectors (the transpose of a block of basis
        # rows): one product per column, each reading a contiguous vector,
        # and the result's columns contiguous too: no copy either way.
        Yt = np.empty((X.shape[1], n_rows), dtype=dtype) if out_rows is None else out_rows
        nb = _num_threads(data.shape[0])
        if X.shape[1] == 2:
            # A block of two (Lanczos' default): the matrix read once for both.
            if nb == 1:
                kernels.matvec2_rows(indptr, indices, data, X[:, 0], X[:, 1], Yt[0], Yt[1],
                                     0, n_rows)
            else:
                _launch(kernels.csr_matvec2, indptr, indices, data, X[:, 0], X[:, 1], Yt[0],
                        Yt[1], nb)
            return Yt.T
        for c in range(X.shape[1]):
            if nb == 1:
                kernels.matvec_rows(indptr, indices, data, X[:, c], Yt[c], 0, n_rows)
            else:
                _launch(kernels.csr_matvec, indptr, indices, data, X[:, c], Yt[c], nb)
        return Yt.T
    if out_rows is not None:
        out_rows[...] = csr_product(indptr, indices, data, X, n_rows).T
        return out_rows.T
    X = np.ascontiguousarray(X)
    Y = np.empty((n_rows, X.shape[1]), dtype=dtype)
    nb = _num_threads(data.shape[0] * X.shape[1])
    if nb == 1:
        kernels.matmat_rows(indptr, indices, data, X, Y, 0, n_rows)
    else:
        _launch(kernels.csr_matmat, indptr, indices, data, X, Y, nb)
    return Y


def _jacobi_kernels():
    from .kernels.cpu import jacobi

    return jacobi


def _tridiagonal_kernel():
    from .kernels.cpu import tridiagonal

    return tridiagonal


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, scanned once.

    Scanning the process's libraries costs about 10 ms, too much to pay on
    every call; scipy's LAPACK (what Numba calls) is loaded first, so that
    the scan sees it.
    """
    with contextlib.suppress(ImportError):      # the scatter's threads run without scipy
        import scipy.linalg.cython_lapack  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


# Below this much work (``B n³``, about half a millisecond of Jacobi) a
# batch is decomposed on the calling thread: see ``jacobi_eigh_serial``.
_JACOBI_PARALLEL_MIN_WORK = 100_000


def batched_eigh_host(A: np.ndarray, *, upper: bool, tol: float, max_sweeps: int,
                      want_vectors: bool) -> tuple:
    """Eigen-decompose a host ``(B, n, n)`` stack with the Numba kernels.

    ``A`` is read, never written; ``upper`` says which triangle holds the
    matrix.  Jacobi (relative accuracy) up to ``JACOBI_MAX_N``; above it,
    where Jacobi no longer pays, the lane-interleaved Householder + QL kernel
    up to ``TRIDIAGONAL_MAX_N`` for batches of at least half its lane
    count, and a ``prange`` over LAPACK beyond (see ``docs/batched.rst`` for
    the measured crossovers).  Returns ``(w, V,
    sweeps, off)`` as NumPy arrays (``V`` None without vectors); ``sweeps``
    is 0 and ``off`` 0 on the non-Jacobi paths, except ``sweeps = -1`` and
    ``off`` NaN for a matrix whose QL iteration failed (NaN eigenvalues).
    """
    kernels = _jacobi_kernels()
    Bn, n = A.shape[0], A.shape[-1]
    real = np.finfo(A.dtype).dtype
    cplx = np.iscomplexobj(A)
    w = np.empty((Bn, n), dtype=real)
    V = np.empty((Bn, n, n) if want_vectors else (1, 1, 1), dtype=A.dtype)
    sweeps = np.zeros(Bn, dtype=np.int32)
    off = np.zeros(Bn, dtype=real)
    if n <= kernels.JACOBI_MAX_N:
        # The Jacobi kernel reads the upper triangle.
        work = A if upper else (np.swapaxes(A, -1, -2).conj() if cplx else np.swapaxes(A, -1, -2))
        if Bn * n**3 >= _JACOBI_PARALLEL_MIN_WORK and _threads() > 1:
            _launch(kernels.jacobi_eigh, work, w, V, tol, max_sweeps, want_vectors, sweeps, off)
        else:
            kernels.jacobi_eigh_serial(work, w, V, tol, max_sweeps, want_vectors, sweeps, off)
    elif n <= _tridiagonal_kernel().TRIDIAGONAL_MAX_N and 2 * Bn >= _tridiagonal_kernel().LANES:
        # A block of lanes costs about what 6 (n = 64) to 9 (n = 128) LAPACK
        # calls do, so fewer matrices than half the lanes go to LAPACK.
        # The tridiagonal kernel reads the lower triangle.
        work = A if not upper else (np.swapaxes(A, -1, -2).conj() if cplx else
                                    np.swapaxes(A, -1, -2))
        _launch(_tridiagonal_kernel().tridiagonal_eigh, np.ascontiguousarray(work), w, V,
                want_vectors)
        failed = np.isnan(w).any(axis=-1)
        sweeps[failed], off[failed] = -1, np.nan
    else:
        # LAPACK reads the lower triangle.
        work = A if not upper else (np.swapaxes(A, -1, -2).conj() if cplx else
                                    np.swapaxes(A, -1, -2))
        work = np.ascontiguousarray(work)
        if importlib.util.find_spec("scipy") is None or Bn < _threads():
            # Numba reaches LAPACK through scipy; without it, numpy's loop.
            # A batch smaller than the thread count leaves a prange idle
            # threads: one matrix at a time with the BLAS library's threads
            # (?syevd's tridiagonalisation is BLAS-3) is faster (one
            # 256 x 256 float64 matrix on 2 cores: 4 ms against 11 ms).
            if want_vectors:
                w[...], V[...] = np.linalg.eigh(work)
            else:
                w[...] = np.linalg.eigvalsh(work)
        else:
            # One LAPACK call per thread of the prange: the BLAS library must
            # not start threads of its own inside it (OpenBLAS warns, and can
            # hang, when called from an OpenMP loop with its own pool).
            with _one_blas_thread():
                _launch(kernels.lapack_eigh, work, w, V, want_vectors)
    return w, (V if want_vectors else None), sweeps, off


# Up to this order the Numba kernel forms ``V diag(f) Vᴴ`` faster than
# NumPy's batched matmul (one BLAS call per matrix, then a separate
# weighting pass and symmetrisation).  Measured on a 2-core AMD EPYC,
# kernel over NumPy: n = 16, 10,000 matrices, 3.9x in float64 and 1.5x in
# float32; n = 64, 400 matrices, 2.0x and 1.4x; n = 128, 0.8x and 0.6x.
HERMITIAN_PRODUCT_MAX_N = 64


def _hermitian_kernels():
    from .kernels.cpu import hermitian

    return hermitian


def hermitian_product(V: Any, weights: Any, squared: bool) -> np.ndarray | None:
    """``V diag(f) Vᴴ`` (``W Wᴴ``, ``W = V diag(f)``, if ``squared``) of a NumPy stack.

    ``V`` is ``(..., n, n)`` and ``weights`` ``(..., n)``, cast to ``V``'s
    dtype.  The result is Hermitian to the last bit, with a real diagonal.
    None unless ``V`` is a NumPy array of a floating dtype with ``n`` at most
    :data:`HERMITIAN_PRODUCT_MAX_N` (the caller's matmul serves the rest).
    """
    if not (isinstance(V, np.ndarray) and V.dtype in _FLOATING and V.ndim >= 2
            and 0 < V.shape[-1] <= HERMITIAN_PRODUCT_MAX_N):
        return None
    n = V.shape[-1]
    flat_V = np.ascontiguousarray(V.reshape(-1, n, n))
    flat_w = np.ascontiguousarray(np.asarray(weights).astype(V.dtype, copy=False)
                                  .reshape(-1, n))
    X = np.empty_like(flat_V)
    kernels = _hermitian_kernels()
    nb = _num_threads(flat_V.shape[0] * n**3)
    if nb == 1 or flat_V.shape[0] == 1:
        kernels.hermitian_product_serial(flat_V, flat_w, squared, X)
    else:
        _launch(kernels.hermitian_product, flat_V, flat_w, squared, X,
                min(nb, flat_V.shape[0]))
    return X.reshape(V.shape)


_FLOATING = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))


def batched_eigh_cuda(A: Any, *, upper: bool, tol: float, max_sweeps: int,
                      want_vectors: bool) -> tuple | None:
    """Eigen-decompose a CuPy ``(B, n, n)`` stack from its lower (``upper``) triangle.

    Matrices in shared memory up to ``jacobi_warp.MAX_N`` (32), reading ``A``
    in place; one thread block per matrix on a full Hermitian working copy up
    to ``jacobi_block.MAX_N`` (128).  ``A`` is never written.  Returns ``(w,
    V, sweeps, off)`` as CuPy arrays, or None when ``n`` is beyond the kernels.
    """
    import cupy

    from .kernels.cuda import jacobi_block, jacobi_warp

    Bn, n = A.shape[0], A.shape[-1]
    if n > jacobi_block.MAX_N:
        return None
    real = cupy.finfo(A.dtype).dtype
    w = cupy.empty((Bn, n), dtype=real)
    V = cupy.empty((Bn, n, n), dtype=A.dtype)
    sweeps = cupy.zeros(Bn, dtype=cupy.int32)
    off = cupy.zeros(Bn, dtype=real)
    if n <= jacobi_warp.MAX_N:
        jacobi_warp.launch(cupy.ascontiguousarray(A), w, V, tol, max_sweeps, want_vectors,
                           sweeps, off, upper=upper)
    else:
        i = cupy.arange(n)
        keep = (i[:, None] <= i[None, :]) if upper else (i[:, None] >= i[None, :])
        work = cupy.ascontiguousarray(cupy.where(keep, A, A.swapaxes(-1, -2).conj()))
        jacobi_block.launch(work, w, V, tol, max_sweeps, want_vectors, sweeps, off)
    return w, (V if want_vectors else None), sweeps, off


def batched_eigh_packed(a: np.ndarray, *, upper: bool, tol: float, max_sweeps: int,
                        want_vectors: bool, descending: bool) -> np.ndarray:
    """Eigenpairs of a host stack packed as one ``(..., n, n + 1)`` array.

    Columns ``:n`` hold the eigenvectors, column ``n`` the eigenvalues (NaN
    for a matrix that did not converge), so that a Dask ``map_blocks`` makes
    one kernel call per chunk.
    """
    n = a.shape[-1]
    flat = np.ascontiguousarray(a.reshape((-1, n, n)))
    w, V, sweeps, _ = batched_eigh_host(flat, upper=upper, tol=tol, max_sweeps=max_sweeps,
                                        want_vectors=want_vectors)
    w = np.where((sweeps >= 0)[:, None], w, np.nan)
    if descending:
        w, V = w[:, ::-1], (V[..., ::-1] if V is not None else None)
    out = np.zeros(flat.shape[:-1] + (n + 1,), dtype=a.dtype)
    out[..., n] = w
    if V is not None:
        out[..., :n] = V
    return out.reshape(a.shape[:-1] + (n + 1,))


def _moments_kernel():
    from .kernels.cpu import moments

    return moments


# Rows per block of :func:`shifted_scatter`: about 1 Mi entries (4 MiB in
# float32), which stay in cache between the shift and the product.
_SCATTER_BLOCK_ELEMENTS = 1 << 20

# Below this many multiply-adds (``m d²``, a few milliseconds of ``syrk``)
# the scatter runs on the calling thread.
_SCATTER_PARALLEL_MIN_WORK = 1 << 26


def shifted_scatter(X: Any, n_shift: int) -> tuple[np.ndarray, ...] | None:
    """``(c, Σ (x - c)(x - c)ᵀ, Σ (x - c))`` over the rows of a host real ``X``.

    ``c`` is the mean of the first ``n_shift`` rows.  ``X`` is a C-ordered
    NumPy array, or a CPU torch or JAX array read through a zero-copy view;
    None for any other ``X`` (the caller's Array API loop serves it).

    One pass over ``X``: each block of rows is shifted into a buffer that
    stays in cache and adds its column sums (a serial Numba kernel), then
    its scatter ``Zᵀ Z`` (NumPy's matmul, which hands a product of an
    array with its own transpose to BLAS ``?syrk``: one triangle, half the
    flops).  Both are accumulated in float64.  With several threads
    (``numba.get_num_threads()``) and enough work, the rows are split into
    as many contiguous runs, each taken by a Python thread with its own
    buffer and sums, on one BLAS thread: OpenBLAS threads a ``syrk`` with
    a small output poorly (200,000 x 256 float32, 2-core AMD EPYC: 0.115 s
    for one threaded ``syrk`` of the whole, 0.098 s for two runs on one
    thread each).  The runs' sums are added in order, so the result depends
    on the thread count but not on timing.  scipy's ``ssyrk`` (a second
    OpenBLAS, with its own thread pool) took 1.8x as long.
    """
    if not isinstance(X, np.ndarray):
        if not (ns.is_torch_array(X) or ns.is_jax_array(X)):
            return None
        X = ns.as_numpy_view(X)
    if not (isinstance(X, np.ndarray) and X.dtype in (np.float32, np.float64)
            and X.ndim == 2 and X.flags.c_contiguous and X.shape[0] > 0):
        return None
    kernels = _moments_kernel()
    m, d = X.shape
    step = max(1, min(m, _SCATTER_BLOCK_ELEMENTS // max(d, 1)))
    c = np.mean(X[:max(1, n_shift)], axis=0)
    n_blocks = -(-m // step)
    runs = min(n_blocks, _threads() if m * d * d >= _SCATTER_PARALLEL_MIN_WORK else 1)
    bounds = [step * (n_blocks * t // runs) for t in range(runs)] + [m]
    G = np.zeros((runs, d, d))
    s = np.zeros((runs, d))

    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            buf = np.empty((min(step, bounds[t + 1] - bounds[t]), d), dtype=X.dtype)
            for i in range(bounds[t], bounds[t + 1], step):
                n = min(step, m - i)
                Z = buf[:n]
                kernels.shift_rows(X, i, i + n, c, Z, s[t])
                G[t] += Z.T @ Z
        except BaseException as exc:           # re-raised on the calling thread
            errors.append(exc)

    if runs == 1:
        run(0)
    else:
        with _one_blas_thread():
            threads = [threading.Thread(target=run, args=(t,)) for t in range(1, runs)]
            for thread in threads:
                thread.start()
            run(0)
            for thread in threads:
                thread.join()
    if errors:
        raise errors[0]
    Gs, ss = G[0], s[0]
    for t in range(1, runs):
        Gs += G[t]
        ss += s[t]
    return c, (Gs + Gs.T) / 2, ss


def gram(xp: Any, Z: Any) -> Any:
    """``Zᴴ Z`` of an ``(m, d)`` block, in ``Z``'s namespace and dtype, exactly Hermitian.

    Through the namespace's matmul (NumPy's runs BLAS ``?syrk`` for a
    product with the array's own transpose, faster than scipy's ``?syrk``:
    see :func:`shifted_scatter`), then symmetrised.
    """
    G = xp.conj(Z).T @ Z if xp.isdtype(Z.dtype, "complex floating") else Z.T @ Z
    return (G + xp.conj(G).T) / 2 if xp.isdtype(Z.dtype, "complex floating") else (G + G.T) / 2


# Up to this many rows, products with a block of rows run as one
# matrix-vector product per row: BLAS libraries pack thin operands for a
# matrix-matrix product at a cost that dwarfs the product itself (OpenBLAS:
# four times slower than two gemv for 2 rows), and the basis block is read
# from cache the second time.
_THIN_ROWS = 4

# Rows at least this long are orthogonalised by the fused Gram-Schmidt
# kernels: at this length a step's NumPy calls cost more than the work.
_FUSED_MIN_LENGTH = 4096


def _gram_schmidt_kernels():
    from .kernels.cpu import gram_schmidt

    return gram_schmidt


class RowWork:
    """Scratch rows for updating a NumPy block of rows in place.

    ``W - K @ Bs`` with a fresh result costs more than the product on large
    rows: a new array of the block's size per update, whose pages the
    allocator hands back to the system and faults in again the next time
    (measured 5.9 ms instead of 0.5 ms for two rows of 490,000 entries).
    :meth:`sub` forms the product into rows kept for the whole iteration
    and subtracts it in place.
    """

    def __init__(self, rows: int, n: int, dtype: Any):
        self.tmp = np.empty((rows, n), dtype=dtype)
        # Blocks of a few long rows go through the fused Gram-Schmidt
        # kernels (see :meth:`project`); short rows stay with NumPy, whose
        # calls cost less than importing Numba on a small problem.
        self.fused = rows <= _THIN_ROWS and n >= _FUSED_MIN_LENGTH
        self.acc = np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64
        # Threads for the kernels' calls (see host_iteration).
        self.threads = _STEP_THREADS.get() if self.fused else 1
        self.parallel = self.threads > 1
        self._kernels = _gram_schmidt_kernels() if self.fused else None

    @staticmethod
    def of(B: Any, rows: int) -> RowWork | None:
        """Scratch for blocks of up to ``rows`` rows of the NumPy basis ``B`` (else None)."""
        return RowWork(rows, B.shape[1], B.dtype) if type(B).__module__ == "numpy" else None

    def sub(self, W: Any, K: Any, Bs: Any) -> Any:
        """``W -= K @ Bs`` in place (``K`` is ``(rows of W, rows of Bs)``); returns ``W``."""
        t = self.tmp[:W.shape[0]]
        if W.shape[0] > _THIN_ROWS:
            np.matmul(K, Bs, out=t)
        else:
            for c in range(W.shape[0]):
                np.matmul(K[c], Bs, out=t[c])
        W -= t
        return W

    def axpy(self, w: Any, d: Any, q: Any) -> Any:
        """``w -= d * q`` in place for one row ``w``; returns ``w``."""
        t = self.tmp[0]
        np.multiply(q, d, out=t)
        w -= t
        return w

    def project(self, W: Any, K: Any, P: Any, stages: list) -> tuple[list, Any]:
        """Fused classical Gram-Schmidt on the block ``W``, in place.

        ``W -= K P`` (coefficients known beforehand: ``K`` a host ``(r, q)``
        array for the ``q`` rows of ``P``, or None), then for each block of
        rows ``M`` in ``stages`` in turn, ``C = conj(M) Wᵀ`` and
        ``W -= Cᵀ M``, and last the Gram matrix ``G = conj(W) Wᵀ`` of the
        result.  Each measurement is made after the previous stage's
        subtraction (so a stage removes what the one before it brings in
        along its rows, which are not exactly orthogonal to its own), and is
        accumulated in the same sweep over the columns as that subtraction
        (kernels/cpu/gram_schmidt.py): NumPy would make a call and a pass
        over ``W`` per row.  Returns the host coefficients ``C`` of every
        stage and ``G`` (float64 or complex128, ``G`` exactly Hermitian).
        Only when :attr:`fused`.
        """
        r = W.shape[0]
        if K is None or K.shape[1] == 0:
            K, P = np.zeros((r, 0), dtype=self.acc), W[:0]
        coefficients = []
        for M in stages:       # each stage subtracts the one before it, then measures
            C = self.subtract_measure(W, K, P, M)
            coefficients.append(C)
            K, P = C.T, M
        return coefficients, self.subtract_gram(W, coefficients[-1], stages[-1])

    def _chunks(self, n: int) -> int:
        """Chunks for a parallel kernel call on rows of ``n`` entries (0: run it serially)."""
        chunks = -(-n // self._kernels.CHUNK) if self.threads > 1 else 0
        return chunks if chunks > 1 else 0

    def subtract_measure(self, W: Any, K: Any, P: Any, M: Any) -> Any:
        """``W -= K P``, then the host coefficients ``conj(M) Wᵀ`` (fused kernel)."""
        r, n = W.shape
        K = np.ascontiguousarray(K, dtype=self.acc)       # one compiled layout for K
        C = np.zeros((M.shape[0], r), dtype=self.acc)
        chunks = self._chunks(n)
        if not chunks:
            self._kernels.subtract_measure(W, K, P, M, C, 0, n)
        else:
            scratch = np.zeros((chunks,) + C.shape, dtype=self.acc)
            _launch(self._kernels.subtract_measure_chunks, W, K, P, M, C, scratch)
        return C

    def subtract_gram(self, W: Any, C: Any, M: Any) -> Any:
        """``W -= Cᵀ M``, then the host Gram matrix ``conj(W) Wᵀ``, exactly Hermitian
        (fused kernel)."""
        r, n = W.shape
        C = np.ascontiguousarray(C, dtype=self.acc)
        G = np.zeros((r, r), dtype=self.acc)
        chunks = self._chunks(n)
        if not chunks:
            self._kernels.subtract_gram(W, C, M, G, 0, n)
        else:
            scratch = np.zeros((chunks, r, r), dtype=self.acc)
            _launch(self._kernels.subtract_gram_chunks, W, C, M, G, scratch)
        for c in range(r):                    # the kernel forms the upper triangle
            G[c, :c] = np.conj(G[:c, c])
        return G

    def orthonormalize(self, W: Any, G: Any, breakdown: float) -> Any:
        """Orthonormalise the rows of ``W`` in place from their Gram matrix ``G``.

        ``W = Rᵀ Q`` with ``R`` the upper Cholesky factor of ``G`` (formed
        here in Python arithmetic: ``r`` is a few), and ``Q = R⁻ᵀ W`` in one
        sweep.  Returns ``R``; or None, leaving ``W`` as it is, when a row
        keeps less than ``1/sqrt(2)`` of its norm against the rows before it
        (the DGKS test) or falls to ``breakdown`` (see
        :func:`eigarray._linalg.orthonormalize_rows`).  Only when
        :attr:`fused`.
        """
        r = G.shape[0]
        g = G.tolist()
        R = [[0.0] * r for _ in range(r)]
        for c in range(r):
            for i in range(c):
                R[i][c] = (g[i][c] - sum(R[t][i].conjugate() * R[t][c] for t in range(i))
                           ) / R[i][i]
            left = g[c][c].real - sum(abs(R[t][c]) ** 2 for t in range(c))
            # DGKS: the row keeps at least 1/sqrt(2) of its norm.
            if not (left > breakdown * breakdown and 2.0 * left >= g[c][c].real):
                return None
            R[c][c] = math.sqrt(left)
        # T = R⁻ᵀ, lower triangular, by forward substitution.
        T = [[0.0] * r for _ in range(r)]
        for c in range(r):
            T[c][c] = 1.0 / R[c][c]
            for d in range(c):
                T[c][d] = -sum(R[t][c] * T[t][d] for t in range(d, c)) / R[c][c]
        T = np.array(T, dtype=self.acc)
        if not self._chunks(W.shape[1]):
            self._kernels.transform_rows(W, T, 0, W.shape[1])
        else:
            _launch(self._kernels.transform_rows_chunks, W, T)
        return np.array(R, dtype=self.acc)
