"""Side-by-side throughput of the batched inverse square root and its NumPy peer.

``python -m eigarray._bench_matfuncs`` prints, for stacks of random symmetric
positive definite matrices, matrices per second (median of ``repeats`` runs,
one process) of

* ``eigarray``: :func:`eigarray.inv_sqrtm` as a caller sees it (validation,
  the finiteness and definiteness checks, batched Jacobi, reconstruction);
* ``numpy``: :func:`numpy.linalg.eigh` on the stack followed by the same
  reconstruction (``W = V diag(λ^{-1/4})``, ``W Wᵀ``, ``(X + Xᵀ) / 2``);

and their ratio, plus where eigarray's time goes: ``eigh`` (the batched
eigendecomposition alone, :func:`eigarray.eigh_batched`) and ``recon`` (its
reconstruction ``W Wᵀ``, ``W = V diag(λ^{-1/4})``, alone).  JIT compilation
is done before timing.  A result that misses the accuracy standard
(``||R A R - I||_F / (n eps) < 30`` on the first 64 matrices) posts
``wrong`` instead of a time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ._bench import median_time

__all__ = ["run"]

CASES = [
    (np.float64, 10_000, 16),
]


@functools.lru_cache
def _problem(dtype, B: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    X = rng.standard_normal((B, n, 2 * n))
    A = X @ np.swapaxes(X, -1, -2) / (2 * n) + 0.1 * np.eye(n)   # covariance-like, SPD
    return ((A + np.swapaxes(A, -1, -2)) / 2).astype(dtype)


def _accurate(A: np.ndarray, R: np.ndarray) -> bool:
    eps = float(np.finfo(R.dtype).eps)
    A, R = A[:64].astype(np.float64), R[:64].astype(np.float64)
    n = A.shape[-1]
    err = np.linalg.norm(R @ A @ R - np.eye(n), axis=(1, 2)) / (n * eps)
    return bool(np.all(err < 30))


def _reconstruct(w: np.ndarray, V: np.ndarray) -> np.ndarray:
    W = V * (w ** -0.25)[..., None, :]
    X = W @ np.swapaxes(W, -1, -2)
    return (X + np.swapaxes(X, -1, -2)) * 0.5


def _numpy_inv_sqrtm(A: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(A)
    return _reconstruct(w, V)


def run(out: Callable[[str], object] = print, repeats: int = 5) -> list[dict]:
    """Time eigarray's and NumPy's batched inverse square root and print the table.

    Parameters
    ----------
    out : callable, default=print
        Receives each line of the table.
    repeats : int, default=5
        Timed runs per implementation and case; the median is reported.

    Returns
    -------
    rows : list of dict
        One per case: ``dtype``, ``n``, ``batch``, matrices per second of
        ``eigarray`` and ``numpy`` (``None`` when the result missed the
        standard), their ratio ``speedup``, and the seconds of eigarray's
        ``eigh`` and ``recon`` parts.
    """
    import numba

    import eigarray
    from eigarray import _matfuncs

    out(f"numba {numba.__version__}, {numba.get_num_threads()} threads; numpy {np.__version__}; "
        f"median of {repeats}")
    out(f"{'dtype':8} {'n':>4} {'batch':>7} {'eigarray/s':>12} {'numpy/s':>12} {'speedup':>8} "
        f"{'eigh s':>8} {'recon s':>8}")
    rows = []
    for dtype, B, n in CASES:
        A = _problem(dtype, B, n)
        impls = {"eigarray": eigarray.inv_sqrtm, "numpy": _numpy_inv_sqrtm}
        row: dict = {"dtype": np.dtype(dtype).name, "n": n, "batch": B}
        for name, fn in impls.items():
            if not _accurate(A, fn(A[:64])):      # warm-up (JIT) and accuracy check
                row[name] = None
                continue
            row[name] = B / median_time(functools.partial(fn, A), repeats)
        w, V = eigarray.eigh_batched(A)
        row["eigh"] = median_time(functools.partial(eigarray.eigh_batched, A), repeats)
        half = w ** -0.25
        row["recon"] = median_time(
            functools.partial(_matfuncs._reconstruct, np, V, half=half), repeats)
        ok = row["eigarray"] and row["numpy"]
        row["speedup"] = row["eigarray"] / row["numpy"] if ok else None

        def rate(v):
            return f"{v:12.0f}" if v else f"{'wrong':>12}"

        speed = f"{row['speedup']:8.2f}" if ok else f"{'-':>8}"
        out(f"{row['dtype']:8} {n:4d} {B:7d} {rate(row['eigarray'])} {rate(row['numpy'])} "
            f"{speed} {row['eigh']:8.4f} {row['recon']:8.4f}")
        rows.append(row)
    return rows


if __name__ == "__main__":
    run()
