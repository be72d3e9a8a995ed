"""Contract battery of eigsh / lanczos: spectra, ratios, namespaces, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import is_backend_array, random_hermitian, reference, run_script_ok, to_backend

import eigarray
from eigarray import testing

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("which", ["LM", "LA", "SA", "BE"])
def test_which_matches_lapack(backend, which, dtype, rng):
    A = random_hermitian(60, dtype, rng)
    Ab = to_backend(A, backend)
    w, V = eigarray.eigsh(Ab, k=5, which=which, rng=1)
    assert is_backend_array(w, backend) and is_backend_array(V, backend)
    assert tuple(V.shape) == (60, 5)
    testing.assert_eigenpairs(A, w, V, exact=reference(A, 5, which))
    np.testing.assert_array_equal(testing._host(Ab), A)   # input untouched


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("which", ["LM", "LA", "SA", "BE"])
@pytest.mark.parametrize("tol", [0.0, 1e-5])
def test_which_matches_lapack_on_the_fused_path(which, dtype, tol, rng, monkeypatch):
    # The fused Gram-Schmidt steps (NumPy rows of 4096 entries or more) on a
    # small problem, every mode and dtype, full and partial
    # reorthogonalisation.
    from eigarray import _dispatch

    monkeypatch.setattr(_dispatch, "_FUSED_MIN_LENGTH", 0)
    A = random_hermitian(80, dtype, rng)
    res = eigarray.eigsh(A, k=5, which=which, tol=tol, rng=1)
    assert res.info.all_converged
    if tol == 0.0:
        testing.assert_eigenpairs(A, *res, exact=reference(A, 5, which))
    else:
        scale = np.abs(reference(A, 80, "LM")).max()
        assert np.max(res.info.residual_norms) <= 2 * tol * scale
        np.testing.assert_allclose(res.eigenvalues, reference(A, 5, which),
                                   rtol=0, atol=10 * tol * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_laplacian_2d_dense_every_backend(backend, dtype):
    A, exact = testing.laplacian_2d(11, 9, anisotropy=0.7, dense=True)
    A = A.astype(dtype)
    for which, ref in (("LA", exact[-6:]), ("SA", exact[:6])):
        w, V = eigarray.eigsh(to_backend(A, backend), k=6, which=which, rng=0)
        testing.assert_eigenpairs(A, w, V, exact=ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_laplacian_2d_sparse_multiplicity_two(dtype, fused_steps):
    # Square grid: the top eigenvalues come in pairs; every copy must be found.
    A, exact = testing.laplacian_2d(40, 40)
    A = A.astype(dtype)
    res = eigarray.eigsh(A, k=10, which="LA", rng=3)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=exact[-10:])
    assert res.info.all_converged
    assert np.min(np.diff(exact[-10:])) < 1e-12   # the test does have double eigenvalues


def test_laplacian_3d_sparse():
    A, exact = testing.laplacian_3d(14, 12, 10)
    for which, ref in (("SA", exact[:8]), ("LA", exact[-8:])):
        w, V = eigarray.eigsh(A, k=8, which=which, rng=0)
        testing.assert_eigenpairs(A, w, V, exact=ref)


def test_laplacian_3d_cube_multiplicity_three():
    # Cube: the second eigenvalue has multiplicity 3 (index permutations).
    A, exact = testing.laplacian_3d(9, 9, 9)
    w, V = eigarray.eigsh(A, k=4, which="SA", rng=0)
    testing.assert_eigenpairs(A, w, V, exact=exact[:4])
    assert np.ptp(exact[1:4]) < 1e-12


@pytest.fixture(params=[False, True], ids=["numpy-steps", "fused-steps"])
def fused_steps(request, monkeypatch):
    """Run Lanczos' block steps through NumPy calls or the fused Numba kernels.

    The fused kernels serve rows of at least ``_FUSED_MIN_LENGTH`` entries;
    the threshold is moved so that both paths run on a small problem.
    """
    from eigarray import _dispatch

    monkeypatch.setattr(_dispatch, "_FUSED_MIN_LENGTH", 0 if request.param else 1 << 62)
    return request.param


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_relaxed_tol_semi_orthogonal_basis(dtype, fused_steps, monkeypatch):
    # With tol = 1e-8 the basis is kept semi-orthogonal only: the projections
    # of most new blocks on the basis are estimated (partial
    # reorthogonalisation), not measured.  Every estimate must bound the true
    # inner products; the eigenvalues stay accurate to working precision
    # (Simon), the returned vectors are orthonormal to working precision, and
    # the residuals meet the tolerance.
    from eigarray import _dispatch, _lanczos

    A, exact = testing.laplacian_2d(60, 50, anisotropy=0.7)
    A = A.astype(dtype)
    k = 8
    blocks, whole, ratios = [], [], []
    estimate = _lanczos._Orthogonality.estimate
    project_out = _lanczos.project_out_gram
    project = _dispatch.RowWork.project
    projected = []

    def ratio(E, B, W, j, nlock):
        true = np.abs(np.conj(B[nlock:j]) @ W.T)
        bound = np.abs(E[nlock:j])
        ratios.append(np.max(true / np.maximum(bound, 1e-300), initial=0.0))

    def recording_estimate(self, H, C, j, size, nlock, anorm, cplx):
        E = estimate(self, H, C, j, size, nlock, anorm, cplx)
        blocks.append((E, j, nlock))
        if projected:                     # fused: the block is orthogonalised already
            W = projected.pop()
            ratio(E, W.base, W, j, nlock)  # W is a block of rows of the basis
            blocks[-1] = None
        return E

    def recording_project(self, W, K, P, stages):
        out = project(self, W, K, P, stages)
        projected[:] = [W]
        return out

    def checking_project_out(xp, B, size, W, **kwargs):
        if size > k:
            whole.append(len(blocks))                # the block it serves
        elif blocks and blocks[-1] is not None:     # the locked rows of an estimated block
            E, j, nlock = blocks[-1]
            ratio(E, B, W, j, nlock)
            blocks[-1] = None
        return project_out(xp, B, size, W, **kwargs)

    invariant = []
    kept_subspace = _lanczos._kept_subspace

    def recording_kept_subspace(*args):
        Y, T, err = kept_subspace(*args)
        invariant.append(T is not None)
        return Y, T, err

    restarts = []
    pro_restart = _lanczos._Orthogonality.restart

    def recording_restart(self, *args):
        restarts.append(len(blocks))                 # the next block is measured
        return pro_restart(self, *args)

    tol = 1e-8
    with monkeypatch.context() as hooks:
        hooks.setattr(_lanczos._Orthogonality, "estimate", recording_estimate)
        hooks.setattr(_lanczos._Orthogonality, "restart", recording_restart)
        hooks.setattr(_lanczos, "project_out_gram", checking_project_out)
        hooks.setattr(_lanczos, "_kept_subspace", recording_kept_subspace)
        hooks.setattr(_dispatch.RowWork, "project", recording_project)
        res = eigarray.eigsh(A, k=k, which="LA", tol=tol, rng=0)
    assert res.info.all_converged
    assert len(whole) < 0.7 * len(blocks)            # most blocks skipped the projection
    # Simon's rule: a block whose estimate passes the level is projected, and
    # so is the next one; runs of projected blocks come in pairs (the first
    # block after a restart is measured, not estimated: not part of a run).
    runs, last = [], None
    for t in sorted(set(whole) - set(restarts)):
        if last is not None and t == last + 1:
            runs[-1] += 1
        else:
            runs.append(1)
        last = t
    assert runs and all(r % 2 == 0 for r in runs[:-1])
    assert len(ratios) > 0.5 * len(blocks)
    assert max(ratios) <= 1.0                        # every estimate bounds the truth
    assert any(invariant)                            # Krylov-Schur restarts were taken
    np.testing.assert_allclose(res.eigenvalues, exact[-k:], rtol=100 * np.finfo(float).eps)
    assert testing.orthogonality_ratio(res.eigenvectors) < testing.THRESHOLD
    assert np.max(res.info.residual_norms) <= 2 * tol * exact[-1]
    full = eigarray.eigsh(A, k=k, which="LA", rng=0)   # tol = eps: every projection removed
    testing.assert_eigenpairs(A, full.eigenvalues, full.eigenvectors, exact=exact[-k:])


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_semi_orthogonal_basis_near_invariant_subspaces(dtype, monkeypatch):
    # Seven distinct eigenvalues: the Krylov space nearly closes every few
    # blocks, and new blocks are small next to ||A||, projected on the whole
    # basis or replaced by random vectors.  What they keep of the basis is
    # its own departure from orthogonality divided by their norm, far above
    # eps: the recorded estimates must bound it.  (They were reset to eps;
    # the basis then lost orthogonality unnoticed, and wrong pairs came back
    # flagged converged, or a false "NaN or Inf" error.)
    from eigarray import _lanczos

    n = 120
    rng = np.random.default_rng(0)
    M = rng.standard_normal((n, n))
    if dtype == np.complex128:
        M = M + 1j * rng.standard_normal((n, n))
    Q = np.linalg.qr(M)[0]
    d = np.arange(n) % 7 - 3.0
    A = (Q * d) @ Q.conj().T
    A = (A + A.conj().T) / 2
    bases, excess = [], []
    row_work = _lanczos.RowWork.of
    record = _lanczos._Orthogonality.record

    def capturing_row_work(B, rows):
        bases.append(B)
        return row_work(B, rows)

    def checking_record(self, E, R, j, size, **kwargs):
        record(self, E, R, j, size, **kwargs)
        B, r = bases[-1], R.shape[0]
        true = np.abs(np.conj(B[:size]) @ B[size:size + r].T)
        excess.append(np.max(true - np.abs(self.omega[:size, size:size + r])))

    eps = np.finfo(float).eps
    with monkeypatch.context() as hooks:
        hooks.setattr(_lanczos.RowWork, "of", staticmethod(capturing_row_work))
        hooks.setattr(_lanczos._Orthogonality, "record", checking_record)
        for seed in range(8):
            for k in (1, 3):
                res = eigarray.eigsh(A, k=k, which="LA", tol=1e-6, rng=seed)
                np.testing.assert_allclose(res.eigenvalues, 3.0, atol=1e-9)
                assert res.info.all_converged
                assert np.max(res.info.residual_norms) <= 2e-6 * 3.0
    assert len(excess) > 100
    # The estimates are Simon's, not rigorous bounds: far below the level.
    assert max(excess) <= 1e-3 * min(1e-6, np.sqrt(eps))


def test_a_basis_that_lost_orthogonality_is_caught(monkeypatch):
    # The flags rest on estimated residuals; should the basis lose its
    # orthogonality unnoticed (here: partial reorthogonalisation made to
    # skip every projection), the final check sees Ritz vectors far from
    # orthonormal, or flags the true residuals belie, and the solve runs
    # again with full reorthogonalisation: right pairs, none passed off.
    from eigarray import _lanczos

    A = np.diag(np.arange(120) % 7 - 3.0)
    monkeypatch.setattr(_lanczos, "_PRO_FACTOR", 1e300)
    calls = []
    impl = _lanczos._impl
    monkeypatch.setattr(_lanczos, "_impl",
                        lambda *a, **kw: calls.append(kw.get("full_reorthogonalisation"))
                        or impl(*a, **kw))
    for seed in range(10):
        with np.errstate(all="ignore"):
            res = eigarray.eigsh(A, k=3, which="LA", tol=1e-6, rng=seed)
        assert res.info.converged.all()
        assert np.all(res.info.residual_norms <= 2e-6 * 3.0)
        np.testing.assert_allclose(res.eigenvalues, [3.0, 3.0, 3.0], atol=1e-10)
    assert calls.count(True) > 5                   # the sabotaged runs were caught


def test_final_rayleigh_ritz_orthonormalises_and_passes_dependent_vectors(rng):
    from eigarray import _lanczos
    from eigarray._namespace import numpy_namespace

    xp = numpy_namespace()
    A = np.diag(np.arange(1.0, 41.0))
    X = np.linalg.qr(rng.standard_normal((40, 3)))[0] + 1e-9 * rng.standard_normal((40, 3))
    pair = [X, A @ X]
    Q, AQ, w, departure = _lanczos._final_rayleigh_ritz(xp, pair, np.zeros(3), cplx=False,
                                                        eps=np.finfo(float).eps)
    assert pair == []                                    # it took the blocks
    assert 1e-10 < departure < 1e-7                      # max |XᵀX - I| of the X given
    assert testing.orthogonality_ratio(Q) < testing.THRESHOLD
    np.testing.assert_allclose(AQ, A @ Q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(w, np.diag(Q.T @ A @ Q), rtol=1e-13)
    X[:, 2] = X[:, 1]                                    # dependent: handed back as given
    out = _lanczos._final_rayleigh_ritz(xp, [X, A @ X], np.zeros(3), cplx=False,
                                        eps=np.finfo(float).eps)
    assert out[0] is X and out[3] == np.inf


def test_final_rayleigh_ritz_releases_the_blocks_it_replaces(rng):
    # Given [X, A X] to own, at most four (n, k) blocks are alive at once (X,
    # A X and two inside Cholesky-QR2); holding every intermediate took six.
    import tracemalloc

    from eigarray import _lanczos
    from eigarray._namespace import numpy_namespace

    n, k = 20000, 8
    d = np.linspace(1.0, 2.0, n)
    xp, eps = numpy_namespace(), np.finfo(float).eps
    Q0 = np.linalg.qr(rng.standard_normal((n, k)))[0]
    _lanczos._final_rayleigh_ritz(xp, [Q0.copy(), d[:, None] * Q0], np.zeros(k),
                                  cplx=False, eps=eps)      # first-call allocations
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        pair = [Q0.copy(), d[:, None] * Q0]              # traced, so their release counts
        Q, AQ, _, _ = _lanczos._final_rayleigh_ritz(xp, pair, np.zeros(k), cplx=False,
                                                    eps=eps)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= 4.25 * Q0.nbytes
    np.testing.assert_allclose(AQ, d[:, None] * Q, rtol=0, atol=1e-12)


def test_restart_policy_follows_the_cost_of_a_product():
    # Sparse matrices with few entries per row keep 30% of the free slots at
    # a restart (their products are cheap against it); everything else gets
    # the convergence-model rule.
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla

    from eigarray import _lanczos

    A, _ = testing.laplacian_2d(30, 30)                # 5 entries per row
    n, ncv = A.shape[0], 80
    cheap = _lanczos._default_policy(A, n, ncv)
    assert cheap is not _lanczos.default_keep
    assert cheap(100, 7) == 7 + int(0.3 * 93)
    assert _lanczos._default_policy(sp.csr_array(A), n, ncv) is not _lanczos.default_keep
    for costly in (A.toarray(), sla.aslinearoperator(A), lambda x: A @ x,
                   sp.random(n, n, density=30 / n, format="csr", random_state=0)):
        assert _lanczos._default_policy(costly, n, ncv) is _lanczos.default_keep
    torch = pytest.importorskip("torch")
    dense = torch.from_numpy(A.toarray())
    assert _lanczos._stored_entries(dense) is None
    assert _lanczos._stored_entries(dense.to_sparse_coo()) == A.nnz


def test_invariant_subspace_restart_finds_all_copies(rng, fused_steps):
    # Three distinct eigenvalues of high multiplicity: the Krylov space from
    # one vector is 3-dimensional, and only random restarts reveal the copies.
    lam = np.repeat([1.0, 2.0, 5.0], [20, 20, 20])
    A, _ = testing.matrix_with_spectrum(lam, rng=rng)
    res = eigarray.eigsh(A, k=6, which="LA", rng=0)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=np.full(6, 5.0))


def test_clustered_eigenvalues(rng, fused_steps):
    lam = np.r_[np.linspace(0, 1, 190), 2 + 1e-10 * np.arange(10)]
    A, _ = testing.matrix_with_spectrum(lam, rng=rng)
    w, V = eigarray.eigsh(A, k=10, which="LA", rng=0)
    testing.assert_eigenpairs(A, w, V, exact=lam[-10:])


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128],
                         ids=lambda d: np.dtype(d).name)
def test_scipy_sparse_formats(fmt, dtype, rng, fused_steps):
    import scipy.sparse as sp

    A = sp.random_array((300, 300), density=0.03, rng=rng, format="csr")
    if np.issubdtype(dtype, np.complexfloating):
        A = A + 1j * sp.random_array((300, 300), density=0.03, rng=rng, format="csr")
    A = ((A + A.conj().T) / 2).astype(dtype).asformat(fmt)
    w, V = eigarray.eigsh(A, k=4, which="LM", rng=0)
    testing.assert_eigenpairs(A, w, V, exact=reference(A.toarray(), 4, "LM"))


def test_operator_kinds_agree(rng):
    import scipy.sparse.linalg as sla

    A = random_hermitian(80, np.float64, rng)
    exact = reference(A, 4, "LA")

    class Duck:
        shape = (80, 80)
        dtype = np.dtype(np.float64)

        def matvec(self, x):
            return A @ x

    for op in (sla.aslinearoperator(A), Duck(), eigarray.aslinearoperator(A)):
        w, V = eigarray.eigsh(op, k=4, which="LA", rng=0)
        testing.assert_eigenpairs(A, w, V, exact=exact)
    w, V = eigarray.eigsh(eigarray.aslinearoperator(lambda x: A @ x, shape=(80, 80)), k=4,
                          which="LA", rng=0)
    testing.assert_eigenpairs(A, w, V, exact=exact)


def test_operator_output_buffers_are_left_alone(rng):
    # The basis update runs in place on NumPy, but on eigarray's own rows: an
    # operator that returns (and later reads) its own buffers keeps them.
    A = random_hermitian(60, np.float64, rng)

    class Buffered:
        shape = (60, 60)
        dtype = np.dtype(np.float64)

        def __init__(self):
            self.outputs = []

        def matmat(self, X):
            Y = A @ X
            self.outputs.append((X.copy(), Y))
            return Y

        def matvec(self, x):
            return self.matmat(x[:, None])[:, 0]

    op = Buffered()
    w, V = eigarray.eigsh(op, k=4, which="LA", rng=0)
    testing.assert_eigenpairs(A, w, V, exact=reference(A, 4, "LA"))
    assert len(op.outputs) > 4
    for X, Y in op.outputs:
        np.testing.assert_array_equal(Y, A @ X)


def test_callable_operator_takes_namespace_of_v0(rng):
    torch = pytest.importorskip("torch")
    A = random_hermitian(50, np.float64, rng)
    At = torch.from_numpy(A)
    op = eigarray.aslinearoperator(lambda x: At @ x, shape=(50, 50))
    w, V = eigarray.eigsh(op, k=3, which="LA", v0=torch.ones(50, dtype=torch.float64))
    assert isinstance(w, torch.Tensor) and isinstance(V, torch.Tensor)
    testing.assert_eigenpairs(A, w, V, exact=reference(A, 3, "LA"))


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_torch_sparse_tensor(rng):
    torch = pytest.importorskip("torch")
    A, exact = testing.laplacian_2d(15, 13, anisotropy=0.7)
    coo = A.tocoo()
    T = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape,
                                check_invariants=True).coalesce()
    w, V = eigarray.eigsh(T.to_sparse_csr(), k=5, which="LA", rng=0)
    assert isinstance(w, torch.Tensor)
    testing.assert_eigenpairs(A, w, V, exact=exact[-5:])


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", ["dense", "coo", "csr", "complex_csr"])
def test_cpu_torch_iterates_on_host_views(layout, rng):
    # CPU torch data is viewed as NumPy (no copy of a dense tensor), the
    # iteration runs there, and the results come back as torch tensors.
    torch = pytest.importorskip("torch")
    from eigarray._operator import host_view_operator

    dtype = np.complex128 if layout.startswith("complex") else np.float64
    A = random_hermitian(40, dtype, rng)
    A[np.abs(A) < 0.8] = 0.0
    T = torch.from_numpy(A)
    if layout != "dense":
        T = T.to_sparse_coo() if layout == "coo" else T.to_sparse_csr()
    op, xp, like = host_view_operator(T)
    assert op.xp.__name__.endswith("numpy") and xp.__name__.endswith("torch")
    x = rng.standard_normal((40, 3)).astype(dtype)
    np.testing.assert_allclose(op.matmat(x), A @ x, rtol=1e-14, atol=1e-13)
    np.testing.assert_allclose(op.rmatmat(x), A.conj().T @ x, rtol=1e-14, atol=1e-13)
    if layout == "dense":
        assert np.shares_memory(op.matvec.__self__._matvec.__closure__[0].cell_contents, A)
    w, V = eigarray.eigsh(T, k=4, which="LA", rng=0)
    assert isinstance(w, torch.Tensor) and isinstance(V, torch.Tensor)
    testing.assert_eigenpairs(A, w, V, exact=reference(A, 4, "LA"))


def test_tensor_requiring_gradients_is_read_detached(rng):
    torch = pytest.importorskip("torch")
    A = random_hermitian(30, np.float64, rng)
    T = torch.from_numpy(A).requires_grad_(True)
    w, V = eigarray.eigsh(T, k=3, which="LA", rng=0)
    assert isinstance(w, torch.Tensor) and not w.requires_grad
    testing.assert_eigenpairs(A, w, V, exact=reference(A, 3, "LA"))


@pytest.mark.parametrize("n", [3, 4, 5, 7, 11])
def test_basis_spanning_the_whole_space(n, rng, fused_steps):
    # ncv = n by default here; with a block of two and odd n the last
    # frontier row must still be multiplied once the space is spanned.
    A = random_hermitian(n, np.float64, rng)
    for k in sorted({1, n // 2, n - 1}):
        for which in ("LA", "SA", "LM", "BE"):
            res = eigarray.eigsh(A, k=k, which=which, rng=0)
            assert res.info.all_converged
            testing.assert_eigenpairs(A, *res, exact=reference(A, k, which))


@pytest.mark.parametrize("block_size", [1, 2, 3])
@pytest.mark.parametrize("ncv", [40, 60])
def test_high_multiplicity_keeps_the_basis_orthonormal(block_size, ncv, fused_steps):
    # Three eigenvalues of multiplicity 20: the Krylov space collapses again
    # and again, rows of a block cancel down to rounding noise, and random
    # vectors fill a basis that spans the whole space (ncv = n).
    lam = np.repeat([1.0, 2.0, 3.0], 20)
    A, _ = testing.matrix_with_spectrum(lam, rng=1)
    res = eigarray.lanczos(A, 25, ncv=ncv, block_size=block_size, rng=0)
    assert res.info.all_converged
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=lam[-25:])


def test_result_carries_true_residuals_and_history(rng):
    A = random_hermitian(100, np.float64, rng)
    seen = []
    res = eigarray.eigsh(A, k=4, which="LA", ncv=12, rng=0, callback=seen.append)
    w, V = res
    true = np.linalg.norm(A @ V - V * w, axis=0)
    np.testing.assert_allclose(res.info.residual_norms, true, rtol=1e-6, atol=1e-13)
    assert res.info.converged.shape == (4,) and res.info.all_converged
    hist = res.info.history
    assert hist["ritz_values"].shape == (res.info.n_iter, 4)
    assert hist["residual_estimates"].shape == (res.info.n_iter, 4)
    assert np.all(np.diff(hist["n_matvec"]) > 0)
    assert len(seen) == res.info.n_iter and isinstance(seen[-1], eigarray.LanczosState)
    assert res.info.n_matvec == hist["n_matvec"][-1] + 4   # + the residual check


def test_return_eigenvectors_false_returns_values(rng):
    A = random_hermitian(60, np.float64, rng)
    w = eigarray.eigsh(A, k=3, which="SA", return_eigenvectors=False, rng=0)
    np.testing.assert_allclose(w, reference(A, 3, "SA"), rtol=0, atol=1e-12)


def test_nonconvergence_warns_and_raises(rng):
    A, _ = testing.laplacian_2d(60, 60, anisotropy=0.7)
    with pytest.warns(eigarray.ConvergenceWarning, match="did not converge"):
        res = eigarray.eigsh(A, k=6, which="LA", ncv=12, maxiter=2, rng=0)
    assert not res.info.all_converged and res.eigenvalues.shape == (6,)
    with pytest.raises(eigarray.NoConvergence) as err:
        eigarray.eigsh(A, k=6, which="LA", ncv=12, maxiter=2, rng=0, on_nonconvergence="raise")
    assert err.value.eigenvalues.shape == (6,)
    assert not err.value.result.info.all_converged


def test_callback_can_stop(rng):
    A, _ = testing.laplacian_2d(30, 30)
    with pytest.warns(eigarray.ConvergenceWarning):
        res = eigarray.eigsh(A, k=6, which="LA", ncv=14, rng=0, callback=lambda s: True)
    assert res.info.n_iter == 1


def test_v0_and_rng_reproducible(rng):
    A = random_hermitian(70, np.float64, rng)
    a = eigarray.eigsh(A, k=3, which="LA", rng=5)
    b = eigarray.eigsh(A, k=3, which="LA", rng=5)
    assert a.info.n_matvec == b.info.n_matvec
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    v0 = np.ones(70)
    c = eigarray.eigsh(A, k=3, which="LA", v0=v0)
    np.testing.assert_array_equal(v0, np.ones(70))
    testing.assert_eigenpairs(A, c.eigenvalues, c.eigenvectors, exact=reference(A, 3, "LA"))


def test_lanczos_keep_policies(rng):
    A, exact = testing.laplacian_2d(20, 17, anisotropy=0.7)
    for keep in (None, 0.3, 8, lambda n_free, n_unc: n_unc + 2):
        w, V = eigarray.lanczos(A, 5, which="LA", ncv=16, keep=keep, rng=0)
        testing.assert_eigenpairs(A, w, V, exact=exact[-5:])
    with pytest.raises(ValueError, match="`keep`"):
        eigarray.lanczos(A, 5, keep=1.5)


def test_integer_input_promotes(rng):
    A = rng.integers(-5, 5, (40, 40))
    A = A + A.T
    w, V = eigarray.eigsh(A, k=3, which="LA", rng=0)
    assert w.dtype == np.float64
    testing.assert_eigenpairs(A.astype(float), w, V, exact=reference(A.astype(float), 3, "LA"))


class TestBadInput:
    def test_non_square(self):
        with pytest.raises(ValueError, match="`A` must be square"):
            eigarray.eigsh(np.ones((5, 6)), k=2)

    def test_not_2d(self):
        with pytest.raises(ValueError, match="`A` must be a 2-D"):
            eigarray.eigsh(np.ones(5), k=2)

    @pytest.mark.parametrize("k", [0, -1, 10, 11])
    def test_k_out_of_range(self, k):
        with pytest.raises(ValueError, match=r"`k` must be an integer with 0 < k < n = 10"):
            eigarray.eigsh(np.eye(10), k=k)

    def test_k_not_integer(self):
        with pytest.raises(TypeError, match="`k` must be an integer"):
            eigarray.eigsh(np.eye(10), k=2.5)

    def test_unknown_which(self):
        with pytest.raises(ValueError, match="`which` must be one of"):
            eigarray.eigsh(np.eye(10), k=2, which="XX")

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite(self, bad, backend):
        A = np.eye(10)
        A[3, 4] = bad
        with pytest.raises(ValueError, match="`A` must not contain NaN or Inf"):
            eigarray.eigsh(to_backend(A, backend), k=2)

    def test_non_finite_sparse(self):
        import scipy.sparse as sp

        A = sp.csr_array(np.diag([1.0, np.nan, 2.0, 3.0]))
        with pytest.raises(ValueError, match="`A` must not contain NaN or Inf"):
            eigarray.eigsh(A, k=2)

    @pytest.mark.parametrize("block_size", [1, 2])
    def test_operator_returning_nan(self, block_size):
        # A product that turns non-finite (a diverged model, an overflow) is
        # named, not passed on to an unrelated LAPACK failure.
        calls = []

        def matvec(x):
            calls.append(1)
            return np.arange(1.0, 41.0) * x * (np.nan if len(calls) > 5 else 1.0)

        op = eigarray.aslinearoperator(matvec, shape=(40, 40), dtype=np.float64)
        with pytest.raises(ValueError, match=r"`A` returned NaN or Inf .*operator application"):
            eigarray.lanczos(op, k=2, block_size=block_size, rng=0)

    def test_v0_shape(self):
        with pytest.raises(ValueError, match=r"`v0` must have shape \(10,\)"):
            eigarray.eigsh(np.eye(10), k=2, v0=np.ones(9))

    def test_v0_zero(self):
        with pytest.raises(ValueError, match="`v0` must not be the zero vector"):
            eigarray.eigsh(np.eye(10), k=2, v0=np.zeros(10))

    def test_v0_dtype(self, backend):
        # A complex start for a real A would lose its imaginary part.
        for v0 in (1j * np.ones(10), (1 + 1j) * np.ones(10)):
            with pytest.raises(TypeError, match="`v0` is complex but `A` is real"):
                eigarray.eigsh(to_backend(np.eye(10), backend), k=2,
                               v0=to_backend(v0, backend))
        with pytest.raises(TypeError, match="`v0` must hold numbers"):
            eigarray.lanczos(np.eye(10), 2, v0=np.array(["a"] * 10))

    def test_rng_keep_and_flags(self):
        with pytest.raises(ValueError, match="`rng` must be a non-negative seed"):
            eigarray.eigsh(np.eye(10), k=2, rng=-1)
        with pytest.raises(TypeError, match=r"`keep\(n_free, n_unconverged\)` must be an"):
            eigarray.lanczos(np.diag(np.arange(1.0, 201.0)), 2, ncv=8, keep=lambda a, b: "x",
                             rng=0)
        with pytest.raises(TypeError, match="`return_eigenvectors` must be True or False"):
            eigarray.eigsh(np.eye(10), k=2, return_eigenvectors="no")

    def test_operator_shape_mismatch(self):
        op = eigarray.aslinearoperator(lambda x: np.ones(7), shape=(10, 10))
        with pytest.raises(ValueError, match=r"returned an array of shape \(7,\)"):
            eigarray.eigsh(op, k=2)

    def test_callable_needs_shape(self):
        with pytest.raises(ValueError, match="pass its `shape`"):
            eigarray.eigsh(lambda x: x, k=2)

    def test_ncv(self):
        with pytest.raises(ValueError, match="`ncv` must be an integer with k < ncv <= n"):
            eigarray.eigsh(np.eye(10), k=3, ncv=3)

    def test_tol_and_maxiter(self):
        with pytest.raises(ValueError, match="`tol`"):
            eigarray.eigsh(np.eye(10), k=3, tol=-1)
        for tol in (True, "1e-8"):
            with pytest.raises(TypeError, match="`tol` must be a non-negative real number"):
                eigarray.eigsh(np.eye(10), k=3, tol=tol)
        with pytest.raises(ValueError, match="`maxiter`"):
            eigarray.eigsh(np.eye(10), k=3, maxiter=0)

    def test_shift_invert_not_implemented(self):
        with pytest.raises(NotImplementedError, match="sigma"):
            eigarray.eigsh(np.eye(10), k=3, sigma=0.5)

    def test_scipy_signature(self):
        # Every argument of scipy's eigsh, with its default; those eigarray
        # does not serve are refused by name.
        import inspect

        import scipy.sparse.linalg as sla

        ours = inspect.signature(eigarray.eigsh).parameters
        for name, param in inspect.signature(sla.eigsh).parameters.items():
            assert name in ours, name
            assert ours[name].default is param.default or ours[name].default == param.default
        A = np.eye(10)
        for kwargs in ({"Minv": A}, {"OPinv": A}, {"mode": "buckling"}, {"mode": "cayley"}):
            name = next(iter(kwargs))
            with pytest.raises(NotImplementedError, match=f"`{name}`"):
                eigarray.eigsh(A, k=3, **kwargs)
        with pytest.raises(ValueError, match="`mode` must be one of"):
            eigarray.eigsh(A, k=3, mode="shift")
        assert eigarray.eigsh(A, k=3, mode="normal", return_eigenvectors=False).shape == (3,)

    def test_unsupported_dtype(self):
        with pytest.raises(TypeError, match="`A` must have a real or complex floating"):
            eigarray.eigsh(np.array([["a", "b"], ["c", "d"]]), k=1)

    def test_on_nonconvergence(self):
        with pytest.raises(ValueError, match="`on_nonconvergence`"):
            eigarray.eigsh(np.eye(10), k=3, on_nonconvergence="ignore")


@pytest.mark.parametrize("block_size", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_lanczos_block_sizes(block_size, dtype, rng):
    A = random_hermitian(90, dtype, rng)
    res = eigarray.lanczos(A, 5, which="SA", ncv=20, block_size=block_size, rng=0)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=reference(A, 5, "SA"))
    with pytest.raises(ValueError, match="`block_size` must be an integer with 1 <= block_size"):
        eigarray.lanczos(A, 5, ncv=20, block_size=16)


def test_default_basis_grows_with_the_block():
    # A block of b vectors gets 40 more basis rows per vector beyond the
    # first, up to n; the callback sees the basis through its matvec counts.
    from eigarray._lanczos import default_ncv

    assert default_ncv(10, 10_000, 1) == 80
    assert default_ncv(10, 10_000) == default_ncv(10, 10_000, 2) == 120
    assert default_ncv(40, 10_000, 3) == 200
    assert default_ncv(10, 100, 2) == 100
    A, exact = testing.laplacian_2d(30, 30)
    counts = {}
    for b in (1, 2):
        seen = []
        eigarray.lanczos(A, 4, block_size=b, tol=1e-8, rng=0, callback=seen.append)
        counts[b] = seen[0].n_matvec                # products of the first cycle
    assert counts == {1: 74, 2: 114}                 # k + 70, k + 70 + 40
    with pytest.raises(ValueError, match="`block_size` must be an integer with 1 <= block_size"):
        eigarray.lanczos(A, 4, block_size=900)


def test_block_of_two_finds_both_copies_where_one_vector_cannot():
    # Square grid: top eigenvalues double.  A single Krylov sequence converges
    # to a wrong set at this tolerance (as ARPACK does); the default block
    # of two finds every copy.
    A, exact = testing.laplacian_2d(60, 60)
    res = eigarray.eigsh(A, k=6, which="LA", tol=1e-8, rng=0)
    np.testing.assert_allclose(res.eigenvalues, exact[-6:], rtol=1e-12)
    single = eigarray.lanczos(A, 6, which="LA", tol=1e-8, block_size=1, rng=0)
    assert np.max(np.abs(single.eigenvalues - exact[-6:])) > 1e-3


_TRIPLE = np.r_[-5.0, -5.0, 0.0, 0.0, 0.0, np.linspace(0.1, 3.0, 295)]


@pytest.mark.parametrize("which, lam, k", [
    ("SA", _TRIPLE, 6),
    ("LA", -_TRIPLE, 6),
    ("BE", np.r_[5.0, 5.0, 3.0, 3.0, 3.0, np.linspace(-3.0, 2.9, 295)], 10),
], ids=["SA", "LA", "BE"])
@pytest.mark.parametrize("seed", [0, 1, 4])
def test_copies_beyond_the_block_are_found_at_a_relaxed_tol(which, lam, k, seed):
    # A triple eigenvalue behind a double one: the block of two locked two
    # copies and, at tol=1e-8, stopped before rounding revealed the third,
    # returning the next eigenvalue in its place, flagged converged (from
    # most of these starts).  A cycle from a fresh block now looks for it.
    A, _ = testing.matrix_with_spectrum(lam, rng=0)
    res = eigarray.eigsh(A, k=k, which=which, tol=1e-8, rng=seed)
    exact = reference(A, k, which)
    anorm = np.abs(lam).max()
    eps = np.finfo(np.float64).eps
    assert res.info.all_converged
    assert np.all(res.info.residual_norms <= 2e-8 * anorm)
    assert testing.eigenvalue_error(res.eigenvalues, exact, anorm=anorm, eps=eps) < 30 * 300
    assert testing.orthogonality_ratio(res.eigenvectors) < 30


def test_check_for_further_copies_runs_only_where_copies_are(monkeypatch):
    # Wanted eigenvalues apart: the iteration is exactly the one without the
    # check.  Double ones (square grid, block of two): more cycles.
    from eigarray import _lanczos

    def run(A, check):
        if not check:
            monkeypatch.setattr(_lanczos, "_holds_copies", lambda *args: False)
        res = eigarray.eigsh(A, k=10, which="LA", tol=1e-8, rng=0)
        monkeypatch.undo()
        return res

    A, _ = testing.laplacian_2d(30, 30, anisotropy=0.7)
    with_check, without = run(A, True), run(A, False)
    assert with_check.info.n_matvec == without.info.n_matvec
    assert with_check.info.n_iter == without.info.n_iter
    np.testing.assert_array_equal(with_check.eigenvalues, without.eigenvalues)
    A, exact = testing.laplacian_2d(30, 30)
    with_check, without = run(A, True), run(A, False)
    assert with_check.info.n_iter > without.info.n_iter
    assert with_check.info.all_converged
    eps = np.finfo(np.float64).eps
    assert testing.eigenvalue_error(with_check.eigenvalues, exact[-10:], anorm=8.0,
                                    eps=eps) < 30 * 900


def test_copies_and_entries_are_judged_within_the_tolerance():
    from eigarray._lanczos import _entered, _holds_copies

    w = 0.1
    assert _holds_copies(np.array([3.0, 1.0, 1.0 + w / 2, 1.0 + w]), 3, w)
    assert not _holds_copies(np.array([1.0, 1.0 + 2 * w, 1.0 + 4 * w]), 2, w)
    # Locked values first, then the fresh cycle's: a value enters only when
    # it beats a locked one by more than the width, in the sense of `which`.
    for which, locked, far, near in (("LA", [3.0, 2.0], 2.5, 2.05),
                                     ("SA", [-3.0, -2.0], -2.5, -2.05),
                                     ("LM", [3.0, -2.0], -2.5, -2.05),
                                     ("BE", [3.0, -2.0], -2.5, -2.05)):
        assert _entered(np.array(locked + [far, 0.0]), 2, 2, which, w), which
        assert not _entered(np.array(locked + [near, 0.0]), 2, 2, which, w), which
    # LM with copies at both ends: the third +12 and the third -12 both enter
    # (a uniform shift let neither: it favoured one as it disfavoured the other)
    assert _entered(np.array([-12.0, -12.0, -9.97, 12.0, 12.0, -12.0, 12.0, 5.0]), 5, 5,
                    "LM", 4.8e-3)


def test_copies_at_both_ends_of_an_lm_spectrum():
    # Three copies of +12 and three of -12, which='LM', k = 5: every
    # returned value must be +-12 (-9.97 came back, flagged converged).
    n = 400
    rng = np.random.default_rng(0)
    ev = np.concatenate([[-12.0] * 3, [12.0] * 3,
                         rng.uniform(1, 10, n - 6) * rng.choice([-1, 1], n - 6)])
    A, _ = testing.matrix_with_spectrum(ev, rng=0)
    res = eigarray.eigsh(A, k=5, which="LM", tol=1e-4, rng=0)
    assert res.info.all_converged
    np.testing.assert_allclose(np.abs(res.eigenvalues), 12.0, rtol=1e-4)


_FIVE_ON_TOP = np.r_[[5.0] * 5, np.linspace(-1.0, 4.0, 25)]


@pytest.mark.parametrize("matrix_seed, k, ncv, seed, tol", [
    (2, 5, 8, 5, 0.0), (1, 7, 11, 2, 0.0), (0, 6, 10, 5, 0.0), (2, 5, 10, 1, 0.0),
    (0, 5, 8, 1, 1e-8), (0, 6, 10, 2, 1e-8), (0, 7, 11, 4, 1e-8), (0, 8, 12, 4, 1e-8),
])
def test_copy_check_in_a_small_basis_settles_only_when_it_has_seen_enough(
        matrix_seed, k, ncv, seed, tol):
    # Five copies of the top eigenvalue, n = 30, ncv = k + 3 .. k + 5: the
    # check from a fresh block had 3 to 5 rows, whose Ritz values lay far
    # inside the spectrum, and settled on them: 4.0 came back in place of a
    # fifth 5.0, flagged converged.  (At tol = 0, values locked at different
    # restarts also differed by more than 4 eps ||A||, and some runs did not
    # check at all.)  The check now goes on until it has seen enough.
    A, _ = testing.matrix_with_spectrum(_FIVE_ON_TOP, rng=matrix_seed)
    res = eigarray.lanczos(A, k, which="LA", ncv=ncv, tol=tol, rng=seed)
    exact = np.sort(_FIVE_ON_TOP)[-k:]
    assert res.info.all_converged
    if tol == 0.0:
        testing.assert_eigenpairs(A, *res, exact=exact)
    else:
        eps = np.finfo(np.float64).eps
        assert np.all(res.info.residual_norms <= 2 * tol * 5.0)
        assert testing.eigenvalue_error(res.eigenvalues, exact, anorm=5.0, eps=eps) < 30 * 30
        assert testing.orthogonality_ratio(res.eigenvectors) < 30


def _first_cycle_all_converged(A, k, **kwargs):
    seen = []
    eigarray.lanczos(A, k, callback=lambda s: seen.append(s), **kwargs)
    return min(s.n_iter for s in seen if s.n_converged == k)


def test_copy_check_owed_at_maxiter_flags_the_pairs_a_copy_would_displace():
    # maxiter reached on the very cycle on which every wanted pair converged:
    # the check was skipped and 4.0, in place of a fifth copy of 5.0, came
    # back flagged converged.  maxiter still bounds the restarts; the pairs
    # a copy not found would displace are flagged, with a warning.  A basis
    # of k + 3 is a small one, in which a value not seen at all could be
    # missing too: every pair is flagged.
    A, _ = testing.matrix_with_spectrum(_FIVE_ON_TOP, rng=0)
    kwargs = dict(which="LA", ncv=8, tol=1e-8, rng=1)
    last = _first_cycle_all_converged(A, 5, **kwargs)
    with pytest.warns(eigarray.ConvergenceWarning, match="5 of 5"):
        res = eigarray.lanczos(A, 5, maxiter=last, **kwargs)
    assert res.info.n_iter == last
    right = np.abs(res.eigenvalues - 5.0) <= 2 * 1e-8 * 5.0
    assert not right.all()                          # the copy was not found
    assert not res.info.converged.any()
    # Given the budget, the check runs and finds it.
    res = eigarray.lanczos(A, 5, **kwargs)
    assert res.info.all_converged and res.info.n_iter > last
    np.testing.assert_allclose(res.eigenvalues, 5.0, rtol=1e-8)
    # Square grid, default basis: the answer is right, but unchecked; the
    # pairs below the top double value are the ones a third copy would push out.
    L, exact = testing.laplacian_2d(30, 30)
    last = _first_cycle_all_converged(L, 10, which="LA", tol=1e-8, rng=0)
    with pytest.warns(eigarray.ConvergenceWarning):
        res = eigarray.eigsh(L, k=10, which="LA", tol=1e-8, rng=0, maxiter=last)
    np.testing.assert_allclose(res.eigenvalues, exact[-10:], rtol=1e-12)
    top_double = exact[-10:][np.diff(exact[-10:], append=np.inf) < 1e-10].max()
    np.testing.assert_array_equal(res.info.converged, res.eigenvalues >= top_double - 1e-6)


def test_a_run_stopped_before_every_pair_converged_owes_the_check_too():
    # Four copies of 2.0 on top, k = 5 (hessian_eigsh's basis of 35 rows):
    # maxiter ends the run with two copies found and some pairs unconverged.
    # 1.48 came back flagged converged, among the wanted, in place of the
    # copies not yet found.
    lam = np.r_[np.full(4, 2.0), np.linspace(1.5, -1.0, 146)]
    A, _ = testing.matrix_with_spectrum(lam, rng=0)
    with pytest.warns(eigarray.ConvergenceWarning):
        res = eigarray.lanczos(A, 5, ncv=35, tol=1e-3, rng=0, maxiter=3)
    w, flagged = np.asarray(res.eigenvalues), res.info.converged
    assert not flagged.all()
    assert np.all(w[flagged] >= 2.0 - 1e-3)        # only copies of the top value
    assert flagged.any()


def test_copy_check_without_room_flags_the_pairs_a_copy_would_displace():
    # ncv = k + 1 (a block of one vector) leaves no room for the fresh
    # block: the check cannot run, and 3.79 and 4.0 came back in place of
    # two copies of 5.0, flagged converged.  In so small a basis a value not
    # seen at all could be missing too: every pair is flagged.
    A, _ = testing.matrix_with_spectrum(_FIVE_ON_TOP, rng=0)
    with pytest.warns(eigarray.ConvergenceWarning, match="5 of 5"):
        res = eigarray.lanczos(A, 5, which="LA", ncv=6, tol=1e-8, rng=0)
    right = np.abs(res.eigenvalues - 5.0) <= 2 * 1e-8 * 5.0
    assert not right.all() and not res.info.converged.any()
    # Which values a copy would displace, in the sense of `which`.
    from eigarray._lanczos import _displaceable

    w = 1e-3
    for which, values, displaced in (
            ("LA", [5.0, 5.0, 4.0, 3.0], [False, False, True, True]),
            ("LA", [6.0, 5.0, 5.0], [False, False, False]),
            ("SA", [-5.0, -5.0, -4.0], [False, False, True]),
            ("LM", [-5.0, -5.0, 4.0, 3.0], [False, False, True, True]),
            ("BE", [5.0, 5.0, 3.0, -3.0, -2.0], [False, False, True, False, False])):
        np.testing.assert_array_equal(_displaceable(np.array(values), 2, w, which),
                                      displaced, err_msg=which)


@pytest.mark.parametrize("which", ["LA", "SA"])
@pytest.mark.parametrize("n,k,extra,seed", [(40, 10, 3, 5), (60, 52, 3, 0), (60, 45, 5, 0),
                                            (100, 75, 8, 0)])
def test_small_basis_never_returns_a_wrong_set_flagged_converged(n, k, extra, seed, which):
    # A basis of a few rows more than k can lock a Ritz value that converged
    # before a wanted eigenvalue was seen at all: distinct values (1.2834
    # in place of 1.2834's neighbour 1.2835, or three from the middle of
    # the wanted set) came back missing, flagged converged.  Such a basis
    # now ends with the check from a fresh block, and without room for it
    # flags every pair.
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    lam = np.sort(rng.uniform(1, 2, n))
    A = (U * lam) @ U.T
    tol = 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
        res = eigarray.eigsh(A, k, which=which, ncv=k + extra, tol=tol, rng=seed)
    want = lam[-k:] if which == "LA" else lam[:k]
    ok = res.info.converged
    if ok.all():
        np.testing.assert_allclose(res.eigenvalues, want, rtol=0, atol=4 * tol * lam[-1])
    assert np.all(res.info.residual_norms[ok] <= 2 * tol * lam[-1])


@pytest.mark.parametrize("seed", [1, 2326])
def test_the_check_gets_the_rows_of_outranked_locked_pairs(seed):
    # 28 copies of 3, 20 of -3 and many of +-2, k = 66 ('LM'), ncv = 89,
    # complex64: 20 pairs at +-2 locked early were outranked by copies of 3
    # locked later and kept their rows, leaving the check for further copies
    # 3 rows; its Ritz values settled on a value tied with the k-th and a
    # copy of 3 came back missing, flagged converged.  The outranked pairs
    # are now dropped before the check, which gets their rows.
    rng = np.random.default_rng(2326)
    rng.integers(22), rng.choice(15), rng.choice(4)
    n = 200
    d = rng.integers(-3, 4, size=n).astype(float)
    Z = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    Q, R = np.linalg.qr(Z)
    Q = Q * (np.diag(R) / abs(np.diag(R)))
    A = (Q * d) @ Q.conj().T
    A = ((A + A.conj().T) / 2).astype(np.complex64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
        res = eigarray.eigsh(A, k=66, which="LM", ncv=89, tol=1e-6, rng=seed)
    assert int(np.sum(d == 3)) == 28
    # 'LM' ties between 2 and -2 may go either way: compare magnitudes.
    exact = np.sort(np.abs(d))[-66:]
    assert res.info.all_converged
    np.testing.assert_allclose(np.sort(np.abs(res.eigenvalues)), exact, rtol=0, atol=1e-4)
    assert int(np.sum(np.abs(res.eigenvalues - 3) < 1e-3)) == 28


@pytest.mark.parametrize("gap", [1e-1, 1e-7], ids=["first-order", "eigenvectors"])
def test_kept_subspace_is_invariant_for_a_nearly_hermitian_matrix(gap, rng):
    # A semi-orthogonal basis leaves the projected matrix Hermitian only to
    # ~1e-9; the restart keeps a basis of its own invariant subspace, so that
    # the kept vectors' relation stays exact.  With kept and discarded values
    # 1e-1 apart the first-order correction of the Hermitian part's
    # eigenvectors serves; 1e-7 apart it does not, and Ha's eigenvectors do.
    from eigarray import _lanczos

    d = 30
    values = np.concatenate([np.linspace(0.0, 1.0, d - 12), 2.0 + gap * np.arange(12)])
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    Ha = (Q * values) @ Q.T + 1e-9 * rng.standard_normal((d, d))
    theta, S = np.linalg.eigh((Ha + Ha.T) / 2)
    new_lock, kept = [d - 1], list(range(d - 7, d - 1))      # the top locked, 6 kept
    calls = []
    eig = _lanczos.ns.numpy_namespace().linalg.eig

    def counting_eig(x):
        calls.append(1)
        return eig(x)

    import unittest.mock
    with unittest.mock.patch.object(_lanczos.ns.numpy_namespace().linalg, "eig", counting_eig):
        Y, T, err = _lanczos._kept_subspace(Ha, theta, S, new_lock, kept)
    assert T is not None
    assert bool(calls) == (gap < 1e-3)
    np.testing.assert_allclose(Y.T @ Y, np.eye(7), atol=1e-14)
    Yk = Y[:, 1:]
    np.testing.assert_allclose(T, Yk.T @ Ha @ Yk, atol=1e-15)
    R = Ha @ Yk - Y @ (Y.T @ Ha @ Yk)
    sym = Ha @ S[:, kept] - S[:, new_lock + kept] @ (S[:, new_lock + kept].T @ Ha @ S[:, kept])
    assert np.linalg.norm(R) <= err + 1e-15
    # Exact up to rounding amplified by the kept/discarded gap (eps / gap for
    # eigenvectors 1e-7 apart), against ~1e-9 for the Hermitian part's.
    assert err < (1e-3 if gap > 1e-3 else 1e-2) * np.linalg.norm(sym)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n_known, stage_rows", [(0, [2]), (2, [2]), (5, [2, 3]), (3, [3, 0])])
def test_fused_gram_schmidt_matches_numpy(dtype, n_known, stage_rows, rng):
    # RowWork.project: W -= K P, then per stage C = conj(M) Wᵀ and W -= Cᵀ M,
    # each stage measured after the one before; last the Gram matrix.
    from eigarray._dispatch import RowWork

    def rows(m, n=5000):
        X = rng.standard_normal((m, n)) + (1j * rng.standard_normal((m, n))
                                            if np.issubdtype(dtype, np.complexfloating) else 0)
        return X.astype(dtype)

    r = stage_rows[0]
    W, P = rows(r), rows(n_known)
    stages = [rows(m) for m in stage_rows]
    K = rng.standard_normal((r, n_known))
    ref = W.astype(np.complex128 if np.iscomplexobj(W) else np.float64) - K @ P
    Cs_ref = []
    for M in stages:
        C = np.conj(M) @ ref.T
        ref = ref - C.T @ M
        Cs_ref.append(C)
    work = RowWork(4, W.shape[1], W.dtype)
    P_before = P.copy()
    Cs, G = work.project(W, K if n_known else None, P, stages)
    tol = 50 * np.finfo(dtype).eps
    scale = np.linalg.norm(ref) + sum(np.linalg.norm(C) for C in Cs_ref)
    assert np.linalg.norm(W - ref) <= tol * scale * 10
    for C, C_ref in zip(Cs, Cs_ref, strict=True):
        assert C.shape == C_ref.shape
        assert np.linalg.norm(C - C_ref) <= tol * scale * 100
    np.testing.assert_array_equal(G, np.conj(G).T)             # exactly Hermitian
    G_ref = np.conj(W.astype(G.dtype)) @ W.astype(G.dtype).T
    assert np.linalg.norm(G - G_ref) <= 1e-12 * np.linalg.norm(G_ref)
    np.testing.assert_array_equal(P, P_before)                  # only W is written


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_orthonormalize_from_the_gram_matrix(dtype, rng):
    # Rows that pass the DGKS test are orthonormalised in one pass from their
    # Gram matrix (Cholesky), with the R of Gram-Schmidt; rows that do not
    # (nearly dependent, or fallen to the breakdown level) go through the loop.
    from eigarray._dispatch import RowWork
    from eigarray._linalg import orthonormalize_rows
    from eigarray._namespace import numpy_namespace

    xp, n = numpy_namespace(), 6000
    cplx = np.issubdtype(dtype, np.complexfloating)
    eps = np.finfo(dtype).eps
    B = np.linalg.qr(rng.standard_normal((n, 4)))[0].T.astype(dtype)

    def block(cos):
        W = rng.standard_normal((2, n)) + (1j * rng.standard_normal((2, n)) if cplx else 0)
        W = W - (np.conj(B) @ W.T).T @ B                  # orthogonal to the basis
        W[1] = cos * W[0] / np.linalg.norm(W[0]) * np.linalg.norm(W[1]) + \
            np.sqrt(1 - cos ** 2) * W[1]
        return W.astype(dtype)

    work = RowWork(2, n, dtype)
    for cos, fused in ((0.3, True), (0.69, True), (0.99, False)):
        W = block(cos)
        gram = np.conj(W.astype(np.complex128)) @ W.astype(np.complex128).T
        gram = gram if cplx else gram.real
        loop = W.copy()
        Q, R, lost = orthonormalize_rows(xp, B, 4, W, np.linalg.norm(W, axis=1).astype(float),
                                         cplx=cplx, breakdown=0.0, rng=rng, work=work,
                                         gram=gram)
        Q2, R2, _ = orthonormalize_rows(xp, B, 4, loop, np.linalg.norm(loop, axis=1)
                                        .astype(float), cplx=cplx, breakdown=0.0, rng=rng,
                                        work=work)
        assert lost == 0 and Q is W
        assert testing.orthogonality_ratio(Q.T) < testing.THRESHOLD
        assert np.max(np.abs(np.conj(B) @ Q.T)) < 100 * eps
        np.testing.assert_allclose(R, R2, rtol=0, atol=100 * eps * np.abs(R2).max())
        if fused:   # one pass: the same factorisation as the loop's, to rounding
            np.testing.assert_allclose(Q, Q2, rtol=0, atol=100 * eps)
    # A row at the breakdown level is replaced by a random vector (loop path).
    W = block(0.3)
    W[1] = 1e-30 * W[1]
    gram = np.conj(W.astype(np.complex128)) @ W.astype(np.complex128).T
    Q, R, lost = orthonormalize_rows(xp, B, 4, W, np.linalg.norm(W, axis=1).astype(float),
                                     cplx=cplx, breakdown=1e-20, rng=rng, work=work,
                                     gram=gram if cplx else gram.real)
    assert lost == 0 and R[1, 1] == 0
    assert testing.orthogonality_ratio(Q.T) < testing.THRESHOLD


def test_products_written_into_basis_rows(rng):
    # A host CSR operator writes A Vᵀ straight into the rows it is given
    # (the basis), counted once per row; other operators copy.
    import scipy.sparse as sp

    A = sp.random_array((500, 500), density=0.02, rng=rng, format="csr")
    A = A + A.T
    V = rng.standard_normal((3, 500))
    for op in (eigarray.aslinearoperator(A), eigarray.aslinearoperator(A.toarray())):
        for p in (1, 2, 3):
            out = np.full((p, 500), np.nan)
            before = op.n_matvec
            assert op.matmat_rows(V[:p], out) is out
            np.testing.assert_allclose(out, (A @ V[:p].T).T, rtol=1e-13, atol=1e-13)
            assert op.n_matvec == before + p


def test_peak_memory_is_the_basis_and_the_ritz_vectors(fused_steps):
    # The docstring's bound, (ncv + k + 4 b) n numbers: the basis, then the k
    # Ritz vectors and the final Rayleigh-Ritz blocks once it is released
    # (no view of it may outlive it: one did, and held 16 rows more), plus
    # the host arrays of the projected problem (about 0.3 MB here).
    import tracemalloc

    A, _ = testing.laplacian_2d(150, 100)
    n, k, ncv, b = A.shape[0], 6, 40, 2
    eigarray.eigsh(A, k=k, ncv=ncv, which="LA", tol=1e-8, rng=0)     # first-call allocations
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        res = eigarray.eigsh(A, k=k, ncv=ncv, which="LA", tol=1e-8, rng=0)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert res.info.all_converged
    assert peak <= (ncv + k + 4 * b) * n * 8 + 400_000


@pytest.mark.parametrize("dtype, scales", [(np.float64, [1e-250, 1e-160, 1e160, 1e250]),
                                           (np.float32, [1e-25, 1e20])])
@pytest.mark.parametrize("block_size", [1, 2])
def test_matrices_near_the_ends_of_the_exponent_range(dtype, scales, block_size):
    # Squares of the entries overflow or underflow (an unscaled iteration took
    # every product for a breakdown, or every residual for inf, and flagged
    # wrong values converged); the iteration runs on A / 2^e instead.
    lam = np.linspace(-1.0, 2.0, 60)
    S = testing.matrix_with_spectrum(lam, rng=0)[0]
    for c in scales:
        A = (S * c).astype(dtype)
        res = eigarray.lanczos(A, k=3, which="LA", block_size=block_size, rng=0)
        assert res.info.converged.all()
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(res.eigenvalues / c, lam[-3:], rtol=30 * 60 * eps)
        assert testing.residual_ratio(A, res.eigenvalues, res.eigenvectors) < 30
        assert testing.orthogonality_ratio(res.eigenvectors) < 30
        history = res.info.history["ritz_values"][-1]
        np.testing.assert_allclose(history / c, lam[-3:], rtol=30 * 60 * eps)


@pytest.mark.parametrize("c", [1e160, 1e-170])
def test_start_in_the_null_space_near_the_ends_of_the_exponent_range(c):
    # v0 in A's null space: the first product is exactly zero and set no
    # scale (1), so the iteration overflowed on A ~ 1e160 ("A returned NaN
    # or Inf") and, on A ~ 1e-170, returned wrong values flagged converged.
    # The first nonzero product sets it now.
    n = 60
    d = np.r_[np.linspace(1.0, 3.0, n - 1), 0.0]
    A = np.diag(d * c)
    v0 = np.zeros(n)
    v0[-1] = 1.0
    res = eigarray.lanczos(A, 3, which="LA", block_size=1, v0=v0, rng=0)
    assert res.info.all_converged
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(res.eigenvalues / c, d[-4:-1], rtol=30 * n * eps)
    assert testing.residual_ratio(A, res.eigenvalues, res.eigenvectors) < 30
    assert testing.orthogonality_ratio(res.eigenvectors) < 30


def test_scaled_operator_takes_its_scale_from_the_first_nonzero_product():
    # svds's products go through scaled_operator: a zero product (a start in
    # the null space) must leave the scale unset, not fix it at 1.
    from eigarray._linalg import scaled_operator

    c = 1e200
    A = np.diag([0.0, 2.0, 3.0]) * c
    op, scale = scaled_operator(eigarray.aslinearoperator(A))
    assert np.all(op.matvec(np.array([1.0, 0.0, 0.0])) == 0.0)
    assert scale() == 1.0
    y = op.matvec(np.array([0.0, 1.0, 1.0]))
    assert 0.5 * c <= scale() <= 4 * c
    np.testing.assert_allclose(y * scale(), [0.0, 2.0 * c, 3.0 * c], rtol=1e-15)


@pytest.mark.parametrize("tol", [1e-10, 1e-8, 1e-5])
@pytest.mark.parametrize("n", [60, 300])
def test_start_on_an_interior_eigenvector(tol, n):
    # A v0 lies in span(v0): the frontier's coefficient removes all but
    # rounding from the product, which the ω-estimates do not carry; the
    # basis must be projected then, or later pairs are wrong but flagged
    # converged (partial reorthogonalisation, tol well above eps).
    g = np.random.default_rng(2)
    X = g.standard_normal((n, n))
    A = (X + X.T) / 2
    exact, vectors = np.linalg.eigh(A)
    v0 = vectors[:, n // 2].copy()
    res = eigarray.lanczos(A, 5, which="LA", block_size=1, v0=v0, tol=tol, rng=1)
    anorm = np.abs(exact).max()
    assert res.info.converged.all()
    assert np.all(res.info.residual_norms <= tol * anorm)
    np.testing.assert_allclose(res.eigenvalues, exact[-5:], rtol=0, atol=tol * anorm)
    assert testing.orthogonality_ratio(res.eigenvectors) < 30


@pytest.mark.parametrize("block_size, overhang", [(2, 1), (3, 1), (3, 2)])
def test_basis_one_block_short_of_the_space(block_size, overhang):
    # ncv < n < ncv + block_size: the basis spans the space before ncv rows
    # are multiplied; the frontier rows left are multiplied into the
    # projected matrix instead of being left as a residual (which stopped
    # the iteration unconverged after one cycle).
    n = 50
    g = np.random.default_rng(0)
    X = g.standard_normal((n, n))
    A = (X + X.T) / 2
    exact = np.linalg.eigvalsh(A)[-3:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = eigarray.lanczos(A, 3, which="LA", ncv=n - overhang, block_size=block_size,
                               rng=0)
    assert res.info.converged.all() and res.info.n_iter == 1
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(res.eigenvalues, exact, rtol=0, atol=30 * n * eps * 10)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=exact)


def test_callback_may_answer_with_a_numpy_bool():
    A = testing.laplacian_2d(20, 20)[0]
    with pytest.warns(eigarray.ConvergenceWarning):
        res = eigarray.eigsh(A, k=6, which="LA", ncv=20, rng=0, tol=1e-10,
                             callback=lambda s: np.max(s.residual_estimates) < 1e3)
    assert res.info.n_iter == 1
    res = eigarray.eigsh(A, k=6, which="LA", ncv=20, rng=0, tol=1e-10,
                         callback=lambda s: None)
    assert res.info.n_iter > 1


@pytest.mark.parametrize("scale", [1e-170, 1e200])
def test_v0_far_from_unit_norm(scale):
    A, lam = testing.laplacian_2d(9, 9, anisotropy=0.7)
    v0 = np.random.default_rng(0).standard_normal(81) * scale
    v0_copy = v0.copy()
    ref = eigarray.eigsh(A, k=4, which="LA", v0=v0 / scale, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = eigarray.eigsh(A, k=4, which="LA", v0=v0, rng=0)
    np.testing.assert_array_equal(v0, v0_copy)
    np.testing.assert_allclose(res.eigenvalues, ref.eigenvalues, rtol=1e-13)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=np.sort(lam)[-4:])


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
def test_torch_uncoalesced_coo_and_bfloat16():
    torch = pytest.importorskip("torch")
    A, lam = testing.laplacian_2d(8, 8, anisotropy=0.7)
    coo = A.tocoo()
    T = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape,
                                check_invariants=True)
    assert not T.is_coalesced()
    w, V = eigarray.eigsh(T, k=3, which="LA", rng=0)
    assert isinstance(w, torch.Tensor)
    testing.assert_eigenpairs(A, w.numpy(), V.numpy(), exact=np.sort(lam)[-3:])
    dense = torch.tensor(A.toarray(), dtype=torch.bfloat16)
    for B in (dense, dense.to_sparse_csr()):
        w, V = eigarray.eigsh(B, k=3, which="LA", rng=0)
        assert w.dtype == torch.float32                 # promoted, as documented
        Ab = dense.to(torch.float32).numpy()
        testing.assert_eigenpairs(Ab, w.numpy(), V.numpy())
    w, V = eigarray.eigh_batched(dense[:3, :3])
    assert w.dtype == torch.float32


def test_complex_products_from_a_real_operator_are_refused():
    # The callable's dtype defaults to float64: casting its complex products
    # would drop the imaginary part (only NumPy's ComplexWarning said so).
    A = random_hermitian(20, np.complex128, np.random.default_rng(0))
    op = eigarray.aslinearoperator(lambda x: A @ x, shape=(20, 20))
    with pytest.raises(TypeError, match="returned complex values .* pass dtype=complex128"):
        eigarray.eigsh(op, k=2)
    op = eigarray.aslinearoperator(lambda x: A @ x, shape=(20, 20), dtype=np.complex128)
    w = eigarray.eigsh(op, k=2, which="LA", rng=0)[0]
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A)[-2:], rtol=1e-12)


@pytest.mark.parametrize("tol", [1e-4, 1e-6])
def test_products_accurate_to_float32_only(tol):
    # A float64 solve of float32 products (a float32 Hessian-vector product,
    # say): the operator is Hermitian to 1e-7 only, which semi-orthogonality
    # does not survive.  The values came back off by up to 10 (flagged
    # unconverged); the solve now runs again with full reorthogonalisation.
    rng = np.random.default_rng(4)
    n = 40
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    exact = np.linspace(-2.0, 10.0, n)
    S32 = ((Q * exact) @ Q.T).astype(np.float32)
    op = eigarray.aslinearoperator(lambda v: (S32 @ v.astype(np.float32)).astype(np.float64),
                                   shape=(n, n))
    res = eigarray.eigsh(op, k=3, which="LA", ncv=33, rng=0, tol=tol)
    assert res.info.converged.all()
    np.testing.assert_allclose(res.eigenvalues, exact[-3:], atol=1e-5)
    w = eigarray.eigsh(op, k=3, which="LA", ncv=33, rng=0, tol=tol,
                       return_eigenvectors=False)
    np.testing.assert_allclose(w, exact[-3:], atol=1e-5)


@pytest.mark.parametrize("nx, ny, k, seed", [(45, 70, 6, 2), (50, 60, 6, 0)])
def test_float32_products_give_the_semi_orthogonal_run_up_at_a_restart(nx, ny, k, seed,
                                                                        monkeypatch):
    # A float64 operator that computes in float32, a few thousand rows: the
    # semi-orthogonal run lost orthogonality unnoticed and either went on
    # (up to 14,000 products on a 60 x 60 grid, where ARPACK needs 650) or
    # blew up ("`A` returned NaN"), and the run again with full
    # reorthogonalisation reported its own history only.  The departure is
    # now measured at each restart.
    from eigarray import _lanczos

    impl, given_up = _lanczos._impl, []
    monkeypatch.setattr(_lanczos, "_impl", lambda *a, **kw: given_up.append(kw.get("spent"))
                        or impl(*a, **kw))
    A, exact = testing.laplacian_2d(nx, ny)
    A32 = A.astype(np.float32)
    n = A.shape[0]
    calls = []

    def matvec(v):
        calls.append(1)
        return (A32 @ v.astype(np.float32)).astype(np.float64)

    op = eigarray.aslinearoperator(matvec, shape=(n, n))
    tol = 1e-8
    with warnings.catch_warnings():
        # The products' errors, eps(float32) ||A||, exceed tol ||A||.
        warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
        res = eigarray.eigsh(op, k=k, which="LA", tol=tol, rng=seed)
    info = res.info
    assert info.n_matvec == len(calls) < 1000
    assert len(info.history["n_matvec"]) == info.n_iter
    assert np.all(np.diff(info.history["n_matvec"]) > 0)
    assert given_up[0] is None and given_up[1].n_iter == 1       # at the first restart
    assert info.n_iter > 1
    # Never silently wrong: a pair flagged converged meets tol; every pair
    # meets the standard at the products' precision.
    anorm = exact[-1]
    assert np.all(info.residual_norms[info.converged] <= 2 * tol * anorm)
    eps32 = np.finfo(np.float32).eps
    assert testing.residual_ratio(A, *res, eps=eps32) < 30
    assert testing.eigenvalue_error(res.eigenvalues, exact[-k:], anorm=anorm, eps=eps32) < 30


@pytest.mark.parametrize("tol", [0.0, 1e-10])
@pytest.mark.parametrize("block_size", [1, 2])
def test_products_less_accurate_than_tol_stop_at_their_error(tol, block_size):
    # Float32 products of a float64 operator cannot give residuals below
    # eps(float32) ||A||: with tol below that, the run went on to maxiter,
    # 16,303 products at tol 1e-10 and 1.7 million (10 minutes) at tol 0,
    # where ARPACK stops after 400-800.  The Gram-Schmidt passes measure the
    # products' error, and the run stops once the estimates reach it, every
    # pair flagged, with a warning that says why.
    A, exact = testing.laplacian_2d(50, 60)
    A32 = A.astype(np.float32)
    n, k = A.shape[0], 6
    op = eigarray.aslinearoperator(
        lambda v: (A32 @ v.astype(np.float32)).astype(np.float64), shape=(n, n))
    with pytest.warns(eigarray.ConvergenceWarning, match="depart from a Hermitian"):
        res = eigarray.lanczos(op, k, which="LA", tol=tol, rng=0, block_size=block_size)
    info = res.info
    assert info.n_matvec < 1000
    assert not info.converged.any()
    errors = info.history["product_error"]
    assert errors.shape == (info.n_iter,)
    assert 1e3 * np.finfo(np.float64).eps < errors[-1] < 10 * np.finfo(np.float32).eps
    # As accurate as the products allow.
    anorm, eps32 = exact[-1], np.finfo(np.float32).eps
    assert testing.residual_ratio(A, *res, eps=eps32) < 30
    assert testing.eigenvalue_error(res.eigenvalues, exact[-k:], anorm=anorm, eps=eps32) < 30


def test_products_inconsistent_with_symmetry_stop_at_their_error():
    # An operator a little off Hermitian (1e-9 ||A||) at tol 0: the same stop.
    A, exact = testing.laplacian_2d(40, 50)
    n = A.shape[0]
    P = pytest.importorskip("scipy.sparse").random(n, n, density=5 / n, random_state=1,
                                                   format="csr")
    B = (A + 1e-9 * P).tocsr()
    with pytest.warns(eigarray.ConvergenceWarning, match="depart from a Hermitian"):
        res = eigarray.eigsh(eigarray.aslinearoperator(lambda v: B @ v, shape=(n, n)), k=6,
                             which="LA", tol=0, rng=0)
    assert res.info.n_matvec < 1000 and not res.info.converged.any()
    np.testing.assert_allclose(res.eigenvalues, exact[-6:], rtol=0, atol=1e-8)


def test_products_a_little_less_accurate_stop_on_a_plateau():
    # Products whose inputs are rounded to float16, in a float32 solve at
    # tol 0: their error measures a few hundred eps(float32) ||A||, under
    # the 1000 eps at which the run stops outright, and the residual
    # estimates wandered between 10 and 60 eps ||A|| until maxiter (6,084
    # products for 100 restarts here; more than ten minutes with the
    # default maxiter).  Past 30 eps, a plateau of the estimates stops it.
    A, exact = testing.laplacian_2d(30, 30)
    A32 = A.astype(np.float32)
    n, k = A.shape[0], 4
    op = eigarray.aslinearoperator(
        lambda v: A32 @ v.astype(np.float16).astype(np.float32), shape=(n, n),
        dtype=np.float32)
    with pytest.warns(eigarray.ConvergenceWarning, match="depart from a Hermitian"):
        res = eigarray.eigsh(op, k=k, which="LA", tol=0, rng=0, maxiter=60)
    info = res.info
    assert info.n_iter < 30 and not info.converged.any()
    eps32 = np.finfo(np.float32).eps
    assert 30 * eps32 < info.history["product_error"][-1] < 1e3 * eps32
    # As accurate as the products allow (the inputs' rounding, eps(float16)).
    assert testing.eigenvalue_error(res.eigenvalues, exact[-k:], anorm=exact[-1],
                                    eps=np.finfo(np.float16).eps) < 1


@pytest.mark.parametrize("tol", [0.0, 1e-8])
def test_products_exact_to_rounding_record_no_product_error(tol):
    A, exact = testing.laplacian_2d(40, 50)
    res = eigarray.eigsh(A, k=6, which="LA", tol=tol, rng=0)
    assert res.info.converged.all()
    assert np.isnan(res.info.history["product_error"]).all()
    assert res.info.history["product_error"].shape == (res.info.n_iter,)


@pytest.mark.parametrize("block_size", [1, 2])
def test_products_null_to_rounding_or_subnormal_keep_a_finite_scale(block_size):
    # A start null only to rounding at scale 1e-300 (its product ~1e-316), and
    # a matrix of subnormal entries: the scale from such a product was
    # 2^-1050, whose reciprocal overflows ("A returned NaN or Inf").
    lam = np.r_[0.0, np.linspace(1.0, 5.0, 49)]
    A, Q = testing.matrix_with_spectrum(lam, rng=0)
    for scale, v0 in ((1e-300, Q[:, 0]), (1e-310, None)):
        res = eigarray.lanczos(A * scale, 4, which="LA", block_size=block_size, v0=v0, rng=0)
        assert res.info.all_converged
        np.testing.assert_allclose(res.eigenvalues / scale, lam[-4:],
                                   rtol=1e-6 if scale < 1e-305 else 1e-12)


_DASK_OPERATORS = """
import dask, dask.array as da, numpy as np, eigarray
from eigarray import testing
dask.config.set(scheduler="{scheduler}")
A, exact = testing.laplacian_2d(8, 8)
A = A.toarray()
Ad = da.from_array(A, chunks=(32, 64))

