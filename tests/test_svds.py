"""Contract battery of svds: spectra, LAPACK ratios, namespaces, solvers, errors."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from conftest import Backend, is_backend_array, run_script_ok, to_backend

import eigarray
from eigarray import testing

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
SOLVERS = ["lanczos", "randomized", "power"]


def needs_solver(solver):
    """Skip when the module behind ``solver`` is not written yet."""
    module = {"randomized": "eigarray._randomized", "power": "eigarray._power"}.get(solver)
    if module is None:
        return
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet")
    if not hasattr(importlib.import_module(module), "svd_impl"):
        pytest.skip(f"{module}.svd_impl does not exist yet")


def spectrum_matrix(m, n, sig, dtype=np.float64, seed=7):
    cplx = np.issubdtype(dtype, np.complexfloating)
    A, _, _ = testing.matrix_with_singular_values(m, n, sig, rng=seed, complex=cplx)
    return A.astype(dtype)


def reference(A, k, which):
    s = np.linalg.svd(np.asarray(A, dtype=np.result_type(A.dtype, np.float64)),
                      compute_uv=False)
    return np.sort(s[:k] if which == "LM" else s[-k:])


# --- the contract battery, every solver --------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_backend_and_dtype(backend, solver, dtype):
    needs_solver(solver)
    if backend is Backend.JAX and (dtype != np.float64 or solver != "lanczos"):
        pytest.skip("JAX compiles every small op once per shape and dtype (~0.1 s each on "
                    "CPU): one case keeps the file fast; the other solvers test JAX themselves")
    # Exactly rank 12: the randomized range finder is exact; a gap after the
    # 5th value lets every method converge in a few passes.
    sig = np.r_[[10.0, 8.0, 6.5, 5.0, 4.0], np.linspace(1.0, 0.5, 7)]
    A = spectrum_matrix(70, 45, sig, dtype)
    Ab = to_backend(A, backend)
    u, s, vh = eigarray.svds(Ab, k=5, solver=solver, rng=1)
    assert all(is_backend_array(x, backend) for x in (u, s, vh))
    assert tuple(u.shape) == (70, 5) and tuple(s.shape) == (5,) and tuple(vh.shape) == (5, 45)
    assert np.all(np.diff(testing._host(s)) > 0)                     # ascending, as scipy
    testing.assert_singular_triplets(A, u, s, vh, exact=sig[:5])
    np.testing.assert_array_equal(testing._host(Ab), A)              # input untouched


@pytest.mark.parametrize("solver", SOLVERS)
def test_wide_matrix_and_agreement_with_scipy(solver):
    needs_solver(solver)
    import scipy.sparse.linalg as sla

    sig = np.r_[[9.0, 7.0, 5.0, 3.0], np.geomspace(1.0, 1e-3, 26)]
    A = spectrum_matrix(30, 80, sig)
    u, s, vh = eigarray.svds(A, k=4, solver=solver, rng=0)
    u_ref, s_ref, vh_ref = sla.svds(A, k=4, rng=0)
    testing.assert_singular_triplets(A, u, s, vh, exact=np.sort(s_ref))
    testing.assert_singular_triplets(A, u, s, vh, exact=reference(A, 4, "LM"))
    # Same singular vectors as scipy up to sign: |u_refᴴ u| is the identity to
    # rounding (the gaps between the four values are ||A|| / 5, so the vectors
    # are as well determined as the values).
    eps = np.finfo(np.float64).eps
    overlap = np.abs(u_ref.T @ u) - np.eye(4)
    assert np.abs(overlap).max() < testing.THRESHOLD * 80 * eps * 5


@pytest.mark.parametrize("solver", ["randomized", "power"])
def test_delegated_solvers_allow_k_equal_min_dimension(solver):
    needs_solver(solver)
    sig = np.array([4.0, 3.0, 2.0, 1.0, 0.5])
    A = spectrum_matrix(20, 5, sig)
    u, s, vh = eigarray.svds(A, k=5, solver=solver, rng=0)
    testing.assert_singular_triplets(A, u, s, vh, exact=sig)
    with pytest.raises(ValueError, match=r"`which` must be 'LM' for solver="):
        eigarray.svds(A, k=2, which="SM", solver=solver)


# --- the Lanczos solver: spectra ----------------------------------------------------


SPECTRA = {
    "geometric": np.geomspace(1.0, 1e-8, 60),
    "flat_tail": np.r_[np.geomspace(1.0, 0.1, 8), np.full(52, 1e-3)],
    "low_rank": np.geomspace(1.0, 0.2, 9),                     # rank 9 of 100 x 60
    "rank_deficient": np.r_[np.linspace(2.0, 1.0, 50), np.zeros(10)],
}


@pytest.mark.parametrize("kind", list(SPECTRA))
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_known_singular_values(kind, dtype):
    sig = SPECTRA[kind]
    A = spectrum_matrix(100, 60, sig, dtype)
    res = eigarray.svds(A, k=6, rng=0)
    testing.assert_singular_triplets(A, *res, exact=np.sort(sig)[-6:])
    assert res.info.all_converged


@pytest.mark.parametrize("ncv", [None, 27], ids=["whole_space", "restarted"])
def test_rank_deficient_smallest_are_zeros(ncv):
    # A cluster of exact zeros: the Krylov space becomes invariant, the random
    # restart vectors of the breakdowns carry the null space.  The default ncv
    # is min(m, n) here: the basis must fill the whole space (a random vector
    # keeps only ~sqrt(8/60) of its norm against 52 basis vectors).
    sig = np.r_[np.linspace(2.0, 1.0, 50), np.zeros(10)]
    A = spectrum_matrix(100, 60, sig)
    u, s, vh = eigarray.svds(A, k=3, which="SM", ncv=ncv, rng=0)
    testing.assert_singular_triplets(A, u, s, vh, exact=np.zeros(3))


def test_tiny_singular_values_keep_their_accuracy():
    # sigma_min = 1e-10 ||A||.  The bidiagonalisation works with A and Aᴴ and
    # finds them to eps ||A||; the eigenvalues of AᴴA carry an error of
    # eps ||A||^2, which swamps sigma^2 = 1e-20: their square roots are wrong
    # in the first digit.
    tiny = np.array([3e-10, 2e-10, 1e-10])
    sig = np.r_[np.linspace(1.0, 0.5, 57), tiny]
    A = spectrum_matrix(180, 60, sig)
    u, s, vh = eigarray.svds(A, k=3, which="SM", rng=0)
    testing.assert_singular_triplets(A, u, s, vh, exact=tiny)
    assert np.max(np.abs(s - np.sort(tiny)) / np.sort(tiny)) < 1e-5
    gram = np.sqrt(np.abs(np.linalg.eigvalsh(A.T @ A)[:3]))
    assert np.min(np.abs(gram - np.sort(tiny)) / np.sort(tiny)) > 1.0


@pytest.mark.parametrize("shape", [(150, 60), (60, 150)], ids=["tall", "wide"])
def test_smallest_well_separated(shape):
    sig = np.linspace(1.0, 0.1, 60)
    A = spectrum_matrix(*shape, sig, dtype=np.complex128)
    res = eigarray.svds(A, k=4, which="SM", rng=0)
    testing.assert_singular_triplets(A, *res, exact=sig[-4:])
    assert res.info.all_converged


def test_smallest_of_a_cluster_near_zero_warns_or_raises():
    # Geometric decay to 1e-12: the small values are a cluster at zero on the
    # scale of AᴴA, which ordinary Ritz values resolve only very slowly.
    sig = np.geomspace(1.0, 1e-12, 40)
    A = spectrum_matrix(80, 40, sig)
    with pytest.warns(eigarray.ConvergenceWarning, match="singular triplets did not converge"):
        res = eigarray.svds(A, k=3, which="SM", ncv=20, maxiter=20, rng=0)
    assert not res.info.all_converged and res.S.shape == (3,)
    assert np.all(res.info.residual_norms > 1e3 * np.finfo(float).eps)   # flagged honestly
    with pytest.raises(eigarray.NoConvergence) as err:
        eigarray.svds(A, k=3, which="SM", ncv=20, maxiter=20, rng=0, on_nonconvergence="raise")
    assert isinstance(err.value.result, eigarray.SVDResult)
    assert not err.value.result.info.all_converged


# --- inputs -------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "dtype", "shape"),
                         [("csr", np.float32, (300, 200)), ("csc", np.float64, (300, 200)),
                          ("coo", np.complex128, (200, 300))],
                         ids=["csr-float32", "csc-float64", "coo-complex128-wide"])
def test_scipy_sparse(fmt, dtype, shape, rng):
    import scipy.sparse as sp

    A = sp.random_array(shape, density=0.05, rng=rng, format="csr")
    if np.issubdtype(dtype, np.complexfloating):
        A = A + 1j * sp.random_array(shape, density=0.05, rng=rng, format="csr")
    A = A.astype(dtype).asformat(fmt)
    for which in ("LM", "SM"):
        u, s, vh = eigarray.svds(A, k=4, which=which, rng=0)
        assert isinstance(s, np.ndarray)
        testing.assert_singular_triplets(A, u, s, vh, exact=reference(A.toarray(), 4, which))


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_torch_sparse_tensor(rng):
    torch = pytest.importorskip("torch")
    import scipy.sparse as sp

    A = sp.random_array((120, 90), density=0.1, rng=rng, format="coo")
    T = torch.sparse_coo_tensor(np.vstack([A.row, A.col]), A.data, A.shape,
                                check_invariants=True).coalesce()
    for t in (T, T.to_sparse_csr()):
        u, s, vh = eigarray.svds(t, k=3, rng=0)
        assert isinstance(s, torch.Tensor)
        testing.assert_singular_triplets(A, u, s, vh, exact=reference(A.toarray(), 3, "LM"))


def test_operator_kinds(rng):
    import scipy.sparse.linalg as sla

    A = spectrum_matrix(70, 50, np.geomspace(1.0, 1e-2, 50))
    exact = reference(A, 3, "LM")

    class Duck:
        shape = (70, 50)
        dtype = np.dtype(np.float64)

        def matvec(self, x):
            return A @ x

        def rmatmat(self, Y):
            return A.T @ Y

    for op in (sla.aslinearoperator(A), Duck(), eigarray.aslinearoperator(A)):
        u, s, vh = eigarray.svds(op, k=3, rng=0)
        testing.assert_singular_triplets(A, u, s, vh, exact=exact)


_DASK_OPERATORS = """
import dask, dask.array as da, numpy as np, eigarray
from eigarray import testing
dask.config.set(scheduler="{scheduler}")
sig = np.geomspace(1.0, 1e-2, 40)
A, _, _ = testing.matrix_with_singular_values(200, 40, sig, rng=0)
Ad = da.from_array(A, chunks=(100, 40))

