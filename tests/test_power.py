"""Subspace iteration, its SVD engine and the persistent spectral norm."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import Backend, is_backend_array, random_hermitian, reference, to_backend

import eigarray
from eigarray import testing
from eigarray._operator import aslinearoperator
from eigarray._power import default_block_size, svd_impl

REAL = [np.float32, np.float64]
ids = lambda d: np.dtype(d).name  # noqa: E731


def _one_dtype_on_jax(backend, dtype, kept):
    # Eager JAX compiles every operation once per shape and dtype (about 0.2 s
    # each here): one dtype per test proves the namespace, the others add time.
    if backend is Backend.JAX and dtype != kept:
        pytest.skip("JAX runs one dtype of this test (every dtype recompiles every op)")


# ---------------------------------------------------------------------------
# subspace_iteration: accuracy on every backend


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128], ids=ids)
def test_laplacian_every_backend(backend, dtype):
    _one_dtype_on_jax(backend, dtype, np.complex128)
    A, exact = testing.laplacian_2d(8, 7, anisotropy=0.7, dense=True)
    A = A.astype(dtype)
    Ab = to_backend(A, backend)
    res = eigarray.subspace_iteration(Ab, 2, which="SA", chebyshev_degree=6, rng=0)
    w, V = res
    assert is_backend_array(w, backend) and is_backend_array(V, backend)
    assert tuple(V.shape) == (56, 2) and res.info.all_converged
    testing.assert_eigenpairs(A, w, V, exact=exact[:2])
    np.testing.assert_array_equal(testing._host(Ab), A)        # input untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128], ids=ids)
@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_which_matches_lapack(which, dtype, rng):
    A = random_hermitian(50, dtype, rng)
    res = eigarray.subspace_iteration(A, 4, which=which, rng=1)
    assert res.info.all_converged
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=reference(A, 4, which))
    assert res.eigenvalues.dtype == np.finfo(dtype).dtype


def test_known_spectrum_lm_both_signs(rng):
    lam = np.r_[-10.0, 9.0, -8.0, np.linspace(-4, 4, 77)]
    A, _ = testing.matrix_with_spectrum(lam, rng=rng)
    w, V = eigarray.subspace_iteration(A, 3, which="LM", rng=0)
    testing.assert_eigenpairs(A, w, V, exact=[-10.0, -8.0, 9.0])


def test_sparse_laplacian_and_operator(rng):
    A, exact = testing.laplacian_2d(15, 12, anisotropy=0.6)
    res = eigarray.subspace_iteration(A, 4, which="SA", chebyshev_degree=10, rng=0)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=exact[:4])
    op = aslinearoperator(lambda x: A @ x, shape=A.shape)
    w, V = eigarray.subspace_iteration(op, 4, which="SA", chebyshev_degree=10, rng=0)
    testing.assert_eigenpairs(A, w, V, exact=exact[:4])


# ---------------------------------------------------------------------------
# what the iteration does: Chebyshev, locking, warm start, history, callback


@pytest.mark.parametrize("which", ["SA", "LA"])
def test_chebyshev_needs_fewer_iterations(which):
    A, exact = testing.laplacian_2d(12, 10)
    ref = exact[:3] if which == "SA" else exact[-3:]
    plain = eigarray.subspace_iteration(A, 3, which=which, rng=0)
    cheb = eigarray.subspace_iteration(A, 3, which=which, chebyshev_degree=8, rng=0)
    for res in (plain, cheb):
        testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=ref)
    assert cheb.info.n_iter * 5 < plain.info.n_iter
    # the filter pays in products per iteration, and still wins overall here
    assert cheb.info.n_matvec < plain.info.n_matvec


def test_locking_stops_multiplying_converged_pairs(rng):
    # Fast and slow pairs: the dominant ones lock early and are not multiplied again.
    lam = np.r_[100.0, 60.0, 30.0, np.linspace(0.0, 1.0, 117)]
    A, _ = testing.matrix_with_spectrum(lam, rng=rng)
    res = eigarray.subspace_iteration(A, 3, which="LM", block_size=6, rng=0)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=[30.0, 60.0, 100.0])
    steps = np.diff(np.r_[0, res.info.history["n_matvec"]])
    assert steps[0] == 6                                   # the first block product
    assert steps[-1] < 6                                   # later: active columns only
    assert res.info.n_matvec < 6 * res.info.n_iter


def test_warm_start_tracks_a_perturbed_matrix(rng):
    lam = np.r_[np.linspace(0.0, 1.0, 100), [1.5, 1.7, 2.0]]
    A, _ = testing.matrix_with_spectrum(lam, rng=rng)
    E = random_hermitian(103, np.float64, rng)
    first = eigarray.subspace_iteration(A, 3, which="LA", rng=0)
    # Tracking to a working tolerance: the previous vectors are nearly there.
    A2 = A + 1e-7 * E
    cold = eigarray.subspace_iteration(A2, 3, which="LA", tol=1e-6, rng=1)
    warm = eigarray.subspace_iteration(A2, 3, which="LA", tol=1e-6, X0=first.eigenvectors,
                                       rng=1)
    assert warm.info.all_converged and warm.info.n_iter == 1
    assert cold.info.all_converged and cold.info.n_iter >= 20
    np.testing.assert_allclose(warm.eigenvalues, reference(A2, 3, "LA"), rtol=1e-12)
    # To full precision the warm start saves the digits it already has.
    A3 = A + 1e-12 * E
    cold = eigarray.subspace_iteration(A3, 3, which="LA", rng=1)
    warm = eigarray.subspace_iteration(A3, 3, which="LA", X0=first.eigenvectors, rng=1)
    for res in (cold, warm):
        testing.assert_eigenpairs(A3, res.eigenvalues, res.eigenvectors,
                                  exact=reference(A3, 3, "LA"))
    assert warm.info.n_iter * 4 <= cold.info.n_iter


def test_x0_from_another_namespace_and_padding(rng):
    torch = pytest.importorskip("torch")
    A = random_hermitian(40, np.float64, rng)
    X0 = torch.from_numpy(np.linalg.eigh(A)[1][:, -2:].copy())
    res = eigarray.subspace_iteration(A, 2, which="LA", X0=X0, rng=0)
    assert isinstance(res.eigenvalues, np.ndarray)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=reference(A, 2, "LA"))
    wide = np.random.default_rng(0).standard_normal((40, 15))   # wider than the default block
    wide.setflags(write=False)
    before = wide.copy()
    res = eigarray.subspace_iteration(A, 2, which="LA", X0=wide, rng=0)
    np.testing.assert_array_equal(wide, before)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=reference(A, 2, "LA"))


def test_history_callback_and_residuals(rng):
    A = random_hermitian(60, np.float64, rng)
    seen = []
    res = eigarray.subspace_iteration(A, 3, which="SA", rng=0, callback=seen.append)
    w, V = res
    true = np.linalg.norm(A @ V - V * w, axis=0)
    assert np.all(res.info.residual_norms <= 10 * np.finfo(float).eps * np.sqrt(60)
                  * np.abs(w).max())
    np.testing.assert_allclose(res.info.residual_norms, true, rtol=0.5)
    hist = res.info.history
    assert hist["ritz_values"].shape == (res.info.n_iter, 3)
    assert hist["residual_estimates"].shape == (res.info.n_iter, 3)
    assert np.all(np.diff(hist["n_matvec"]) > 0) and hist["n_matvec"][-1] == res.info.n_matvec
    assert len(seen) == res.info.n_iter and isinstance(seen[-1], eigarray.PowerState)
    assert seen[-1].n_converged == 3


def test_callback_can_stop(rng):
    A = random_hermitian(60, np.float64, rng)
    with pytest.warns(eigarray.ConvergenceWarning, match="did not converge"):
        res = eigarray.subspace_iteration(A, 3, rng=0, callback=lambda s: s.n_iter >= 2)
    assert res.info.n_iter == 2


def test_nonconvergence_warns_and_raises():
    A, _ = testing.laplacian_2d(20, 20)
    with pytest.warns(eigarray.ConvergenceWarning, match="did not converge"):
        res = eigarray.subspace_iteration(A, 4, maxiter=3, rng=0)
    assert not res.info.all_converged and res.eigenvalues.shape == (4,)
    with pytest.raises(eigarray.NoConvergence) as err:
        eigarray.subspace_iteration(A, 4, maxiter=3, rng=0, on_nonconvergence="raise")
    assert err.value.eigenvalues.shape == (4,)
    assert not err.value.result.info.all_converged


def test_rng_reproducible(rng):
    A = random_hermitian(50, np.float64, rng)
    a = eigarray.subspace_iteration(A, 3, rng=5)
    b = eigarray.subspace_iteration(A, 3, rng=5)
    assert a.info.n_matvec == b.info.n_matvec
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)


def _float32_products(A):
    """``A``'s products computed in single precision, returned in ``A``'s dtype."""
    low = np.complex64 if np.iscomplexobj(A) else np.float32
    A_low = A.astype(low)
    return aslinearoperator(lambda v: (A_low @ v.astype(low)).astype(A.dtype),
                            shape=A.shape, dtype=A.dtype)


TOP_GAPPED = np.r_[10.0, 9, 8, 7, 6 * 0.9 ** np.arange(196)]


@pytest.mark.parametrize("tol", [0.0, 1e-10])
@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_products_less_accurate_than_tol_stop_at_their_error(cplx, which, tol):
    # Float32 products of a float64 operator: residuals stop near 4e-8 ||A||,
    # and a tol below that ran to maxiter (1000 iterations, 12,016 products).
    # The asymmetry of the projected matrix measures their error; once the
    # residuals stop improving at it, the run stops, every pair flagged.
    sign = -1.0 if which == "SA" else 1.0
    A, _ = testing.matrix_with_spectrum(sign * TOP_GAPPED, rng=0, complex=cplx)
    with pytest.warns(eigarray.ConvergenceWarning,
                      match=r"depart from a Hermitian operator's by about .* Rayleigh-Ritz"):
        res = eigarray.subspace_iteration(_float32_products(A), 4, which=which, tol=tol, rng=0)
    info = res.info
    assert info.n_matvec < 1000 and not info.converged.any()
    errors = info.history["product_error"]
    assert errors.shape == (info.n_iter,)
    assert 1e3 * np.finfo(np.float64).eps < errors[-1] < 1e-6
    np.testing.assert_allclose(res.eigenvalues, np.sort(sign * TOP_GAPPED[:4]), rtol=0,
                               atol=30 * np.finfo(np.float32).eps * 10.0)
    # The same matrix applied exactly: converged, nothing recorded.
    exact = eigarray.subspace_iteration(A, 4, which=which, tol=tol, rng=0)
    assert exact.info.all_converged and np.isnan(exact.info.history["product_error"]).all()


def test_products_a_little_less_accurate_stop_once_the_residuals_reach_them():
    # Products in error by 1000 eps ||A|| on a 300-row Laplacian, tol 0.
    # Their projected matrix departs from symmetry by only about 80 eps (the
    # error shrinks by sqrt(2 / n) there), which a 1000 eps gate missed; and
    # a plateau counted over the whole run took as long as the run to show.
    # The run went to maxiter (1000 iterations); it now stops about 40
    # iterations after its residuals reach the products' error.
    A, _ = testing.laplacian_2d(20, 15, dense=True)
    anorm = np.linalg.norm(A, 2)
    rng = np.random.default_rng(0)
    noise = 1000 * np.finfo(np.float64).eps * anorm / np.sqrt(A.shape[0])
    op = aslinearoperator(lambda X: A @ X + noise * rng.standard_normal(X.shape),
                          shape=A.shape, dtype=A.dtype)
    with pytest.warns(eigarray.ConvergenceWarning, match="Rayleigh-Ritz"):
        res = eigarray.subspace_iteration(op, 4, rng=0)
    assert res.info.n_iter < 700 and not res.info.converged.any()
    assert 100 * np.finfo(np.float64).eps < res.info.history["product_error"][-1] < 1e-11
    exact = np.linalg.eigvalsh(A)[-4:]
    np.testing.assert_allclose(res.eigenvalues, exact, rtol=0, atol=1e-11 * anorm)


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128], ids=ids)
def test_exact_products_are_never_stopped_at_their_error(monkeypatch, which, dtype):
    # Products exact to rounding: a projected matrix Hermitian to about 1 eps
    # ||A||, below the 8 eps gate; the run is the one without the rule,
    # bit for bit, also when it ends unconverged at maxiter.
    import eigarray._power as power

    A, _ = testing.laplacian_2d(12, 10, anisotropy=0.7, dense=True)
    A = A.astype(dtype)
    runs = []
    for rule in (True, False):
        if not rule:
            monkeypatch.setattr(power, "_at_floor", lambda *args: False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
            runs.append([eigarray.subspace_iteration(A, 3, which=which, rng=0, maxiter=m)
                         for m in (None, 40)])
    for with_rule, without in zip(*runs, strict=True):
        assert with_rule.info.n_matvec == without.info.n_matvec
        np.testing.assert_array_equal(with_rule.eigenvalues, without.eigenvalues)
        np.testing.assert_array_equal(with_rule.eigenvectors, without.eigenvectors)
        assert np.isnan(with_rule.info.history["product_error"]).all()
    assert runs[0][0].info.all_converged and not runs[0][1].info.all_converged


def test_default_block_size():
    assert default_block_size(3, 100) == 11
    assert default_block_size(20, 100) == 40
    assert default_block_size(20, 30) == 30


class TestBadInput:
    @pytest.mark.parametrize("k", [0, -1, 10, 11])
    def test_k_out_of_range(self, k):
        with pytest.raises(ValueError, match=r"`k` must be an integer with 0 < k < n = 10"):
            eigarray.subspace_iteration(np.eye(10), k)

    def test_non_square(self):
        with pytest.raises(ValueError, match="`A` must be square"):
            eigarray.subspace_iteration(np.ones((5, 6)), 2)

    def test_unknown_which(self):
        with pytest.raises(ValueError, match="`which` must be one of 'LA', 'SA', 'LM'"):
            eigarray.subspace_iteration(np.eye(10), 2, which="BE")

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite(self, bad, backend):
        A = np.eye(10)
        A[3, 4] = bad
        with pytest.raises(ValueError, match="`A` must not contain NaN or Inf"):
            eigarray.subspace_iteration(to_backend(A, backend), 2)

    def test_x0(self):
        with pytest.raises(ValueError, match=r"`X0` must have shape \(10, p\)"):
            eigarray.subspace_iteration(np.eye(10), 2, X0=np.ones((9, 2)))
        with pytest.raises(ValueError, match=r"p <= block_size = 3"):
            eigarray.subspace_iteration(np.eye(10), 2, X0=np.ones((10, 4)), block_size=3)
        with pytest.raises(ValueError, match="`X0` must not contain NaN"):
            eigarray.subspace_iteration(np.eye(10), 2, X0=np.full((10, 2), np.nan))
        with pytest.raises(TypeError, match="`X0` must be an array"):
            eigarray.subspace_iteration(np.eye(10), 2, X0=[[1.0]] * 10)

    def test_chebyshev_degree(self):
        with pytest.raises(ValueError, match="`chebyshev_degree` must be an integer with 0 <="):
            eigarray.subspace_iteration(np.eye(10), 2, chebyshev_degree=-1)
        with pytest.raises(ValueError, match="needs which='LA' or 'SA'"):
            eigarray.subspace_iteration(np.eye(10), 2, which="LM", chebyshev_degree=4)

    def test_block_size_maxiter_tol(self):
        with pytest.raises(ValueError, match="`block_size` must be an integer with k <="):
            eigarray.subspace_iteration(np.eye(10), 3, block_size=2)
        with pytest.raises(ValueError, match="`maxiter`"):
            eigarray.subspace_iteration(np.eye(10), 3, maxiter=0)
        with pytest.raises(ValueError, match="`tol`"):
            eigarray.subspace_iteration(np.eye(10), 3, tol=-1.0)
        with pytest.raises(ValueError, match="`on_nonconvergence`"):
            eigarray.subspace_iteration(np.eye(10), 3, on_nonconvergence="ignore")


# ---------------------------------------------------------------------------
# Dask (default local scheduler)


def test_dask_row_chunked():
    da = pytest.importorskip("dask.array")
    A, exact = testing.laplacian_2d(8, 7, anisotropy=0.7, dense=True)
    Ad = da.from_array(A, chunks=(14, 56))
    res = eigarray.subspace_iteration(Ad, 2, which="SA", chebyshev_degree=10, rng=0)
    w, V = res
    assert isinstance(w, da.Array) and isinstance(V, da.Array)
    assert res.info.all_converged
    testing.assert_eigenpairs(A, w.compute(), V.compute(), exact=exact[:2])
    # the same numbers as NumPy (same random block, same iteration)
    ref = eigarray.subspace_iteration(A, 2, which="SA", chebyshev_degree=10, rng=0)
    assert ref.info.n_iter == res.info.n_iter
    # the returned block is data, not a growing graph
    assert len(V.__dask_graph__()) <= 4 * V.numblocks[0]


# ---------------------------------------------------------------------------
# svd_impl: the engine of svds(..., solver='power')


@pytest.mark.parametrize("dtype", REAL, ids=ids)
def test_svd_impl_every_backend(backend, dtype):
    _one_dtype_on_jax(backend, dtype, np.float32)
    A, _, _ = testing.matrix_with_singular_values(40, 30, np.geomspace(10, 0.1, 30), rng=1)
    A = A.astype(dtype)
    op = aslinearoperator(to_backend(A, backend))
    U, s, Vh = res = svd_impl(op, 2, tol=0, maxiter=None, block_size=None, rng=0)
    assert all(is_backend_array(x, backend) for x in res)
    assert tuple(U.shape) == (40, 2) and tuple(s.shape) == (2,) and tuple(Vh.shape) == (2, 30)
    sh = testing._host(s)
    assert sh[0] >= sh[1] and res.info.all_converged
    testing.assert_singular_triplets(A, U, s, Vh, exact=np.linalg.svd(A, compute_uv=False)[:2])


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=ids)
@pytest.mark.parametrize("shape", [(60, 45), (45, 60)])
def test_svd_impl_matches_lapack(shape, dtype, rng):
    cplx = np.issubdtype(dtype, np.complexfloating)
    sig = np.r_[np.geomspace(20, 2, 6), np.linspace(1.0, 0.1, min(shape) - 6)]
    A, _, _ = testing.matrix_with_singular_values(*shape, sig, rng=rng, complex=cplx)
    op = aslinearoperator(A.astype(dtype))
    res = svd_impl(op, 5, tol=0, maxiter=None, block_size=None, rng=0)
    U, s, Vh = res
    testing.assert_singular_triplets(A, U, s, Vh, exact=sig[:5])
    assert np.all(np.diff(s) <= 0) and s.dtype == np.float64
    # true residuals, products with A and with Aᴴ counted
    V = Vh.conj().T
    true = np.maximum(np.linalg.norm(A @ V - U * s, axis=0),
                      np.linalg.norm(A.conj().T @ U - V * s, axis=0))
    np.testing.assert_allclose(res.info.residual_norms, true, rtol=0.5)
    assert res.info.n_matvec == op.n_matvec + op.n_rmatvec
    assert res.info.history["ritz_values"].shape == (res.info.n_iter, 5)


def test_svd_impl_nonconvergence_is_flagged(rng):
    A, _, _ = testing.matrix_with_singular_values(60, 50, np.linspace(1.0, 0.9, 50), rng=rng)
    res = svd_impl(aslinearoperator(A), 3, tol=0, maxiter=2, block_size=None, rng=0)
    assert res.info.n_iter == 2 and not res.info.all_converged


def _float32_pair(A):
    """An operator with ``A``'s products and adjoint products computed in float32."""
    A32 = A.astype(np.float32)

    class Float32Products:
        shape = A.shape
        dtype = np.dtype(np.float64)

        def matvec(self, x):
            return (A32 @ x.astype(np.float32)).astype(np.float64)

        def rmatvec(self, y):
            return (A32.T @ y.astype(np.float32)).astype(np.float64)

    return Float32Products()


