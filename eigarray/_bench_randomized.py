"""Side-by-side randomized SVD: eigarray against scikit-learn, torch and Dask.

``python -m eigarray bench randomized`` (or ``python -m eigarray._bench_randomized``)
prints, in one process, for a tall matrix with a known decaying spectrum
(20,000 x 2,000 by default, float64 and float32) and ``k = 20`` requested
triplets, one row per implementation:

* ``eigarray``: :func:`eigarray.randomized_svd` on the NumPy array;
* ``sklearn``: :func:`sklearn.utils.extmath.randomized_svd` on the same array;
* ``torch``: :func:`torch.svd_lowrank` (``q = k + 10``) on a tensor sharing
  the array's memory (``torch.from_numpy``);
* ``dask``: eigarray's ``randomized_svd`` and
  :func:`dask.array.linalg.svd_compressed` (with its default
  ``iterator='power'``, plain power iterations without re-orthonormalisation,
  and with ``iterator='QR'``, a tall-skinny QR after every product) on the
  same row-chunked Dask array, threaded scheduler (BLAS limited to one
  thread per task, when threadpoolctl is installed);
* ``dask LocalCluster``: the same three on a ``distributed`` LocalCluster of
  two worker processes with one thread each (the row blocks scattered to the
  workers beforehand).

Every implementation does the same passes over the data: ``l = k + 10``
columns (oversampling 10), ``n_iter = 4`` power iterations, so
``1 + 2 n_iter + 1 = 10`` products with ``A`` or ``Aᵀ`` (the last one forms
``B = QᵀA``); that is ``F = 2 m n l (2 + 2 n_iter)`` flops of matrix
products, and ``F / time`` is the GEMM throughput reached, also shown as a
fraction of the machine's matmul peak measured in the same run (median time of
a NumPy ``2000 x 2000 @ 2000 x 2000`` product of the same dtype, ``2 n³ / t``).
Each implementation keeps its own default power-iteration normaliser
(scikit-learn's is LU for ``n_iter > 2``; torch uses QR; Dask's default
normalises only once, at the end).

Wall times are medians of ``repeats`` timed runs after one untimed warm-up
run (which supplies the singular values checked against the known ones);
every run computes ``U``, ``S`` and ``Vᵀ`` in full.  BLAS and torch keep their
default thread counts, printed in the header.  Libraries are imported lazily;
one that is missing is skipped with a note.  The last column is each time
over the fastest peer of the same group (in memory, Dask threads, Dask
LocalCluster) among those whose top-k singular values are within 1e-2
relative error; a result off by more posts ``wrong``.  On a shared machine the figures
are noisy: compare ratios from one run, not times across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._bench import median_time

__all__ = ["decaying_matrix", "main", "run"]

N_OVERSAMPLES = 10
N_ITER = 4
SEED = 0
#: Singular values ``σ_i = max(DECAY**i, FLOOR)``, i = 0, 1, ...: geometric
#: decay to a floor, so that the matrix has full rank and a known spectrum.
DECAY = 0.9
FLOOR = 1e-3
#: A result whose top-k singular values are off by more than this (relative)
#: is wrong: it posts "wrong" and is never the baseline of the ratios.
WRONG = 1e-2
#: Row chunks of the Dask arrays.
DASK_CHUNKS = 8


@functools.lru_cache(maxsize=2)
def _decaying_float64(m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    sigma = np.maximum(DECAY ** np.arange(n, dtype=np.float64), FLOOR)
    # A = U diag(σ) Vᵀ with U = Z R⁻¹ (Cholesky QR of a Gaussian m x n Z, whose
    # condition number (√m+√n)/(√m-√n) is small enough for one pass to be
    # orthonormal to working precision) and V the Q of a Gaussian n x n.
    # Cholesky QR runs at GEMM speed, where Householder QR of Z would take
    # half a minute; A = Z (R⁻¹ diag(σ) Vᵀ) then costs one more GEMM.
    Z = rng.standard_normal((m, n))
    R = np.linalg.cholesky(Z.T @ Z).T
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    import scipy.linalg as sl

    M = sl.solve_triangular(R, sigma[:, None] * V.T)   # R⁻¹ diag(σ) Vᵀ
    return Z @ M, sigma


def decaying_matrix(m: int, n: int, dtype: Any = "float64") -> tuple[np.ndarray, np.ndarray]:
    """``(A, sigma)``: an ``m x n`` matrix with singular values ``sigma`` (descending).

    ``sigma_i = max(0.9**i, 1e-3)``; ``A = U diag(sigma) Vᵀ`` with Haar-like
    random orthonormal factors drawn from seed 0.  Built once per process and
    shape (the float32 matrix is the float64 one rounded); shared by every
    caller, so treat it as read-only (torch needs it writeable to share it).
    """
    A, sigma = _decaying_float64(m, n)
    if np.dtype(dtype) != np.float64:
        A = _rounded(m, n, np.dtype(dtype).name)
    return A, sigma


@functools.lru_cache(maxsize=2)
def _rounded(m: int, n: int, dtype: str) -> np.ndarray:
    return _decaying_float64(m, n)[0].astype(dtype)


def matmul_peak(dtype: Any, *, n: int = 2000, repeats: int = 5) -> float:
    """Measured matmul throughput in GFLOP/s: median over ``repeats`` of ``2 n³ / t``."""
    X = np.random.default_rng(1).standard_normal((n, n)).astype(dtype)
    X @ X  # warm-up: thread pool start
    return 2.0 * n**3 / median_time(lambda: X @ X, repeats) / 1e9


def _host(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _compute(*arrays: Any) -> tuple[Any, ...]:
    """Compute Dask collections among ``arrays`` (with the active scheduler); keep the rest."""
    if any(type(a).__module__.startswith("dask") for a in arrays):
        import dask

        return dask.compute(*arrays)
    return arrays


def _eigarray(A: Any, k: int) -> Callable[[], np.ndarray]:
    import eigarray

    if not hasattr(eigarray, "randomized_svd"):
        raise ImportError("eigarray.randomized_svd is not available in this checkout")

    def solve() -> np.ndarray:
        U, S, Vt = eigarray.randomized_svd(A, k, n_oversamples=N_OVERSAMPLES, n_iter=N_ITER,
                                           random_state=SEED)
        U, S, Vt = _compute(U, S, Vt)
        return _host(S)

    return solve


def _sklearn(A: np.ndarray, k: int) -> Callable[[], np.ndarray]:
    from sklearn.utils.extmath import randomized_svd

    def solve() -> np.ndarray:
        return randomized_svd(A, k, n_oversamples=N_OVERSAMPLES, n_iter=N_ITER,
                              random_state=SEED)[1]

    return solve


def _torch(A: np.ndarray, k: int) -> Callable[[], np.ndarray]:
    import torch

    T = torch.from_numpy(A)   # shares the memory

    def solve() -> np.ndarray:
        torch.manual_seed(SEED)
        U, S, V = torch.svd_lowrank(T, q=k + N_OVERSAMPLES, niter=N_ITER)
        return S[:k].numpy()

    return solve


def _svd_compressed(Ad: Any, k: int, iterator: str = "power") -> Callable[[], np.ndarray]:
    import dask
    import dask.array as da

    def solve() -> np.ndarray:
        u, s, v = da.linalg.svd_compressed(Ad, k, iterator=iterator, n_power_iter=N_ITER,
                                           n_oversamples=N_OVERSAMPLES, seed=SEED)
        u, s, v = dask.compute(u, s, v)
        return np.asarray(s)

    return solve


def _dask_rows(Ad: Any, k: int, where: str, common: dict, scheduler: str | None = None
               ) -> list[dict]:
    group = f"dask {where}"
    rows = [_measure(f"eigarray randomized_svd, dask ({where})",
                     functools.partial(_eigarray, Ad, k), ours=True, group=group,
                     scheduler=scheduler, **common)]
    for iterator in ("power", "QR"):
        rows.append(_measure(f"dask svd_compressed iterator={iterator!r} ({where})",
                             functools.partial(_svd_compressed, Ad, k, iterator), ours=False,
                             group=group, scheduler=scheduler, **common))
    return rows


@contextlib.contextmanager
def _scheduler(name: str | None) -> Iterator[None]:
    if name is None:
        yield
        return
    import dask

    # The threaded scheduler runs tasks on every core already; multithreaded
    # BLAS inside each task oversubscribes the cores (OpenBLAS then spins:
    # seconds per solve instead of one), so its tasks get one BLAS thread,
    # as distributed's nanny gives the LocalCluster's workers.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(1, user_api="blas")
    with dask.config.set(scheduler=name), limits:
        yield


def _flops(m: int, n: int, k: int) -> float:
    return 2.0 * m * n * (k + N_OVERSAMPLES) * (2 + 2 * N_ITER)


def _header(out: Callable[[str], object]) -> None:
    import os

    out(f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            out(f"  threadpool {pool.get('user_api')}: {pool.get('internal_api')} "
                f"{pool.get('version')}, {pool.get('num_threads')} threads")
    except ImportError:
        out("  (threadpoolctl not installed: BLAS thread count unknown)")
    try:
        import torch

        out(f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}")
    except ImportError:
        out("torch not installed")
    out(f"every method: oversampling {N_OVERSAMPLES}, {N_ITER} power iterations "
        f"(1 + 2*{N_ITER} + 1 = {2 + 2 * N_ITER} passes over A), seed {SEED}; "
        f"singular values max({DECAY}**i, {FLOOR:g})")
    out("figures from a shared machine are noisy: read the ratios, not the times")


COLUMNS = (f"{'method':<52}{'time [s]':>9}{'max rel err':>13}{'GFLOP/s':>9}{'% peak':>8}"
           f"{'vs best peer':>14}")


def _print_rows(rows: list[dict], out: Callable[[str], object]) -> None:
    ok = [r for r in rows if r["time"] is not None]
    peers = [r["time"] for r in ok if not r["eigarray"] and r["error"] <= WRONG]
    best = min(peers) if peers else None
    for r in rows:
        if r["time"] is None:
            out(f"{r['method']:<52}  ({r['note']})")
            continue
        if r["error"] > WRONG:
            ratio = f"{'wrong':>14}"
        elif best:
            r["ratio"] = r["time"] / best
            ratio = f"{r['ratio']:13.2f}x"
        else:
            ratio = f"{'-':>14}"
        out(f"{r['method']:<52}{r['time']:9.3f}{r['error']:13.2e}{r['gflops']:9.1f}"
            f"{r['pct_peak']:7.0f}%{ratio}")


def _measure(label: str, make: Callable[[], Callable[[], np.ndarray]], *, sigma: np.ndarray,
             k: int, flops: float, peak: float, repeats: int, ours: bool,
             scheduler: str | None = None, group: str, extra: dict) -> dict:
    row: dict = dict(extra, group=group, method=label, eigarray=ours, time=None, error=None,
                     gflops=None, pct_peak=None, ratio=None, note="")
    try:
        solve = make()
    except ImportError as exc:
        row["note"] = f"skipped: {exc}"
        return row
    try:
        with _scheduler(scheduler):
            s = np.sort(np.asarray(solve(), dtype=np.float64))[::-1][:k]   # warm-up, checked
            t = median_time(solve, repeats)
    except Exception as exc:   # one failing implementation must not end the run
        row["note"] = f"failed: {type(exc).__name__}: {exc}"
        return row
    exact = sigma[:k]
    row.update(time=t, error=float(np.max(np.abs(s - exact) / exact)),
               gflops=flops / t / 1e9)
    row["pct_peak"] = 100.0 * row["gflops"] / peak
    return row


def _local_cluster_rows(A: np.ndarray, k: int, chunk: int, common: dict,
                        out: Callable[[str], object]) -> list[dict]:
    try:
        import dask.array as da
        from distributed import Client, LocalCluster
    except ImportError as exc:
        out(f"  (dask LocalCluster variant skipped: {exc.name or exc} not installed)")
        return []
    import logging

    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.ERROR)   # no worker start/stop chatter in the table
    try:
        return _on_cluster(A, k, chunk, common, out, da, Client, LocalCluster)
    finally:
        log.setLevel(level)


def _on_cluster(A: np.ndarray, k: int, chunk: int, common: dict, out: Callable[[str], object],
                da: Any, Client: Any, LocalCluster: Any) -> list[dict]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        # scatter the row blocks (embedding them in the graph would ship the
        # whole matrix with every computation)
        blocks = [A[i:i + chunk] for i in range(0, A.shape[0], chunk)]
        futures = client.scatter(blocks)
        Ad = da.concatenate([da.from_delayed(f, b.shape, dtype=b.dtype)
                             for f, b in zip(futures, blocks, strict=True)])

        def blas_threads() -> int:
            try:
                from threadpoolctl import threadpool_info

                return max((p["num_threads"] for p in threadpool_info()
                            if p.get("user_api") == "blas"), default=0)
            except ImportError:
                return 0

        threads = sorted(set(client.run(blas_threads).values()))
        out(f"  LocalCluster: 2 worker processes x 1 thread, BLAS threads per worker {threads}; "
            f"row blocks scattered to the workers")
        return _dask_rows(Ad, k, "LocalCluster", common)


def run(*, repeats: int = 3, sizes: tuple[tuple[int, int], ...] = ((20000, 2000),),
        k: int = 20, dtypes: tuple[str, ...] = ("float64", "float32"), dask: bool = True,
        in_memory: bool = True, out: Callable[[str], object] = print) -> list[dict]:
    """Time every implementation on every size and dtype and print the tables.

    Parameters
    ----------
    repeats : int, default=3
        Timed runs per figure (after one untimed warm-up); the median is reported.
    sizes : tuple of (m, n), default=((20000, 2000),)
        Matrix shapes.
    k : int, default=20
        Singular triplets requested.
    dtypes : tuple of str, default=("float64", "float32")
    dask : bool, default=True
        Also run the Dask rows (threaded scheduler, and a two-process
        LocalCluster when ``distributed`` is installed).
    in_memory : bool, default=True
        Run the in-memory rows (NumPy, scikit-learn, torch); False with
        ``dask=True`` runs the Dask rows only.
    out : callable, default=print
        Receives each line.

    Returns
    -------
    rows : list of dict
        One per size, dtype and implementation: ``m``, ``n``, ``dtype``,
        ``group``, ``method``, ``time`` (s, ``None`` when skipped), ``error``
        (max relative error of the top ``k`` singular values), ``gflops``,
        ``pct_peak``, ``ratio`` (time over the fastest peer of its group whose
        error is at most ``WRONG``; ``None`` for a wrong result) and ``note``.
    """
    _header(out)
    peaks = {dt: matmul_peak(dt) for dt in dtypes}
    out("matmul peak (NumPy 2000x2000 @ 2000x2000, median of 5): "
        + ", ".join(f"{dt} {p:.1f} GFLOP/s" for dt, p in peaks.items()))
    rows: list[dict] = []
    for m, n in sizes:
        for dt in dtypes:
            t0 = time.perf_counter()
            A, sigma = decaying_matrix(m, n, dt)
            built = time.perf_counter() - t0
            flops = _flops(m, n, k)
            common: dict[str, Any] = dict(sigma=sigma, k=k, flops=flops, peak=peaks[dt],
                                          repeats=repeats, extra=dict(m=m, n=n, dtype=dt))
            out(f"\n{m} x {n} {dt}, k = {k}: {flops / 1e9:.1f} GFLOP of products per solve "
                f"(matrix built in {built:.1f} s)")
            out(COLUMNS)
            group = "in memory"
            local = [
                _measure("eigarray randomized_svd, numpy", functools.partial(_eigarray, A, k),
                         ours=True, group=group, **common),
                _measure("sklearn randomized_svd", functools.partial(_sklearn, A, k),
                         ours=False, group=group, **common),
                _measure(f"torch.svd_lowrank (q={k + N_OVERSAMPLES}, niter={N_ITER})",
                         functools.partial(_torch, A, k), ours=False, group=group, **common),
            ] if in_memory else []
            _print_rows(local, out)
            rows += local
            if not dask:
                continue
            chunk = math.ceil(m / DASK_CHUNKS)
            try:
                import dask.array as da
            except ImportError:
                out("  (dask rows skipped: dask not installed)")
                continue
            Ad = da.from_array(A, chunks=(chunk, n))
            out(f"  dask: {DASK_CHUNKS} row chunks of {chunk} x {n}, threaded scheduler, one BLAS "
                f"thread per task; svd_compressed's default iterator='power' orthonormalises "
                f"only at the end")
            threaded = _dask_rows(Ad, k, "threads", common, scheduler="threads")
            _print_rows(threaded, out)
            rows += threaded
            cluster = _local_cluster_rows(A, k, chunk, common, out)
            _print_rows(cluster, out)
            rows += cluster
    return rows


def main(argv: Any = None) -> int:
    """Command line of ``python -m eigarray._bench_randomized``."""
    parser = argparse.ArgumentParser(prog="python -m eigarray._bench_randomized",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, nargs=2, metavar=("M", "N"), default=None)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"],
                        choices=["float64", "float32"])
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--dask-only", action="store_true",
                        help="only the Dask rows (threaded scheduler and LocalCluster)")
    args = parser.parse_args(argv)
    sizes = (tuple(args.size),) if args.size else ((20000, 2000),)
    run(repeats=args.repeats, sizes=sizes, k=args.k, dtypes=tuple(args.dtypes),
        dask=not args.no_dask, in_memory=not args.dask_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