class Duck:
    shape, dtype = A.shape, A.dtype

    def matvec(self, x):
        return Ad @ x

    def rmatvec(self, y):
        return Ad.T @ y

for op, v0 in [(Duck(), da.ones(40, chunks=20)), (eigarray.aslinearoperator(Ad), None)]:
    res = eigarray.svds(op, k=3, v0=v0, rng=0)
    assert all(isinstance(x, da.Array) for x in res) and res.info.all_converged
    testing.assert_singular_triplets(A, *(np.asarray(x) for x in res), exact=sig[2::-1])
print("ok")
"""


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_operators_bound_to_dask_do_not_hang(scheduler):
    # A duck-typed operator with Dask products bound to Dask by a Dask v0, and
    # an operator over a Dask array: the bidiagonalisation ran lazily, each
    # host read computing the whole iteration so far (76 s for 46 products
    # of a 60 x 20 matrix, and no end in sight at 200 x 40).  It now runs on
    # the host, each product computed once.  In a subprocess, under a timeout.
    pytest.importorskip("dask.array")
    run_script_ok(_DASK_OPERATORS.format(scheduler=scheduler))


def test_operator_without_adjoint_is_refused():
    A = np.eye(8, 6)
    op = eigarray.aslinearoperator(lambda x: A @ x, shape=(8, 6))
    with pytest.raises(TypeError, match="`A` must provide its adjoint product"):
        eigarray.svds(op, k=2)

    class NoAdjoint:
        shape = (8, 6)
        dtype = np.dtype(np.float64)

        def matvec(self, x):
            return A @ x

    with pytest.raises(TypeError, match="`A` must provide its adjoint"):
        eigarray.svds(NoAdjoint(), k=2)


def test_scipy_operator_without_adjoint_is_refused():
    # scipy's LinearOperator always has an ``rmatvec`` method, which raises
    # when no adjoint was given: that must read as no adjoint.
    import scipy.sparse.linalg as sla

    A = np.eye(8, 6)
    op = sla.LinearOperator((8, 6), matvec=lambda x: A @ x, dtype=np.float64)
    for solver in ("lanczos", "power", "randomized"):
        with pytest.raises(TypeError, match="`A` must provide its adjoint product"):
            eigarray.svds(op, k=2, solver=solver)
    with pytest.raises(TypeError, match="adjoint product"):
        eigarray.randomized_svd(op, 2)
    with pytest.raises(TypeError, match="adjoint product"):
        eigarray.spectral_norm(op)
    with_adjoint = sla.LinearOperator((8, 6), matvec=lambda x: A @ x,
                                      rmatvec=lambda y: A.T @ y, dtype=np.float64)
    np.testing.assert_allclose(eigarray.svds(with_adjoint, k=2, rng=0)[1], [1.0, 1.0])


@pytest.mark.parametrize("dtype, scales", [(np.float64, [1e-200, 1e-160, 1e155, 1e200]),
                                           (np.float32, [1e-22, 1e20])])
@pytest.mark.parametrize("which", ["LM", "SM"])
def test_matrices_near_the_ends_of_the_exponent_range(dtype, scales, which):
    # Squares of the entries overflow or underflow: the iteration runs on a
    # power-of-two scaling of A, and values and residuals are scaled back.
    sigma = np.linspace(1.0, 0.1, 50)
    A0 = testing.matrix_with_singular_values(80, 50, sigma, rng=0)[0]
    exact = sigma[:3] if which == "LM" else sigma[-3:][::-1]
    for c in scales:
        A = (A0 * c).astype(dtype)
        res = eigarray.svds(A, k=3, which=which, rng=0)
        assert res.info.converged.all()
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(np.sort(res.S) / c, np.sort(exact), rtol=100 * 50 * eps)
        assert np.all(res.info.residual_norms / c < 30 * 80 * eps)
        assert testing.svd_residual_ratio(A, res.U, res.S, res.Vh) < 30


def test_integer_input_promotes(rng):
    A = rng.integers(-5, 5, (40, 30))
    u, s, vh = eigarray.svds(A, k=3, rng=0)
    assert s.dtype == np.float64
    testing.assert_singular_triplets(A.astype(float), u, s, vh,
                                     exact=reference(A.astype(float), 3, "LM"))


def test_numpy_bool_for_return_singular_vectors():
    A = spectrum_matrix(20, 10, np.linspace(1.0, 2.0, 10))
    s = eigarray.svds(A, k=2, rng=0, return_singular_vectors=np.False_)
    np.testing.assert_allclose(np.sort(s), [1.888888888888889, 2.0], rtol=1e-12)
    with pytest.raises(ValueError, match="`return_singular_vectors` must be one of"):
        eigarray.svds(A, k=2, return_singular_vectors=1)


# --- return convention, info, reproducibility ---------------------------------------


def test_return_singular_vectors_variants():
    from scipy.sparse.linalg import svds as scipy_svds

    sig = np.geomspace(1.0, 1e-2, 30)
    wide = spectrum_matrix(30, 50, sig)
    tall = spectrum_matrix(50, 30, sig)
    s = eigarray.svds(tall, k=3, return_singular_vectors=False, rng=0)
    assert not isinstance(s, tuple)
    np.testing.assert_array_equal(s, eigarray.svds(tall, k=3, rng=0).S)
    full = {"wide": eigarray.svds(wide, k=3, rng=0), "tall": eigarray.svds(tall, k=3, rng=0)}
    for name, A in [("wide", wide), ("tall", tall)]:
        # scipy's code (not its docstring) drops the other side whatever the shape
        u_ref, _, vh_ref = scipy_svds(A, k=3, return_singular_vectors="u")
        u, s, vh = eigarray.svds(A, k=3, return_singular_vectors="u", rng=0)
        assert vh is None and vh_ref is None and u.shape == u_ref.shape
        np.testing.assert_array_equal(u, full[name].U)
        np.testing.assert_array_equal(s, full[name].S)
        u_ref, _, vh_ref = scipy_svds(A, k=3, return_singular_vectors="vh")
        u, s, vh = eigarray.svds(A, k=3, return_singular_vectors="vh", rng=0)
        assert u is None and u_ref is None and vh.shape == vh_ref.shape
        np.testing.assert_array_equal(vh, full[name].Vh)
    testing.assert_singular_triplets(wide, *full["wide"], exact=sig[:3])
    with pytest.raises(ValueError, match="`return_singular_vectors` must be one of"):
        eigarray.svds(tall, k=3, return_singular_vectors="both")


def test_info_true_residuals_history_and_callback():
    A = spectrum_matrix(120, 80, np.linspace(2.0, 1.0, 80))
    seen = []
    res = eigarray.svds(A, k=4, ncv=12, rng=0, callback=seen.append)
    u, s, vh = res
    true = np.maximum(np.linalg.norm(A @ vh.T - u * s, axis=0),
                      np.linalg.norm(A.T @ u - vh.T * s, axis=0))
    np.testing.assert_allclose(res.info.residual_norms, true, rtol=1e-6, atol=1e-13)
    assert res.info.converged.shape == (4,) and res.info.all_converged
    hist = res.info.history
    assert res.info.n_iter > 1
    assert hist["ritz_values"].shape == (res.info.n_iter, 4)
    assert hist["residual_estimates"].shape == (res.info.n_iter, 4)
    assert np.all(np.diff(hist["n_matvec"]) > 0)
    assert len(seen) == res.info.n_iter and isinstance(seen[-1], eigarray.LanczosState)
    assert res.info.n_matvec == hist["n_matvec"][-1] + 8    # + the residual check, A and Aᴴ


def test_callback_can_stop():
    A = spectrum_matrix(120, 80, np.linspace(2.0, 1.0, 80))
    with pytest.warns(eigarray.ConvergenceWarning):
        res = eigarray.svds(A, k=4, ncv=10, rng=0, callback=lambda state: True)
    assert res.info.n_iter == 1


def test_reproducible_with_rng_and_v0():
    A = spectrum_matrix(90, 50, np.geomspace(1.0, 1e-3, 50))
    a = eigarray.svds(A, k=3, rng=5)
    b = eigarray.svds(A, k=3, rng=5)
    assert a.info.n_matvec == b.info.n_matvec
    np.testing.assert_array_equal(a.S, b.S)
    np.testing.assert_array_equal(a.U, b.U)
    for shape in ((90, 50), (50, 90)):
        B = A if shape == (90, 50) else A.T.copy()
        v0 = np.ones(50)
        u, s, vh = eigarray.svds(B, k=3, v0=v0)
        np.testing.assert_array_equal(v0, np.ones(50))
        testing.assert_singular_triplets(B, u, s, vh, exact=reference(A, 3, "LM"))


def test_no_warning_when_converged():
    A = spectrum_matrix(60, 40, np.geomspace(1.0, 1e-3, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = eigarray.svds(A, k=3, rng=0)
    assert res.info.all_converged


# --- the flags are checked --------------------------------------------------------


def _duck(M, rmatvec):
    """An operator with ``M``'s product and the given adjoint product."""

    class Duck:
        shape = M.shape
        dtype = np.dtype(np.float64)

        def matvec(self, x):
            return M @ x

        def matmat(self, X):
            return M @ X

    Duck.rmatvec = staticmethod(rmatvec)
    return Duck()