@pytest.mark.parametrize("tol", [0.0, 1e-10])
@pytest.mark.parametrize("shape", [(300, 200), (200, 300)], ids=["tall", "wide"])
def test_svd_impl_products_less_accurate_than_tol_stop_at_their_error(shape, tol):
    # Float32 products: residuals stop near 5e-8 ||A||, and a tol below that
    # ran to maxiter (1000 iterations, 24,000 products).  Vᴴ (Aᴴ U), the
    # adjoint of diag(σ) for exact products, measures their error.
    sig = TOP_GAPPED[:min(shape)]
    A, _, _ = testing.matrix_with_singular_values(*shape, sig, rng=0)
    with pytest.warns(eigarray.ConvergenceWarning, match="depart from those of a matrix"):
        res = eigarray.svds(_float32_pair(A), 4, solver="power", tol=tol, rng=0)
    info = res.info
    assert info.n_matvec < 1000 and not info.converged.any()
    assert info.history["product_error"].shape == (info.n_iter,)
    assert 1e3 * np.finfo(np.float64).eps < info.history["product_error"][-1] < 1e-6
    np.testing.assert_allclose(np.sort(res.S)[::-1], sig[:4], rtol=0,
                               atol=30 * np.finfo(np.float32).eps * sig[0])
    exact = svd_impl(aslinearoperator(A), 4, tol=tol, maxiter=None, block_size=None, rng=0)
    assert exact.info.all_converged and np.isnan(exact.info.history["product_error"]).all()


