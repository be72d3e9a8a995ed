"""Side-by-side benchmarks behind ``python -m eigarray bench``.

Every solver runs in the same process on the same problem, so the figures
compare as ratios.  Wall times are medians of ``repeats`` runs when one run
takes under a minute (else one run); operator applications are counted by
wrapping the operator; peak memory is the tracemalloc peak of one extra,
untimed run (NumPy and scipy allocations are traced; torch's are not).
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


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    times = [time.perf_counter() - t0]
    if times[0] < 60.0:
        for _ in range(repeats - 1):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times), out


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

        results = {}
        for label, fn, count in solvers:
            t, res = _timed(fn, repeats)
            w = res[0] if isinstance(res, tuple) else res
            w = np.sort(np.asarray(w))
            err = float(np.max(np.abs(w - exact) / np.abs(exact)))
            mv = count()
            peak = _peak_bytes(fn) / 2**20
            results[label] = dict(problem=title, solver=label, time=t, matvecs=mv, error=err,
                                  peak_mb=peak)
        peers = [r for lab, r in results.items() if not lab.startswith("eigarray")]
        best = min(r["time"] for r in peers)
        if torch:
            row = _torch_row(A, k, tol, exact, repeats)
            if row is not None:
                results[row["solver"]] = row | {"problem": title}
        for r in results.values():
            ratio = r["time"] / best
            peak = f"{r['peak_mb']:9.1f}" if r["peak_mb"] is not None else f"{'-':>9}"
            out(f"{r['solver']:<44}{r['time']:10.3f}{r['matvecs']:9d}{r['error']:13.2e}"
                f"{peak}{ratio:12.2f}x")
            rows.append(r)
    return rows


def _torch_row(A: Any, k: int, tol: float, exact: np.ndarray, repeats: int) -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    import warnings

    from ._lanczos import eigsh

    def run():
        return eigsh(T, k=k, which="LA", tol=tol, rng=0)

    coo = A.tocoo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: "sparse CSR support is in beta"
        T = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape,
                                    check_invariants=True).coalesce().to_sparse_csr()
        t, res = _timed(run, repeats)
    w = np.sort(res.eigenvalues.numpy())
    err = float(np.max(np.abs(w - exact) / np.abs(exact)))
    return dict(solver="eigarray eigsh, torch sparse CSR input", time=t,
                matvecs=res.info.n_matvec, error=err, peak_mb=None)