@pytest.mark.parametrize("shape", [(40, 25), (25, 40)], ids=["tall", "wide"])
@pytest.mark.parametrize("adjoint", ["twice", "other_matrix"])
def test_an_adjoint_product_that_is_not_the_adjoint_is_not_converged(shape, adjoint):
    # The residual estimates |β p_last| assume that rmatvec is the adjoint of
    # matvec; the true residuals, computed at the end, say otherwise.
    rng = np.random.default_rng(0)
    M, M2 = rng.standard_normal(shape), rng.standard_normal(shape)
    rmatvec = {"twice": lambda y: 2.0 * (M.T @ y), "other_matrix": lambda y: M2.T @ y}[adjoint]
    with pytest.warns(eigarray.ConvergenceWarning, match="3 of 3 singular triplets"):
        res = eigarray.svds(_duck(M, rmatvec), k=3, rng=0)
    assert not res.info.converged.any()
    assert np.all(res.info.residual_norms > 0.1)
    with pytest.warns(eigarray.ConvergenceWarning, match="3 of 3 singular triplets"):
        eigarray.svds(_duck(M, rmatvec), k=3, rng=0, return_singular_vectors=False)
    with warnings.catch_warnings():                    # the true adjoint: no warning
        warnings.simplefilter("error")
        res = eigarray.svds(_duck(M, lambda y: M.T @ y), k=3, rng=0)
    testing.assert_singular_triplets(M, *res, exact=reference(M, 3, "LM"))
    assert res.info.all_converged