# ---------------------------------------------------------------------------
# spectral_norm


@pytest.mark.parametrize("dtype", REAL, ids=ids)
def test_spectral_norm_every_backend(backend, dtype, rng):
    _one_dtype_on_jax(backend, dtype, np.float32)
    A = rng.standard_normal((30, 20)).astype(dtype)
    sigma, state = eigarray.spectral_norm(to_backend(A, backend), n_iter=300, rng=0)
    assert is_backend_array(sigma, backend) and tuple(sigma.shape) == ()
    assert isinstance(state, eigarray.SpectralNormState)
    exact = np.linalg.norm(A.astype(np.float64), 2)
    eps = np.finfo(dtype).eps
    assert abs(float(sigma) - exact) <= testing.THRESHOLD * eps * exact
    assert testing._host(sigma).dtype == dtype


def test_spectral_norm_state_one_iteration_per_call(rng):
    A = rng.standard_normal((40, 25))
    exact = np.linalg.norm(A, 2)
    calls = {"mv": 0, "rmv": 0}

    class Counted:
        shape = A.shape
        dtype = A.dtype

        def matvec(self, x):
            calls["mv"] += 1
            return A @ x

        def rmatvec(self, y):
            calls["rmv"] += 1
            return A.T @ y

    sigma, state = eigarray.spectral_norm(Counted(), rng=0)
    errors = [exact - float(sigma)]
    for _ in range(300):
        sigma, state = eigarray.spectral_norm(Counted(), state=state)
        errors.append(exact - float(sigma))
    assert calls["rmv"] == 301 and calls["mv"] == 2 * 301     # one iteration (+ σ) per call
    errors = np.asarray(errors)
    assert np.all(errors >= -testing.THRESHOLD * np.finfo(float).eps * exact)
    assert errors[-1] <= testing.THRESHOLD * np.finfo(float).eps * exact
    assert errors[10] < errors[0]
    # the same vectors as one call with as many iterations
    sigma_once, _ = eigarray.spectral_norm(A, n_iter=301, rng=0)
    np.testing.assert_allclose(float(sigma_once), float(sigma), rtol=4 * np.finfo(float).eps)


