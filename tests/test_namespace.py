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
    with pytest.raises(TypeError, match="`rng` must be None, an int or a numpy.random.Generator"):
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