@pytest.mark.parametrize("tol", [0.0, 1e-10])
@pytest.mark.parametrize("which", ["LM", "SM"])
@pytest.mark.parametrize("shape", [(1500, 700), (700, 1500)], ids=["tall", "wide"])
def test_products_less_accurate_than_tol_stop_at_their_error(shape, which, tol):
    # Float32 products of a float64 operator: at tol 0 the iteration ran to
    # maxiter (448,944 products, 136 s, on a 3,000 x 1,500 sparse matrix).
    # The backward step's Gram-Schmidt pass measures their error, and the
    # run stops once the estimates reach it, every triplet flagged.
    sp = pytest.importorskip("scipy.sparse")
    A = sp.random(*shape, density=0.02, random_state=0, format="csr")
    A32 = A.astype(np.float32)
    op = _duck(A, lambda y: (A32.T @ y.astype(np.float32)).astype(np.float64))
    type(op).matvec = lambda self, x: (A32 @ x.astype(np.float32)).astype(np.float64)
    with pytest.warns(eigarray.ConvergenceWarning, match="depart from those of a matrix"):
        res = eigarray.svds(op, k=4, which=which, tol=tol, rng=0, maxiter=3000)
    info = res.info
    assert info.n_matvec < 3000 and not info.converged.any()
    assert info.history["product_error"].shape == (info.n_iter,)
    assert 1e3 * np.finfo(np.float64).eps < info.history["product_error"][-1] < 1e-6
    sv = np.linalg.svd(A.toarray(), compute_uv=False)
    ref = sv[:4] if which == "LM" else sv[-4:]
    np.testing.assert_allclose(np.sort(res.S), np.sort(ref), rtol=0,
                               atol=30 * np.finfo(np.float32).eps * sv[0])
    # An exact adjoint records none.
    res = eigarray.svds(A, k=4, which=which, tol=tol, rng=0)
    assert res.info.converged.all() and np.isnan(res.info.history["product_error"]).all()


