"""Public contract of eigh_batched on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import is_backend_array, to_backend

import eigarray
from eigarray import testing
from eigarray._namespace import to_host_numpy

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def hermitian_stack(rng, shape, n, dtype):
    X = rng.standard_normal(shape + (n, n))
    if np.issubdtype(dtype, np.complexfloating):
        X = X + 1j * rng.standard_normal(shape + (n, n))
    return ((X + np.conj(np.swapaxes(X, -1, -2))) / 2).astype(dtype)


def check_stack(A, w, V):
    """LAPACK ratios for every matrix of the stack (Frobenius form, as the issue states)."""
    A = np.asarray(A)
    w, V = to_host_numpy(w), to_host_numpy(V)
    n = A.shape[-1]
    eps = np.finfo(w.dtype).eps
    A2, w2, V2 = A.reshape(-1, n, n), w.reshape(-1, n), V.reshape(-1, n, n)
    for a, lam, v in zip(A2, w2, V2, strict=True):
        a = a.astype(np.complex128)
        v = v.astype(np.complex128)
        anorm = max(np.linalg.norm(a), np.finfo(float).tiny)
        r = np.linalg.norm(a @ v - v * lam) / (n * anorm * eps)
        o = np.linalg.norm(v.conj().T @ v - np.eye(n)) / (n * eps)
        assert r < testing.THRESHOLD and o < testing.THRESHOLD, (r, o)
        ref = np.linalg.eigvalsh(a)
        assert np.max(np.abs(np.sort(lam) - ref)) <= testing.THRESHOLD * n * anorm * eps


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 8, 33])
def test_random_stacks_every_backend(backend, n, dtype, rng):
    A = hermitian_stack(rng, (3, 2), n, dtype)
    Ab = to_backend(A, backend)
    w, V = eigarray.eigh_batched(Ab)
    assert is_backend_array(w, backend) and is_backend_array(V, backend)
    assert tuple(w.shape) == (3, 2, n) and tuple(V.shape) == (3, 2, n, n)
    check_stack(A, w, V)
    np.testing.assert_array_equal(to_host_numpy(Ab), A)


@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_uplo_reads_one_triangle(UPLO, rng):
    A = hermitian_stack(rng, (4,), 5, np.complex128)
    junk = A.copy()
    i, j = np.triu_indices(5, 1) if UPLO == "L" else np.tril_indices(5, -1)
    junk[:, i, j] = 99.0 + 7j                      # the triangle that must be ignored
    junk[:, range(5), range(5)] += 3j              # and the imaginary part of the diagonal
    w, V = eigarray.eigh_batched(junk, UPLO=UPLO)
    check_stack(A, w, V)


def _cupy_with_gpu():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy sees no GPU")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("CUDA is unusable")
    return cupy


@pytest.mark.parametrize("dtype", [np.float64, np.complex64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("UPLO", ["L", "U"])
@pytest.mark.parametrize("n", [5, 12, 16, 31, 32, 40])
def test_gpu_kernels_every_order_read_one_triangle(n, UPLO, dtype, rng):
    # Both GPU kernels (shared memory up to 32 lanes per matrix, a block per
    # matrix above), at powers of two and an odd order, with junk in the
    # triangle that must not be read; the stack is left as it was.
    cupy = _cupy_with_gpu()
    A = hermitian_stack(rng, (37,), n, dtype)
    junk = A.copy()
    i, j = np.triu_indices(n, 1) if UPLO == "L" else np.tril_indices(n, -1)
    junk[:, i, j] = 7.0
    junk_gpu = cupy.asarray(junk)
    w, V = eigarray.eigh_batched(junk_gpu, UPLO=UPLO)
    check_stack(A, w, V)
    np.testing.assert_array_equal(cupy.asnumpy(junk_gpu), junk)


def test_sort_descending_and_no_vectors(rng):
    A = hermitian_stack(rng, (6,), 4, np.float64)
    w_up, _ = eigarray.eigh_batched(A)
    w_down, V_down = eigarray.eigh_batched(A, sort="descending")
    np.testing.assert_array_equal(w_down, w_up[:, ::-1])
    check_stack(A, w_down, V_down)
    w, V = eigarray.eigh_batched(A, eigenvectors=False)
    assert V is None
    np.testing.assert_allclose(w, w_up, rtol=0, atol=1e-13)


@pytest.mark.parametrize("shape", [(0,), (0, 3), ()])
def test_empty_batches_and_single_matrix(shape, rng):
    A = hermitian_stack(rng, shape, 3, np.float64)
    w, V = eigarray.eigh_batched(A)
    assert w.shape == shape + (3,) and V.shape == shape + (3, 3)
    if A.size:
        check_stack(A, w, V)


def test_special_matrices():
    n = 6
    cases = [np.zeros((n, n)), np.diag(np.arange(n, dtype=float)), np.eye(n),
             np.diag([1.0, 1.0, 1.0, 2.0, 2.0, 5.0])]
    lam = np.repeat([1.0, 3.0], 3)
    cases.append(testing.matrix_with_spectrum(lam, rng=0)[0])      # repeated eigenvalues
    A = np.stack(cases)
    w, V = eigarray.eigh_batched(A)
    check_stack(A, w, V)
    assert np.all(eigarray.eigh_batched(A).info.converged)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_near_underflow_and_overflow(scale, rng):
    A = hermitian_stack(rng, (5,), 4, np.float64) * scale
    w, V = eigarray.eigh_batched(A)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(V))
    ref = np.linalg.eigvalsh(A / scale) * scale
    np.testing.assert_allclose(w, ref, rtol=100 * 4 * np.finfo(float).eps, atol=0)


@pytest.mark.parametrize("n", [4, 8, 16])
def test_graded_relative_accuracy_where_qr_eigh_fails(n):
    """Demmel-Veselić: every eigenvalue of D H D to O(cond(H) eps) relative accuracy."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    eps = np.finfo(float).eps
    worst_ours, worst_lapack = 0.0, 0.0
    for seed in range(4):
        A, cond = testing.graded_matrix(n, low=1e-8, rng=seed)
        exact = np.array(sorted(float(x) for x in mpmath.eigsy(mpmath.matrix(A.tolist()))[0]))
        bound = 100 * cond * eps
        ours = np.max(np.abs(eigarray.eigh_batched(A[None])[0][0] - exact) / exact)
        lapack = np.max(np.abs(np.linalg.eigvalsh(A) - exact) / exact)
        assert ours < bound, (seed, ours, bound)
        worst_ours, worst_lapack = max(worst_ours, ours), max(worst_lapack, lapack / bound)
    assert worst_lapack > 1.0, "numpy.linalg.eigh unexpectedly met the relative bound"


