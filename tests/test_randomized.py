"""randomized_svd / randomized_eigh: known spectra, LAPACK ratios, peers, errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import Backend, is_backend_array, to_backend

import eigarray
from eigarray import _operator, testing
from eigarray._operator import aslinearoperator
from eigarray._randomized import svd_impl

REAL = [np.float32, np.float64]
M_, N_, K_ = 120, 80, 6


def spectrum(kind: str) -> np.ndarray:
    """Singular values (descending, padded with zeros to min(m, n) where low rank)."""
    if kind == "geometric":
        return 0.5 ** np.arange(N_)
    if kind == "flat_tail":
        return np.r_[np.linspace(1.0, 0.3, K_), np.full(N_ - K_, 1e-3)]
    if kind == "low_rank":                                   # rank 8 > k
        return np.r_[np.linspace(1.0, 0.2, 8), np.zeros(N_ - 8)]
    if kind == "rank_deficient":                             # rank 4 < k
        return np.r_[np.linspace(1.0, 0.5, 4), np.zeros(N_ - 4)]
    raise AssertionError(kind)


def optimal_error(sv: np.ndarray, k: int) -> float:
    return float(np.sqrt(np.sum(sv[k:] ** 2)))


def approx_error(A: np.ndarray, U, S, Vt) -> float:
    U, S, Vt = (testing._host(x).astype(np.complex128) for x in (U, S, Vt))
    return float(np.linalg.norm(A - (U * S) @ Vt))


@pytest.mark.parametrize("dtype", REAL, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", ["geometric", "flat_tail", "low_rank", "rank_deficient"])
def test_known_spectra_every_backend(backend, kind, dtype):
    if kind in ("flat_tail", "low_rank") and backend not in (Backend.NUMPY,
                                                              Backend.NUMPY_READONLY):
        pytest.skip("same code path as 'geometric' and 'rank_deficient'; NumPy covers it")
    sv = spectrum(kind)
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=1)
    A = A.astype(dtype)
    Ab = to_backend(A, backend)
    U, S, Vt = eigarray.randomized_svd(Ab, K_, random_state=0)
    assert all(is_backend_array(x, backend) for x in (U, S, Vt))
    assert tuple(U.shape) == (M_, K_) and tuple(S.shape) == (K_,) and tuple(Vt.shape) == (K_, N_)
    Sh = testing._host(S)
    assert Sh.dtype == np.dtype(dtype)
    assert np.all(np.diff(Sh) <= 0)                          # descending, like scikit-learn
    # Converged spectra: every triplet to LAPACK's standard, values to 30 max(m,n) ||A|| eps.
    testing.assert_singular_triplets(A, U, S, Vt, exact=sv[:K_])
    if optimal_error(sv, K_) > 0:
        assert approx_error(A, U, S, Vt) <= 1.05 * optimal_error(sv, K_)
    np.testing.assert_array_equal(testing._host(Ab), A)      # input untouched


@pytest.mark.parametrize("dtype", REAL, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", ["low_rank", "rank_deficient"])
def test_block_krylov_low_rank(kind, dtype):
    # Krylov blocks past the rank are rounding noise; they must still come out orthonormal.
    sv = spectrum(kind)
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=21)
    A = A.astype(dtype)
    U, S, Vt = eigarray.randomized_svd(A, K_, method="block_krylov", random_state=0)
    testing.assert_singular_triplets(A, U, S, Vt, exact=sv[:K_])


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("method", ["range_finder", "block_krylov"])
def test_complex(dtype, method):
    sv = spectrum("geometric")
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=2, complex=True)
    A = A.astype(dtype)
    U, S, Vt = eigarray.randomized_svd(A, K_, random_state=0, method=method)
    testing.assert_singular_triplets(A, U, S, Vt, exact=sv[:K_])
    # svd_flip: the largest entry of every column of U is real and positive.
    top = U[np.argmax(np.abs(U), axis=0), np.arange(K_)]
    assert np.all(top.real > 0) and np.all(np.abs(top.imag) <= 4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("method", ["range_finder", "block_krylov"])
@pytest.mark.parametrize("normalizer", ["auto", "QR", "LU", "cholqr2", "none"])
def test_every_normalizer_keeps_float32_accuracy(normalizer, method):
    # Two power passes (scikit-learn's regime for 'none'), a gap after k.
    sv = spectrum("flat_tail")
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=3)
    A = A.astype(np.float32)
    U, S, Vt = eigarray.randomized_svd(A, K_, n_iter=2, power_iteration_normalizer=normalizer,
                                       method=method, random_state=0)
    assert S.dtype == np.float32 and U.dtype == np.float32
    testing.assert_singular_triplets(A, U, S, Vt, exact=sv[:K_])


def test_auto_normalizer_float32_many_passes_on_fast_decay():
    # Seven passes on a fast decay: the blocks are ill conditioned (cond ~ 2^30), so
    # 'auto' must fall back to shifted Cholesky-QR3 or QR and still keep float32 accuracy.
    sv = spectrum("geometric")
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=4)
    A = A.astype(np.float32)
    U, S, Vt = eigarray.randomized_svd(A, K_, n_iter=7, random_state=0)
    testing.assert_singular_triplets(A, U, S, Vt, exact=sv[:K_])


def test_block_krylov_beats_range_finder_on_slow_decay():
    sv = 1.0 / np.sqrt(np.arange(1, N_ + 1))
    A, _, _ = testing.matrix_with_singular_values(200, N_, sv, rng=5)
    k = 10
    err = {}
    for method in ("range_finder", "block_krylov"):
        worst = []
        for seed in range(3):
            _, S, _ = eigarray.randomized_svd(A, k, n_iter=2, n_oversamples=5, method=method,
                                              random_state=seed)
            worst.append(np.max(np.abs(S - sv[:k]) / sv[:k]))
        err[method] = max(worst)
    assert err["block_krylov"] < 0.5 * err["range_finder"], err


def test_reproducible_and_random_state_kinds():
    A, _, _ = testing.matrix_with_singular_values(M_, N_, spectrum("flat_tail"), rng=6)
    r1 = eigarray.randomized_svd(A, K_, n_iter=1, random_state=7)
    r2 = eigarray.randomized_svd(A, K_, n_iter=1, random_state=7)
    r3 = eigarray.randomized_svd(A, K_, n_iter=1, random_state=np.random.default_rng(7))
    for a, b, c in zip(r1, r2, r3, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    r4 = eigarray.randomized_svd(A, K_, n_iter=1, random_state=8)
    assert not np.array_equal(r1[0], r4[0])
    r5 = eigarray.randomized_svd(A, K_, random_state=np.random.RandomState(0))
    testing.assert_singular_triplets(A, *r5, exact=spectrum("flat_tail")[:K_])


def _vector_tolerance(sv: np.ndarray, k: int, shape: tuple, eps: float) -> float:
    """Singular vectors move by about residual / relative gap."""
    gaps = np.abs(np.diff(sv[:k + 1])) / sv[0]
    return testing.THRESHOLD * max(shape) * eps / float(np.min(gaps))


@pytest.mark.parametrize("shape", [(150, 60), (60, 150)])
def test_agrees_with_sklearn_and_numpy(shape):
    sv = 0.7 ** np.arange(min(shape))
    A, _, _ = testing.matrix_with_singular_values(*shape, sv, rng=8)
    k = 8
    U, S, Vt = eigarray.randomized_svd(A, k, random_state=0)
    eps = np.finfo(np.float64).eps
    tol_v = _vector_tolerance(sv, k, shape, eps)
    Un, Sn, Vtn = np.linalg.svd(A, full_matrices=False)
    Un, Sn, Vtn = Un[:, :k], Sn[:k], Vtn[:k]
    i = np.argmax(np.abs(Un), axis=0)
    sign = np.sign(Un[i, np.arange(k)])
    Un, Vtn = Un * sign, Vtn * sign[:, None]
    references = [(Un, Sn, Vtn)]
    try:
        from sklearn.utils.extmath import randomized_svd as sk_randomized_svd
    except ImportError:
        pass
    else:
        references.append(sk_randomized_svd(A, k, random_state=0))
    for Ur, Sr, Vtr in references:
        err = testing.eigenvalue_error(S, Sr, anorm=sv[0], eps=eps)
        assert err < testing.THRESHOLD * max(shape)
        assert np.max(np.abs(U - Ur)) < tol_v
        assert np.max(np.abs(Vt - Vtr)) < tol_v


def test_transpose_choices_agree():
    sv = 0.6 ** np.arange(60)
    A, _, _ = testing.matrix_with_singular_values(60, 140, sv, rng=9)
    outs = [eigarray.randomized_svd(A, 5, transpose=t, random_state=0)
            for t in ("auto", True, False)]
    for U, S, Vt in outs:
        testing.assert_singular_triplets(A, U, S, Vt, exact=sv[:5])
    tol = _vector_tolerance(sv, 5, A.shape, np.finfo(np.float64).eps)
    for U, _, Vt in outs[1:]:
        assert np.max(np.abs(U - outs[0][0])) < tol and np.max(np.abs(Vt - outs[0][2])) < tol


def _sparse_with_known_svals(m: int, n: int, sv: np.ndarray, rng):
    sp = pytest.importorskip("scipy.sparse")
    r = sv.size
    rows, cols = rng.permutation(m)[:r], rng.permutation(n)[:r]
    return sp.csr_array((sv * rng.choice([-1.0, 1.0], r), (rows, cols)), shape=(m, n))


def test_scipy_sparse_and_linear_operator():
    sla = pytest.importorskip("scipy.sparse.linalg")
    rng = np.random.default_rng(10)
    sv = 0.6 ** np.arange(50)
    S_ = _sparse_with_known_svals(300, 200, sv, rng)
    for M in (S_, sla.aslinearoperator(S_)):
        U, S, Vt = eigarray.randomized_svd(M, 5, random_state=0)
        assert isinstance(U, np.ndarray)
        testing.assert_singular_triplets(S_, U, S, Vt, exact=sv[:5])


def test_integer_input_promotes_to_float64():
    A, _, _ = testing.matrix_with_singular_values(40, 30, np.r_[3.0, 2.0, 1.0], rng=11)
    Ai = np.rint(A * 100).astype(np.int64)
    U, S, Vt = eigarray.randomized_svd(Ai, 3, random_state=0)
    assert S.dtype == np.float64
    ref = np.linalg.svd(Ai.astype(np.float64), compute_uv=False)[:3]
    assert testing.eigenvalue_error(S, ref, anorm=ref[0], eps=np.finfo(float).eps) < 30 * 40


def test_operator_without_adjoint_is_refused():
    class NoAdjoint:
        shape = (50, 40)
        dtype = np.float64

        def matvec(self, x):
            return np.ones(50) * x.sum()

    with pytest.raises(TypeError, match="`M` must provide the adjoint product"):
        eigarray.randomized_svd(NoAdjoint(), 3)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"n_components": 0}, ValueError, "`n_components` must be an integer with 1 <= n_components"),
    ({"n_components": 31}, ValueError, "min\\(m, n\\) = 30; got n_components=31"),
    ({"n_components": 2.0}, TypeError, "`n_components` must be an integer"),
    ({"n_oversamples": -1}, ValueError, "`n_oversamples`"),
    ({"n_iter": -1}, ValueError, "`n_iter`"),
    ({"n_iter": "many"}, ValueError, "`n_iter` must be 'auto'"),
    ({"power_iteration_normalizer": "qr"}, ValueError, "`power_iteration_normalizer` must be"),
    ({"method": "lanczos"}, ValueError, "`method` must be one of"),
    ({"transpose": "yes"}, ValueError, "`transpose` must be True, False or 'auto'"),
    ({"flip_sign": "yes"}, TypeError, "`flip_sign` must be True or False"),
    ({"random_state": "seed"}, TypeError, "`random_state` must be None"),
])
def test_bad_arguments(kwargs, exc, match):
    args = {"n_components": 3, **kwargs}
    with pytest.raises(exc, match=match):
        eigarray.randomized_svd(np.ones((40, 30)), **args)


@pytest.mark.parametrize("M, match", [
    (np.ones((3, 4, 5)), "`M` must be a 2-D array"),
    (np.ones(5), "`M` must be a 2-D array"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "`M` must not contain NaN or Inf"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "`M` must not contain NaN or Inf"),
])
def test_bad_matrix(M, match):
    with pytest.raises(ValueError, match=match):
        eigarray.randomized_svd(M, 1)


def test_info_counts_and_history():
    A, _, _ = testing.matrix_with_singular_values(M_, N_, spectrum("geometric"), rng=12)
    k, p, q = 4, 6, 3
    res = eigarray.randomized_svd(A, k, n_oversamples=p, n_iter=q, random_state=0)
    info = res.info
    l = k + p
    assert info.n_iter == q
    assert info.n_matvec == (2 * q + 2) * l
    assert info.all_converged and info.converged.shape == (k,)
    assert np.all(np.isnan(info.residual_norms))
    assert info.history["n_matvec"][-1] == info.n_matvec
    est = info.history["singular_values"]
    assert est.shape == (q + 2, k)
    assert np.all(np.isnan(est[0]))                          # M Ω: no estimate
    np.testing.assert_array_equal(est[-1], res.S)
    # after a pass the R factor of M Z carries the top singular values
    eps = np.finfo(np.float64).eps
    assert testing.eigenvalue_error(est[-2], res.S, anorm=1.0, eps=eps) < testing.THRESHOLD * M_
    # block Krylov makes the same products (it reuses Aᴴ Q of earlier blocks)
    kr = eigarray.randomized_svd(A, k, n_oversamples=p, n_iter=q, method="block_krylov",
                                 random_state=0)
    assert kr.info.n_matvec == (2 * q + 2) * l


def test_svd_impl_contract_and_residuals():
    sv = spectrum("geometric")
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=13)
    op = aslinearoperator(A)
    res = svd_impl(op, 5, n_oversamples=10, n_iter=4, normalizer="auto",
                   method="range_finder", rng=np.random.default_rng(0), residuals=True)
    U, S, Vt = res
    assert np.all(np.diff(S) <= 0)
    testing.assert_singular_triplets(A, U, S, Vt, exact=sv[:5])
    true = np.linalg.norm(A @ Vt.T - U * S, axis=0)
    np.testing.assert_array_equal(res.info.residual_norms, true)
    assert np.all(res.info.residual_norms <= testing.THRESHOLD * M_ * sv[0] * np.finfo(float).eps)
    assert res.info.n_matvec == op.n_matvec + op.n_rmatvec == (2 * 4 + 2) * 15 + 5
    # transpose=True works on Aᴴ and hands back the triplets of A
    op = aslinearoperator(A)
    res = svd_impl(op, 5, n_oversamples=10, n_iter=4, normalizer="auto",
                   method="block_krylov", rng=np.random.default_rng(0), transpose=True,
                   residuals=True)
    assert res.U.shape == (M_, 5) and res.Vh.shape == (5, N_)
    testing.assert_singular_triplets(A, *res, exact=sv[:5])
    assert res.info.n_matvec == op.n_matvec + op.n_rmatvec


# ---------------------------------------------------------------------------
# randomized_eigh

@pytest.mark.parametrize("dtype", REAL, ids=lambda d: np.dtype(d).name)
def test_nystrom_psd_every_backend(backend, dtype):
    if backend is not Backend.NUMPY and dtype == np.float32:
        pytest.skip("float32 runs on NumPy only (same code path)")
    lam = 0.6 ** np.arange(90)
    A, _ = testing.matrix_with_spectrum(lam, rng=14)
    A = A.astype(dtype)
    Ab = to_backend(A, backend)
    w, V = eigarray.randomized_eigh(Ab, 5, rng=0)
    assert is_backend_array(w, backend) and is_backend_array(V, backend)
    assert testing._host(w).dtype == np.dtype(dtype)
    ref = np.linalg.eigvalsh(A.astype(np.float64))[-5:]
    testing.assert_eigenpairs(A, w, V, exact=ref)
    np.testing.assert_array_equal(testing._host(Ab), A)


@pytest.mark.parametrize("complex_", [False, True])
def test_range_finder_indefinite_matches_eigh(backend, complex_):
    if complex_ and backend is not Backend.NUMPY:
        pytest.skip("complex runs on NumPy only")
    rng = np.random.default_rng(15)
    lam = rng.permutation(np.r_[0.5 ** np.arange(45), -(0.45 ** np.arange(45))])
    A, _ = testing.matrix_with_spectrum(lam, rng=16, complex=complex_)
    res = eigarray.randomized_eigh(to_backend(A, backend), 6, method="range_finder", n_iter=10,
                                   rng=0)
    w, V = res
    ev = np.linalg.eigvalsh(A)
    ref = np.sort(ev[np.argsort(-np.abs(ev))[:6]])
    testing.assert_eigenpairs(A, w, V, exact=ref)
    true = np.linalg.norm(A @ testing._host(V) - testing._host(V) * testing._host(w), axis=0)
    assert np.all(res.info.residual_norms <= 2 * true + 4 * 90 * np.finfo(float).eps)
    assert np.all(np.diff(testing._host(w)) >= 0)


def test_nystrom_sparse_psd_and_counts():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(17)
    lam = 0.5 ** np.arange(200)
    D = sp.diags_array(lam).tocsr()
    P = sp.csr_array(np.eye(200)[rng.permutation(200)])
    A = P @ D @ P.T
    res = eigarray.randomized_eigh(A, 4, n_iter=8, n_oversamples=6, rng=0)
    testing.assert_eigenpairs(A, res.eigenvalues, res.eigenvectors, exact=lam[:4][::-1])
    assert res.info.n_matvec == (8 + 1) * 10 and res.info.n_iter == 8


@pytest.mark.parametrize("A, kwargs, exc, match", [
    (np.eye(5), {"k": 0}, ValueError, "`k` must be an integer with 1 <= k <= n = 5"),
    (np.eye(5), {"k": 6}, ValueError, "got k=6"),
    (np.ones((5, 4)), {"k": 2}, ValueError, "`A` must be square"),
    (np.eye(5), {"k": 2, "method": "lobpcg"}, ValueError, "`method` must be one of"),
    (np.eye(5), {"k": 2, "rng": "x"}, TypeError, "`rng` must be None"),
])
def test_randomized_eigh_bad_arguments(A, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        eigarray.randomized_eigh(A, **kwargs)


# ---------------------------------------------------------------------------
# Power passes that read a dense NumPy matrix once

@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("adjoint_first", [False, True])
def test_normal_product_matches_two_products(monkeypatch, dtype, order, adjoint_first):
    monkeypatch.setattr(_operator, "_NORMAL_BLOCK_BYTES", 16 << 10)  # blocks of 16 to 24 rows
    rng = np.random.default_rng(5)
    m, n = 301, 173
    A = rng.standard_normal((m, n))
    if dtype.startswith("complex"):
        A = A + 1j * rng.standard_normal((m, n))
    A = np.asarray(A, dtype=dtype, order=order)
    A0 = A.copy()
    X = np.asarray(rng.standard_normal((m if adjoint_first else n, 7)), dtype=dtype)
    # Contiguous blocks (rows of C, columns of F) are cut; the others make two products.
    assert _operator._reads_once(A, adjoint_first=adjoint_first) == (
        (order == "C") != adjoint_first)
    Y, W = _operator.normal_product(A, X, adjoint_first=adjoint_first)
    Ah = A.astype(np.complex128).conj().T
    Yr = (Ah if adjoint_first else A.astype(np.complex128)) @ X
    Wr = (A.astype(np.complex128) if adjoint_first else Ah) @ Yr
    eps = np.finfo(dtype).eps
    assert Y.dtype == W.dtype == A.dtype
    assert np.linalg.norm(Y - Yr) <= 10 * max(m, n) * eps * np.linalg.norm(Yr)
    assert np.linalg.norm(W - Wr) <= 10 * max(m, n) * eps * np.linalg.norm(Wr)
    np.testing.assert_array_equal(A, A0)


def _spy_normal(monkeypatch) -> list:
    calls = []
    orig = _operator.LinearOperator.normal_matmat

    def spy(self, X):
        if getattr(self, "inner", None) is None:     # not the scaling wrapper's call
            calls.append(X.shape)
        return orig(self, X)

    monkeypatch.setattr(_operator.LinearOperator, "normal_matmat", spy)
    return calls


@pytest.mark.parametrize("dtype", REAL, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("transposed", [False, True])
def test_fused_power_passes_keep_accuracy(monkeypatch, dtype, transposed):
    # Blocks small enough that the 120 x 80 matrix is cut: every pass reads A once.
    monkeypatch.setattr(_operator, "_NORMAL_BLOCK_BYTES", 2 << 10)
    calls = _spy_normal(monkeypatch)
    sv = np.r_[np.linspace(1.0, 0.3, K_), np.full(N_ - K_, 0.02)]   # cond(M Z) about 50
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=21)
    # Wide: Mᴴ is worked on, whose passes cut M by columns (contiguous in Fortran order).
    A = A.astype(dtype).T if transposed else A.astype(dtype)
    q, l = 7, K_ + 10
    res = eigarray.randomized_svd(A, K_, n_iter=q, random_state=0)
    assert len(calls) == q                                   # no pass fell back
    assert res.info.n_matvec == (2 * q + 2) * l              # the same products, counted
    assert np.diff(res.info.history["n_matvec"]).tolist() == [2 * l] * q + [l]
    testing.assert_singular_triplets(A, *res, exact=sv[:K_])
    # The same accuracy as the two-product passes, on the same draws.
    monkeypatch.setattr(_operator, "_NORMAL_BLOCK_BYTES", 1 << 30)
    ref = eigarray.randomized_svd(A, K_, n_iter=q, random_state=0)
    assert len(calls) == q
    eps = np.finfo(dtype).eps
    err = np.abs(res.S - sv[:K_]).max()
    assert err <= max(4 * np.abs(ref.S - sv[:K_]).max(), 30 * N_ * eps)


def test_fused_pass_falls_back_on_an_ill_conditioned_block(monkeypatch):
    # A fast decay in float32: cond(M Ω) ~ 2^16 is far past the fused pass's limit, so
    # the first pass orthonormalises M Ω properly and makes the adjoint product again,
    # and the later passes make two products.
    monkeypatch.setattr(_operator, "_NORMAL_BLOCK_BYTES", 2 << 10)
    calls = _spy_normal(monkeypatch)
    sv = spectrum("geometric")
    A, _, _ = testing.matrix_with_singular_values(M_, N_, sv, rng=4)
    A = A.astype(np.float32)
    q, l = 7, K_ + 10
    res = eigarray.randomized_svd(A, K_, n_iter=q, random_state=0)
    assert len(calls) == 1
    assert res.info.n_matvec == (2 * q + 2) * l + l          # the wasted adjoint product
    testing.assert_singular_triplets(A, *res, exact=sv[:K_])


@pytest.mark.parametrize("shape", [(M_, N_), (N_, M_)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_anywhere_is_found_every_backend(backend, shape, bad):
    # The scan of M is folded into the first product M Ω (Ω has no zero entry).
    sv = 0.5 ** np.arange(min(shape))
    A, _, _ = testing.matrix_with_singular_values(*shape, sv, rng=8)
    for i, j in [(0, 0), (shape[0] - 1, shape[1] - 1), (17, 41)]:
        B = A.copy()
        B[i, j] = bad
        with pytest.raises(ValueError, match="`M` must not contain NaN or Inf"):
            eigarray.randomized_svd(to_backend(B, backend), 3, random_state=0)
    # Large and small entries are finite: no error, and the values are right (Cholesky-QR
    # squares the scale of a block, so the range is that of ||A||²).
    for factor in (1e150, 1e-150):
        S = testing._host(eigarray.randomized_svd(to_backend(A * factor, backend), 3, n_iter=2,
                                                  random_state=0)[1])
        np.testing.assert_allclose(S, sv[:3] * factor, rtol=1e-12)


def test_block_krylov_too_wide_for_its_blocks_makes_power_passes():
    # l = k + p = 20 > min(m, n) / 2: no second Krylov block fits; the passes
    # asked for are power passes on the first block, not dropped.
    M = testing.matrix_with_singular_values(200, 30, np.linspace(5, 0.1, 30), rng=5)[0]
    s = np.linalg.svd(M, compute_uv=False)[:10]
    errors = {}
    for n_iter in (0, 4):
        res = eigarray.randomized_svd(M, 10, n_oversamples=10, n_iter=n_iter,
                                      method="block_krylov", random_state=0)
        errors[n_iter] = np.max(np.abs(res[1] - s) / s)
        assert res.info.n_iter == n_iter
    finder = eigarray.randomized_svd(M, 10, n_oversamples=10, n_iter=4, method="range_finder",
                                     random_state=0)
    assert errors[4] < 1e-2 * errors[0]
    assert errors[4] <= 10 * np.max(np.abs(finder[1] - s) / s)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.float64])
def test_nystrom_on_the_zero_matrix(dtype):
    # The shift is floored at the working precision's smallest normal: a
    # float64 floor made C⁻¹ overflow float32 (0 * inf = NaN).
    w, V = eigarray.randomized_eigh(np.zeros((40, 40), dtype=dtype), 2, rng=0)
    np.testing.assert_array_equal(w, [0.0, 0.0])
    assert np.all(np.isfinite(V))


@pytest.mark.parametrize("dtype, scales", [(np.float64, [1e-200, 1e200]),
                                           (np.float32, [1e-22, 1e20])])
def test_scale_near_the_ends_of_the_exponent_range(dtype, scales):
    # The Gram matrices of Cholesky-QR would overflow or underflow: the
    # products are scaled by a power of two set by the first one.
    sig = np.geomspace(1.0, 1e-2, 30)
    M = testing.matrix_with_singular_values(60, 30, sig, rng=0)[0]
    P = testing.matrix_with_spectrum(sig, rng=0)[0]
    ref = eigarray.randomized_svd(M.astype(dtype), 3, random_state=0)[1]
    ref_w = eigarray.randomized_eigh(P.astype(dtype), 3, rng=0)[0]
    for c in scales:
        s = eigarray.randomized_svd((M * c).astype(dtype), 3, random_state=0)[1]
        np.testing.assert_allclose(s / c, ref, rtol=100 * np.finfo(dtype).eps)
        w = eigarray.randomized_eigh((P * c).astype(dtype), 3, rng=0)[0]
        np.testing.assert_allclose(w / c, ref_w, rtol=100 * np.finfo(dtype).eps)


def test_unnormalised_power_passes_in_float32():
    # With normalizer 'none' the block grows like ||A||^(2 n_iter): its Gram
    # matrix overflows float32, and the last orthonormalisation is Householder.
    A = (np.random.default_rng(0).standard_normal((70, 40)) * 3).astype(np.float32)
    s = eigarray.randomized_svd(A, 3, power_iteration_normalizer="none", n_iter=7,
                                random_state=0)[1]
    exact = np.linalg.svd(A.astype(np.float64), compute_uv=False)[:3]
    np.testing.assert_allclose(s, exact, rtol=1e-4)


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1e200])
def test_fused_power_passes_near_the_ends_of_the_exponent_range(scale):
    # Dense inputs above 4 MiB read A once per power pass (A X and Aᴴ A X
    # together); at these scales Aᴴ A X leaves the exponent range, and the
    # scaled operator crashed (ZeroDivisionError, OverflowError) or saw NaN.
    B = np.random.default_rng(0).standard_normal((2000, 300))
    ref = eigarray.randomized_svd(B, 5, random_state=0).S
    got = eigarray.randomized_svd(B * scale, 5, random_state=0).S / scale
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # A flat spectrum: the randomized triplets reach 6% of ||A|| (tol=0.1 accepts them)
    got = eigarray.svds(B * scale, 5, solver="randomized", tol=0.1, rng=0).S / scale
    ref = eigarray.svds(B, 5, solver="randomized", tol=0.1, rng=0).S
    np.testing.assert_allclose(np.sort(got), np.sort(ref), rtol=1e-12)


@pytest.mark.parametrize("spectrum", ["negative", "plus_minus", "one_by_one"])
def test_nystrom_refuses_an_indefinite_matrix(spectrum):
    # Before, the Cholesky shift grew until the core factored: a negative
    # definite A gave [0, 0, 0] flagged converged, a ±1 spectrum values above ||A||.
    rng = np.random.default_rng(0)
    if spectrum == "one_by_one":
        A = np.array([[-2.0]])
        k = 1
    else:
        Q, _ = np.linalg.qr(rng.standard_normal((100, 100)))
        lam = -np.arange(1.0, 101.0) if spectrum == "negative" else np.tile([1.0, -1.0], 50)
        A = (Q * lam) @ Q.T
        k = 3
    with pytest.raises(ValueError, match="`A` is not positive semidefinite"):
        eigarray.randomized_eigh(A, k, rng=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_nystrom_accepts_a_low_rank_gram_matrix(dtype):
    # PSD to rounding only: its computed core has eigenvalues of about -eps ||A||.
    rng = np.random.default_rng(1)
    G = rng.standard_normal((200, 5)).astype(dtype)
    A = G @ G.conj().T
    w, V = eigarray.randomized_eigh(A, 5, rng=0)
    exact = np.linalg.eigvalsh(A.astype(np.complex128 if np.iscomplexobj(A) else np.float64))
    np.testing.assert_allclose(w, exact[-5:], rtol=50 * np.finfo(dtype).eps * 200)


@pytest.mark.parametrize("normalizer", ["LU", "none"])
def test_history_has_no_estimates_from_unorthonormal_blocks(normalizer):
    # The R factor of M Z means nothing when Z is not orthonormal.
    M = testing.matrix_with_singular_values(60, 40, np.geomspace(1.0, 1e-3, 40), rng=0)[0]
    res = eigarray.randomized_svd(M, 3, n_iter=3, power_iteration_normalizer=normalizer,
                                  random_state=0)
    rows = res.info.history["singular_values"]
    assert np.all(np.isnan(rows[:-1])) and np.allclose(rows[-1], res.S)


def test_the_residual_that_vanishes_follows_the_side_worked_on():
    rng = np.random.default_rng(0)
    for M, exact_side in [(rng.standard_normal((300, 50)), "adjoint"),
                          (rng.standard_normal((50, 300)), "direct")]:   # 'auto': Mᴴ
        U, S, Vh = eigarray.randomized_svd(M, 5, random_state=0)
        direct = np.linalg.norm(M @ Vh.T - U * S, axis=0) / S[0]
        adjoint = np.linalg.norm(M.T @ U - Vh.T * S, axis=0) / S[0]
        small = direct if exact_side == "direct" else adjoint
        assert np.all(small < 1e-13)


def test_a_norm_near_the_largest_float_does_not_overflow_the_first_product():
    # Gaussian columns of norm sqrt(n) made A Ω overflow for a 50 x 50 matrix
    # of norm 1.2e308 (every seed raised); unit columns keep A Ω within ||A||.
    rng = np.random.default_rng(0)
    B = rng.standard_normal((50, 50))
    B *= 1.2e308 / np.linalg.norm(B, 2)
    exact = np.linalg.svd(B, compute_uv=False)[:2]
    for seed in range(5):
        _, s, _ = eigarray.randomized_svd(B, 2, random_state=seed)
        np.testing.assert_allclose(np.sort(s)[::-1], exact, rtol=1e-3)