def test_spectral_norm_tracks_drifting_weights(rng):
    W = rng.standard_normal((30, 30))
    sigma, state = eigarray.spectral_norm(W, n_iter=15, rng=0)
    for _ in range(100):
        W = W + 1e-3 * rng.standard_normal((30, 30))
        sigma, state = eigarray.spectral_norm(W, state=state)
    assert abs(float(sigma) - np.linalg.norm(W, 2)) < 1e-6 * np.linalg.norm(W, 2)


def test_spectral_norm_complex_and_zero(rng):
    A = rng.standard_normal((20, 15)) + 1j * rng.standard_normal((20, 15))
    sigma, _ = eigarray.spectral_norm(A, n_iter=400, rng=0)
    exact = np.linalg.norm(A, 2)
    assert sigma.dtype == np.float64
    assert abs(float(sigma) - exact) <= testing.THRESHOLD * np.finfo(float).eps * exact
    zero, state = eigarray.spectral_norm(np.zeros((4, 3)), n_iter=3, rng=0)
    assert float(zero) == 0.0 and not np.any(np.isnan(state.v))


def test_spectral_norm_recovers_from_a_zero_matrix_or_state(backend, rng):
    # A layer initialised to zero, then trained: the state the zero matrix
    # left must not pin sigma at 0 once the matrix is not zero.
    W = rng.standard_normal((9, 6))
    exact = np.linalg.norm(W, 2)
    zero, state = eigarray.spectral_norm(to_backend(np.zeros((9, 6)), backend), n_iter=3, rng=0)
    assert float(zero) == 0.0
    assert all(np.all(np.isfinite(testing._host(x))) for x in state)
    tol = testing.THRESHOLD * np.finfo(np.float32).eps * exact       # JAX may be float32
    sigma, _ = eigarray.spectral_norm(to_backend(W, backend), n_iter=200, state=state)
    assert abs(float(sigma) - exact) <= tol
    zeros = eigarray.SpectralNormState(to_backend(np.zeros(9), backend),
                                       to_backend(np.zeros(6), backend))
    sigma, _ = eigarray.spectral_norm(to_backend(W, backend), n_iter=200, state=zeros)
    assert abs(float(sigma) - exact) <= tol


