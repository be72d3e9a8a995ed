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


@pytest.mark.parametrize("dtype", ["float32", "complex128"])
def test_randomized_svd_uneven_blocks_tsqr_tree(client, dtype):
    # 17 row blocks, the first shorter than the block of l = 15 columns, one
    # empty: a two-level TSQR tree (8 blocks per node), and with 2 per node five levels.
    from eigarray._randomized import _dask_svd

    sv = 0.7 ** np.arange(40)
    A, _, _ = testing.matrix_with_singular_values(1500, 40, sv, rng=2,
                                                   complex=dtype.startswith("complex"))
    A = A.astype(dtype)
    Ad = da.from_array(A, chunks=((7, 93, 0) + (100,) * 14, (40,)))
    ref = eigarray.randomized_svd(A, 5, n_iter=3, random_state=4)
    res = eigarray.randomized_svd(Ad, 5, n_iter=3, random_state=4, compute=True)
    deep = _dask_svd(Ad, 5, l=15, n_iter=3, rng=np.random.default_rng(4), flip_sign=True,
                     compute=True, split_every=2)
    for out in (res, deep):
        assert out.U.dtype == A.dtype and out.Vh.dtype == A.dtype
        testing.assert_singular_triplets(A, *out, exact=sv[:5])
        if dtype == "complex128":                    # flip_sign: the same phases as NumPy
            for x, y in zip(out, ref, strict=True):
                assert _rel(x, y) <= 1e-10


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spectrum", ["rank_3", "graded"])
def test_randomized_svd_ill_conditioned_blocks(client, dtype, spectrum):
    # Blocks A Z of rank 3 < l, or with condition numbers beyond eps^(-1/2):
    # Cholesky-QR in the tasks falls back, nothing is lost or squared.
    sv = np.array([3.0, 2.0, 1.0]) if spectrum == "rank_3" else 10.0 ** -np.arange(0, 8.0, 0.5)
    A, _, _ = testing.matrix_with_singular_values(2000, 30, sv, rng=8)
    A = A.astype(dtype)
    Ad = da.from_array(A, chunks=(250, 30))
    k = 5
    exact = np.concatenate([sv, np.zeros(k)])[:k]
    res = eigarray.randomized_svd(Ad, k, n_iter=4, random_state=3, compute=True)
    testing.assert_singular_triplets(A, *res, exact=exact)


def test_randomized_svd_info_and_history_match_numpy(tall):
    A, sv, Ad = tall
    ref = eigarray.randomized_svd(A, 5, n_iter=3, random_state=1)
    res = eigarray.randomized_svd(Ad, 5, n_iter=3, random_state=1)
    assert isinstance(res.U, da.Array)
    assert (res.info.n_iter, res.info.n_matvec) == (ref.info.n_iter, ref.info.n_matvec)
    assert res.info.converged.all() and np.isnan(res.info.residual_norms).all()
    h, g = res.info.history, ref.info.history
    assert set(h) == set(g)
    np.testing.assert_array_equal(h["n_matvec"], g["n_matvec"])
    assert h["singular_values"].shape == g["singular_values"].shape == (5, 5)
    np.testing.assert_array_equal(np.isnan(h["singular_values"]),
                                  np.isnan(g["singular_values"]))
    assert _rel(h["singular_values"][1:], g["singular_values"][1:]) <= 1e-10


def test_randomized_svd_one_graph_one_wait():
    # The whole factorisation is one graph handed to the scheduler once:
    # a pass is one task per row block plus a reduction, not a graph per pass.
    import dask
    import dask.threaded

    calls = []

    def get(dsk, keys, **kwargs):
        graph = dsk.__dask_graph__() if hasattr(dsk, "__dask_graph__") else dsk
        calls.append(len(graph))
        return dask.threaded.get(dsk, keys, **kwargs)

    sv = 0.5 ** np.arange(30)
    A, _, _ = testing.matrix_with_singular_values(2000, 30, sv, rng=5)
    Ad = da.from_array(A, chunks=(250, 30))                      # 8 row blocks
    ref = eigarray.randomized_svd(A, 4, n_iter=4, random_state=2)
    with dask.config.set(scheduler=get):
        res = eigarray.randomized_svd(Ad, 4, n_iter=4, random_state=2, compute=True)
        assert len(calls) == 1
        # 5 passes of 8 block tasks and a root; reading M, U's blocks and a few small tasks
        # (the graph of one Dask product and QR per pass has about 5 times as many).
        assert calls[0] <= 5 * (8 + 1) + 6 * 8 + 8
        lazy = eigarray.randomized_svd(Ad, 4, n_iter=4, random_state=2)
        assert len(calls) == 3                                    # persist, wait for S
        U, S, Vt = dask.compute(*lazy)
    for out in (res, (U, S, Vt)):
        for x, y in zip(out, ref, strict=True):
            assert _rel(x, y) <= 1e-10


@pytest.mark.parametrize("case", ["wide", "LU", "no_flip", "n_iter_0", "int"])
def test_randomized_svd_other_paths_match_numpy(client, case):
    sv = 0.6 ** np.arange(20)
    A, _, _ = testing.matrix_with_singular_values(600, 40, sv, rng=6)
    kw = dict(n_iter=2, random_state=7)
    if case == "wide":
        A = A.T.copy()
    elif case == "int":
        A = np.round(A * 1000).astype(np.int64)
    kw.update({"LU": dict(power_iteration_normalizer="LU"), "no_flip": dict(flip_sign=False),
               "n_iter_0": dict(n_iter=0, n_oversamples=25)}.get(case, {}))
    chunks = (A.shape[0], 10) if case == "wide" else (100, 20)   # several column chunks
    ref = eigarray.randomized_svd(A, 3, **kw)
    res = eigarray.randomized_svd(da.from_array(A, chunks=chunks), 3, compute=True, **kw)
    for x, y in zip(res, ref, strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype
        assert _rel(x, y) <= 1e-10


def test_subspace_iteration_on_dask(client):
    if not hasattr(eigarray, "subspace_iteration"):
        pytest.skip("eigarray.subspace_iteration is not available in this checkout")
    lam = 0.5 ** np.arange(400)
    A, _ = testing.matrix_with_spectrum(lam, rng=1)
    Ad = da.from_array(A, chunks=(100, 400)).persist()
    for which in ("LA", "LM"):
        w, V = eigarray.subspace_iteration(Ad, 3, which=which, rng=0)
        testing.assert_eigenpairs(A, np.asarray(w), np.asarray(V), exact=lam[:3][::-1])


def test_eigen_layer_covariance_fit_reads_the_data_once():
    import dask

    # The finite, overflow and underflow checks share the one pass the
    # scatter makes (an unpersisted scatter was read again by each check).
    class Counted:
        def __init__(self, a):
            self.a, self.shape, self.dtype, self.ndim, self.reads = a, a.shape, a.dtype, 2, 0

        def __getitem__(self, idx):
            self.reads += 1
            return self.a[idx]

    X = np.random.default_rng(3).standard_normal((4000, 20))
    src = Counted(X)
    Xd = da.from_array(src, chunks=(1000, 20), asarray=True)
    src.reads = 0                                       # from_array's look at the data
    with dask.config.set(scheduler="threads"):           # reads counted in this process
        layer = eigarray.EigenLayer(3, solver="covariance").fit(Xd)
    assert src.reads == 4                                          # 4 row blocks, once
    ref = eigarray.EigenLayer(3, solver="covariance").fit(X)
    np.testing.assert_allclose(np.asarray(layer.explained_variance_),
                               ref.explained_variance_, rtol=1e-12)
