"""Side-by-side throughput of the batched Jacobi CPU kernel and its peers.

``python -m eigarray._bench_jacobi`` prints, for stacks of random symmetric
matrices, matrices per second (median of ``repeats`` runs, one process) of

* ``eigh_batched``: :func:`eigarray.eigh_batched`, the public function, on
  the path it dispatches to for that ``n`` (Jacobi up to ``JACOBI_MAX_N``,
  the tridiagonal kernel up to ``TRIDIAGONAL_MAX_N``, LAPACK beyond), with
  validation and the convergence report;
* ``jacobi``: :func:`eigarray.kernels.cpu.jacobi.jacobi_eigh`, counting what
  a caller pays: allocating the outputs and the kernel.  The CPU kernel only
  reads the stack, so eigarray hands it the caller's array without a working
  copy (set ``copy=True`` in :func:`run` to time one anyway);
* ``tridiagonal``: :func:`eigarray.kernels.cpu.tridiagonal.tridiagonal_eigh`
  (Householder + QL, 16 matrices per SIMD lane block), outputs allocated in
  the timing too;
* ``lapack-prange``: :func:`eigarray.kernels.cpu.jacobi.lapack_eigh`, a Numba
  ``prange`` over LAPACK ``?syevd`` (outputs allocated in the timing too),
  with the BLAS thread pool limited to one thread (threadpoolctl);
* ``numpy``: :func:`numpy.linalg.eigh` on the stack;
* ``torch``: :func:`torch.linalg.eigh` on the same memory (if torch imports);

and each one's ratio to numpy.  JIT compilation is done before timing.  A
result that misses the accuracy standard (scaled residual and orthogonality
below 30, checked on the first 64 matrices) posts ``wrong`` instead of a time.

When CuPy finds a GPU, :func:`run_gpu` prints the same table for the same
batches on the device, against :func:`cupy.linalg.eigh` (cuSOLVER) and
:func:`torch.linalg.eigh` on CUDA tensors sharing the memory:

* ``eigh_batched``: :func:`eigarray.eigh_batched` on the CuPy stack (its
  validation, working copy and convergence report included);
* ``kernel``: the numba-cuda kernel alone, outputs allocated in the timing
  (and, above ``n = 32``, the working copy the block kernel rotates);
* ``cupy`` and ``torch``: the peers.

Every call ends with a device synchronisation inside the timing.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ._bench import median_time

__all__ = ["run"]

CASES = [
    (np.float64, 100_000, 3),
    (np.float64, 100_000, 8),
    (np.float64, 10_000, 32),
    (np.float64, 1_000, 64),
    (np.float64, 1_000, 128),
    (np.float32, 100_000, 3),
]
MAX_SWEEPS = 50


def _problem(dtype, B: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    X = rng.standard_normal((B, n, n))
    return ((X + np.swapaxes(X, -1, -2)) / 2).astype(dtype)


def _accurate(A: np.ndarray, w: np.ndarray, V: np.ndarray) -> bool:
    eps = float(np.finfo(w.dtype).eps)
    A, w, V = A[:64].astype(np.float64), w[:64].astype(np.float64), V[:64].astype(np.float64)
    n = A.shape[-1]
    res = np.linalg.norm(A @ V - V * w[:, None, :], axis=(1, 2))
    res /= n * np.linalg.norm(A, axis=(1, 2)) * eps
    orth = np.linalg.norm(np.swapaxes(V, 1, 2) @ V - np.eye(n), axis=(1, 2)) / (n * eps)
    return bool(np.all(res < 30) and np.all(orth < 30))


def _single_threaded_blas():
    """One BLAS thread inside the prange (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _impls(dtype, copy: bool = False) -> dict[str, Callable[[np.ndarray], Any]]:
    import eigarray
    from eigarray.kernels.cpu import jacobi, tridiagonal

    rdtype = np.finfo(dtype).dtype
    tol = float(np.finfo(rdtype).eps)

    def jacobi_eigh(A):
        B, n, _ = A.shape
        W = A.copy() if copy else A
        w = np.empty((B, n), rdtype)
        V = np.empty((B, n, n), A.dtype)
        sweeps = np.empty(B, np.int32)
        off = np.empty(B, rdtype)
        jacobi.jacobi_eigh(W, w, V, tol, MAX_SWEEPS, True, sweeps, off)
        return w, V

    def tridiagonal_eigh(A):
        B, n, _ = A.shape
        w = np.empty((B, n), rdtype)
        V = np.empty((B, n, n), A.dtype)
        tridiagonal.tridiagonal_eigh(A, w, V, True)
        return w, V

    def eigh_batched(A):
        w, V = eigarray.eigh_batched(A)
        return w, V

    # compile (and load Numba's LAPACK) now, so that threadpoolctl sees it
    one = np.eye(2, dtype=dtype)[None]
    jacobi.lapack_eigh(one, np.empty((1, 2), rdtype), np.empty((1, 2, 2), dtype), True)

    def lapack_eigh(A):
        B, n, _ = A.shape
        w = np.empty((B, n), rdtype)
        V = np.empty((B, n, n), A.dtype)
        with _single_threaded_blas():
            jacobi.lapack_eigh(A, w, V, True)
        return w, V

    impls: dict[str, Callable[[np.ndarray], Any]] = {
        "eigh_batched": eigh_batched,
        "jacobi": jacobi_eigh,
        "tridiagonal": tridiagonal_eigh,
        "lapack-prange": lapack_eigh,
        "numpy": np.linalg.eigh,
    }
    try:
        import torch
    except ImportError:
        return impls

    def torch_eigh(A):
        w, V = torch.linalg.eigh(torch.from_numpy(A))
        return w.numpy(), V.numpy()

    impls["torch"] = torch_eigh
    return impls


def _header(names: list[str], peer: str) -> str:
    line = f"{'dtype':8} {'n':>4} {'batch':>7} " + " ".join(f"{k + '/s':>14}" for k in names)
    return line + "   " + " ".join(f"{k + '/' + peer:>14}" for k in names if k != peer)


def _line(row: dict, names: list[str], peer: str, missing: str) -> str:
    """One table row: rates, then ratios to ``peer`` (``missing`` for no rate)."""
    rate = " ".join(f"{row[k]:14.0f}" if row.get(k) else f"{missing:>14}" for k in names)
    ratio = " ".join(
        f"{row[k] / row[peer]:14.2f}" if row.get(k) and row.get(peer) else f"{'-':>14}"
        for k in names
        if k != peer
    )
    return f"{row['dtype']:8} {row['n']:4d} {row['batch']:7d} {rate}   {ratio}"


def run(out: Callable[[str], object] = print, repeats: int = 5, copy: bool = False) -> list[dict]:
    """Time every implementation on every case and print the table.

    Parameters
    ----------
    out : callable, default=print
        Receives each line of the table.
    repeats : int, default=5
        Timed runs per implementation and case; the median is reported.
    copy : bool, default=False
        Time a copy of the stack into a working buffer with the Jacobi kernel.

    Returns
    -------
    rows : list of dict
        One per case: ``dtype``, ``n``, ``batch`` and matrices per second of
        each implementation (``None`` when its result missed the standard).
    """
    import numba

    from eigarray.kernels.cpu import jacobi, tridiagonal

    names = list(_impls(np.float64))
    out(f"numba {numba.__version__}, {numba.get_num_threads()} threads; numpy {np.__version__}; "
        f"jacobi {'with' if copy else 'without'} a working copy; eigh_batched: Jacobi for "
        f"n <= {jacobi.JACOBI_MAX_N}, tridiagonal for n <= {tridiagonal.TRIDIAGONAL_MAX_N}, "
        "LAPACK-prange above")
    out(_header(names, "numpy"))
    rows = []
    for dtype, B, n in CASES:
        A = _problem(dtype, B, n)
        impls = _impls(dtype, copy)
        row: dict = {"dtype": np.dtype(dtype).name, "n": n, "batch": B}
        for name, fn in impls.items():
            w, V = fn(A[:64])  # warm-up (JIT) and accuracy check
            if not _accurate(A, w, V):
                row[name] = None
                continue
            row[name] = B / median_time(functools.partial(fn, A), repeats)
        rows.append(row)
        out(_line(row, names, "numpy", "wrong"))
    return rows


def gpu_available() -> bool:
    """Whether CuPy imports and sees a CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _gpu_impls(dtype) -> dict[str, Callable[[Any], Any]]:
    import cupy

    import eigarray
    from eigarray.kernels.cuda import jacobi_block, jacobi_warp

    rdtype = np.finfo(dtype).dtype
    tol = float(np.finfo(rdtype).eps)
    sync = cupy.cuda.Device().synchronize

    def eigh_batched(A):
        w, V = eigarray.eigh_batched(A)
        sync()
        return w, V

    def kernel(A):
        B, n, _ = A.shape
        if n > jacobi_block.MAX_N:
            return None
        w = cupy.empty((B, n), rdtype)
        V = cupy.empty((B, n, n), A.dtype)
        sweeps = cupy.zeros(B, cupy.int32)
        off = cupy.zeros(B, rdtype)
        if n <= jacobi_warp.MAX_N:  # reads the stack in place
            jacobi_warp.launch(A, w, V, tol, MAX_SWEEPS, True, sweeps, off)
        else:  # rotates a working copy
            jacobi_block.launch(A.copy(), w, V, tol, MAX_SWEEPS, True, sweeps, off)
        sync()
        return w, V

    def cupy_eigh(A):
        w, V = cupy.linalg.eigh(A)
        sync()
        return w, V

    impls: dict[str, Callable[[Any], Any]] = {
        "eigh_batched": eigh_batched,
        "kernel": kernel,
        "cupy": cupy_eigh,
    }
    try:
        import torch

        if not torch.cuda.is_available():
            return impls
    except ImportError:
        return impls

    def torch_eigh(A):
        w, V = torch.linalg.eigh(torch.from_dlpack(A))
        torch.cuda.synchronize()
        return w, V

    impls["torch"] = torch_eigh
    return impls


def run_gpu(out: Callable[[str], object] = print, repeats: int = 5) -> list[dict]:
    """Time :func:`eigarray.eigh_batched` on CuPy stacks against its GPU peers.

    Same cases, accuracy check and table layout as :func:`run`; ratios are to
    :func:`cupy.linalg.eigh`.  Needs CuPy and a CUDA device.
    """
    import cupy
    import numba

    from eigarray.kernels.cuda import jacobi_block, jacobi_warp

    props = cupy.cuda.runtime.getDeviceProperties(0)
    names = list(_gpu_impls(np.float64))
    out(f"GPU: {props['name'].decode()}; cupy {cupy.__version__}, numba {numba.__version__}; "
        f"matrices in shared memory for n <= {jacobi_warp.MAX_N}, one block per matrix for "
        f"n <= {jacobi_block.MAX_N}")
    out(_header(names, "cupy"))
    rows = []
    for dtype, B, n in CASES:
        A = cupy.asarray(_problem(dtype, B, n))
        host = cupy.asnumpy(A[:64])
        row: dict = {"dtype": np.dtype(dtype).name, "n": n, "batch": B}
        for name, fn in _gpu_impls(dtype).items():
            try:
                res = fn(A)  # warm-up (JIT, handles) and accuracy check
            except Exception as exc:  # a peer's library error: say so, go on
                out(f"  {name} failed on {B} x {n}x{n} {row['dtype']}: {exc!s:.160}")
                res = None
            if res is None:
                row[name] = None
                continue
            w, V = (cupy.asnumpy(cupy.from_dlpack(x[:64])) for x in res)
            if not _accurate(host, w, V):
                row[name] = None
                continue
            row[name] = B / median_time(functools.partial(fn, A), repeats)
        rows.append(row)
        out(_line(row, names, "cupy", "-"))
    return rows


if __name__ == "__main__":
    run()
    if gpu_available():
        run_gpu()