def test_spectral_norm_leaves_a_null_space_start():
    # v in the null space of A: A v = 0 restarts u from the fixed vector.
    A = np.array([[0.0, 2.0], [0.0, 1.0], [0.0, 0.0]])
    state = eigarray.SpectralNormState(np.ones(3), np.array([1.0, 0.0]))
    sigma, state = eigarray.spectral_norm(A, n_iter=2, state=state)
    assert abs(float(sigma) - np.sqrt(5.0)) <= 4 * np.finfo(float).eps * np.sqrt(5.0)


def test_spectral_norm_torch_gradient(rng):
    torch = pytest.importorskip("torch")
    A = rng.standard_normal((12, 8))
    W = torch.tensor(A, requires_grad=True)
    sigma, state = eigarray.spectral_norm(W, n_iter=200, rng=0)
    assert not state.u.requires_grad and not state.v.requires_grad
    sigma.backward()
    U, s, Vt = np.linalg.svd(A)
    expected = np.outer(U[:, 0], Vt[0])                   # d σ_max / d A = u vᵀ
    err = np.abs(W.grad.numpy() - expected).max()
    assert err <= testing.THRESHOLD * np.finfo(float).eps * 12
    assert abs(sigma.item() - s[0]) <= testing.THRESHOLD * np.finfo(float).eps * s[0]