def test_a_restart_that_keeps_no_left_vector():
    # ncv = k + 1 on a flat spectrum: a restart could keep no vector at all,
    # and the drift check of the (empty) restarted rows raised
    # "need at least one array to stack".
    rng = np.random.default_rng(2)
    n = 20
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    s = rng.uniform(1, 2, n)
    A = (U * s) @ V.T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
        res = eigarray.svds(A, k=16, ncv=17, tol=1e-6, rng=2)
    # No row is left for the check for values the small basis never
    # reached: every triplet is flagged; each value lies within its
    # residual norm of a singular value.
    assert not res.info.converged.any()
    gap = np.min(np.abs(res.S[:, None] - s[None, :]), axis=1)
    assert np.all(gap <= res.info.residual_norms + 1e-12)


@pytest.mark.parametrize("which", ["LM", "SM"])
@pytest.mark.parametrize("n,k,extra,seed", [(40, 32, 3, 5), (60, 45, 3, 0), (40, 20, 2, 1),
                                            (60, 52, 5, 3)])
def test_small_basis_never_returns_a_wrong_set_flagged_converged(n, k, extra, seed, which):
    # A basis a few rows larger than k locked triplets before a wanted value
    # had been seen, and the check's one cycle of a few rows, whose Ritz
    # values stay far inside the spectrum, did not find it: 1.2541 came back
    # in place of 1.3648, flagged converged.  The check of a small basis now
    # goes on until its nearest contenders converge, and flags every
    # triplet when it cannot.
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    s = np.sort(rng.uniform(1, 2, n))
    A = (U * s) @ V.T
    tol = 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
        res = eigarray.svds(A, k, which=which, ncv=k + extra, tol=tol, rng=seed)
    if res.info.all_converged:
        want = s[-k:] if which == "LM" else s[:k]
        np.testing.assert_allclose(res.S, want, rtol=0, atol=4 * tol * s[-1])


def test_small_basis_sm_on_a_rank_deficient_matrix():
    # Four nonzero singular values and 26 zeros, 'SM', ncv = k + 2: the
    # check's cycle of two rows never came near zero and 0.5 came back
    # among the smallest, flagged converged.
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((30, 30)))[0][:, :4]
    V = np.linalg.qr(rng.standard_normal((30, 30)))[0][:, :4]
    A = (U * [2.0, 1.5, 1.0, 0.5]) @ V.T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", eigarray.ConvergenceWarning)
        res = eigarray.svds(A, k=5, ncv=7, which="SM", rng=0)
    assert not (res.info.converged & (res.S > 1e-8)).any()


