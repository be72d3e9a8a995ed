"""Side-by-side benchmarks behind ``python -m eigarray bench``.

Every solver runs in the same process on the same problem, so the figures
compare as ratios.  Wall times are medians of ``repeats`` interleaved rounds,
each running every solver once in turn (so that a change in the machine's
load reaches all alike), for the solvers whose first run took under a
minute (else that run); operator applications are counted by wrapping the
operator; peak memory is the tracemalloc peak of one extra, untimed run
(NumPy and scipy allocations are traced; torch's are not).
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["lanczos_table", "median_time"]


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``max(1, repeats)`` calls of ``fn``."""
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _interleaved(fns: list[Callable[[], Any]], repeats: int) -> tuple[list[float], list]:
    """Median wall times of ``fns`` over ``repeats`` rounds that call each in turn,
    and the results of their first calls.  A function whose first call took a
    minute or more runs once.
    """
    times: list[list[float]] = []
    first = []
    for fn in fns:
        t0 = time.perf_counter()
        first.append(fn())
        times.append([time.perf_counter() - t0])
    for _ in range(repeats - 1):
        for fn, ts in zip(fns, times, strict=True):
            if ts[0] < 60.0:
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times], first


def _peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


class _Counting:
    """A scipy LinearOperator that counts products (for untimed counting runs)."""

    def __init__(self, A):
        import scipy.sparse.linalg as sla

        self.count = 0

        def mv(x):
            self.count += 1 if x.ndim == 1 else x.shape[1]
            return A @ x

        self.op = sla.LinearOperator(A.shape, matvec=mv, matmat=mv, dtype=A.dtype)


def lanczos_problems(names: list[str] | None = None) -> list[tuple[str, Any, np.ndarray]]:
    from .testing import laplacian_2d

    specs = {
        "aniso200": ("anisotropic 2-D Laplacian 200x200", 200, 0.7),
        "aniso700": ("anisotropic 2-D Laplacian 700x700", 700, 0.7),
        "square300": ("square 2-D Laplacian 300x300 (double eigenvalues)", 300, 1.0),
    }
    out = []
    for key in names or list(specs):
        title, N, a = specs[key]
        A, lam = laplacian_2d(N, N, anisotropy=a)
        out.append((title, A, lam))
    return out


def lanczos_table(problems: list[str] | None = None, *, k: int = 10, tol: float = 1e-8,
                  repeats: int = 3, torch: bool = True,
                  out: Callable[[str], Any] = print) -> list[dict]:
    """Print and return the eigsh side-by-side table (eigarray, ARPACK, PRIMME)."""
    import scipy.sparse.linalg as sla

    from ._lanczos import eigsh

    rows: list[dict] = []
    header = (f"{'problem / solver':<44}{'time [s]':>10}{'matvecs':>9}{'max rel err':>13}"
              f"{'peak MB':>9}{'vs best peer':>13}")
    for title, A, lam in lanczos_problems(problems):
        exact = lam[-k:]
        n = A.shape[0]
        out(f"\n{title}: n = {n}, k = {k}, which='LA', tol = {tol:g}")
        out(header)
        solvers: list[tuple[str, Callable[[], Any], Callable[[], int]]] = []

        def ours(A=A):
            return eigsh(A, k=k, which="LA", tol=tol, rng=0)

        solvers.append(("eigarray eigsh (defaults)", ours, lambda f=ours: f().info.n_matvec))
        # ARPACK starts from a seeded vector too: its time and its answer on
        # the square grid (whether it finds second copies) depend on the start.
        v0 = np.random.default_rng(0).standard_normal(n)
        for ncv in (None, 60):
            def arpack(A=A, ncv=ncv, v0=v0):
                return sla.eigsh(A, k=k, which="LA", tol=tol, ncv=ncv, v0=v0)

            def count(A=A, ncv=ncv, v0=v0):
                c = _Counting(A)
                sla.eigsh(c.op, k=k, which="LA", tol=tol, ncv=ncv, v0=v0)
                return c.count

            label = ("scipy ARPACK eigsh (defaults)" if ncv is None
                     else f"scipy ARPACK eigsh ncv={ncv}")
            solvers.append((label, arpack, count))
        try:
            import primme  # noqa: F401

            def prim(A=A):
                return primme.eigsh(A, k=k, which="LA", tol=tol, return_stats=True)

            solvers.append(("PRIMME eigsh", prim, lambda f=prim: int(f()[2]["numMatvecs"])))
        except ImportError:
            out(f"{'PRIMME eigsh':<44}  (primme not installed)")

        if torch:
            run = _torch_run(A, k, tol)
            if run is not None:
                solvers.append(("eigarray eigsh, torch sparse CSR input", run, None))
        times, first = _interleaved([fn for _, fn, _ in solvers], repeats)
        results = {}
        for (label, fn, count), t, res in zip(solvers, times, first, strict=True):
            w = np.sort(np.asarray(res[0]))
            err = float(np.max(np.abs(w - exact) / np.abs(exact)))
            if count is None:                        # torch: its own count, no traced memory
                mv, peak = res.info.n_matvec, None
            else:
                mv, peak = count(), _peak_bytes(fn) / 2**20
            results[label] = dict(problem=title, solver=label, time=t, matvecs=mv, error=err,
                                  peak_mb=peak)
        peers = [r for lab, r in results.items() if not lab.startswith("eigarray")]
        best = min(r["time"] for r in peers)
        for r in results.values():
            ratio = r["time"] / best
            peak = f"{r['peak_mb']:9.1f}" if r["peak_mb"] is not None else f"{'-':>9}"
            out(f"{r['solver']:<44}{r['time']:10.3f}{r['matvecs']:9d}{r['error']:13.2e}"
                f"{peak}{ratio:12.2f}x")
            rows.append(r)
    return rows


def _torch_run(A: Any, k: int, tol: float) -> Callable[[], Any] | None:
    """eigsh on ``A`` as a torch sparse CSR tensor, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    import warnings

    from ._lanczos import eigsh

    coo = A.tocoo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: "sparse CSR support is in beta"
        T = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape,
                                    check_invariants=True).coalesce().to_sparse_csr()

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return eigsh(T, k=k, which="LA", tol=tol, rng=0)

    return run