def test_spectral_norm_bad_input(rng):
    A = rng.standard_normal((6, 4))
    with pytest.raises(ValueError, match="`n_iter` must be an integer with 0 <= n_iter"):
        eigarray.spectral_norm(A, n_iter=-1)
    with pytest.raises(ValueError, match="`n_iter` must be at least 1 when no `state`"):
        eigarray.spectral_norm(A, n_iter=0)
    _, state = eigarray.spectral_norm(A, rng=0)
    with pytest.raises(ValueError, match=r"`state` must hold u of shape \(5,\)"):
        eigarray.spectral_norm(A[:5], state=state)
    with pytest.raises(TypeError, match="adjoint"):
        eigarray.spectral_norm(aslinearoperator(lambda x: A @ x, shape=(6, 4)), rng=0)
    with pytest.raises(ValueError, match="`A` must be a 2-D"):
        eigarray.spectral_norm(np.ones(3))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_spectral_norm_of_an_empty_matrix_is_zero(shape):
    # As numpy.linalg.norm(A, 2); the state keeps its shapes for later calls.
    sigma, state = eigarray.spectral_norm(np.zeros(shape), n_iter=3, rng=0)
    assert float(sigma) == 0.0 == np.linalg.norm(np.zeros(shape), 2)
    assert state.u.shape == (shape[0],) and state.v.shape == (shape[1],)
    sigma, _ = eigarray.spectral_norm(np.zeros(shape), n_iter=0, state=state)
    assert float(sigma) == 0.0