def test_products_a_little_less_accurate_stop_on_a_plateau():
    # Products whose inputs are rounded to float16, in a float32 solve at
    # tol 0: an error of a few hundred eps(float32) ||A||, under the 1000
    # eps at which the run stops outright; it ran to maxiter.  Past 30 eps,
    # a plateau of the residual estimates stops it.
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    M = ((Q * np.linspace(1.0, 2.0, 300)) @ Q.T).astype(np.float32)

    class Rounded:
        shape, dtype = M.shape, np.dtype(np.float32)

        def matvec(self, x):
            return M @ x.astype(np.float16).astype(np.float32)

        def rmatvec(self, y):
            return M.T @ y.astype(np.float16).astype(np.float32)

    with pytest.warns(eigarray.ConvergenceWarning, match="depart from those of a matrix"):
        res = eigarray.svds(Rounded(), k=4, tol=0, rng=0, maxiter=100)
    info = res.info
    assert info.n_iter < 50 and not info.converged.all()
    eps32 = np.finfo(np.float32).eps
    assert 30 * eps32 < info.history["product_error"][-1] < 1e3 * eps32
    np.testing.assert_allclose(res.S, np.linspace(1.0, 2.0, 300)[-4:], rtol=0,
                               atol=np.finfo(np.float16).eps * 2)


@pytest.mark.parametrize("shape", [(40, 25), (25, 40)], ids=["tall", "wide"])
def test_a_nan_product_is_refused(shape):
    # Before, a NaN adjoint product gave NaN residuals flagged converged (tall)
    # or numpy's LinAlgError from the projected SVD (wide).
    M = np.random.default_rng(0).standard_normal(shape)
    op = _duck(M, lambda y: np.full(shape[1], np.nan))
    with pytest.raises(ValueError, match="`A` returned NaN or Inf for a finite vector"):
        eigarray.svds(op, k=3, rng=0)


def test_a_nan_residual_is_not_converged():
    # The iteration applies matvec and rmatvec; the final residuals the block
    # product, which here is NaN: such a triplet is not passed off as converged.
    A = spectrum_matrix(40, 25, np.linspace(2.0, 1.0, 25))
    op = _duck(A, lambda y: A.T @ y)
    type(op).matmat = lambda self, X: np.full((40, X.shape[1]), np.nan)
    with pytest.warns(eigarray.ConvergenceWarning, match="worst residual norm nan"):
        res = eigarray.svds(op, k=3, rng=0)
    assert not res.info.converged.any() and np.all(np.isnan(res.info.residual_norms))


SMALL_NCV_SIGMA = np.r_[[5.0, 5, 5, 3, 3], np.linspace(2.0, 0.5, 45)]


def test_smallest_with_a_small_ncv_keeps_the_bases_orthonormal():
    # ncv = k + 3 keeps 7 of 8 vectors per restart: after ~300 restarts the
    # basis on A's left side had drifted from orthonormality (Gram-Schmidt
    # only keeps a new vector as orthogonal as the basis already is), the
    # returned u collapsed and garbage came back, partly flagged converged.
    A = spectrum_matrix(50, 80, SMALL_NCV_SIGMA)
    res = eigarray.svds(A, k=5, which="SM", ncv=8, rng=0)
    testing.assert_singular_triplets(A, *res, exact=SMALL_NCV_SIGMA[-5:])
    assert res.info.all_converged


def test_a_basis_that_lost_orthogonality_is_never_flagged(monkeypatch):
    # Without the re-orthonormalisation of restarted rows, the run above
    # loses orthogonality; none of what it returns may be flagged converged.
    import eigarray._svds as svds_module

    monkeypatch.setattr(svds_module, "_reorthonormalize", lambda xp, B, *args, **kw: B)
    A = spectrum_matrix(50, 80, SMALL_NCV_SIGMA)
    with pytest.warns(eigarray.ConvergenceWarning, match="5 of 5 singular triplets"):
        res = eigarray.svds(A, k=5, which="SM", ncv=8, rng=0)
    assert testing.orthogonality_ratio(res.U) > 1e6 and not res.info.converged.any()


def test_vectors_that_are_not_orthonormal_clear_the_flags(monkeypatch):
    # Residuals within tol do not make a triplet converged when the vectors
    # are not orthonormal: here every restart stretches the kept rows by
    # 1e-6, which leaves the residuals below tol = 1e-4 but U and V 1e-5
    # away from orthonormal.
    import eigarray._svds as svds_module
    from eigarray._linalg import set_rows

    def stretch(xp, B, start, stop, **kw):
        return set_rows(B, slice(start, stop), B[start:stop, ...] * (1.0 + 1e-6))

    monkeypatch.setattr(svds_module, "_reorthonormalize", stretch)
    A = spectrum_matrix(120, 80, np.linspace(2.0, 1.0, 80))
    with pytest.warns(eigarray.ConvergenceWarning, match="4 of 4 singular triplets"):
        res = eigarray.svds(A, k=4, ncv=12, rng=0, tol=1e-4)
    assert np.all(res.info.residual_norms <= 2 * 1e-4 * 2.0)     # within the tolerance
    assert not res.info.converged.any()