class Duck:
    shape, dtype = A.shape, A.dtype

    def matvec(self, x):
        return Ad @ x

for op, v0 in [(Duck(), da.ones(64, chunks=32)), (eigarray.aslinearoperator(Ad), None)]:
    res = eigarray.eigsh(op, k=3, which="LA", v0=v0, rng=0)
    assert all(isinstance(x, da.Array) for x in res) and res.info.all_converged
    testing.assert_eigenpairs(A, *(np.asarray(x) for x in res), exact=np.sort(exact)[-3:])
print("ok")
"""


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_operators_bound_to_dask_do_not_hang(scheduler):
    # A duck-typed operator with Dask products bound to Dask by a Dask v0, and
    # an operator over a Dask array: the iteration ran lazily, each host read
    # computing the whole iteration so far, and never ended.  It now runs on
    # the host, each product computed once.  In a subprocess, under a timeout.
    pytest.importorskip("dask.array")
    run_script_ok(_DASK_OPERATORS.format(scheduler=scheduler))


def test_the_copy_check_resolves_its_contenders_before_settling():
    # The 3-D Laplacian's top eigenvalues are triple; a block of two misses
    # third copies, which the check must find.  A check that settled after
    # one cycle of 50 rows returned a set with copies missing (relative
    # error 1e-3), flagged converged: one cycle did not resolve the top of
    # the 64,000-row spectrum.
    A, lam = testing.laplacian_3d(40, 40, 40)
    res = eigarray.eigsh(A, k=10, which="LA", tol=1e-4, ncv=60, rng=0)
    assert res.info.all_converged
    np.testing.assert_allclose(res.eigenvalues, np.sort(lam)[-10:], rtol=1e-6)


@pytest.mark.parametrize("copies,k,ncv,seed", [(3, 2, 5, 1), (3, 2, 5, 8), (5, 7, 10, 1),
                                               (5, 7, 10, 3)])
def test_lm_small_basis_finds_every_copy_at_the_top(copies, k, ncv, seed):
    # 'LM' with copies of 1 beside -0.97 and 0.97.  A basis of k + 3 rows
    # returned -0.97 or 0.97 in place of a copy of 1, flagged converged: at
    # k = 2 the basis did not count as small, so no check ran; at k = 7 the
    # check's one contender, the largest magnitude, sat at the positive end
    # while restarts that keep large magnitudes damped the negative one.
    # Now the right values come back; at k = 2 the check, left 3 rows for
    # contenders at both ends, does not settle within maxiter, and the pairs
    # are flagged.
    lam = np.r_[[1.0] * copies, 0.97, -0.97, np.linspace(-0.9, 0.9, 50 - copies - 2)]
    A, _ = testing.matrix_with_spectrum(lam, rng=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
        res = eigarray.eigsh(A, k=k, which="LM", ncv=ncv, tol=1e-6, rng=seed)
    assert res.info.all_converged == (k == 7)
    wanted = np.sort(lam[np.argsort(-np.abs(lam), stable=True)][:k])
    np.testing.assert_allclose(res.eigenvalues, wanted, atol=1e-5)


def test_short_sparse_iterations_run_on_one_blas_thread():
    # Many small threaded BLAS calls per step hand the cores back and forth
    # (ruinous on a loaded machine): a short CSR iteration runs on one BLAS
    # thread, restored afterwards; dense products keep BLAS's threads.
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {m["num_threads"] for m in threadpoolctl.threadpool_info()
                if m["user_api"] == "blas"}

    before = blas_threads()
    if before <= {1}:
        pytest.skip("BLAS runs on one thread already")
    seen = []
    L, _ = testing.laplacian_2d(20, 20)
    eigarray.eigsh(L, k=3, which="LA", rng=0, callback=lambda s: seen.append(blas_threads()))
    assert seen and all(s == {1} for s in seen)
    assert blas_threads() == before
    seen.clear()
    eigarray.eigsh(L.toarray(), k=3, which="LA", rng=0,
                   callback=lambda s: seen.append(blas_threads()))
    assert seen and all(s == before for s in seen)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_parallel_gram_schmidt_chunks_give_the_serial_bits(dtype, rng):
    # On the steps' threads, each chunk of columns is summed into its own
    # slab and the slabs are added in chunk order, as the serial kernel adds
    # its chunks' sums: the same bits whatever the thread count.
    from eigarray import _dispatch

    n = 3 * 4096 + 1000                                 # a ragged last chunk
    cplx = np.issubdtype(dtype, np.complexfloating)

    def rows(m):
        X = rng.standard_normal((m, n)) + (1j * rng.standard_normal((m, n)) if cplx else 0)
        return X.astype(dtype)

    W0, P, M = rows(2), rows(3), rows(40)
    K = rng.standard_normal((2, 3))
    out = []
    for threads in (1, 2):
        token = _dispatch._STEP_THREADS.set(threads)
        try:
            work = _dispatch.RowWork(2, n, W0.dtype)
            assert bool(work._chunks(n)) == (threads > 1)
            W = W0.copy()
            C = work.subtract_measure(W, K, P, M)
            G = work.subtract_gram(W, C, M)
            R = work.orthonormalize(W, G, 0.0)
            out.append((W, C, G, R))
        finally:
            _dispatch._STEP_THREADS.reset(token)
    for serial, parallel in zip(*out, strict=True):
        np.testing.assert_array_equal(serial, parallel)
    W, C, G, R = out[0]
    assert testing.orthogonality_ratio(W.T) < testing.THRESHOLD


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_fused_projection_matches_numpy(dtype, rng):
    # project_out_gram with parallel steps: a pass is two sweeps of the fused
    # kernels (and the Gram matrix of what is left comes with it); the same
    # coefficients and rows as NumPy's passes, repeated under the DGKS test
    # (a block nearly in the basis's span takes a second pass).
    from eigarray._dispatch import _STEP_THREADS, RowWork
    from eigarray._linalg import project_out_gram
    from eigarray._namespace import numpy_namespace

    xp, n, size = numpy_namespace(), 9000, 30
    cplx = np.issubdtype(dtype, np.complexfloating)
    eps = np.finfo(dtype).eps
    X = rng.standard_normal((n, size)) + (1j * rng.standard_normal((n, size)) if cplx else 0)
    B = np.linalg.qr(X)[0].T.astype(dtype)
    W = (rng.standard_normal((2, size)) @ B + 1e-3 * rng.standard_normal((2, n))).astype(dtype)
    calls = []
    token = _STEP_THREADS.set(2)
    try:
        work = RowWork(2, n, dtype)
    finally:
        _STEP_THREADS.reset(token)
    measure = work.subtract_measure
    work.subtract_measure = lambda *a: calls.append(1) or measure(*a)
    Wf, Cf, nf, G = project_out_gram(xp, B, size, W.copy(), cplx=cplx, work=work)
    Wn, Cn, nn, none = project_out_gram(xp, B, size, W.copy(), cplx=cplx)
    assert none is None and len(calls) == 2                     # two passes
    np.testing.assert_allclose(Cf, Cn, rtol=0, atol=100 * eps)
    np.testing.assert_allclose(Wf, Wn, rtol=0, atol=100 * eps * np.abs(W).max())
    np.testing.assert_allclose(nf, nn, rtol=1e-12)
    np.testing.assert_allclose(G, np.conj(Wf) @ Wf.T, rtol=1e-12, atol=0)
    assert np.max(np.abs(np.conj(B) @ Wf.T)) < 100 * eps * 1e-2


def test_long_sparse_iterations_run_their_steps_on_numba_threads(monkeypatch):
    # A long CSR iteration runs its steps on Numba's threads and BLAS on one
    # thread (restored afterwards); the restarts' products are split by
    # columns over single-threaded BLAS calls.  The answer is that of a run
    # on one Numba thread, to rounding.  (The length from which it does is
    # lowered, so that a small problem takes the path.)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    numba = pytest.importorskip("numba")
    from eigarray import _dispatch, _linalg

    monkeypatch.setattr(_dispatch, "_PARALLEL_STEPS_MIN_LENGTH", 5000)

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one Numba thread")

    def blas_threads():
        return {m["num_threads"] for m in threadpoolctl.threadpool_info()
                if m["user_api"] == "blas"}

    before = blas_threads()
    split = []
    row_combination = _linalg.row_combination
    monkeypatch.setattr(_linalg, "row_combination",
                        lambda *a: split.append(row_combination(*a)) or split[-1])
    L, exact = testing.laplacian_2d(80, 70, anisotropy=0.7)      # 5,600 rows
    seen, results = [], []
    threads = numba.get_num_threads()
    try:
        for t in (max(threads, 2), 1):
            numba.set_num_threads(t)
            results.append(eigarray.eigsh(
                L, k=6, which="LA", tol=1e-10, rng=0,
                callback=lambda s, t=t: seen.append((t, blas_threads()))))
    finally:
        numba.set_num_threads(threads)
    assert split and any(split) and not all(split)     # split on Numba's threads only
    assert any(t > 1 for t, _ in seen)
    assert all(s == {1} for t, s in seen if t > 1) and blas_threads() == before
    for res in results:
        assert res.info.all_converged
        np.testing.assert_allclose(res.eigenvalues, exact[-6:], rtol=0,
                                   atol=testing.THRESHOLD * L.shape[0] * 8 * np.finfo(float).eps)
    np.testing.assert_allclose(results[0].eigenvalues, results[1].eigenvalues, rtol=1e-13)


def test_restart_product_split_by_columns(monkeypatch, rng):
    # row_combination: B[start:start+p] = Yᵀ B[start:stop] on a pool of
    # threads, one share of the columns each (a small product on the calling
    # thread); a pool per thread count, and a forked child (another pid)
    # makes its own (the parent's threads are not in it).
    from eigarray import _dispatch

    n, start, stop, p = 30_000, 3, 40, 20                # 2.2e7 multiply-adds
    B = rng.standard_normal((45, n))
    Yt = rng.standard_normal((p, stop - start))
    expected = B.copy()
    expected[start:start + p] = Yt @ B[start:stop]
    assert not _dispatch.row_combination(Yt, B.copy(), start, stop, 4096)   # serial steps
    pools = _dispatch._COLUMN_POOLS
    for threads, pid, small in ((3, None, False), (3, -1, False), (2, None, False),
                                (5, None, True)):
        if pid is not None:
            monkeypatch.setattr(_dispatch.os, "getpid", lambda pid=pid: pid)
        token = _dispatch._STEP_THREADS.set(threads)
        try:
            out = B.copy()
            rows = 10 if small else stop                   # 6e6 multiply-adds: no pool
            assert _dispatch.row_combination(Yt[:, :rows - start], out, start, rows, 1000)
            want = B.copy()
            want[start:start + p] = Yt[:, :rows - start] @ B[start:rows]
            np.testing.assert_allclose(out, want if small else expected, rtol=1e-13,
                                       atol=1e-12)
            assert ((_dispatch.os.getpid(), threads) in pools) != small
        finally:
            _dispatch._STEP_THREADS.reset(token)
            monkeypatch.undo()
    assert (-1, 3) in pools and pools[(-1, 3)] is not pools[(_dispatch.os.getpid(), 3)]
    assert pools[(_dispatch.os.getpid(), 2)] is not pools[(_dispatch.os.getpid(), 3)]
    pools.pop((-1, 3)).shutdown()