def test_subspace_iteration_start_block_is_checked():
    A = np.diag(np.arange(1.0, 21.0))
    with pytest.raises(TypeError, match="`X0` must hold numbers"):
        eigarray.subspace_iteration(A, 2, X0=np.array([["a"]] * 20))
    with pytest.raises(TypeError, match="`X0` is complex but `A` is real"):
        eigarray.subspace_iteration(A, 2, X0=np.ones((20, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"`X0` must have shape \(20, p\) with p >= 1"):
        eigarray.subspace_iteration(A, 2, X0=np.ones((19, 2)))


def test_spectral_norm_n_iter_zero_reuses_state(rng):
    A = rng.standard_normal((6, 4))
    s1, state = eigarray.spectral_norm(A, n_iter=50, rng=0)
    s2, state2 = eigarray.spectral_norm(A, n_iter=0, state=state)
    assert float(s1) == float(s2) and state2.u is state.u


def test_results_in_caller_namespace_for_callable_with_torch_x0(rng):
    torch = pytest.importorskip("torch")
    A = random_hermitian(30, np.float64, rng)
    At = torch.from_numpy(A)
    op = aslinearoperator(lambda X: At @ X, shape=(30, 30))
    X0 = torch.from_numpy(np.linalg.eigh(A)[1][:, -2:].copy())
    w, V = eigarray.subspace_iteration(op, 2, which="LA", X0=X0, rng=0)
    assert isinstance(w, torch.Tensor) and isinstance(V, torch.Tensor)
    testing.assert_eigenpairs(A, w, V, exact=reference(A, 2, "LA"))


@pytest.mark.parametrize("dtype, scales", [(np.float64, [1e-200, 1e200]),
                                           (np.float32, [1e-22, 1e20])])
def test_scale_near_the_ends_of_the_exponent_range(dtype, scales):
    # Squares of the entries overflow or underflow: the iterations run on a
    # power-of-two scaling of A (spectral_norm: its vectors are normalised
    # through their largest entry), and values come back scaled.
    lam = np.linspace(0.1, 1.0, 40)
    S = testing.matrix_with_spectrum(lam, rng=0)[0]
    sig = np.linspace(1.0, 0.1, 30)
    M = testing.matrix_with_singular_values(50, 30, sig, rng=0)[0]
    eps = np.finfo(dtype).eps
    for c in scales:
        res = eigarray.subspace_iteration((S * c).astype(dtype), 3, which="LA", rng=0)
        assert res.info.converged.all()
        np.testing.assert_allclose(res.eigenvalues / c, lam[-3:], rtol=1e3 * eps)
        assert np.all(res.info.residual_norms / c < 1e3 * eps)
        svd = eigarray.svds((M * c).astype(dtype), 3, solver="power", rng=0)
        assert svd.info.converged.all()
        np.testing.assert_allclose(np.sort(svd.S) / c, np.sort(sig[:3]), rtol=1e3 * eps)
        sigma, state = eigarray.spectral_norm((M * c).astype(dtype), n_iter=200, rng=0)
        np.testing.assert_allclose(float(sigma) / c, 1.0, rtol=1e-3)
        np.testing.assert_allclose(np.linalg.norm(state.u.astype(np.float64)), 1.0,
                                   rtol=10 * eps)


def test_spectral_norm_of_a_torch_sparse_tensor_and_a_bad_state():
    torch = pytest.importorskip("torch")
    A = np.random.default_rng(0).random((30, 20))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        T = torch.tensor(A).to_sparse_csr()
        sigma, state = eigarray.spectral_norm(T, n_iter=100, rng=0)
    assert isinstance(sigma, torch.Tensor)
    np.testing.assert_allclose(float(sigma), np.linalg.norm(A, 2), rtol=1e-12)
    with pytest.raises(TypeError, match="`state` must hold two arrays"):
        eigarray.spectral_norm(A, state=(None, np.ones(20)))


def test_operator_returning_nan_is_named():
    nan_op = eigarray.LinearOperator((20, 20), np.float64, None, matvec=lambda x: x * np.nan,
                                     rmatvec=lambda y: y * np.nan)
    for which in ("LA", "LM"):
        with pytest.raises(ValueError, match="`A` returned NaN or Inf"):
            eigarray.subspace_iteration(nan_op, 2, which=which, rng=0)
    with pytest.raises(ValueError, match="`A` returned NaN or Inf"):
        eigarray.svds(nan_op, 2, solver="power", rng=0)
    with pytest.raises(ValueError, match="product with the operator contains NaN or Inf"):
        eigarray.randomized_svd(nan_op, 2)


def test_spectral_norm_refuses_a_complex_state_for_a_real_matrix():
    W = np.random.default_rng(0).standard_normal((6, 4))
    state = eigarray.SpectralNormState(1j * np.ones(6), 1j * np.ones(4))
    with pytest.raises(TypeError, match="`state` is complex but `A` is real"):
        eigarray.spectral_norm(W, state=state, n_iter=5)


def test_spectral_norm_jax_gradient_is_finite_from_a_zero_or_null_space_start():
    # The restart vector replaces a zero iterate before it is divided: a
    # where after the division still sent NaN through the norm's gradient.
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def grad(A, **kw):
        return np.asarray(jax.grad(lambda A: eigarray.spectral_norm(A, **kw)[0])(A))

    assert np.all(np.isfinite(grad(jnp.zeros((6, 4)), n_iter=5, rng=0)))
    A = jnp.zeros((6, 4)).at[0, 0].set(2.0).at[1, 1].set(1.0)
    state = eigarray.SpectralNormState(jnp.ones(6) / 6 ** 0.5, jnp.array([0.0, 0.0, 1.0, 0.0]))
    g = grad(A, n_iter=30, state=state)
    expected = np.zeros((6, 4))
    expected[0, 0] = 1.0                                   # u vᵀ of the top pair
    np.testing.assert_allclose(g, expected, atol=1e-12)


def test_a_norm_near_the_largest_float_is_scaled_not_overflowed():
    # max|A x| sqrt(n), which sets the iteration's scale, overflowed for a
    # norm of 1.2e308; the products then went unscaled and overflowed too.
    rng = np.random.default_rng(0)
    B = rng.standard_normal((50, 50))
    B = (B + B.T) / 2
    B *= 1.2e308 / np.abs(np.linalg.eigvalsh(B)).max()
    exact = np.linalg.eigvalsh(B)
    for which, want in [("LA", exact[-2:]), ("SA", exact[:2])]:
        res = eigarray.subspace_iteration(B, 2, which=which, rng=0)
        assert res.info.converged.all()
        np.testing.assert_allclose(np.sort(res.eigenvalues), want, rtol=1e-10)
    res = eigarray.randomized_eigh(B, 2, method="range_finder", rng=0)
    assert np.isfinite(res.eigenvalues).all() and np.isfinite(res.info.residual_norms).all()
