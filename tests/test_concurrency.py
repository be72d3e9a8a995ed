"""Threads and processes: what a library embedded in servers and data loaders owes them."""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import eigarray

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, cwd=ROOT, timeout=300, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_small_calls_start_no_thread_pool_and_fork_safely():
    # A parallel region, even a short one, starts the threading layer's pool,
    # and with GNU OpenMP a process that forks afterwards has its children
    # abort ('fork' pools, data-loader workers): small batches run serially.
    out = _run("""
        import multiprocessing as mp
        import numba, numpy as np, eigarray

        def work(_=0):
            return float(eigarray.sqrtm(np.eye(4) * 2.0)[0, 0])

        if __name__ == "__main__":
            work()
            eigarray.EigenLayer(2).fit(np.random.default_rng(0).standard_normal((50, 6)))
            eigarray.eigh_batched(np.eye(8)[None].repeat(100, axis=0))
            try:
                numba.threading_layer()
                print("pool started")
            except ValueError:
                print("no pool")
            with mp.get_context("fork").Pool(1) as pool:
                print(pool.map_async(work, [0]).get(timeout=60))
    """)
    words = out.split()
    assert words[:2] == ["no", "pool"]
    assert abs(float(words[2].strip("[]")) - np.sqrt(2.0)) <= 4e-16


def test_concurrent_calls_under_the_workqueue_layer():
    # Numba's workqueue layer (its fallback without OpenMP or TBB) aborts the
    # process when two threads enter parallel regions at once: eigarray
    # serialises its launches there.
    out = _run("""
        import concurrent.futures, numba, numpy as np, eigarray
        from eigarray.testing import laplacian_2d

        A = np.random.default_rng(0).standard_normal((20000, 8, 8))
        A = A + A.swapaxes(-1, -2)
        L, _ = laplacian_2d(300, 300)
        w0, _ = eigarray.eigh_batched(A)
        s0 = eigarray.randomized_svd(L, 4, random_state=0)[1]
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            ws = list(ex.map(lambda _: eigarray.eigh_batched(A)[0], range(8)))
            ss = list(ex.map(lambda _: eigarray.randomized_svd(L, 4, random_state=0)[1],
                             range(4)))
        print(numba.threading_layer(), all(np.array_equal(w, w0) for w in ws),
              all(np.array_equal(s, s0) for s in ss))
    """, NUMBA_THREADING_LAYER="workqueue")
    assert out.split() == ["workqueue", "True", "True"]


def test_concurrent_prange_over_lapack_restores_the_blas_threads():
    # The prange over LAPACK limits BLAS to one thread, a process-wide
    # setting: concurrent calls share the limit, and the last one out lifts
    # it (each restored what it found, so the limit stayed for good).
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pytest.importorskip("scipy")
    A = np.random.default_rng(0).standard_normal((4, 150, 150))
    A = A + A.swapaxes(-1, -2)
    w0, _ = eigarray.eigh_batched(A)

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    before = blas_threads()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        ws = list(ex.map(lambda _: eigarray.eigh_batched(A)[0], range(24)))
    assert blas_threads() == before
    for w in ws:
        np.testing.assert_array_equal(w, w0)


def test_transform_from_threads_while_a_stream_is_finalised():
    # The first access after partial_fit fits the stream: one thread does it,
    # the others wait (they saw an unfitted estimator while it ran).
    X = np.random.default_rng(0).standard_normal((400, 30))
    reference = eigarray.EigenLayer(5).fit(X).transform(X[:10])
    for _ in range(10):
        layer = eigarray.EigenLayer(5)
        for chunk in np.array_split(X, 4):
            layer.partial_fit(chunk)
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            outs = list(ex.map(lambda _, layer=layer: layer.transform(X[:10]), range(8)))
        for out in outs:
            np.testing.assert_allclose(np.abs(out), np.abs(reference), rtol=1e-9, atol=1e-12)
