"""Namespace layer: dtype rules, DLPack views, host RNG."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import Backend, to_backend

from eigarray import _namespace as ns


@pytest.mark.parametrize(("given", "expected"), [
    ("bool", "float64"), ("int8", "float64"), ("int64", "float64"), ("uint16", "float64"),
    ("float16", "float32"), ("float32", "float32"), ("float64", "float64"),
    ("complex64", "complex64"), ("complex128", "complex128"),
])
def test_working_dtype(backend, given, expected):
    if backend is Backend.ARRAY_API_STRICT and given == "float16":
        pytest.skip("array-api-strict has no float16")
    if backend is Backend.TORCH and given == "uint16":
        pytest.skip("torch's uint16 has no arithmetic")
    x = to_backend(np.zeros(3, dtype=given), backend)
    xp = ns.array_namespace(x)
    assert ns.working_dtype(xp, x.dtype) == getattr(xp, expected)


def test_working_dtype_refuses_strings():
    xp = ns.numpy_namespace()
    with pytest.raises(TypeError, match="`M` must have a real or complex floating"):
        ns.working_dtype(xp, np.dtype("U3"), name="M")


def test_float16_input_is_solved_in_float32():
    import eigarray
    from eigarray import testing

    A, exact = testing.laplacian_2d(8, 7, anisotropy=0.7, dense=True)
    w, V = eigarray.eigsh(A.astype(np.float16), k=3, which="LA", rng=0)
    assert w.dtype == np.float32 and V.dtype == np.float32
    testing.assert_eigenpairs(A.astype(np.float16).astype(np.float32), w, V)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_host_views_are_zero_copy(framework):
    if framework == "torch":
        torch = pytest.importorskip("torch")
        x = torch.arange(6, dtype=torch.float64)
        view = ns.as_numpy_view(x)
        view[0] = 42.0                    # writes through: same memory
        assert float(x[0]) == 42.0
    else:
        jnp = pytest.importorskip("jax.numpy")
        x = jnp.arange(6.0)
        view = ns.as_numpy_view(x)
        assert view.__array_interface__["data"][0] == x.unsafe_buffer_pointer()


def test_torch_requires_grad_has_no_view():
    torch = pytest.importorskip("torch")
    x = torch.ones(3, requires_grad=True)
    assert ns.as_numpy_view(x) is None
    assert ns.as_cupy_view(x) is None


def test_round_trip_keeps_namespace(backend):
    a = np.arange(5.0)
    x = to_backend(a, backend)
    xp = ns.array_namespace(x)
    back = ns.from_host_numpy(ns.to_host_numpy(x), xp, like=x)
    assert type(back) is type(x)
    np.testing.assert_array_equal(ns.to_host_numpy(back), a)


def test_host_rng():
    assert isinstance(ns.host_rng(None), np.random.Generator)
    g = np.random.default_rng(1)
    assert ns.host_rng(g) is g
    assert ns.host_rng(3).integers(100) == np.random.default_rng(3).integers(100)
    with pytest.raises(TypeError, match="`rng` must be None, an int, a numpy.random.Generator"):
        ns.host_rng("seed")


def test_eps():
    xp = ns.numpy_namespace()
    assert ns.eps(xp, np.float32) == np.finfo(np.float32).eps
    assert ns.eps(xp, np.complex128) == np.finfo(np.float64).eps


def test_extended_precision_is_refused_not_demoted():
    import eigarray

    A = np.eye(6, dtype=np.longdouble)
    if np.finfo(np.longdouble).bits <= 64:
        pytest.skip("longdouble is float64 on this platform")
    for call in (lambda: eigarray.eigsh(A, k=2), lambda: eigarray.svds(A, k=2),
                 lambda: eigarray.eigh_batched(A)):
        with pytest.raises(TypeError, match="extended precision is not supported"):
            call()


def test_torch_negative_bit_views_and_autograd_inputs():
    torch = pytest.importorskip("torch")
    import eigarray

    S = np.random.default_rng(0).standard_normal((20, 20))
    S = (S + S.T) / 2
    # ``.conj().imag`` of a complex view is a real view with the negative bit set
    A = torch.complex(torch.zeros(20, 20, dtype=torch.float64), torch.from_numpy(-S)).conj().imag
    assert A.is_neg()
    ref = np.linalg.eigvalsh(S)
    np.testing.assert_allclose(eigarray.eigsh(A, 3, which="LA", rng=0)[0].numpy(), ref[-3:],
                               rtol=1e-12)
    np.testing.assert_allclose(eigarray.eigh_batched(A)[0].numpy(), ref, rtol=1e-12, atol=1e-13)
    # the solvers are not differentiable: their outputs carry no (partial) graph
    G = torch.from_numpy(S).requires_grad_(True)
    for out in (eigarray.svds(G, 2, rng=0), eigarray.randomized_svd(G, 2, random_state=0),
                eigarray.randomized_eigh(G @ G.T, 2, rng=0),
                eigarray.subspace_iteration(G, 2, rng=0)):
        assert not any(x.requires_grad for x in out if x is not None)
    sigma, state = eigarray.spectral_norm(S, n_iter=50, rng=0)      # a NumPy state ...
    sigma_t, _ = eigarray.spectral_norm(torch.from_numpy(S), n_iter=1, state=state)
    sigma_n, _ = eigarray.spectral_norm(S, n_iter=1, state=state)
    np.testing.assert_allclose(float(sigma_t), float(sigma_n), rtol=1e-13)  # ... on torch


def test_big_endian_input_is_computed_natively():
    import eigarray

    rng = np.random.default_rng(0)
    M = rng.standard_normal((12, 12))
    A = M @ M.T + 12 * np.eye(12)
    for order in (">f8", ">f4", ">c16"):
        B = A.astype(order)
        assert ns.working_dtype(ns.numpy_namespace(), B.dtype) == B.dtype.newbyteorder("=")
        ref = np.linalg.eigvalsh(A)
        w, _ = eigarray.eigh_batched(B)
        assert w.dtype.isnative
        np.testing.assert_allclose(w, ref, rtol=1e-5)
        w = eigarray.eigsh(B, k=2, which="LA", rng=0, return_eigenvectors=False)
        np.testing.assert_allclose(w, ref[-2:], rtol=1e-5)
        S = eigarray.sqrtm(B)
        np.testing.assert_allclose(S @ S, A, rtol=1e-4, atol=1e-4)


def test_sparse_torch_tensors_are_refused_by_dense_functions():
    torch = pytest.importorskip("torch")
    import eigarray

    S = torch.eye(3, dtype=torch.float64).to_sparse()
    for fn in (eigarray.eigh_batched, eigarray.sqrtm, eigarray.expm, eigarray.polar):
        with pytest.raises(TypeError, match=r"`A` is a sparse torch tensor.*to_dense"):
            fn(S)


def test_aslinearoperator_checks_its_arguments():
    import eigarray

    f = lambda x: 2 * x  # noqa: E731
    for shape in [(4,), (-1, -1), (2.5, 2.5), (True, 3), "ab", 4]:
        with pytest.raises(ValueError, match="`shape` must be two non-negative integers"):
            eigarray.aslinearoperator(f, shape=shape)
    with pytest.raises(TypeError, match="`xp` must be an array namespace"):
        eigarray.aslinearoperator(f, shape=(4, 4), xp="numpy")
    with pytest.raises(TypeError, match="`dtype` must be a floating"):
        eigarray.aslinearoperator(f, shape=(4, 4), dtype="foo")
    with pytest.raises(TypeError, match="`check_finite` must be True or False"):
        eigarray.aslinearoperator(np.eye(3), check_finite="x")
    op = eigarray.aslinearoperator(np.ones((3, 4)))
    assert op.shape == (3, 4)
    for call, x in ((op.matvec, np.ones(3)), (op.matmat, np.ones(4)),
                    (op.rmatvec, np.ones(4)), (op.rmatmat, np.ones((4, 2)))):
        with pytest.raises(ValueError, match="of the 3x4 operator takes an array of shape"):
            call(x)
    np.testing.assert_array_equal(op.rmatmat(np.ones((3, 2))), np.full((4, 2), 3.0))


def test_negative_seed_is_named():
    with pytest.raises(ValueError, match="`random_state` must be a non-negative seed"):
        ns.host_rng(-1, name="random_state")


def test_solvers_name_a_jax_tracer():
    # Under jax.jit every solver failed deep inside on a value check with a
    # raw tracer error; they now say why up front.  spectral_norm, whose
    # iteration makes no decision on values, still traces.
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import eigarray

    A = jnp.eye(6, dtype=jnp.float32) * 2.0 + 0.1
    calls = {
        "eigh_batched": lambda A: eigarray.eigh_batched(A)[0],
        "sqrtm": eigarray.sqrtm,
        "polar": lambda A: eigarray.polar(A)[0],
        "eigsh": lambda A: eigarray.eigsh(A, k=1, rng=0)[0],
        "svds": lambda A: eigarray.svds(A, k=1, rng=0)[1],
        "subspace_iteration": lambda A: eigarray.subspace_iteration(A, 1, rng=0)[0],
        "randomized_svd": lambda A: eigarray.randomized_svd(A, 2, random_state=0)[1],
    }
    for f in calls.values():
        with pytest.raises(TypeError, match="is a JAX tracer"):
            jax.jit(f)(A)
    sigma = jax.jit(lambda A: eigarray.spectral_norm(A, n_iter=30, rng=0)[0])(A)
    np.testing.assert_allclose(float(sigma), np.linalg.norm(np.asarray(A), 2), rtol=1e-5)


def test_lanczos_solvers_on_dask_arrays():
    # Lazy basis vectors grew one task graph over the whole iteration (a 40 x 40
    # problem had not finished after a minute); the matrix is now persisted and
    # each product computed.
    da = pytest.importorskip("dask.array")
    import eigarray

    D = np.diag(np.arange(1.0, 41.0))
    w, V = eigarray.eigsh(da.from_array(D, chunks=(20, 40)), k=3, rng=0)
    assert isinstance(w, da.Array) and isinstance(V, da.Array)
    np.testing.assert_allclose(np.asarray(w), [38.0, 39.0, 40.0], rtol=1e-13)
    M = np.random.default_rng(0).standard_normal((60, 30))
    u, s, vh = eigarray.svds(da.from_array(M, chunks=(20, 30)), k=3, rng=0)
    assert isinstance(u, da.Array) and isinstance(vh, da.Array)
    np.testing.assert_allclose(np.asarray(s), np.linalg.svd(M, compute_uv=False)[2::-1],
                               rtol=1e-12)
    with pytest.raises(ValueError, match="`A` must not contain NaN or Inf"):
        eigarray.eigsh(da.from_array(np.full((5, 5), np.nan), chunks=5), k=1)