@pytest.mark.parametrize("c", [1e160, 1e-170])
@pytest.mark.parametrize("which", ["LM", "SM"])
def test_start_vector_in_the_null_space_at_the_ends_of_the_exponent_range(c, which):
    # v0 is the exact null vector: the first product is zero and must not fix
    # the overflow/underflow scale (it stayed 1: wrong values, flagged
    # converged, with residual norms inf or 0).
    n = 60
    d = np.r_[np.linspace(1.0, 3.0, n - 1), 0.0]
    v0 = np.zeros(n)
    v0[-1] = 1.0
    res = eigarray.svds(np.diag(d * c), k=3, which=which, v0=v0, rng=0)
    exact = np.sort(d)[-3:] if which == "LM" else np.sort(d)[:3]
    eps = np.finfo(np.float64).eps
    assert res.info.all_converged
    assert np.max(np.abs(res.S / c - exact)) < 30 * n * eps * 3.0
    assert np.all(res.info.residual_norms / c < 30 * n * eps * 3.0)
    assert testing.svd_residual_ratio(np.diag(d), res.U, res.S / c, res.Vh) < 30


def test_randomized_flags_come_from_the_true_residuals():
    # A flat spectrum: seven power passes leave residuals near 0.04 ||A||,
    # far from the accuracy standard at tol=0, or from tol=1e-3.
    sig = np.linspace(5.0, 1.0, 120)
    A = spectrum_matrix(300, 120, sig)
    for tol in (0, 1e-3):
        with pytest.warns(eigarray.ConvergenceWarning, match="3 of 3 singular triplets"):
            res = eigarray.svds(A, 3, solver="randomized", tol=tol, rng=0)
        assert not res.info.converged.any()
        assert np.all(res.info.residual_norms > 0.01 * sig[0])
    with pytest.raises(eigarray.NoConvergence):
        eigarray.svds(A, 3, solver="randomized", rng=0, on_nonconvergence="raise")
    # tol sets the line: 0.1 ||A|| is met.
    res = eigarray.svds(A, 3, solver="randomized", tol=0.1, rng=0)
    assert res.info.all_converged
    # An exactly low-rank matrix: the range is found exactly, flagged at tol=0.
    low = spectrum_matrix(300, 120, sig[:8])
    res = eigarray.svds(low, 3, solver="randomized", rng=0)
    assert res.info.all_converged
    testing.assert_singular_triplets(low, *res, exact=sig[:3])


# --- repeated singular values -------------------------------------------------------


def _slow(n, top):
    """A slowly decaying spectrum of ``n`` values whose largest ones are ``top``."""
    return np.sort(np.r_[top, np.linspace(0.99, 0.01, n - len(top))])[::-1]


N_COPIES = 120
COPIES = {
    # (singular values, k, tol, which); before the copy check each case gave
    # a wrong set of values, flagged converged, for every seed, orientation
    # and real or complex data tried ("five_decaying": 10 of 12, this one too).
    "double_found_once": (_slow(N_COPIES, [1.0, 1.0]), 2, 1e-6, "LM"),
    "triple": (_slow(N_COPIES, [1.0, 1.0, 1.0]), 6, 1e-8, "LM"),
    "double_in_the_middle": (_slow(N_COPIES, [1.5, 1.0, 1.0]), 3, 1e-6, "LM"),
    "five_decaying": (np.r_[[1.0] * 5, 0.9 ** np.arange(1, N_COPIES - 4)], 7, 0, "LM"),
    "smallest_triple": (np.r_[np.linspace(1.0, 0.1, N_COPIES - 3), [0.05] * 3], 4, 1e-8,
                        "SM"),
}


@pytest.mark.parametrize("shape", ["tall", "wide"])
@pytest.mark.parametrize("case", list(COPIES))
def test_every_copy_of_a_repeated_singular_value_is_found(case, shape):
    # One start vector sees one copy of a repeated value in exact
    # arithmetic; the cycle from a fresh start vector on the deflated
    # operator finds the copies that rounding did not bring out in time.
    sig, k, tol, which = COPIES[case]
    A = spectrum_matrix(3 * N_COPIES, N_COPIES, sig, seed=0)
    A = A if shape == "tall" else A.T.copy()
    exact = np.sort(sig)[::-1][:k] if which == "LM" else np.sort(sig)[:k]
    res = eigarray.svds(A, k=k, tol=tol, which=which, rng=0)
    assert res.info.all_converged
    if tol == 0:
        testing.assert_singular_triplets(A, *res, exact=exact)
    else:
        # At tol > eps the documented bound: true residuals within 2 tol ||A||,
        # so each value lies within that of a singular value of A.
        line = 2 * tol * sig.max()
        assert np.all(res.info.residual_norms <= line)
        assert np.max(np.abs(np.sort(res.S) - np.sort(exact))) <= line
        assert testing.orthogonality_ratio(res.U) < 30
        assert testing.orthogonality_ratio(res.Vh.T) < 30