def test_torch_and_jax_cpu_inputs_are_not_copied(monkeypatch, rng):
    torch = pytest.importorskip("torch")
    import eigarray._dispatch as dispatch

    seen = []
    real = dispatch.batched_eigh_host

    def spy(A, **kw):
        seen.append(A)
        return real(A, **kw)

    monkeypatch.setattr(dispatch, "batched_eigh_host", spy)
    A = hermitian_stack(rng, (7,), 3, np.float64)
    T = torch.from_numpy(A.copy())
    w, V = eigarray.eigh_batched(T, UPLO="U")
    assert seen[-1].__array_interface__["data"][0] == T.data_ptr()
    assert isinstance(w, torch.Tensor)
    jnp = pytest.importorskip("jax.numpy")
    J = jnp.asarray(A)
    w, V = eigarray.eigh_batched(J, UPLO="U")
    assert seen[-1].__array_interface__["data"][0] == J.unsafe_buffer_pointer()
    check_stack(A, w, V)


def test_host_paths_by_size(monkeypatch, rng):
    """Jacobi up to JACOBI_MAX_N, the tridiagonal kernel up to TRIDIAGONAL_MAX_N,
    LAPACK beyond; each reads the triangle UPLO names."""
    from eigarray.kernels.cpu import jacobi, tridiagonal

    calls = []
    for module, name in [(jacobi, "jacobi_eigh"), (tridiagonal, "tridiagonal_eigh"),
                         (jacobi, "lapack_eigh")]:
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _real=real, _name=name: (calls.append(_name), _real(*a))[1])
    sizes = [jacobi.JACOBI_MAX_N, jacobi.JACOBI_MAX_N + 1, tridiagonal.TRIDIAGONAL_MAX_N,
             tridiagonal.TRIDIAGONAL_MAX_N + 1]
    for n, expected in zip(sizes, ["jacobi_eigh", "tridiagonal_eigh", "tridiagonal_eigh",
                                   "lapack_eigh"], strict=True):
        A = hermitian_stack(rng, (tridiagonal.LANES // 2,), n, np.complex128)
        for UPLO in ["L", "U"]:
            junk = A.copy()
            i, j = np.triu_indices(n, 1) if UPLO == "L" else np.tril_indices(n, -1)
            junk[:, i, j] = 99.0 + 7j
            w, V = eigarray.eigh_batched(junk, UPLO=UPLO)
            assert calls[-1] == expected, (n, calls)
            check_stack(A, w, V)
            assert np.all(eigarray.eigh_batched(junk, UPLO=UPLO).info.converged)
    # Fewer matrices than half the lanes: LAPACK, not a mostly empty block of lanes;
    # and fewer than the threads: one matrix at a time on the BLAS library's threads,
    # not a prange with idle threads.
    import numba

    for n in (jacobi.JACOBI_MAX_N + 1, tridiagonal.TRIDIAGONAL_MAX_N + 1):
        for batch in (1, tridiagonal.LANES // 2 - 1):
            A = hermitian_stack(rng, (batch,), n, np.float64)
            before = len(calls)
            for UPLO in ["L", "U"]:
                junk = A.copy()
                i, j = np.triu_indices(n, 1) if UPLO == "L" else np.tril_indices(n, -1)
                junk[:, i, j] = 99.0
                w, V = eigarray.eigh_batched(junk, UPLO=UPLO)
                check_stack(A, w, V)
            threaded = batch < numba.get_num_threads()
            assert calls[before:] == ([] if threaded else ["lapack_eigh"] * 2), (n, batch)


def test_nonconvergence_is_flagged(rng):
    A = hermitian_stack(rng, (3,), 6, np.float64)
    with pytest.warns(eigarray.ConvergenceWarning, match="matrices did not converge"):
        res = eigarray.eigh_batched(A, max_sweeps=1)
    assert not res.info.converged.any()
    assert np.all(res.info.history["sweeps"] == -1)
    with pytest.raises(eigarray.NoConvergence):
        eigarray.eigh_batched(A, max_sweeps=1, on_nonconvergence="raise")


def test_integer_input_promotes():
    A = np.array([[[2, 1], [1, 2]]])
    w, V = eigarray.eigh_batched(A)
    assert w.dtype == np.float64
    np.testing.assert_allclose(w, [[1.0, 3.0]])


class TestBadInput:
    def test_ndim(self):
        with pytest.raises(ValueError, match="`A` must have at least 2 dimensions"):
            eigarray.eigh_batched(np.ones(3))

    def test_not_square(self):
        with pytest.raises(ValueError, match="`A` must be square in its last two dimensions"):
            eigarray.eigh_batched(np.ones((2, 3, 4)))

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite(self, bad, backend):
        A = np.stack([np.eye(3)] * 2)
        A[1, 0, 0] = bad
        with pytest.raises(ValueError, match="`A` must not contain NaN or Inf"):
            eigarray.eigh_batched(to_backend(A, backend))

    def test_dtype(self):
        with pytest.raises(TypeError, match="`A` must have a real or complex floating"):
            eigarray.eigh_batched(np.array([[["a"]]]))

    def test_arguments(self):
        A = np.eye(3)[None]
        with pytest.raises(ValueError, match="`UPLO` must be one of"):
            eigarray.eigh_batched(A, UPLO="X")
        with pytest.raises(ValueError, match="`sort` must be one of"):
            eigarray.eigh_batched(A, sort="up")
        with pytest.raises(ValueError, match="`max_sweeps`"):
            eigarray.eigh_batched(A, max_sweeps=0)
        with pytest.raises(ValueError, match="`tol` must be positive"):
            eigarray.eigh_batched(A, tol=0.0)
        with pytest.raises(ValueError, match="`tol` must be below 1"):
            eigarray.eigh_batched(np.array([[1.0, 1.5], [1.5, 1.0]]), tol=2.0)
        with pytest.raises(TypeError, match="`eigenvectors` must be True or False"):
            eigarray.eigh_batched(A, eigenvectors="x")


def test_alias():
    assert eigarray.jacobi_eigh is eigarray.eigh_batched


def test_dask_maps_over_batch_chunks(rng):
    da = pytest.importorskip("dask.array")
    A = hermitian_stack(rng, (10,), 4, np.float64)
    D = da.from_array(A, chunks=(3, 4, 4))
    w, V = eigarray.eigh_batched(D)
    assert isinstance(w, da.Array)
    check_stack(A, w.compute(), V.compute())


def test_torch_tensor_that_requires_grad_is_read_detached():
    torch = pytest.importorskip("torch")
    A = torch.tensor([[[2.0, 1.0], [1.0, 2.0]]], dtype=torch.float64, requires_grad=True)
    w, V = eigarray.eigh_batched(A)
    assert isinstance(w, torch.Tensor) and not w.requires_grad and not V.requires_grad
    ref = eigarray.eigh_batched(A.detach().numpy())
    np.testing.assert_array_equal(w.numpy(), ref.eigenvalues)
    np.testing.assert_array_equal(V.numpy(), ref.eigenvectors)
    S = eigarray.sqrtm(A)
    assert not S.requires_grad
    np.testing.assert_allclose((S @ S).numpy(), A.detach().numpy(), rtol=1e-14)


def test_unconverged_count_and_message():
    A = testing.matrix_with_spectrum(np.arange(1.0, 7.0), rng=0)[0]
    A = np.stack([A] * 4)
    with pytest.warns(eigarray.ConvergenceWarning,
                      match=r"4 of 4 matrices did not converge after 1 sweeps; worst "
                            r"relative off-diagonal measure"):
        res = eigarray.eigh_batched(A, max_sweeps=1)
    assert res.info.n_iter == 1
    assert not res.info.converged.any()


def test_failed_ql_iteration_is_reported_as_such(monkeypatch):
    # A matrix whose QL iteration fails (NaN eigenvalues, the kernel's own
    # flag) is reported without the Jacobi sweep count and measure, which
    # that kernel does not have.
    from eigarray import _dispatch

    real = _dispatch._tridiagonal_kernel()

    class Failing:
        TRIDIAGONAL_MAX_N, LANES = real.TRIDIAGONAL_MAX_N, real.LANES

        @staticmethod
        def tridiagonal_eigh(A, w, V, want_vectors):
            real.tridiagonal_eigh(A, w, V, want_vectors)
            w[2] = np.nan

    monkeypatch.setattr(_dispatch, "_tridiagonal_kernel", lambda: Failing)
    A = np.stack([testing.matrix_with_spectrum(np.arange(1.0, 33.0), rng=i)[0]
                  for i in range(real.LANES)])
    with pytest.warns(eigarray.ConvergenceWarning,
                      match=r"^1 of \d+ matrices did not converge: the tridiagonal QL "
                            r"iteration failed, and their eigenvalues are NaN\."):
        res = eigarray.eigh_batched(A)
    assert res.info.converged.tolist() == [i != 2 for i in range(len(A))]
    assert res.info.n_iter == 0 and np.isnan(res.info.residual_norms[2])
    assert np.isnan(res.eigenvalues[2]).all() and np.isfinite(res.eigenvalues[3]).all()
    with pytest.warns(eigarray.ConvergenceWarning, match="tridiagonal QL iteration failed"):
        eigarray.sqrtm(A)

@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_nan_in_the_ignored_triangle_is_ignored(UPLO):
    # As numpy.linalg.eigh: only the triangle UPLO names is read.
    A = np.array([[[2.0, 1.0], [1.0, 3.0]]] * 3)
    B = A.copy()
    B[:, 0, 1] = np.nan if UPLO == "L" else 1.0
    B[:, 1, 0] = np.nan if UPLO == "U" else 1.0
    w, V = eigarray.eigh_batched(B, UPLO=UPLO)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A), rtol=1e-15)
    np.testing.assert_allclose(eigarray.expm(B, UPLO=UPLO), eigarray.expm(A), rtol=1e-15)
    other = "U" if UPLO == "L" else "L"
    with pytest.raises(ValueError, match="must not contain NaN or Inf"):
        eigarray.eigh_batched(B, UPLO=other)
    with pytest.raises(ValueError, match="must not contain NaN or Inf"):
        eigarray.sqrtm(B, UPLO=other)
