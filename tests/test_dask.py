"""Dask arrays on a ``dask.distributed`` LocalCluster: randomized SVD, subspace iteration.

One cluster (two worker processes, one thread each) serves the whole module.
Results on a row-chunked Dask array must be the NumPy results for the same
random state: the same test matrix is drawn on the host, and the products and
factorisations differ only in the order of floating-point sums.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import eigarray  # noqa: E402
from eigarray import testing  # noqa: E402

M_, N_ = 20_000, 50
ROW_CHUNK = 2_500


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def tall(client):
    """The host matrix, its singular values, and its row-chunked copy kept on the workers."""
    sv = 0.5 ** np.arange(N_)
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=0)
    Ad = da.from_array(A, chunks=(ROW_CHUNK, N_)).persist()
    return A, sv, Ad


def _rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("method", ["range_finder", "block_krylov"])
def test_randomized_svd_row_chunked_matches_numpy(tall, method):
    A, sv, Ad = tall
    ref = eigarray.randomized_svd(A, 5, n_iter=4, random_state=3, method=method)
    res = eigarray.randomized_svd(Ad, 5, n_iter=4, random_state=3, method=method,
                                  compute=True)
    assert all(isinstance(x, np.ndarray) for x in res)            # compute=True: NumPy out
    for x, y in zip(res, ref, strict=True):
        assert _rel(x, y) <= 1e-10
    testing.assert_singular_triplets(A, *res, exact=sv[:5])
    assert res.info.n_matvec == ref.info.n_matvec


def test_randomized_svd_lazy_output_householder_qr(tall):
    A, sv, Ad = tall
    for how in ("QR",):
        ref = eigarray.randomized_svd(A, 4, n_iter=2, power_iteration_normalizer=how,
                                      random_state=5)
        U, S, Vt = eigarray.randomized_svd(Ad, 4, n_iter=2, power_iteration_normalizer=how,
                                           random_state=5)                 # Dask out
        assert all(isinstance(x, da.Array) for x in (U, S, Vt))
        assert U.chunks[0] == Ad.chunks[0]                        # still row-chunked
        for x, y in zip((U, S, Vt), ref, strict=True):
            assert _rel(x.compute(), y) <= 1e-10


def test_subspace_iteration_on_dask(client):
    if not hasattr(eigarray, "subspace_iteration"):
        pytest.skip("eigarray.subspace_iteration is not available in this checkout")
    lam = 0.5 ** np.arange(400)
    A, _ = testing.matrix_with_spectrum(lam, rng=1)
    Ad = da.from_array(A, chunks=(100, 400)).persist()
    for which in ("LA", "LM"):
        w, V = eigarray.subspace_iteration(Ad, 3, which=which, rng=0)
        testing.assert_eigenpairs(A, np.asarray(w), np.asarray(V), exact=lam[:3][::-1])
