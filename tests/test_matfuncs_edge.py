"""Edge cases of the matrix functions and the polar decomposition.

Extreme scales (overflow and underflow of norms, symmetrisation and large
powers), ``clip`` on subnormal spectra, ``f`` returning another namespace's
array, ``tol=0`` and autograd inputs of :func:`eigarray.polar`, and what the
documentation claims.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import scipy.linalg as sl
from conftest import Backend, is_backend_array, to_backend
from test_matfuncs import eps_of, host

import eigarray
from eigarray import testing

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def relative(X, ref, eps):
    """``||X - ref||_F / (n eps ||ref||_F)`` per matrix, the largest (scale-free)."""
    X, ref = host(X).astype(np.complex128), np.asarray(ref, dtype=np.complex128)
    n = ref.shape[-1]
    # divide by the largest entry first: the norms of 1e-170 or 1e160 matrices
    # would underflow or overflow in the test itself
    s = np.max(np.abs(ref), axis=(-2, -1), keepdims=True)
    X, ref = X / s, ref / s
    num = np.linalg.norm(X - ref, axis=(-2, -1))
    return float(np.max(num / (n * eps * np.linalg.norm(ref, axis=(-2, -1)))))


def assert_hermitian_bitwise(R):
    H = host(R)
    assert np.array_equal(H, np.conj(np.swapaxes(H, -1, -2))), "not Hermitian to the last bit"


# ---------------------------------------------------------------------------
# 1. Newton-Schulz at the ends of the exponent range
# ---------------------------------------------------------------------------

SCALES = {np.float32: [1.0, 1e20, 1e-20, 1e-25, 1e-40],
          np.float64: [1.0, 1e160, 1e-170, 1e-300, 1e300]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_polar_newton_schulz_at_extreme_scales(backend, dtype):
    # well conditioned (cond ~ 2.6); ||A||_F^2 overflows or underflows unscaled
    base = np.array([[2.0, 1.0], [1.0, 3.0]])
    scales = SCALES[dtype]
    if backend is Backend.JAX:      # XLA flushes subnormals to zero
        scales = [s for s in scales if s * 2 >= np.finfo(dtype).smallest_normal]
    A = np.stack([(base * s).astype(dtype) for s in scales])
    Ab = to_backend(A, backend)
    res = eigarray.polar(Ab, method="newton_schulz")
    U, H = res
    assert is_backend_array(U, backend) and is_backend_array(H, backend)
    assert res.info.all_converged and res.info.n_iter < 20
    eps = eps_of(dtype)
    ref = [sl.polar(a.astype(np.float64)) for a in A]
    assert relative(U, np.array([r[0] for r in ref]), eps) < testing.THRESHOLD
    assert relative(H, np.array([r[1] for r in ref]), eps) < testing.THRESHOLD
    assert_hermitian_bitwise(H)


# ---------------------------------------------------------------------------
# 2. the symmetrisation near the largest float
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, big", [(np.float64, 1.5e308), (np.float32, 3e38),
                                        (np.complex128, 1.5e308)],
                         ids=["float64", "float32", "complex128"])
def test_symmetrisation_does_not_overflow(dtype, big):
    A = np.diag([big, 1.0]).astype(dtype)
    F = eigarray.funm(A, lambda w: w)
    assert np.isfinite(F).all()
    assert relative(F, A, eps_of(dtype)) < testing.THRESHOLD
    assert_hermitian_bitwise(F)
    U, H = eigarray.polar(A)
    assert np.isfinite(H).all()
    assert relative(H, A, eps_of(dtype)) < testing.THRESHOLD
    assert_hermitian_bitwise(H)
    # Newton-Schulz forms H = Uᴴ A and symmetrises it the same way
    A2 = np.diag([big, big / 1.5]).astype(dtype)
    res = eigarray.polar(A2, method="newton_schulz")
    assert res.info.all_converged and np.isfinite(res.H).all()
    assert relative(res.H, A2, eps_of(dtype)) < testing.THRESHOLD
    assert_hermitian_bitwise(res.H)


# ---------------------------------------------------------------------------
# 3. clip=True leaves a matrix that passes the check alone
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tiny", [(np.float64, 1e-310), (np.float64, 1e-320),
                                         (np.float32, 1e-40)],
                         ids=["float64-1e-310", "float64-1e-320", "float32-1e-40"])
@pytest.mark.parametrize("name", ["inv_sqrtm", "logm", "powm-0.5"])
def test_clip_keeps_a_subnormal_spectrum_that_passes_the_check(name, dtype, tiny):
    fn = {"inv_sqrtm": eigarray.inv_sqrtm, "logm": eigarray.logm,
          "powm-0.5": lambda A, **kw: eigarray.powm(A, -0.5, **kw)}[name]
    A = np.diag([tiny, tiny]).astype(dtype)          # positive definite: the floor is 0
    R = fn(A)
    np.testing.assert_array_equal(fn(A, clip=True), R)
    w = np.float64(A[0, 0])
    exact = {"inv_sqrtm": 1 / np.sqrt(w), "logm": np.log(w), "powm-0.5": 1 / np.sqrt(w)}[name]
    assert abs(float(R[0, 0]) - exact) <= testing.THRESHOLD * eps_of(dtype) * abs(exact)


def test_clip_of_a_zero_matrix_uses_the_smallest_positive_number():
    # the floor n eps max|λ| is 0: eigenvalues at 0 go to the floor rounded up
    for dtype in (np.float64, np.float32):
        tiny = np.finfo(dtype).smallest_subnormal
        L = eigarray.logm(np.zeros((2, 2), dtype), clip=True)
        np.testing.assert_allclose(np.diag(L), np.log(np.float64(tiny)), rtol=4 * eps_of(dtype))
        R = eigarray.inv_sqrtm(np.zeros((2, 2), dtype), clip=True)
        assert np.isfinite(R).all()


def test_clip_still_raises_eigenvalues_below_a_normal_floor():
    A = np.diag([1.0, 1e-20, -1.0])
    L = eigarray.logm(A, clip=True)
    floor = 3 * eps_of(np.float64)
    np.testing.assert_allclose(np.diag(L), [0.0, np.log(floor), np.log(floor)], rtol=1e-14)


# ---------------------------------------------------------------------------
# 4. powers near the largest float
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("w0, p, exact", [(1.5e308, 1, 1.5e308), (1e154, 2, 1e308),
                                          (-1.5e308, 1, -1.5e308), (10.0, 300, 1e300)])
def test_powm_near_overflow_keeps_working_accuracy(w0, p, exact):
    R = eigarray.powm(np.diag([w0, 0.5]), p)
    assert abs(R[0, 0] - exact) <= 4 * eps_of(np.float64) * abs(exact)
    assert R[1, 1] == 0.5 ** p and R[0, 1] == 0.0 and R[1, 0] == 0.0


def test_powm_near_overflow_float32_and_negative_power():
    R = eigarray.powm(np.diag([3e38, 0.5]).astype(np.float32), 1)
    assert R[0, 0] == np.float32(3e38) and R[1, 1] == np.float32(0.5)
    R = eigarray.powm(np.diag([1e-154, 2e-154]), -2)
    np.testing.assert_allclose(np.diag(R), [1e308, 0.25e308], rtol=4 * eps_of(np.float64))


def test_expm_near_overflow_keeps_working_accuracy():
    E = eigarray.expm(np.diag([709.5, 1.0]))
    assert abs(E[0, 0] - np.exp(709.5)) <= 4 * eps_of(np.float64) * np.exp(709.5)
    # beyond the largest float: signed inf, untouched entries stay finite
    E = eigarray.expm(np.diag([2000.0, 0.0]))
    assert E[0, 0] == np.inf and E[1, 1] == 1.0 and E[0, 1] == 0.0


# ---------------------------------------------------------------------------
# 5. the documentation does not claim more accuracy than scipy's Schur methods
# ---------------------------------------------------------------------------

def test_docs_do_not_claim_more_accuracy_than_scipy():
    text = (DOCS / "matfuncs.rst").read_text(encoding="utf-8")
    flat = " ".join(text.split())
    assert "more accurate than the general-purpose" not in flat
    assert "not* more accurate than the Schur" in flat
    # the documented comparison: the Hilbert matrix of order 8, where scipy's
    # Schur square root is the more accurate; eigarray's stays exactly symmetric
    A = sl.hilbert(8)
    S = eigarray.sqrtm(A)
    assert_hermitian_bitwise(S)
    assert relative(S @ S, A, eps_of(np.float64)) < 1e4     # cond(A) ~ 1.5e10


# ---------------------------------------------------------------------------
# 6. funm's f returning another namespace's array
# ---------------------------------------------------------------------------

def test_funm_f_returning_another_namespace_raises_type_error_naming_f():
    torch = pytest.importorskip("torch")
    A = np.array([[2.0, 1.0], [1.0, 2.0]])
    T = torch.tensor(A)
    with pytest.raises(TypeError, match="`f` must return an array of the namespace"):
        eigarray.funm(T, lambda w: np.cos(w.numpy()))
    with pytest.raises(TypeError, match="`f` must return an array of the namespace"):
        eigarray.funm(A, lambda w: torch.cos(torch.from_numpy(w)))
    R = eigarray.funm(T, torch.cos)                         # f in the input's namespace
    assert isinstance(R, torch.Tensor)
    w, V = np.linalg.eigh(A)
    assert relative(R, (V * np.cos(w)) @ V.T, eps_of(np.float64)) < testing.THRESHOLD


# ---------------------------------------------------------------------------
# 7. powm and half precision
# ---------------------------------------------------------------------------

def test_powm_half_precision_promotes_as_documented():
    R = eigarray.powm(np.diag([4.0, 9.0]).astype(np.float16), 0.5)
    assert R.dtype == np.float32
    np.testing.assert_allclose(R, np.diag([2.0, 3.0]), rtol=30 * eps_of(np.float32))
    doc = " ".join(eigarray.powm.__doc__.split())
    assert "half precision or a" not in doc
    assert "half precision promotes to float32" in doc


# ---------------------------------------------------------------------------
# 8. polar with tol=0
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_polar_tol_zero_means_working_precision(dtype):
    A = np.array([[2.0, 1.0], [1.0, 3.0]], dtype=dtype)
    res0 = eigarray.polar(A, method="newton_schulz", tol=0)     # no warning (errors here)
    res = eigarray.polar(A, method="newton_schulz")
    assert res0.info.all_converged and res0.info.n_iter < 20
    assert res0.info.n_iter == res.info.n_iter
    np.testing.assert_array_equal(res0.U, res.U)
    assert testing.orthogonality_ratio(res0.U, eps=eps_of(dtype)) < testing.THRESHOLD
    assert "``0`` mean working precision" in eigarray.polar.__doc__


# ---------------------------------------------------------------------------
# 9. polar reads torch tensors that require gradients detached
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["svd", "newton_schulz"])
def test_polar_reads_autograd_tensors_detached(method):
    torch = pytest.importorskip("torch")
    A = torch.tensor([[2.0, 1.0], [1.0, 3.0], [0.5, 0.0]], dtype=torch.float64,
                     requires_grad=True)
    U, H = res = eigarray.polar(A, method=method)
    assert not U.requires_grad and not H.requires_grad
    assert res.info.all_converged
    assert A.requires_grad and A.grad is None
    Ur, Hr = sl.polar(A.detach().numpy())
    assert relative(U, Ur, eps_of(np.float64)) < testing.THRESHOLD
    assert relative(H, Hr, eps_of(np.float64)) < testing.THRESHOLD
    # the same as the matrix functions
    S = eigarray.sqrtm(torch.eye(2, dtype=torch.float64, requires_grad=True))
    assert not S.requires_grad



# ---------------------------------------------------------------------------
# 9. the Numba reconstruction kernel against the matmul it replaces
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape, n", [((), 1), ((3,), 5), ((2, 3), 16), ((700,), 16),
                                      ((2,), 64)],
                         ids=["1x1", "3x5", "2x3x16", "parallel-700x16", "2x64"])
@pytest.mark.parametrize("squared", [True, False], ids=["WWᴴ", "VFVᴴ"])
def test_hermitian_product_kernel_matches_matmul(dtype, shape, n, squared):
    from eigarray import _dispatch

    rng = np.random.default_rng(n)
    cplx = np.issubdtype(dtype, np.complexfloating)
    V = rng.standard_normal(shape + (n, n)) + (1j * rng.standard_normal(shape + (n, n))
                                               if cplx else 0)
    f = rng.uniform(-2.0, 2.0, shape + (n,))
    V = V.astype(dtype)
    V.flags.writeable = False
    X = _dispatch.hermitian_product(V, f, squared)
    assert X.shape == V.shape and X.dtype == V.dtype
    W = V * f.astype(dtype)[..., None, :]
    ref = W @ np.conj(np.swapaxes(W if squared else V, -1, -2))
    # the same sums of the same products: within a few roundings of the reference
    scale = np.abs(W).max() * np.abs(W if squared else V).max()
    assert np.abs(X - ref).max() <= 4 * n * eps_of(dtype) * scale
    assert_hermitian_bitwise(X)
    assert np.all(np.diagonal(X, axis1=-2, axis2=-1).imag == 0)


def test_hermitian_product_kernel_declines_what_it_does_not_serve():
    from eigarray import _dispatch

    n = _dispatch.HERMITIAN_PRODUCT_MAX_N
    assert _dispatch.hermitian_product(np.eye(n + 1), np.ones(n + 1), True) is None
    assert _dispatch.hermitian_product(np.eye(2, dtype=np.float16), np.ones(2), True) is None
    assert _dispatch.hermitian_product([[1.0]], [1.0], True) is None
    # NaN in row i of V reaches row and column i, as in a matmul
    V = np.eye(3)
    V[1, 2] = np.nan
    X = _dispatch.hermitian_product(V, np.ones(3), True)
    np.testing.assert_array_equal(np.isnan(X), np.isnan(V @ V.T))
    np.testing.assert_array_equal(np.isnan(X), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
