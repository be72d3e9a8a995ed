"""What operators and their products may be: buffers, devices, layouts, dtypes, shapes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import random_hermitian

import eigarray
from eigarray import _namespace as ns
from eigarray import testing
from eigarray._linalg import check_start


def _symmetric(n, seed=0):
    return random_hermitian(n, np.float64, np.random.default_rng(seed))


class _BufferOp:
    """A duck operator whose products write into one buffer each and return it."""

    def __init__(self, M):
        self.M, self.shape, self.dtype = M, M.shape, M.dtype
        self.out, self.rout = np.empty(M.shape[0]), np.empty(M.shape[1])

    def matvec(self, x):
        return np.matmul(self.M, x, out=self.out)

    def rmatvec(self, y):
        return np.matmul(self.M.T, y, out=self.rout)


# -- 1. products that reuse one output buffer ------------------------------------------------

def test_reused_output_buffer_of_a_callable():
    # The column-by-column matmat stacked references to the one buffer: every
    # column held the last product and eigsh returned wrong pairs flagged
    # converged.
    D = _symmetric(40)
    out = np.empty(40)

    def hvp(v):
        return np.matmul(D, v, out=out)

    op = eigarray.aslinearoperator(hvp, shape=(40, 40))
    X = np.eye(40)[:, :3]
    np.testing.assert_array_equal(op.matmat(X), D[:, :3])
    w, V = eigarray.eigsh(op, k=3, which="LA", rng=0)
    testing.assert_eigenpairs(D, w, V, exact=np.linalg.eigvalsh(D)[-3:])
    assert op.matvec(X[:, 0]) is not out


def test_reused_output_buffers_of_a_duck_operator_and_its_adjoint():
    M = np.random.default_rng(1).standard_normal((30, 20))
    op = eigarray.aslinearoperator(_BufferOp(M))
    np.testing.assert_array_equal(op.matmat(np.eye(20)[:, :4]), M[:, :4])
    np.testing.assert_array_equal(op.rmatmat(np.eye(30)[:, :4]), M.T[:, :4])
    u, s, vh = eigarray.svds(_BufferOp(M), k=3, rng=0)
    testing.assert_singular_triplets(M, u, s, vh,
                                     exact=np.linalg.svd(M, compute_uv=False)[2::-1])


def test_reused_output_buffer_of_a_scipy_operator():
    sla = pytest.importorskip("scipy.sparse.linalg")
    D = _symmetric(40, seed=2)
    out = np.empty(40)
    op = sla.LinearOperator((40, 40), matvec=lambda v: np.matmul(D, v.ravel(), out=out),
                            dtype=np.float64)
    w, V = eigarray.eigsh(op, k=3, which="LA", rng=0)
    testing.assert_eigenpairs(D, w, V, exact=np.linalg.eigvalsh(D)[-3:])


def test_reused_output_buffer_of_a_torch_callable():
    torch = pytest.importorskip("torch")
    D = _symmetric(40, seed=3)
    T = torch.from_numpy(D)
    out = torch.empty(40, dtype=torch.float64)

    def hvp(v):
        return torch.matmul(T, v, out=out)

    op = eigarray.aslinearoperator(hvp, shape=(40, 40))
    w, V = eigarray.eigsh(op, k=3, which="LA", v0=torch.ones(40, dtype=torch.float64), rng=0)
    testing.assert_eigenpairs(D, w.numpy(), V.numpy(), exact=np.linalg.eigvalsh(D)[-3:])


# -- 2. v0 and the device of the operator ----------------------------------------------------

def test_v0_goes_to_the_device_of_the_operator():
    xs = pytest.importorskip("array_api_strict")
    dev = xs.Device("device1")             # stands in for a GPU
    D = _symmetric(20, seed=4)
    exact = np.linalg.eigvalsh(D)[-3:]
    A = xs.asarray(D, device=dev)
    for v0 in (np.ones(20), xs.ones(20, dtype=xs.float64)):      # foreign; default device
        w, V = eigarray.eigsh(A, k=3, which="LA", v0=v0, rng=0)
        assert w.device == dev and V.device == dev
        testing.assert_eigenpairs(D, w, V, exact=exact)
    start = check_start(eigarray.aslinearoperator(A), np.ones(20), 20, name="v0")
    assert start.device == dev


def test_callable_is_bound_to_the_device_of_v0():
    xs = pytest.importorskip("array_api_strict")
    dev = xs.Device("device1")
    D = _symmetric(20, seed=5)
    A = xs.asarray(D, device=dev)
    op = eigarray.aslinearoperator(lambda x: A @ x, shape=(20, 20))
    w, V = eigarray.eigsh(op, k=3, which="LA", v0=xs.ones(20, dtype=xs.float64, device=dev),
                          rng=0)
    assert w.device == dev and V.device == dev
    testing.assert_eigenpairs(D, w, V, exact=np.linalg.eigvalsh(D)[-3:])
    bound = op.bind(ns.array_namespace(A), device=dev)
    assert bound.device == dev and op.device is None


def test_svds_and_subspace_iteration_bind_to_the_device_of_the_start():
    xs = pytest.importorskip("array_api_strict")
    dev = xs.Device("device1")
    D = _symmetric(20, seed=6)
    A = xs.asarray(D, device=dev)

    class Op:
        shape, dtype = (20, 20), np.float64

        def matvec(self, x):
            return A @ x

        def rmatvec(self, x):
            return A @ x

    def host(a):
        return np.asarray(xs.asarray(a, device=xs.Device("CPU_DEVICE")))

    exact = np.linalg.svd(D, compute_uv=False)
    u, s, vh = eigarray.svds(Op(), k=2, v0=xs.ones(20, dtype=xs.float64, device=dev), rng=0)
    assert s.device == dev and u.device == dev
    np.testing.assert_allclose(host(s), exact[:2][::-1], rtol=1e-12)
    X0 = xs.ones((20, 3), dtype=xs.float64, device=dev)
    w, V = eigarray.subspace_iteration(Op(), 2, X0=X0, rng=0)
    assert w.device == dev and V.device == dev
    np.testing.assert_allclose(host(w), np.linalg.eigvalsh(D)[-2:], rtol=1e-10)


# -- 3. results of the products are checked --------------------------------------------------

def _duck(M, **methods):
    class Op:
        shape, dtype = M.shape, M.dtype

        def matvec(self, x):
            return M @ x

    op = Op()
    for name, f in methods.items():
        setattr(op, name, f)
    return op


@pytest.mark.parametrize(("method", "result", "error", "match"), [
    ("rmatvec", lambda M, y: (M.T @ y)[:, None], ValueError,
     r"returned an array of shape \(20, 1\) from `rmatvec`"),
    ("rmatvec", lambda M, y: (M.T @ y)[:-1], ValueError, r"shape \(19,\) from `rmatvec`"),
    ("rmatvec", lambda M, y: list(M.T @ y), TypeError, "`A` returned a list from `rmatvec`"),
    ("rmatvec", lambda M, y: (M.T @ y).astype(complex), TypeError,
     "returned complex values .* from `rmatvec`"),
    ("rmatmat", lambda M, Y: (M.T @ Y).T.copy(), ValueError,
     r"shape \(\d+, 20\) from `rmatmat`"),
    ("rmatmat", lambda M, Y: (M.T @ Y)[:, 0], ValueError, r"shape \(20,\) from `rmatmat`"),
])
def test_adjoint_products_are_checked(method, result, error, match):
    M = np.random.default_rng(6).standard_normal((30, 20))
    A = _duck(M, **{method: lambda v: result(M, v)})
    for solve in (lambda: eigarray.svds(A, k=3, rng=0),
                  lambda: eigarray.randomized_svd(A, 3, random_state=0)):
        with pytest.raises(error, match=match):
            solve()


@pytest.mark.parametrize(("product", "match"), [
    (lambda D, x: list(D @ x), "`A` returned a list from `matvec`"),
    (lambda D, x: None, "`A` returned None from `matvec`"),
])
def test_products_that_are_no_arrays_are_named(product, match):
    D = _symmetric(20, seed=7)
    op = eigarray.aslinearoperator(lambda x: product(D, x), shape=(20, 20))
    with pytest.raises(TypeError, match=match):
        eigarray.eigsh(op, k=3, rng=0)


def test_products_in_another_namespace_are_named():
    # (A NumPy answer is moved into the vectors' namespace, as scipy and
    # hessian_eigsh accept it; an array of a third namespace is refused.)
    torch = pytest.importorskip("torch")
    xs = pytest.importorskip("array_api_strict")
    D = _symmetric(20, seed=8)
    op = eigarray.aslinearoperator(lambda x: xs.asarray(D @ np.asarray(x)), shape=(20, 20))
    with pytest.raises(TypeError, match="returned an? .* from `matvec`.*arrays of torch"):
        eigarray.eigsh(op, k=3, v0=torch.ones(20, dtype=torch.float64), rng=0)


# -- 4. torch layouts and dtypes -------------------------------------------------------------

@pytest.mark.parametrize("make", ["coo_3d", "csr_batched", "coo_1d", "coo_hybrid"])
def test_torch_sparse_tensors_that_are_no_matrices_are_refused(make):
    torch = pytest.importorskip("torch")
    D = torch.from_numpy(_symmetric(6, seed=9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # torch: CSR support "in beta"
        A = {"coo_3d": lambda: torch.stack([D, D]).to_sparse(),
             "csr_batched": lambda: torch.stack([D] * 6).to_sparse_csr(),
             "coo_1d": lambda: D[0].to_sparse(),
             "coo_hybrid": lambda: D.to_sparse(sparse_dim=1)}[make]()
    for solve in (lambda: eigarray.eigsh(A, k=2, rng=0),
                  lambda: eigarray.svds(A, k=2, rng=0),
                  lambda: eigarray.subspace_iteration(A, 2, rng=0)):
        with pytest.raises(ValueError, match="`A` must be a 2-D sparse matrix"):
            solve()


@pytest.mark.parametrize("layout", ["bsr", "bsc", "csc"])
def test_torch_block_and_column_layouts(layout):
    torch = pytest.importorskip("torch")
    M = np.random.default_rng(10).standard_normal((8, 6))
    T = torch.from_numpy(M)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # torch: BSR support "in beta"
        A = {"bsr": lambda: T.to_sparse_bsr((2, 2)), "bsc": lambda: T.to_sparse_bsc((2, 2)),
             "csc": lambda: T.to_sparse_csc()}[layout]()
        exact = np.linalg.svd(M, compute_uv=False)
        u, s, vh = eigarray.svds(A, k=2, rng=0)
        testing.assert_singular_triplets(M, u.numpy(), s.numpy(), vh.numpy(),
                                         exact=exact[1::-1])
        u, s, vh = eigarray.randomized_svd(A, 2, n_iter=10, random_state=0)
        testing.assert_singular_triplets(M, u.numpy(), s.numpy(), vh.numpy(), exact=exact[:2])


def test_torch_complex32_is_solved_in_complex64():
    torch = pytest.importorskip("torch")
    H = random_hermitian(12, np.complex128, np.random.default_rng(11))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # torch: complex32 "experimental"
        A = torch.from_numpy(H).to(torch.complex32)
    A64 = A.to(torch.complex64).numpy()                  # the matrix as read
    for solve in (lambda: eigarray.eigsh(A, k=2, which="LA", rng=0),
                  lambda: eigarray.subspace_iteration(A, 2, rng=0)):
        w, V = solve()
        assert V.dtype == torch.complex64 and w.dtype == torch.float32
        testing.assert_eigenpairs(A64, w.numpy(), V.numpy())


# -- 5. a duck operator with a torch dtype ---------------------------------------------------

class _TorchOp:
    def __init__(self, T):
        import torch

        self.T, self.shape, self.dtype = T, tuple(T.shape), torch.float64

    def matvec(self, x):
        return self.T @ x


def test_duck_operator_with_a_torch_dtype():
    torch = pytest.importorskip("torch")
    D = _symmetric(20, seed=12)
    A = _TorchOp(torch.from_numpy(D))
    w, V = eigarray.eigsh(A, k=2, which="LA", v0=torch.ones(20, dtype=torch.float64), rng=0)
    assert isinstance(w, torch.Tensor) and V.dtype == torch.float64
    testing.assert_eigenpairs(D, w.numpy(), V.numpy(), exact=np.linalg.eigvalsh(D)[-2:])
    with pytest.raises(TypeError, match=r"torch dtype torch.float64.*pass a torch `v0`"):
        eigarray.eigsh(A, k=2, rng=0)
    integral = _TorchOp(torch.from_numpy(D))
    integral.dtype = torch.int64                         # promoted when bound, as documented
    op = eigarray.aslinearoperator(integral)
    assert op.bind(ns.array_namespace(A.T)).dtype == torch.float64


# -- 6. NumPy booleans are no numbers --------------------------------------------------------

def test_numpy_booleans_are_refused_as_tol_and_read_as_flags():
    A, _ = testing.laplacian_2d(6, 6)
    for tol in (np.True_, np.False_):
        with pytest.raises(TypeError, match="`tol` must be a non-negative real number"):
            eigarray.eigsh(A, k=2, tol=tol, rng=0)
    w = eigarray.eigsh(A, k=2, return_eigenvectors=np.False_, rng=0)
    assert w.shape == (2,)


# -- 7. numpy.matrix ------------------------------------------------------------------------

def test_numpy_matrix_is_read_as_an_array():
    D = _symmetric(20, seed=13)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        Dm = np.matrix(D)
    w, V = eigarray.eigsh(Dm, k=3, which="LA", rng=0)
    assert type(w) is np.ndarray and type(V) is np.ndarray
    testing.assert_eigenpairs(D, w, V, exact=np.linalg.eigvalsh(D)[-3:])
    np.testing.assert_array_equal(Dm, D)


# -- 8. smaller items -----------------------------------------------------------------------

def test_unbound_callable_serves_matmat():
    D = _symmetric(6, seed=14)
    op = eigarray.aslinearoperator(lambda x: D @ x, shape=(6, 6))
    np.testing.assert_array_equal(op.matmat(np.eye(6)), D)


def test_shape_must_match_the_shape_of_A():
    sp = pytest.importorskip("scipy.sparse")
    sla = pytest.importorskip("scipy.sparse.linalg")
    D = np.eye(6)
    for A in (D, sp.eye_array(6).tocsr(), sla.aslinearoperator(D),
              eigarray.aslinearoperator(D)):
        with pytest.raises(ValueError, match=r"`shape` must match the shape of `A`, \(6, 6\)"):
            eigarray.aslinearoperator(A, shape=(3, 3))
        assert eigarray.aslinearoperator(A, shape=(6, 6)).shape == (6, 6)
    with pytest.raises(ValueError, match="`shape` must be two non-negative integers"):
        eigarray.aslinearoperator(D, shape="junk")


def test_solvers_count_on_a_bound_copy_of_an_unbound_operator():
    D = _symmetric(20, seed=15)
    op = eigarray.aslinearoperator(lambda x: D @ x, shape=(20, 20))
    result = eigarray.eigsh(op, k=2, rng=0)
    assert result.info.n_matvec > 0 and op.n_matvec == 0
    assert "bound copy" in eigarray.LinearOperator.__doc__


def test_arguments_of_the_products_are_checked():
    torch = pytest.importorskip("torch")
    sp = pytest.importorskip("scipy.sparse")
    D = _symmetric(8, seed=16)
    for A in (D, sp.csr_array(D)):
        op = eigarray.aslinearoperator(A)
        with pytest.raises(TypeError, match="matvec of the 8x8 operator takes an array; got list"):
            op.matvec([1.0] * 8)
        with pytest.raises(TypeError, match="takes arrays of numpy; got a torch.Tensor"):
            op.matvec(torch.ones(8, dtype=torch.float64))
        with pytest.raises(TypeError, match="rmatmat of the 8x8 operator takes arrays of numpy"):
            op.rmatmat(torch.ones((8, 2), dtype=torch.float64))
        np.testing.assert_allclose(op.matvec(np.ones(8)), D.sum(axis=1), rtol=1e-14)


def test_operator_dtype_is_a_numpy_dtype():
    for A in (np.eye(4, dtype=bool), np.eye(4, dtype=np.int32)):
        op = eigarray.aslinearoperator(A)
        assert isinstance(op.dtype, np.dtype) and op.dtype == np.float64
    assert isinstance(eigarray.aslinearoperator(lambda x: x, shape=(3, 3), dtype=int).dtype,
                      np.dtype)


def test_big_endian_scipy_index_arrays():
    sp = pytest.importorskip("scipy.sparse")
    A, exact = testing.laplacian_2d(8, 7)
    B = sp.csr_array(A)
    B.indices, B.indptr = B.indices.astype(">i4"), B.indptr.astype(">i4")
    w, V = eigarray.eigsh(B, k=3, which="LA", rng=0)
    testing.assert_eigenpairs(A, w, V, exact=exact[-3:])
    assert B.indices.dtype == np.dtype(">i4")


def test_user_products_in_the_forms_scipy_accepts():
    # A NumPy answer for JAX vectors (moved to JAX, as hessian_eigsh does),
    # an (n, 1) numpy.matrix for a vector, float32 products of a float64
    # torch operator (cast; torch's matmul refused the mixed dtypes).
    D = _symmetric(30, seed=7)
    exact = np.linalg.eigvalsh(D)[-2:]
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    op = eigarray.aslinearoperator(lambda x: D @ np.asarray(x), shape=(30, 30))
    w, _ = eigarray.eigsh(op, 2, which="LA", v0=jnp.ones(30, dtype=jnp.float64))
    assert ns.is_jax_array(w)
    np.testing.assert_allclose(np.asarray(w), exact, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)   # numpy.matrix
        M = np.asmatrix(D)
    op = eigarray.aslinearoperator(lambda x: M @ np.asarray(x).reshape(-1, 1), shape=(30, 30))
    np.testing.assert_allclose(eigarray.eigsh(op, 2, which="LA")[0], exact, rtol=1e-12)
    torch = pytest.importorskip("torch")
    Dt = torch.asarray(D)
    op = eigarray.aslinearoperator(lambda x: (Dt @ x).float(), shape=(30, 30),
                                   dtype=torch.float64)
    res = eigarray.eigsh(op, 2, which="LA", v0=torch.ones(30, dtype=torch.float64), tol=1e-5)
    assert res.eigenvalues.dtype == torch.float64
    np.testing.assert_allclose(res.eigenvalues.numpy(), exact, rtol=1e-5)


@pytest.mark.parametrize("flag", ["numpy", "torch"])
def test_zero_dimensional_booleans_are_no_tolerance(flag):
    value = np.array(True) if flag == "numpy" else pytest.importorskip("torch").tensor(True)
    with pytest.raises(TypeError, match="`tol`"):
        eigarray.eigsh(np.diag(np.arange(1.0, 11.0)), 2, tol=value)