def test_copy_check_costs_at_most_one_cycle_and_less_on_a_decaying_spectrum():
    # Distinct values: the check is the last cycle.  On a spectrum that
    # halves at each value Kuczynski & Wozniakowski's bound rules out a
    # further copy well before the cycle's end; on a flat one it runs in full.
    k, n = 4, 120
    ncv = eigarray._svds.default_ncv(k, 3 * n, n)
    full = 2 * (ncv - k)                                     # one product each way per step
    for sig, longest in [(0.5 ** np.arange(n), full // 2), (np.linspace(1.0, 0.9, n), full)]:
        A = spectrum_matrix(3 * n, n, sig, seed=2)
        res = eigarray.svds(A, k=k, rng=2)
        testing.assert_singular_triplets(A, *res, exact=sig[:k])
        counts = res.info.history["n_matvec"]
        assert len(counts) >= 2
        assert counts[-1] - counts[-2] <= longest


# --- bad input ----------------------------------------------------------------------


class TestBadInput:
    A = np.arange(60.0).reshape(10, 6)

    @pytest.mark.parametrize("k", [0, -1, 6, 7])
    def test_k_out_of_range(self, k):
        with pytest.raises(ValueError, match=r"`k` must be an integer with 0 < k < min\(m, n\)"):
            eigarray.svds(self.A, k=k)

    def test_k_not_integer(self):
        with pytest.raises(TypeError, match="`k` must be an integer"):
            eigarray.svds(self.A, k=2.5)

    def test_unknown_which_and_solver(self):
        with pytest.raises(ValueError, match="`which` must be one of 'LM', 'SM'; got which='LA'"):
            eigarray.svds(self.A, k=2, which="LA")
        with pytest.raises(ValueError, match="`solver` must be one of"):
            eigarray.svds(self.A, k=2, solver="arpack")

    def test_ncv(self):
        with pytest.raises(ValueError, match=r"`ncv` must be an integer with k < ncv <= min"):
            eigarray.svds(self.A, k=3, ncv=3)
        with pytest.raises(ValueError, match="`ncv`"):
            eigarray.svds(self.A, k=3, ncv=7)

    def test_tol_maxiter_on_nonconvergence(self):
        with pytest.raises(ValueError, match="`tol`"):
            eigarray.svds(self.A, k=2, tol=-1)
        with pytest.raises(ValueError, match="`maxiter`"):
            eigarray.svds(self.A, k=2, maxiter=0)
        with pytest.raises(ValueError, match="`on_nonconvergence`"):
            eigarray.svds(self.A, k=2, on_nonconvergence="ignore")

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite(self, bad, backend):
        A = self.A.copy()
        A[3, 4] = bad
        with pytest.raises(ValueError, match="`A` must not contain NaN or Inf"):
            eigarray.svds(to_backend(A, backend), k=2)

    def test_v0(self):
        with pytest.raises(ValueError, match=r"`v0` must have shape \(6,\)"):
            eigarray.svds(self.A, k=2, v0=np.ones(10))
        with pytest.raises(ValueError, match="`v0` must not contain NaN"):
            eigarray.svds(self.A, k=2, v0=np.full(6, np.nan))
        with pytest.raises(ValueError, match="`v0` must not be the zero vector"):
            eigarray.svds(self.A, k=2, v0=np.zeros(6))
        with pytest.raises(TypeError, match="`v0` is complex but `A` is real"):
            eigarray.svds(self.A, k=2, v0=np.ones(6, dtype=complex))

    def test_options_of_the_lanczos_solver_only(self):
        with pytest.raises(ValueError, match="`callback` is supported by solver='lanczos'"):
            eigarray.svds(self.A, k=2, solver="randomized", callback=print)
        with pytest.raises(ValueError, match=r"`k` must be an integer with 0 < k <= min"):
            eigarray.svds(self.A, k=7, solver="power")

    def test_not_2d_and_empty(self):
        with pytest.raises(ValueError, match="`A` must be a 2-D"):
            eigarray.svds(np.ones(5), k=1)
        with pytest.raises(ValueError, match="`A` must not be empty"):
            eigarray.svds(np.ones((0, 4)), k=1)


@pytest.mark.parametrize("stop", ["maxiter=1", "maxiter=2", "callback"])
def test_a_stop_before_the_copy_check_flags_what_copies_would_displace(stop):
    # Three copies of the top singular value: a stop on the restart where
    # every triplet first converged skipped the check, and 0.886 and 0.9
    # came back flagged converged in place of copies of 1.
    s = np.r_[np.ones(3), np.linspace(0.9, 0.1, 57)]
    A, _, _ = testing.matrix_with_singular_values(200, 60, s, rng=0)
    kwargs = dict(k=3, tol=1e-3, rng=0)
    if stop == "callback":
        kwargs["callback"] = lambda state: state.n_converged == 3
    else:
        kwargs["maxiter"] = int(stop[-1])
    with pytest.warns(eigarray.ConvergenceWarning):
        res = eigarray.svds(A, **kwargs)
    sv, flagged = np.asarray(res[1]), res.info.converged
    assert not flagged.all() and flagged.any()
    np.testing.assert_allclose(sv[flagged], 1.0, rtol=1e-3)


def test_the_copy_check_resolves_its_contenders_before_settling():
    # The 3-D Laplacian's top singular values are triple; one start vector
    # sees one copy, and the check must find the others.  A check that
    # settled after one cycle of 30 rows returned a set with copies missing
    # (relative error 1e-3), flagged converged.
    A, lam = testing.laplacian_3d(30, 30, 30)
    res = eigarray.svds(A, k=10, ncv=40, tol=1e-4, rng=4)
    assert res.info.all_converged
    np.testing.assert_allclose(res.S, np.sort(lam)[-10:], rtol=1e-6)
