"""Contract of the symmetric matrix functions and the polar decomposition."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as sl
from conftest import Backend, is_backend_array, to_backend

import eigarray
from eigarray import testing
from eigarray._namespace import to_host_numpy

DTYPES = [np.float32, np.float64, np.complex128]
BATCH = (2, 3)


def _ids(d):
    return np.dtype(d).name


def hermitian_stack(rng, shape, n, dtype, spectrum):
    """Stack of ``Q diag(λ) Qᴴ``, eigenvalues drawn by ``spectrum(rng, n)``."""
    cplx = np.issubdtype(dtype, np.complexfloating)
    mats = [testing.matrix_with_spectrum(spectrum(rng, n), rng=rng, complex=cplx)[0]
            for _ in range(int(np.prod(shape, dtype=int)))]
    A = np.array(mats).reshape(shape + (n, n))
    return A.astype(dtype)


def well_conditioned(rng, n):     # positive definite, cond <= 10
    return 10.0 ** rng.uniform(0.0, 1.0, n)


def moderate(rng, n):             # indefinite, ||A|| <= 2 (exp is well conditioned)
    return rng.uniform(-1.0, 2.0, n)


def host(x):
    return np.asarray(to_host_numpy(x))


def eps_of(dtype):
    return float(np.finfo(np.dtype(dtype)).eps)


def worst_relative(X, ref, eps):
    """Largest ``||X - ref||_F / (n eps ||ref||_F)`` over the matrices of a stack."""
    X, ref = host(X).astype(np.complex128), np.asarray(ref, dtype=np.complex128)
    n = ref.shape[-1]
    num = np.linalg.norm(X - ref, axis=(-2, -1))
    return float(np.max(num / (n * eps * np.linalg.norm(ref, axis=(-2, -1))), initial=0.0))


def per_matrix(fn, A):
    A = np.asarray(A, dtype=np.result_type(A.dtype, np.float64))
    return np.array([fn(a) for a in A.reshape((-1,) + A.shape[-2:])]).reshape(A.shape)


def assert_hermitian_bitwise(R):
    H = host(R)
    assert np.array_equal(H, np.conj(np.swapaxes(H, -1, -2))), "not Hermitian to the last bit"


def check_output(R, A, backend):
    assert is_backend_array(R, backend)
    assert tuple(R.shape) == A.shape
    assert host(R).dtype == A.dtype
    assert_hermitian_bitwise(R)


# ---------------------------------------------------------------------------
# accuracy against scipy, on every backend
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
def test_every_backend_matches_scipy_and_identities(backend, dtype, rng):
    n = 5
    A = hermitian_stack(rng, BATCH, n, dtype, well_conditioned)
    B = hermitian_stack(rng, BATCH, n, dtype, moderate)
    Ab, Bb = to_backend(A, backend), to_backend(B, backend)
    eps = eps_of(dtype)
    S, R, L = eigarray.sqrtm(Ab), eigarray.inv_sqrtm(Ab), eigarray.logm(Ab)
    cases = {
        "sqrtm": (S, A, sl.sqrtm),
        "inv_sqrtm": (R, A, lambda a: sl.fractional_matrix_power(a, -0.5)),
        "logm": (L, A, sl.logm),
        "powm(0.7)": (eigarray.powm(Ab, 0.7), A, lambda a: sl.fractional_matrix_power(a, 0.7)),
        "powm(-1.5)": (eigarray.powm(Ab, -1.5), A,
                       lambda a: sl.fractional_matrix_power(a, -1.5)),
        "powm(3)": (eigarray.powm(Ab, 3), A, lambda a: a @ a @ a),
        "expm": (eigarray.expm(Bb), B, sl.expm),
    }
    for name, (X, M, ref) in cases.items():
        check_output(X, M, backend)
        r = worst_relative(X, per_matrix(ref, M), eps)
        assert r < 100, f"{name}: ||X - scipy||_F / (n eps ||scipy||_F) = {r:.3g}"
    # identities, to LAPACK's standard (THRESHOLD n eps, relative)
    A64 = A.astype(np.complex128)
    S64, R64 = host(S).astype(np.complex128), host(R).astype(np.complex128)
    checks = {
        "sqrtm(A)^2 = A": worst_relative(S64 @ S64, A64, eps),
        "inv_sqrtm(A) A inv_sqrtm(A) = I": worst_relative(R64 @ A64 @ R64,
                                                          np.broadcast_to(np.eye(n), A.shape),
                                                          eps),
        "expm(logm(A)) = A": worst_relative(eigarray.expm(L), A64, eps),
        "powm(A, 0.5) = sqrtm(A)": worst_relative(eigarray.powm(Ab, 0.5), S64, eps),
    }
    bad = {k: v for k, v in checks.items() if not v < testing.THRESHOLD}
    assert not bad, bad
    np.testing.assert_array_equal(host(Ab), A)          # inputs untouched
    np.testing.assert_array_equal(host(Bb), B)


def test_funm_matches_eigh_reference(rng):
    A = hermitian_stack(rng, (4,), 6, np.complex128, moderate)
    C = eigarray.funm(A, np.tanh)
    w, V = np.linalg.eigh(A)
    ref = (V * np.tanh(w)[..., None, :]) @ np.conj(np.swapaxes(V, -1, -2))
    assert worst_relative(C, ref, eps_of(np.float64)) < 100
    assert_hermitian_bitwise(C)
    # funm with the namespace's exp is expm (same eigendecomposition)
    assert worst_relative(eigarray.funm(A, np.exp), host(eigarray.expm(A)), 2**-52) < 30


def test_powm_integer_and_zero_accept_indefinite(rng):
    A = hermitian_stack(rng, (3,), 5, np.float64, moderate)
    eps = eps_of(np.float64)
    assert worst_relative(eigarray.powm(A, 3), A @ A @ A, eps) < testing.THRESHOLD
    assert worst_relative(eigarray.powm(A, 2), A @ A, eps) < testing.THRESHOLD
    assert worst_relative(eigarray.powm(A, 0), np.broadcast_to(np.eye(5), A.shape), eps) < 1
    with pytest.raises(ValueError, match="positive definite"):
        eigarray.powm(A, -1)


def test_integer_input_gives_float64():
    A = np.array([[[4, 0], [0, 9]]])
    S = eigarray.sqrtm(A)
    assert S.dtype == np.float64
    assert worst_relative(S, [[[2.0, 0.0], [0.0, 3.0]]], eps_of(np.float64)) < 1


@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_uplo_reads_one_triangle(UPLO, rng):
    A = hermitian_stack(rng, (3,), 4, np.complex128, well_conditioned)
    junk = A.copy()
    i, j = np.triu_indices(4, 1) if UPLO == "L" else np.tril_indices(4, -1)
    junk[:, i, j] = 99.0 + 7j
    S = eigarray.sqrtm(junk, UPLO=UPLO)
    assert worst_relative(S, per_matrix(sl.sqrtm, A), eps_of(np.float64)) < 100


# ---------------------------------------------------------------------------
# definiteness and clip
# ---------------------------------------------------------------------------

def test_not_psd_raises_naming_the_matrix(rng):
    A = hermitian_stack(rng, BATCH, 4, np.float64, well_conditioned)
    A[1, 0] = testing.matrix_with_spectrum([-0.5, 1.0, 2.0, 3.0], rng=1)[0]
    with pytest.raises(ValueError, match=r"`A` must be positive semi-definite .* sqrtm; "
                                         r"1 of 6 matrices are not; A\[1, 0\] has smallest "
                                         r"eigenvalue -0\.5\b.*clip=True"):
        eigarray.sqrtm(A)
    for fn in (eigarray.inv_sqrtm, eigarray.logm, lambda a: eigarray.powm(a, -0.5)):
        with pytest.raises(ValueError, match=r"positive definite .*A\[1, 0\]"):
            fn(A)
    with pytest.raises(ValueError, match=r"positive semi-definite .*powm with p=0\.3"):
        eigarray.powm(A, 0.3)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128], ids=_ids)
def test_clip(dtype, rng):
    lam = np.array([-0.5, 1e-3, 1.0, 2.0, 4.0])
    cplx = np.issubdtype(dtype, np.complexfloating)
    A, Q = testing.matrix_with_spectrum(lam, rng=2, complex=cplx)
    A = A.astype(dtype)
    eps = eps_of(dtype)
    S = eigarray.sqrtm(A, clip=True)
    ref = (Q * np.sqrt(np.maximum(lam, 0.0))) @ Q.conj().T
    assert worst_relative(S, ref, eps) < 100
    assert_hermitian_bitwise(S)
    # inverse square root and log: eigenvalues below n eps max|λ| are raised to it
    floor = 5 * eps * 4.0
    R = host(eigarray.inv_sqrtm(A, clip=True)).astype(np.complex128)
    ref_R = (Q * np.maximum(lam, floor) ** -0.5) @ Q.conj().T
    assert worst_relative(R, ref_R, eps) < 100
    L = host(eigarray.logm(A, clip=True)).astype(np.complex128)
    ref_L = (Q * np.log(np.maximum(lam, floor))) @ Q.conj().T
    assert worst_relative(L, ref_L, eps) < 100
    with pytest.raises(ValueError):
        eigarray.sqrtm(A)


def test_semidefinite_rounding_noise_is_accepted():
    # exactly singular PSD: the computed zero eigenvalues are ±rounding noise
    lam = np.array([0.0, 0.0, 1.0, 3.0])
    A, Q = testing.matrix_with_spectrum(lam, rng=3)
    S = eigarray.sqrtm(A)
    ref = (Q * np.sqrt(lam)) @ Q.T
    # the square root is Hölder-1/2: ||sqrt(A + E) - sqrt(A)||_2 <= ||E||_2^{1/2}, with
    # ||E|| the backward error of the eigendecomposition, THRESHOLD n eps ||A||
    backward = testing.THRESHOLD * 4 * eps_of(np.float64) * 3.0
    assert np.linalg.norm(S - ref, 2) < np.sqrt(backward)
    with pytest.raises(ValueError, match="positive definite"):
        eigarray.inv_sqrtm(A)
    with pytest.raises(ValueError, match="positive definite"):
        eigarray.inv_sqrtm(np.zeros((2, 2)))


# ---------------------------------------------------------------------------
# polar
# ---------------------------------------------------------------------------

def check_polar(A, Ab, res, backend, eps):
    m, n = A.shape[-2:]
    batch = A.shape[:-2]
    U, H = res
    assert is_backend_array(U, backend) and is_backend_array(H, backend)
    assert tuple(U.shape) == A.shape and tuple(H.shape) == batch + (n, n)
    assert host(U).dtype == A.dtype and host(H).dtype == A.dtype
    assert res.info.converged.shape == batch and res.info.all_converged
    assert_hermitian_bitwise(H)
    ref = [sl.polar(a.astype(np.complex128)) for a in A.reshape(-1, m, n)]
    ref_U = np.array([r[0] for r in ref]).reshape(A.shape)
    ref_H = np.array([r[1] for r in ref]).reshape(batch + (n, n))
    assert worst_relative(U, ref_U, eps) < 100
    assert worst_relative(H, ref_H, eps) < 100
    Uh, Hh = host(U).astype(np.complex128), host(H).astype(np.complex128)
    assert worst_relative(Uh @ Hh, A, eps) < testing.THRESHOLD
    for u, h in zip(Uh.reshape(-1, m, n), Hh.reshape(-1, n, n), strict=True):
        assert testing.orthogonality_ratio(u, eps=eps) < testing.THRESHOLD
        assert np.linalg.eigvalsh(h)[0] > -n * eps * np.linalg.norm(h)
    np.testing.assert_array_equal(host(Ab), A)


def general_stack(rng, shape, m, n, dtype):
    cplx = np.issubdtype(dtype, np.complexfloating)
    mats = [testing.matrix_with_singular_values(m, n, 10.0 ** rng.uniform(0, 1, n),
                                                rng=rng, complex=cplx)[0]
            for _ in range(int(np.prod(shape, dtype=int)))]
    return np.array(mats).reshape(shape + (m, n)).astype(dtype)


@pytest.mark.parametrize("method", ["svd", "newton_schulz"])
@pytest.mark.parametrize("dtype", DTYPES, ids=_ids)
def test_polar_every_backend(backend, dtype, method, rng):
    A = general_stack(rng, BATCH, 7, 4, dtype)
    Ab = to_backend(A, backend)
    check_polar(A, Ab, eigarray.polar(Ab, method=method), backend, eps_of(dtype))


@pytest.mark.parametrize("method", ["svd", "newton_schulz"])
def test_polar_square_complex(method, rng):
    A = general_stack(rng, (3,), 5, 5, np.complex128)
    check_polar(A, A, eigarray.polar(A, method=method), Backend.NUMPY, eps_of(np.float64))


def test_polar_newton_schulz_info_and_nonconvergence():
    A = np.stack([np.diag([3.0, 2.0, 1.0]), np.diag([1.0, 1.0, 0.0])])   # second: singular
    with pytest.warns(eigarray.ConvergenceWarning, match="1 of 2 matrices did not converge"):
        res = eigarray.polar(A, method="newton_schulz", max_iter=30)
    assert res.info.converged.tolist() == [True, False]
    assert res.info.n_iter == 30 and res.info.history["orthogonality"].shape == (31,)
    np.testing.assert_allclose(res.U[0], np.eye(3), rtol=0, atol=30 * 3 * eps_of(np.float64))
    with pytest.raises(eigarray.NoConvergence):
        eigarray.polar(A, method="newton_schulz", max_iter=30, on_nonconvergence="raise")
    # a loose tolerance stops early
    res = eigarray.polar(A[:1] + 0.1, method="newton_schulz", tol=1e-3)
    assert res.info.all_converged and res.info.residual_norms[0] <= 1e-3


# ---------------------------------------------------------------------------
# shapes and bad input
# ---------------------------------------------------------------------------

FUNCS = {
    "sqrtm": eigarray.sqrtm,
    "inv_sqrtm": eigarray.inv_sqrtm,
    "expm": eigarray.expm,
    "logm": eigarray.logm,
    "powm": lambda A, **kw: eigarray.powm(A, 0.5, **kw),
    "funm": lambda A, **kw: eigarray.funm(A, lambda w: w * 2, **kw),
}


@pytest.mark.parametrize("shape", [(0, 4, 4), (2, 0, 3, 3), (1, 1)])
def test_empty_batches_and_tiny(shape):
    A = np.ones(shape)
    for name, fn in FUNCS.items():
        R = fn(A)
        assert R.shape == shape, name
    U, H = eigarray.polar(np.ones(shape), method="newton_schulz")
    assert U.shape == shape and H.shape == shape
    U, H = eigarray.polar(np.ones(shape))
    assert U.shape == shape and H.shape == shape


@pytest.mark.parametrize("name", list(FUNCS) + ["polar"])
def test_bad_input(name):
    fn = FUNCS.get(name, eigarray.polar)
    with pytest.raises(ValueError, match=r"`A` must have at least 2 dimensions"):
        fn(np.ones(3))
    if name != "polar":
        with pytest.raises(ValueError, match=r"`A` must be square .* got shape \(2, 3, 4\)"):
            fn(np.ones((2, 3, 4)))
    for bad in (np.nan, np.inf):
        A = np.eye(3)
        A[1, 1] = bad
        with pytest.raises(ValueError, match="`A` must not contain NaN or Inf"):
            fn(A)
    # Half precision promotes to float32, as in every solver.
    out = fn(np.eye(3, dtype=np.float16))
    assert (out[0] if name == "polar" else out).dtype == np.float32
    with pytest.raises(TypeError, match="`A` must have a real or complex floating"):
        fn(np.array([["a", "b"], ["c", "d"]]))


def test_bad_arguments():
    A = np.eye(3)
    with pytest.raises(ValueError, match="`UPLO` must be one of 'L', 'U'; got UPLO='X'"):
        eigarray.sqrtm(A, UPLO="X")
    with pytest.raises(TypeError, match="`clip` must be True or False"):
        eigarray.sqrtm(A, clip=1)
    with pytest.raises(TypeError, match="`p` must be a real number; got p='2'"):
        eigarray.powm(A, "2")
    with pytest.raises(TypeError, match="`p` must be a real number; got p=True"):
        eigarray.powm(A, True)
    with pytest.raises(ValueError, match="`p` must be finite; got p=inf"):
        eigarray.powm(A, float("inf"))
    with pytest.raises(TypeError, match="`f` must be callable"):
        eigarray.funm(A, 3.0)
    with pytest.raises(ValueError, match=r"`f` must return an array of the shape"):
        eigarray.funm(A, lambda w: w[:2])
    with pytest.raises(ValueError, match=r"`f` must return real values"):
        eigarray.funm(A, lambda w: w * 1j)
    with pytest.raises(TypeError, match=r"`f` must return an array; got float"):
        eigarray.funm(A, lambda w: 1.0)
    with pytest.raises(ValueError, match=r"`A` must have at least as many rows as columns"):
        eigarray.polar(np.ones((3, 4)))
    with pytest.raises(ValueError, match="`method` must be one of 'svd', 'newton_schulz'"):
        eigarray.polar(A, method="qr")
    with pytest.raises(ValueError, match="`max_iter` must be an integer with 0 <= max_iter"):
        eigarray.polar(A, method="newton_schulz", max_iter=-1)
    with pytest.raises(ValueError, match="`tol` must be a non-negative finite number"):
        eigarray.polar(A, method="newton_schulz", tol=-1.0)


def test_readonly_backend_is_exercised():
    # the backend fixture's numpy_readonly case proves inputs are never written;
    # make sure such an input really is read-only, so that those tests can fail.
    A = to_backend(np.eye(2), Backend.NUMPY_READONLY)
    with pytest.raises(ValueError):
        A[0, 0] = 2.0
    np.testing.assert_array_equal(eigarray.sqrtm(A), np.eye(2))


def test_expm_and_powm_overflow_to_signed_inf_not_nan():
    # A plain V diag(f) Vᴴ makes 0 * inf = NaN and inf - inf = NaN; the large
    # weights are scaled and multiplied apart, so only entries they reach
    # overflow, with their true sign (scipy.linalg.expm's answer).
    np.testing.assert_array_equal(eigarray.expm(np.diag([2000.0, 0.0])),
                                  [[np.inf, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(eigarray.expm(np.array([[1000.0, 1.0], [1.0, 1000.0]])),
                                  np.full((2, 2), np.inf))
    np.testing.assert_array_equal(eigarray.powm(np.diag([1e200, -1e150, 2.0]), 3),
                                  np.diag([np.inf, -np.inf, 8.0]))
    P = eigarray.powm(np.diag([1e200, 2.0]), 2.5)
    np.testing.assert_array_equal(P[0], [np.inf, 0.0])
    np.testing.assert_allclose(P[1], [0.0, 2.0 ** 2.5], rtol=4 * np.finfo(float).eps)


def test_complex_results_overflow_to_inf_not_nan(backend):
    # The scaling back was a complex product, whose inf * 0 made NaN of the
    # other part of every entry that overflowed (real input was right).
    c, s = np.cos(0.3), np.sin(0.3)
    Q = np.array([[c, -s * 1j], [-s * 1j, c]])                 # unitary
    A = Q @ np.diag([715.0, 0.0]) @ Q.conj().T
    A = (A + A.conj().T) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # no 'invalid value' either
        E = eigarray.expm(to_backend(A, backend))
        P = eigarray.powm(to_backend(np.diag([1e200, 2.0]).astype(complex), backend), 2)
    assert is_backend_array(E, backend)
    E, P = np.asarray(E), np.asarray(P)
    assert not (np.isnan(E.real).any() or np.isnan(E.imag).any())
    # e^715 q qᴴ with q = (cos 0.3, -i sin 0.3): signed infinities
    np.testing.assert_array_equal(np.diagonal(E).real, [np.inf, np.inf])
    np.testing.assert_array_equal([E[0, 1].imag, E[1, 0].imag], [np.inf, -np.inf])
    np.testing.assert_array_equal(E, E.conj().T)
    np.testing.assert_array_equal(P, [[np.inf, 0.0], [0.0, 4.0]])


@pytest.mark.parametrize("lam", [[708.6, 1.0, -3.0], [709.7, 709.0, 2.0], [720.0, 1.0, 0.0]])
def test_expm_near_the_largest_float(lam):
    # Entries just below the overflow threshold keep full accuracy; those past
    # it are inf with the sign of the exact value (computed scaled by e^-λmax).
    lam = np.asarray(lam)
    A, Q = testing.matrix_with_spectrum(lam, rng=1)
    E = eigarray.expm(A)
    scaled = (Q * np.exp(lam - lam.max())) @ Q.T      # exp(A) e^-λmax
    with np.errstate(over="ignore"):
        exact = scaled * np.exp(lam.max() / 2) * np.exp(lam.max() / 2)
    over = np.isinf(exact)
    np.testing.assert_array_equal(E[over], exact[over])
    eps = np.finfo(np.float64).eps
    # exp's condition number: λ times the eigenvector error
    np.testing.assert_allclose(E[~over], exact[~over], rtol=100 * 3 * lam.max() * eps)
    np.testing.assert_array_equal(E, E.T)


def test_nested_lists_numpy_bools_and_the_zeroth_power():
    # Read as numpy.linalg reads them; numpy.bool_ is a bool; A^0 = I exactly.
    np.testing.assert_allclose(eigarray.sqrtm([[4.0, 0.0], [0.0, 9.0]]), np.diag([2.0, 3.0]),
                               rtol=4 * np.finfo(float).eps)
    np.testing.assert_array_equal(eigarray.eigh_batched([[2.0, 0.0], [0.0, 1.0]])[0], [1.0, 2.0])
    with pytest.raises(TypeError, match="`A` must be an array"):
        eigarray.sqrtm("not a matrix")
    np.testing.assert_array_equal(eigarray.sqrtm(np.eye(3), clip=np.True_), np.eye(3))
    A = testing.matrix_with_spectrum([-1.0, 0.0, 2.0], rng=0)[0]
    np.testing.assert_array_equal(eigarray.powm(np.stack([A, A]), 0), np.stack([np.eye(3)] * 2))
    with pytest.raises(ValueError, match="NaN or Inf"):
        eigarray.powm(np.full((2, 2), np.nan), 0)
