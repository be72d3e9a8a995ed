"""Side-by-side fit time of :class:`eigarray.EigenLayer` and scikit-learn's PCA.

``python -m eigarray._bench_layers`` prints, for data with a known spectrum,
the median time of ``repeats`` interleaved rounds of fits (one process,
same data, a short pause before each fit) of

* ``eigarray``: ``EigenLayer(k)`` with ``solver='auto'`` (covariance for at
  most 1000 features, randomized SVD of the implicitly centred data above);
* ``eigarray-rand``: ``EigenLayer(k, solver='randomized')``;
* ``sklearn``: ``sklearn.decomposition.PCA(k)`` with ``svd_solver='auto'``;
* ``sklearn-rand``: the same with ``svd_solver='randomized'``;

each one's ratio to ``sklearn`` (auto), and the largest relative error of
``explained_variance_`` against the exact values, so that times are compared
at equal accuracy.  A fit whose largest relative error exceeds
``MAX_REL_ERROR`` posts ``wrong`` instead of a time.

The data is ``U diag(σ) Vᵀ + 1 μᵀ`` with ``U`` orthonormal and centred and
``V`` orthonormal, so the exact explained variances are ``σ² / (m - 1)``: a
decaying top of ``k`` values (``100 * 0.86^i``, down to about 1) over a noise floor near 0.05
(low rank plus noise, the case PCA is for).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._bench import median_time

__all__ = ["run"]

# (dtype, n_samples, n_features, rank of the data, n_components)
CASES = [
    (np.float32, 200_000, 256, 256, 32),
    (np.float64, 20_000, 4_096, 256, 32),
]
MAX_REL_ERROR = 1e-2
#: Seconds of pause before each timed fit.
_PAUSE = 0.25


@functools.lru_cache(maxsize=2)
def _problem(dtype: Any, m: int, d: int, r: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Data with exactly known explained variances (returned, descending)."""
    rng = np.random.default_rng(m + d)
    ev = np.concatenate([100.0 * 0.86 ** np.arange(k),
                         0.05 * (1.0 - np.arange(r - k) / (4.0 * r))])
    G = rng.standard_normal((m, r))
    G -= G.mean(axis=0)
    U, _ = np.linalg.qr(G)
    del G
    V, _ = np.linalg.qr(rng.standard_normal((d, r)))
    sigma = np.sqrt(ev * (m - 1))
    X = (U * sigma) @ V.T
    del U
    X += rng.standard_normal(d) * 3.0
    return np.ascontiguousarray(X, dtype=dtype), ev


def _impls(k: int) -> dict[str, Callable[[np.ndarray], Any]]:
    import eigarray

    impls: dict[str, Callable[[np.ndarray], Any]] = {
        "eigarray": lambda X: eigarray.EigenLayer(k, random_state=0).fit(X),
        "eigarray-rand": lambda X: eigarray.EigenLayer(k, solver="randomized",
                                                       random_state=0).fit(X),
    }
    try:
        from sklearn.decomposition import PCA
    except ImportError:
        return impls
    impls["sklearn"] = lambda X: PCA(k, random_state=0).fit(X)
    impls["sklearn-rand"] = lambda X: PCA(k, svd_solver="randomized", random_state=0).fit(X)
    return impls


def _blas_threads(threads: int | None):
    """Limit every BLAS thread pool to ``threads`` (threadpoolctl), or leave it."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def run(out: Callable[[str], object] = print, repeats: int = 5,
        cases: list | None = None, threads: int | None = None) -> list[dict]:
    """Time every implementation on every case and print the table.

    Parameters
    ----------
    out : callable, default=print
        Receives each line of the table.
    repeats : int, default=5
        Rounds of timed fits, each fitting every implementation once (in
        turn, so that load changes reach all alike); the median is reported.
    cases : list of tuple, optional
        ``(dtype, n_samples, n_features, rank, n_components)``; default
        :data:`CASES`.
    threads : int, optional
        Limit BLAS to this many threads for every implementation (on a
        shared, loaded machine one thread gives comparable numbers, where
        spinning BLAS threads otherwise dominate); default: leave it.

    Returns
    -------
    rows : list of dict
        One per case and implementation: ``case``, ``impl``, ``seconds``
        (None when the result missed :data:`MAX_REL_ERROR`), ``rel_error``
        (largest relative error of ``explained_variance_``) and
        ``ratio`` (time over scikit-learn's 'auto').
    """
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out(f"numpy {np.__version__}; {os.cpu_count()} CPUs (load {load:.1f}); BLAS threads: "
        f"{threads or 'default'}; median of {repeats} interleaved rounds; error: max relative "
        f"error of explained_variance_ vs the exact values")
    out(f"{'case':34} {'impl':>14} {'seconds':>9} {'x sklearn':>10} {'rel. error':>11}")
    rows = []
    for case in cases or CASES:
        dtype, m, d, r, k = case
        X, ev = _problem(dtype, m, d, r, k)
        label = f"{np.dtype(dtype).name} {m} x {d}, k={k}"
        timed: dict[str, dict] = {}
        impls = _impls(k)
        times: dict[str, list] = {name: [] for name in impls}
        with _blas_threads(threads):
            for name, fn in impls.items():
                est = fn(X)                               # warm-up and accuracy check
                got = np.asarray(est.explained_variance_, dtype=np.float64)
                err = float(np.max(np.abs(got - ev[:k]) / ev[:k]))
                timed[name] = {"case": label, "impl": name, "seconds": None, "rel_error": err}
            # Rounds that time every implementation once, so that a change in the
            # machine's load reaches all of them alike; a pause before each fit
            # lets the BLAS threads of the one before (scipy's OpenBLAS is a
            # second pool) stop spinning, which otherwise slows the next fit.
            for _ in range(max(1, repeats)):
                for name, fn in impls.items():
                    if timed[name]["rel_error"] <= MAX_REL_ERROR:
                        time.sleep(_PAUSE)
                        times[name].append(median_time(functools.partial(fn, X), 1))
        for name, row in timed.items():
            if times[name]:
                row["seconds"] = float(np.median(times[name]))
        base = timed.get("sklearn", {}).get("seconds")
        for name, row in timed.items():
            row["ratio"] = row["seconds"] / base if row["seconds"] and base else None
            secs = f"{row['seconds']:9.3f}" if row["seconds"] else f"{'wrong':>9}"
            ratio = f"{row['ratio']:10.2f}" if row["ratio"] else f"{'-':>10}"
            out(f"{label:34} {name:>14} {secs} {ratio} {row['rel_error']:11.2e}")
            rows.append(row)
    return rows


if __name__ == "__main__":
    import sys

    run(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None)
