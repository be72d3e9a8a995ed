"""EigenLayer / PCA and TruncatedSVD: scikit-learn parity, namespaces, streaming, errors.

Tolerances follow the house rule: a covariance eigendecomposition in
precision ``eps`` gets eigenvalues to ``THRESHOLD * d * eps * λ_max`` and
eigenvectors to that over the gap to the rest of the spectrum; components are
checked with LAPACK's ratios against the exact covariance.
"""

from __future__ import annotations

import ast
import pathlib
import warnings

import numpy as np
import pytest
from conftest import Backend, is_backend_array, to_backend

import eigarray
from eigarray import testing

sklearn = pytest.importorskip("sklearn")
from sklearn.decomposition import PCA as SkPCA  # noqa: E402
from sklearn.decomposition import TruncatedSVD as SkTruncatedSVD  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

SOLVERS = ["covariance", "randomized", "lanczos"]
WHITEN = [False, True, "zca"]
T = testing.THRESHOLD


def pca_data(m=120, d=8, sigma=(40.0, 20.0, 10.0, 5.0, 2.5, 1.2, 0.6, 0.3), rng=0,
             dtype=np.float64):
    """``U diag(σ) Vᵀ + 1 μᵀ`` with centred orthonormal ``U``: the exact PCA is known.

    Returns ``(X, explained_variance, V)`` with the axes ``V`` as rows.
    """
    g = np.random.default_rng(rng)
    sigma = np.asarray(sigma, dtype=np.float64)
    r = sigma.size
    Z = g.standard_normal((m, r))
    Z -= Z.mean(axis=0)
    U, _ = np.linalg.qr(Z)
    V, _ = np.linalg.qr(g.standard_normal((d, r)))
    mu = g.standard_normal(d) * 5.0
    X = (U * sigma) @ V.T + mu
    return X.astype(dtype), sigma**2 / (m - 1), V.T


def covariance(X):
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc / (X.shape[0] - 1)


def tolerances(ev, k, d, eps):
    """Absolute bounds for eigenvalues and for eigenvectors of the kept ``k``."""
    ev = np.asarray(ev, dtype=np.float64)
    gaps = np.abs(np.diff(ev[: k + 1])) if k < ev.size else np.abs(np.diff(ev))
    gap = gaps.min() if gaps.size else ev[0]
    tol_val = T * d * eps * ev[0]
    return tol_val, tol_val / gap


def host(x):
    return testing._host(x)


def assert_matches_sklearn(est, sk, X, eps):
    d = X.shape[1]
    k = sk.n_components_
    full_ev = np.linalg.eigvalsh(covariance(X))[::-1]
    tol_val, tol_vec = tolerances(full_ev, k, d, eps)
    assert est.n_components_ == k
    np.testing.assert_allclose(host(est.explained_variance_), sk.explained_variance_,
                               rtol=0, atol=tol_val)
    np.testing.assert_allclose(host(est.explained_variance_ratio_),
                               sk.explained_variance_ratio_, rtol=0,
                               atol=tol_val / full_ev.sum())
    np.testing.assert_allclose(host(est.noise_variance_), sk.noise_variance_, rtol=0,
                               atol=tol_val)
    # singular values: s = sqrt(λ (m-1)); ds = dλ (m-1) / (2 s)
    m = X.shape[0]
    np.testing.assert_allclose(host(est.singular_values_), sk.singular_values_, rtol=0,
                               atol=tol_val * (m - 1) / (2 * sk.singular_values_[-1]))
    np.testing.assert_allclose(host(est.mean_), sk.mean_, rtol=0,
                               atol=T * eps * np.abs(X).max())
    # same signs as sklearn's svd_flip, not just up to sign
    np.testing.assert_allclose(host(est.components_), sk.components_, rtol=0, atol=tol_vec)


# --------------------------------------------------------------------------
# NumPy: parity with scikit-learn, every solver and whitening mode
# --------------------------------------------------------------------------

@pytest.mark.parametrize("whiten", WHITEN, ids=str)
@pytest.mark.parametrize("solver", SOLVERS)
def test_matches_sklearn_pca(solver, whiten):
    X, exact_ev, V = pca_data()
    k = 4
    est = eigarray.EigenLayer(k, solver=solver, whiten=whiten, random_state=0).fit(X)
    sk = SkPCA(k, whiten=bool(whiten), svd_solver="full").fit(X)
    eps = np.finfo(np.float64).eps
    assert_matches_sklearn(est, sk, X, eps)
    if not whiten:
        tol_val, _ = tolerances(exact_ev, k, X.shape[1], eps)
        np.testing.assert_allclose(est.get_covariance(), sk.get_covariance(), rtol=0,
                                   atol=tol_val * X.shape[1])
    testing.assert_eigenpairs(covariance(X), est.explained_variance_, est.components_.T,
                              exact=exact_ev[:k])
    Y = est.transform(X)
    Ysk = sk.transform(X)
    if whiten == "zca":
        Ysk = Ysk @ sk.components_                       # rotate back to feature space
    scale = np.abs(Ysk).max()
    _, tol_vec = tolerances(exact_ev, k, X.shape[1], eps)
    np.testing.assert_allclose(Y, Ysk, rtol=0, atol=scale * tol_vec * X.shape[1])
    back = est.inverse_transform(Y)
    Bsk = sk.inverse_transform(sk.transform(X))
    np.testing.assert_allclose(back, Bsk, rtol=0,
                               atol=np.abs(X).max() * tol_vec * X.shape[1])


@pytest.mark.parametrize("method", ["block_krylov", "range_finder"])
def test_randomized_methods_on_a_gapped_spectrum(method):
    # l = k + 10 = 13 < d = 60: the sketch does not cover the space; the gap
    # (25 over 0.01) makes the default iterations converge to working precision
    sigma = np.r_[1000.0, 500.0, 250.0, 0.1 * 0.9 ** np.arange(57)]
    X, exact_ev, _ = pca_data(m=300, d=60, sigma=sigma)
    est = eigarray.EigenLayer(3, solver="randomized", randomized_method=method,
                              random_state=0).fit(X)
    sk = SkPCA(3, svd_solver="full").fit(X)
    assert_matches_sklearn(est, sk, X, np.finfo(np.float64).eps)


def test_auto_solver_and_default_n_components():
    X, exact_ev, _ = pca_data()
    est = eigarray.PCA().fit(X)
    assert eigarray.PCA is eigarray.EigenLayer
    assert est.n_components_ == min(X.shape) and est.components_.shape == (8, 8)
    sk = SkPCA().fit(X)
    assert_matches_sklearn(est, sk, X, np.finfo(np.float64).eps)
    np.testing.assert_array_equal(est.noise_variance_, 0.0)


def test_float32_stays_float32():
    X, exact_ev, _ = pca_data(dtype=np.float32)
    est = eigarray.EigenLayer(3).fit(X)
    for name in ("components_", "explained_variance_", "singular_values_", "mean_"):
        assert getattr(est, name).dtype == np.float32, name
    assert est.transform(X).dtype == np.float32
    C = covariance(X)
    testing.assert_eigenpairs(C, est.explained_variance_, est.components_.T,
                              exact=np.linalg.eigvalsh(C)[::-1][:3])


@pytest.mark.parametrize("solver", ["covariance", "randomized"])
def test_wide_data(solver):
    # more features than samples: n_components=None is min(m, d) = m
    X, _, _ = pca_data(m=10, d=30, sigma=(9.0, 7.0, 5.0, 3.0, 2.0, 1.0))
    k = None if solver == "covariance" else 5
    est = eigarray.EigenLayer(k, solver=solver, random_state=0).fit(X)
    sk = SkPCA(k, svd_solver="full").fit(X)
    assert_matches_sklearn(est, sk, X, np.finfo(np.float64).eps)


def test_auto_rule():
    choose = eigarray.EigenLayer._choose_solver
    assert choose(eigarray.EigenLayer(5), "auto", 5000, 1000) == "covariance"
    assert choose(eigarray.EigenLayer(5), "auto", 5000, 1200) == "randomized"
    assert choose(eigarray.EigenLayer(1000), "auto", 5000, 1200) == "covariance"
    assert choose(eigarray.EigenLayer(0.9), "auto", 5000, 1200) == "covariance"
    assert choose(eigarray.EigenLayer(), "auto", 5000, 1200) == "covariance"
    assert choose(eigarray.EigenLayer(5), "lanczos", 5000, 1200) == "lanczos"


def test_variance_fraction():
    X, exact_ev, _ = pca_data()
    for frac in (0.5, 0.8, 0.95, 0.999):
        est = eigarray.EigenLayer(frac).fit(X)
        sk = SkPCA(frac, svd_solver="full").fit(X)
        ratio = exact_ev / exact_ev.sum()
        expected = int(np.searchsorted(np.cumsum(ratio), frac, side="right")) + 1
        assert est.n_components_ == sk.n_components_ == expected
        assert est.explained_variance_ratio_.sum() > frac


# --------------------------------------------------------------------------
# Every namespace: same numbers, arrays of the caller's namespace, input unchanged
# --------------------------------------------------------------------------

@pytest.mark.parametrize("solver", SOLVERS)
def test_every_backend(backend, solver):
    X, exact_ev, _ = pca_data()
    Xb = to_backend(X, backend)
    k = 3
    est = eigarray.EigenLayer(k, solver=solver, whiten=True, random_state=0).fit(Xb)
    for name in ("components_", "explained_variance_", "explained_variance_ratio_",
                 "singular_values_", "mean_"):
        assert is_backend_array(getattr(est, name), backend), name
    sk = SkPCA(k, whiten=True, svd_solver="full").fit(X)
    eps = np.finfo(np.float64).eps
    assert_matches_sklearn(est, sk, X, eps)
    Y = est.transform(Xb)
    assert is_backend_array(Y, backend)
    _, tol_vec = tolerances(exact_ev, k, X.shape[1], eps)
    np.testing.assert_allclose(host(Y), sk.transform(X), rtol=0, atol=tol_vec * X.shape[1])
    back = est.inverse_transform(Y)
    assert is_backend_array(back, backend)
    np.testing.assert_allclose(host(back), sk.inverse_transform(sk.transform(X)), rtol=0,
                               atol=np.abs(X).max() * tol_vec * X.shape[1])
    np.testing.assert_array_equal(host(Xb), X)           # input untouched


def test_transform_other_namespace_uses_cached_conversion():
    torch = pytest.importorskip("torch")
    X, _, _ = pca_data()
    est = eigarray.EigenLayer(3).fit(X)
    Y = est.transform(torch.from_numpy(X))
    assert isinstance(Y, torch.Tensor)
    np.testing.assert_allclose(Y.numpy(), est.transform(X), rtol=0,
                               atol=T * np.finfo(float).eps * np.abs(X).max() * X.shape[1])
    cached = dict(est._converted)
    est.transform(torch.from_numpy(X[:5]))
    assert est._converted.keys() == cached.keys()        # converted once


# --------------------------------------------------------------------------
# Streaming and whitening
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
def test_partial_fit_equals_fit(backend_name):
    if backend_name == "torch":
        pytest.importorskip("torch")
    backend = Backend(backend_name)
    X, _, _ = pca_data(m=500, d=8)
    X = X + 1e3                                          # a large mean: centring matters
    whole = eigarray.EigenLayer(4, solver="covariance").fit(to_backend(X, backend))
    stream = eigarray.EigenLayer(4)
    for chunk in np.array_split(X, [1, 7, 60, 61, 300]):
        stream.partial_fit(to_backend(chunk, backend))
    assert stream.n_samples_seen_ == 500
    for name in ("explained_variance_", "singular_values_", "mean_", "components_",
                 "explained_variance_ratio_"):
        a, b = host(getattr(stream, name)), host(getattr(whole, name))
        err = np.abs(a - b).max() / np.abs(b).max()
        assert err <= 1e-10, (name, err)
    a = host(stream.transform(to_backend(X, backend)))
    b = host(whole.transform(to_backend(X, backend)))
    assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()


def test_partial_fit_recomputes_on_demand():
    X, _, _ = pca_data(m=200)
    est = eigarray.EigenLayer(2).partial_fit(X[:100])
    first = est.components_.copy()
    est.partial_fit(X[100:])
    assert "components_" not in est.__dict__             # not yet recomputed
    ref = eigarray.EigenLayer(2).fit(X)
    np.testing.assert_allclose(est.components_, ref.components_, rtol=0, atol=1e-12)
    assert not np.allclose(first, est.components_)


@pytest.mark.parametrize("whiten", [True, "pca", "zca"], ids=str)
def test_whitened_output_has_identity_covariance(backend, whiten):
    X, _, _ = pca_data(m=300)
    est = eigarray.EigenLayer(whiten=whiten).fit(to_backend(X, backend))
    Y = host(est.transform(to_backend(X, backend)))
    cov = np.cov(Y, rowvar=False)
    assert np.abs(cov - np.eye(cov.shape[0])).max() < 1e-8
    if whiten == "zca":
        assert Y.shape == X.shape
        # ZCA is the symmetric inverse square root: the whitening map closest to identity
        C = covariance(X)
        w, Q = np.linalg.eigh(C)
        W = (Q / np.sqrt(w)) @ Q.T
        np.testing.assert_allclose(Y, (X - X.mean(axis=0)) @ W, rtol=0, atol=1e-10)
    np.testing.assert_allclose(host(est.inverse_transform(est.transform(to_backend(X, backend)))),
                               X, rtol=0, atol=1e-10 * np.abs(X).max())


# --------------------------------------------------------------------------
# scikit-learn: estimator checks, Pipeline, GridSearchCV
# --------------------------------------------------------------------------

_ESTIMATORS = [
    eigarray.EigenLayer(),
    eigarray.EigenLayer(whiten="zca"),
    eigarray.EigenLayer(1, solver="randomized", random_state=0),
    eigarray.EigenLayer(1, solver="lanczos", random_state=0),
    eigarray.TruncatedSVD(random_state=0),
    eigarray.TruncatedSVD(1, algorithm="lanczos", random_state=0),
    eigarray.TruncatedSVD(1, algorithm="arpack", random_state=0),
]


with warnings.catch_warnings():
    # eigarray does not import scikit-learn, so it cannot inherit BaseEstimator
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit from")
    _with_checks = parametrize_with_checks(_ESTIMATORS)


@pytest.mark.filterwarnings("ignore:Estimator .* does not inherit from")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@_with_checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_and_grid_search():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    X, y = make_classification(n_samples=120, n_features=12, n_informative=4, random_state=0)
    pipe = Pipeline([("pca", eigarray.EigenLayer(whiten=True)), ("clf", LogisticRegression())])
    grid = GridSearchCV(pipe, {"pca__n_components": [2, 6], "pca__solver": ["covariance",
                                                                          "lanczos"]}, cv=3)
    grid.fit(X, y)
    assert grid.best_params_["pca__n_components"] in (2, 6)
    ref = Pipeline([("pca", SkPCA(whiten=True, **{"n_components":
                                                  grid.best_params_["pca__n_components"]})),
                    ("clf", LogisticRegression())]).fit(X, y)
    best = grid.best_estimator_
    np.testing.assert_array_equal(best.predict(X), ref.predict(X))
    assert best.named_steps["pca"].n_features_in_ == 12


def test_params_protocol():
    est = eigarray.EigenLayer(3, whiten="zca")
    assert est.get_params() == {"n_components": 3, "whiten": "zca", "solver": "auto",
                                "n_oversamples": 10, "n_iter": "auto", "random_state": None,
                                "randomized_method": "auto", "copy": True, "tol": 0.0}
    assert repr(est) == "EigenLayer(n_components=3, whiten='zca')"
    assert est.set_params(n_components=2) is est and est.n_components == 2
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        est.set_params(bogus=1)
    est.set_params(solver="nope")                        # validated at fit, not here
    with pytest.raises(ValueError, match="`solver` must be one of"):
        est.fit(np.ones((3, 2)))


# --------------------------------------------------------------------------
# Differentiable and jittable transform
# --------------------------------------------------------------------------

def test_torch_autograd_through_transform():
    torch = pytest.importorskip("torch")
    X, _, _ = pca_data()
    for fitted_on in (X, torch.from_numpy(X)):
        est = eigarray.EigenLayer(3, whiten=True).fit(fitted_on)
        x = torch.tensor(X[:7], requires_grad=True)
        y = est.transform(x)
        assert y.requires_grad
        (y**2).sum().backward()
        P = host(est.components_).T / np.sqrt(host(est.explained_variance_))
        expected = 2 * (X[:7] - host(est.mean_)) @ P @ P.T
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=0,
                                   atol=1e-12 * np.abs(expected).max())


def test_jax_jit_and_grad_through_transform():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    X, _, _ = pca_data()
    est = eigarray.EigenLayer(3, whiten="zca").fit(X)
    f = jax.jit(est.transform)
    np.testing.assert_allclose(np.asarray(f(jnp.asarray(X))), est.transform(X), rtol=0,
                               atol=1e-12 * np.abs(est.transform(X)).max())
    g = jax.grad(lambda x: jnp.sum(est.transform(x) ** 2))(jnp.asarray(X[:5]))
    W = host(est._P)
    expected = 2 * (X[:5] - est.mean_) @ W @ W.T
    np.testing.assert_allclose(np.asarray(g), expected, rtol=0,
                               atol=1e-12 * np.abs(expected).max())


# --------------------------------------------------------------------------
# TruncatedSVD
# --------------------------------------------------------------------------

def term_document(rng=0):
    """A sparse 60 x 40 count matrix of rank <= 12 (12 of the terms are used)."""
    sp = pytest.importorskip("scipy.sparse")
    g = np.random.default_rng(rng)
    dense = np.zeros((60, 40))
    cols = g.choice(40, size=12, replace=False)
    dense[:, cols] = g.poisson(0.6, size=(60, 12)) * g.uniform(0.5, 3.0, size=12)
    return sp.csr_matrix(dense)


@pytest.mark.parametrize("algorithm", ["randomized", "lanczos"])
def test_truncated_svd_matches_sklearn_on_sparse(algorithm):
    X = term_document()
    k = 4
    est = eigarray.TruncatedSVD(k, algorithm=algorithm, random_state=0).fit(X)
    sk = SkTruncatedSVD(k, algorithm="arpack", random_state=0).fit(X)
    A = X.toarray()
    s_all = np.linalg.svd(A, compute_uv=False)
    eps = np.finfo(np.float64).eps
    tol_s = T * max(A.shape) * eps * s_all[0]
    gap = np.abs(np.diff(s_all[: k + 1])).min()
    np.testing.assert_allclose(est.singular_values_, s_all[:k], rtol=0, atol=tol_s)
    np.testing.assert_allclose(est.singular_values_, sk.singular_values_, rtol=0, atol=tol_s)
    np.testing.assert_allclose(est.components_, sk.components_, rtol=0,
                               atol=tol_s / gap)
    np.testing.assert_allclose(est.explained_variance_, sk.explained_variance_, rtol=0,
                               atol=tol_s * s_all[0] * A.shape[1] / gap)
    np.testing.assert_allclose(est.explained_variance_ratio_, sk.explained_variance_ratio_,
                               rtol=0, atol=tol_s * A.shape[1] / gap)
    Y = est.transform(X)
    np.testing.assert_allclose(Y, sk.transform(X), rtol=0,
                               atol=np.abs(A).max() * A.shape[1] * tol_s / gap)
    AtA = A.T @ A
    testing.assert_eigenpairs(AtA, est.singular_values_**2, est.components_.T,
                              exact=s_all[:k] ** 2)


def test_truncated_svd_dense_backend(backend):
    X = term_document().toarray()
    est = eigarray.TruncatedSVD(3, random_state=0).fit(to_backend(X, backend))
    assert is_backend_array(est.components_, backend)
    Y = est.transform(to_backend(X, backend))
    assert is_backend_array(Y, backend)
    s_all = np.linalg.svd(X, compute_uv=False)
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(host(est.singular_values_), s_all[:3], rtol=0,
                               atol=T * max(X.shape) * eps * s_all[0])
    np.testing.assert_array_equal(host(to_backend(X, backend)), X)


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------

def test_not_fitted():
    X, _, _ = pca_data()
    for est in (eigarray.EigenLayer(), eigarray.TruncatedSVD()):
        for method in ("transform", "inverse_transform"):
            with pytest.raises(NotFittedError, match="not fitted yet"):
                getattr(est, method)(X)
        with pytest.raises(AttributeError):
            _ = est.components_


def test_wrong_feature_count():
    X, _, _ = pca_data()
    est = eigarray.EigenLayer(2).fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but EigenLayer is expecting 8"):
        est.transform(X[:, :5])
    with pytest.raises(ValueError, match="X has 5 features, but EigenLayer is expecting 8"):
        est.partial_fit(X[:, :5])
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        est.inverse_transform(X)


@pytest.mark.parametrize("n_components, solver, match", [
    (0, "covariance", r"1 <= n_components <= min\(n_samples, n_features\) = 8"),
    (9, "covariance", r"got n_components=9"),
    (8, "lanczos", r"0 < n_components < min\(n_samples, n_features\) = 8"),
    (1.5, "covariance", r"a float in \(0, 1\)"),
    (0.5, "randomized", "needs the full spectrum"),
    ("mle", "randomized", "'mle'.*needs the full spectrum"),
    ("full", "auto", r"an integer, a float in \(0, 1\), 'mle' or None; got n_components='full'"),
])
def test_bad_n_components(n_components, solver, match):
    X, _, _ = pca_data(m=20)
    with pytest.raises(ValueError, match=match):
        eigarray.EigenLayer(n_components, solver=solver).fit(X)


def test_bad_arguments_and_data():
    X, _, _ = pca_data(m=20)
    with pytest.raises(ValueError, match="`whiten` must be one of"):
        eigarray.EigenLayer(whiten="yes").fit(X)
    with pytest.raises(TypeError, match="`n_iter` must be an integer"):
        eigarray.EigenLayer(n_iter=2.5).fit(X)
    with pytest.raises(TypeError, match="`copy` must be True or False"):
        eigarray.EigenLayer(copy="x").fit(X)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        eigarray.EigenLayer(2).fit(bad)
    est = eigarray.EigenLayer(2).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        est.transform(bad)
    with pytest.raises(ValueError, match="n_samples = 1"):
        eigarray.EigenLayer().fit(X[:1])
    with pytest.raises(ValueError, match="2-D array"):
        eigarray.EigenLayer().fit(X[:, 0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        eigarray.EigenLayer().fit(X + 1j)
    sp = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sparse.*TruncatedSVD"):
        eigarray.EigenLayer().fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="`algorithm` must be one of 'randomized', 'lanczos', "
                                         "'arpack'; got algorithm='propack'"):
        eigarray.TruncatedSVD(algorithm="propack").fit(X)


def test_layers_module_speaks_array_api_only():
    path = pathlib.Path(eigarray.__file__).parent / "_layers.py"
    names = set()                   # scikit-learn may be imported lazily, nothing else
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    assert not names & {"numpy", "scipy", "torch", "jax", "numba", "cupy", "dask",
                        "array_api_compat"}


def test_pickle_round_trip():
    import pickle

    torch = pytest.importorskip("torch")
    X, _, _ = pca_data()
    est = eigarray.EigenLayer(3).fit(X)
    est.transform(torch.from_numpy(X))                   # fills the conversion cache
    again = pickle.loads(pickle.dumps(est))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(again.transform(X), est.transform(X))


# ---------------------------------------------------------------------------
# The covariance pass on NumPy data

def _host_frameworks(X: np.ndarray) -> list:
    """``X`` as a CPU torch tensor and a JAX array, where installed (same dtype)."""
    out = []
    try:
        import torch

        out.append(torch.from_numpy(X))
    except ImportError:
        pass
    try:
        import jax.numpy as jnp

        Xj = jnp.asarray(X)
        if Xj.dtype == X.dtype:                       # JAX without x64 holds float32
            out.append(Xj)
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 7, 64, 301])
def test_shifted_scatter_matches_float64(monkeypatch, dtype, m):
    from eigarray import _dispatch

    monkeypatch.setattr(_dispatch, "_SCATTER_BLOCK_ELEMENTS", 5 * 9)    # blocks of 5 rows
    rng = np.random.default_rng(m)
    X = (rng.standard_normal((m, 9)) * np.linspace(0.1, 10, 9) + 1e3).astype(dtype)
    X0 = X.copy()
    c, G, s = _dispatch.shifted_scatter(X, 3)
    np.testing.assert_array_equal(c, X[:3].mean(axis=0))
    Z = X.astype(np.float64) - c.astype(np.float64)
    eps = np.finfo(dtype).eps
    assert G.dtype == s.dtype == np.float64
    np.testing.assert_array_equal(G, G.T)
    assert np.abs(G - Z.T @ Z).max() <= 30 * m * eps * np.abs(Z).max() ** 2
    assert np.abs(s - Z.sum(axis=0)).max() <= 30 * m * eps * np.abs(Z).max()
    np.testing.assert_array_equal(X, X0)
    # CPU torch and JAX data are read in place, with the same sums.
    for Xb in _host_frameworks(X):
        for a, b in zip(_dispatch.shifted_scatter(Xb, 3), (c, G, s), strict=True):
            np.testing.assert_array_equal(a, b)
    # Anything else is left to the Array API loop.
    assert _dispatch.shifted_scatter(np.asfortranarray(X), 3) is None or m == 1
    assert _dispatch.shifted_scatter(X.astype(np.complex128), 3) is None
    assert _dispatch.shifted_scatter(X.astype(np.int64), 3) is None
    assert _dispatch.shifted_scatter(X.tolist(), 3) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [2, 3, 50])
def test_shifted_scatter_threaded_runs(monkeypatch, dtype, threads):
    # Contiguous runs of blocks on Python threads, one BLAS thread each:
    # the same sums as one run to rounding, in the same order every call.
    from eigarray import _dispatch

    monkeypatch.setattr(_dispatch, "_SCATTER_BLOCK_ELEMENTS", 7 * 9)    # blocks of 7 rows
    rng = np.random.default_rng(threads)
    X = (rng.standard_normal((200, 9)) * np.linspace(0.1, 10, 9) + 1e3).astype(dtype)
    X0 = X.copy()
    c1, G1, s1 = _dispatch.shifted_scatter(X, 3)
    monkeypatch.setattr(_dispatch, "_SCATTER_PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(_dispatch, "_threads", lambda: threads)
    c, G, s = _dispatch.shifted_scatter(X, 3)
    np.testing.assert_array_equal(c, c1)
    np.testing.assert_array_equal(G, G.T)
    Z = X.astype(np.float64) - c.astype(np.float64)
    eps = np.finfo(dtype).eps
    assert np.abs(G - Z.T @ Z).max() <= 30 * 200 * eps * np.abs(Z).max() ** 2
    assert np.abs(G - G1).max() <= 30 * 200 * eps * np.abs(Z).max() ** 2
    assert np.abs(s - s1).max() <= 30 * 200 * eps * np.abs(Z).max()
    for a, b in zip(_dispatch.shifted_scatter(X, 3), (c, G, s), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(X, X0)


def test_shifted_scatter_threaded_error_reaches_caller(monkeypatch):
    # A failure on a worker thread is raised on the caller's, after every
    # thread has finished (none is left running on the caller's data).
    from eigarray import _dispatch

    real = _dispatch._moments_kernel()
    seen = []

    class Failing:
        @staticmethod
        def shift_rows(X, r0, r1, c, out, sums):
            seen.append(r0)
            if r0 >= 100:
                raise RuntimeError("block failed")
            real.shift_rows(X, r0, r1, c, out, sums)

    monkeypatch.setattr(_dispatch, "_moments_kernel", lambda: Failing)
    monkeypatch.setattr(_dispatch, "_SCATTER_BLOCK_ELEMENTS", 10 * 4)
    monkeypatch.setattr(_dispatch, "_SCATTER_PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(_dispatch, "_threads", lambda: 2)
    X = np.random.default_rng(0).standard_normal((200, 4))
    with pytest.raises(RuntimeError, match="block failed"):
        _dispatch.shifted_scatter(X, 3)
    assert 0 in seen and 100 in seen


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fit_finds_nan_or_inf_anywhere(backend, bad):
    # The covariance path proves the data finite through its scatter, not a scan.
    X, _, _ = pca_data(m=50)
    for i, j in [(0, 0), (3, 2), (49, X.shape[1] - 1)]:
        B = X.copy()
        B[i, j] = bad
        for solver in ("covariance", "randomized"):
            with pytest.raises(ValueError, match="must not contain NaN or Inf"):
                eigarray.EigenLayer(2, solver=solver).fit(to_backend(B, backend))


def test_wide_randomized_block_still_iterates():
    # k + n_oversamples = 20 > min(m, d) / 2: Krylov blocks no longer fit, and
    # the 'auto' scheme must fall back to the range finder's power passes
    # (it used to return a one-pass sketch, 17% off).
    g = np.random.default_rng(5)
    X = g.standard_normal((200, 30)) * np.linspace(5, 0.1, 30)
    k = 10
    exact = SkPCA(svd_solver="full").fit(X).explained_variance_[:k]
    for method in ("auto", "block_krylov", "range_finder"):
        est = eigarray.EigenLayer(k, solver="randomized", randomized_method=method,
                                  random_state=0).fit(X)
        err = np.max(np.abs(est.explained_variance_ - exact) / exact)
        assert err < (1e-4 if method != "block_krylov" else 1e-2), (method, err)


def test_truncated_svd_variance_ratio_far_from_zero_mean():
    # E[x²] - E[x]² cancels catastrophically at mean 1e8: the total variance
    # of the sparse path must come from deviations, as the dense path's does.
    g = np.random.default_rng(0)
    Xd = np.full((50, 5), 1e8) + g.standard_normal((50, 5))
    Xd[::3, 1] = 0.0                                   # implicit zeros, too
    scipy_sparse = pytest.importorskip("scipy.sparse")
    Xs = scipy_sparse.csr_matrix(Xd)
    sparse = eigarray.TruncatedSVD(2, random_state=0).fit(Xs)
    dense = eigarray.TruncatedSVD(2, random_state=0).fit(Xd)
    np.testing.assert_allclose(sparse.explained_variance_ratio_,
                               dense.explained_variance_ratio_, rtol=1e-9)
    total = Xd.var(axis=0).sum()
    np.testing.assert_allclose(sparse.explained_variance_ / sparse.explained_variance_ratio_,
                               total, rtol=1e-12)


def test_truncated_svd_more_components_than_samples():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X = scipy_sparse.random(5, 20, density=0.5, random_state=1, format="csr")
    with pytest.raises(ValueError, match=r"n_components.*min\(n_samples, n_features\) = 5"):
        eigarray.TruncatedSVD(6, random_state=0).fit(X)
    assert eigarray.TruncatedSVD(5, random_state=0).fit(X).components_.shape == (5, 20)


@pytest.mark.parametrize("solver", SOLVERS)
def test_finite_data_whose_moments_overflow(solver):
    X = np.random.default_rng(6).standard_normal((40, 5)) * 1e200
    with pytest.raises(ValueError, match=r"`X` is finite, but .* overflows float64"):
        eigarray.EigenLayer(2, solver=solver, random_state=0).fit(X)
    layer = eigarray.EigenLayer(2).partial_fit(X[:20] / 1e200)
    with pytest.raises(ValueError, match="its scatter matrix overflows"):
        layer.partial_fit(X[20:])
    assert layer.n_samples_seen_ == 20                 # the state is kept


@pytest.mark.parametrize("solver", ["covariance", "lanczos"])
def test_data_whose_squares_underflow(solver):
    # Scaled by 1e-170, the squares underflow float64: the components came
    # out nearly at right angles to the true ones, with no error.
    X0 = np.random.default_rng(7).standard_normal((40, 6)) * np.logspace(0, -1, 6)
    ref = eigarray.EigenLayer(3, solver=solver, random_state=0).fit(X0)
    with pytest.raises(ValueError, match=r"`X` deviates so little .* underflows float64"):
        eigarray.EigenLayer(3, solver=solver, random_state=0).fit(X0 * 1e-170)
    # At 1e-150 the squares are normal numbers, and the fit is the same.
    small = eigarray.EigenLayer(3, solver=solver, random_state=0).fit(X0 * 1e-150)
    np.testing.assert_allclose(np.abs(np.sum(small.components_ * ref.components_, axis=1)),
                               1.0, rtol=1e-12)
    np.testing.assert_allclose(small.explained_variance_ratio_,
                               ref.explained_variance_ratio_, rtol=1e-10)


def test_underflow_is_judged_on_the_whole_stream():
    X0 = np.random.default_rng(8).standard_normal((40, 6))
    layer = eigarray.EigenLayer(2).partial_fit(X0[:20])
    # A batch of nearly equal rows is data: its own scatter underflows, the
    # stream's does not.
    layer.partial_fit(X0[20:23] * 1e-170 + X0[0])
    assert layer.n_samples_seen_ == 23
    with pytest.raises(ValueError, match="its scatter matrix underflows"):
        eigarray.EigenLayer(2).partial_fit(X0 * 1e-170)
    with pytest.raises(ValueError, match="its sum of squares underflows"):
        eigarray.EigenLayer(2).fit(X0[:4] * 1e-170)          # fewer samples than features
    # No spread at all is no underflow.
    with np.errstate(invalid="ignore"):                      # a ratio 0 / 0, as sklearn's
        const = eigarray.EigenLayer(2).fit(np.ones((10, 3)))
    np.testing.assert_array_equal(const.explained_variance_, 0.0)


@pytest.mark.parametrize("solver", ["randomized", "lanczos"])
def test_partial_fit_after_a_fit_without_scatter_warns(solver):
    X, _, _ = pca_data(m=60)
    layer = eigarray.EigenLayer(2, solver=solver, random_state=0).fit(X[:30])
    with pytest.warns(UserWarning, match="starts a new stream"):
        layer.partial_fit(X[30:])
    assert layer.n_samples_seen_ == 30
    np.testing.assert_allclose(layer.mean_, X[30:].mean(axis=0), rtol=1e-13)
    kept = eigarray.EigenLayer(2, solver="covariance").fit(X[:30])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept.partial_fit(X[30:])
    assert kept.n_samples_seen_ == 60


def test_hasattr_after_a_single_streamed_sample():
    layer = eigarray.EigenLayer(2).partial_fit(np.ones((1, 4)))
    assert not hasattr(layer, "components_")
    with pytest.raises(ValueError, match="at least 2 samples"):
        layer.transform(np.ones((1, 4)))
    layer.partial_fit(np.arange(4.0)[None, :])
    assert layer.components_.shape == (2, 4)


def test_feature_names_and_pandas_output():
    pd = pytest.importorskip("pandas")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _, _ = pca_data(m=30, d=5, sigma=(5.0, 4.0, 3.0, 2.0, 1.0))
    frame = pd.DataFrame(X, columns=list("abcde"), index=range(100, 130))
    pipe = make_pipeline(StandardScaler(), eigarray.EigenLayer(2)).set_output(
        transform="pandas")
    out = pipe.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["eigenlayer0", "eigenlayer1"]
    assert list(out.index) == list(range(100, 130))
    np.testing.assert_allclose(out.to_numpy(), pipe[-1].set_output(transform="default")
                               .transform(pd.DataFrame(StandardScaler().fit_transform(X),
                                                       columns=list("abcde"))), rtol=1e-10)
    zca = eigarray.EigenLayer(2, whiten="zca").fit(X)
    assert list(zca.get_feature_names_out()) == [f"eigenlayer{i}" for i in range(5)]
    with pytest.raises(ValueError, match=r"input_features should have length equal to .* \(5\)"):
        zca.get_feature_names_out(["a", "b"])
    tsvd = eigarray.TruncatedSVD(2, random_state=0).set_output(transform="pandas")
    assert list(tsvd.fit_transform(X).columns) == ["truncatedsvd0", "truncatedsvd1"]
    assert isinstance(tsvd.transform(X), pd.DataFrame)
    assert sklearn.base.clone(tsvd)._sklearn_output_config == {"transform": "pandas"}
    with pytest.raises(ValueError, match="`transform` must be one of"):
        tsvd.set_output(transform="xarray")
    with pytest.raises(NotFittedError):
        eigarray.TruncatedSVD(2).get_feature_names_out()


@pytest.mark.parametrize("make", [lambda: eigarray.EigenLayer(2),
                                  lambda: eigarray.EigenLayer(2, solver="randomized",
                                                              random_state=0),
                                  lambda: eigarray.TruncatedSVD(2, random_state=0)],
                         ids=["covariance", "randomized", "truncated-svd"])
def test_column_names_of_data_frames_are_checked(make):
    # As scikit-learn: the names seen at fit are kept; a frame with its
    # columns reordered (or renamed) is refused, not transformed silently.
    pd = pytest.importorskip("pandas")
    X, _, _ = pca_data(m=40, d=3, sigma=(5.0, 1.0, 0.1))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    est = make().fit(frame)
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # "X does not have valid feature names"
        np.testing.assert_array_equal(est.transform(frame), est.transform(X))
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        est.transform(frame[["c", "b", "a"]])
    with pytest.raises(ValueError, match="unseen at fit time:\n- x"):
        est.transform(frame.rename(columns={"a": "x"}))
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        est.get_feature_names_out(["x", "y", "z"])
    assert not hasattr(make().fit(X), "feature_names_in_")
    with pytest.raises(TypeError, match="only supported if all input features have string"):
        make().fit(pd.DataFrame(X, columns=["a", 1, "c"]))
    if isinstance(est, eigarray.EigenLayer):
        with pytest.raises(ValueError, match="Feature names must be in the same order"):
            make().partial_fit(frame).partial_fit(frame[["b", "a", "c"]])


def test_an_unfinished_stream_raises_every_time():
    # n_components larger than the samples streamed so far: every access
    # raises the same error (hasattr gives False), and the stream goes on.
    X, _, _ = pca_data(m=40, d=4, sigma=(4.0, 2.0, 1.0, 0.5))
    layer = eigarray.EigenLayer(3).partial_fit(X[:2])
    for _ in range(2):
        with pytest.raises(ValueError, match="`n_components` must be an integer"):
            layer.transform(X)
        assert not hasattr(layer, "components_")
    layer.partial_fit(X[2:])
    np.testing.assert_allclose(layer.explained_variance_,
                               eigarray.EigenLayer(3).fit(X).explained_variance_, rtol=1e-10)


@pytest.mark.parametrize("solver", ["covariance", "randomized"])
def test_random_state_is_checked_whatever_the_solver(solver):
    X, _, _ = pca_data(m=30)
    for bad, error in (("a", TypeError), (-1, ValueError), (1.5, TypeError)):
        with pytest.raises(error, match="`random_state` must be"):
            eigarray.EigenLayer(2, solver=solver, random_state=bad).fit(X)
    state = np.random.RandomState(0)
    eigarray.EigenLayer(2, solver="covariance", random_state=state).fit(X)
    assert state.randint(1000) == np.random.RandomState(0).randint(1000)   # not consumed


def test_numpy_bool_whiten():
    X, _, _ = pca_data(m=40)
    a = eigarray.EigenLayer(2, whiten=np.True_).fit(X)
    b = eigarray.EigenLayer(2, whiten=True).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


# --- offsets, wide data ---------------------------------------------------------------


@pytest.mark.parametrize("solver", ["randomized", "lanczos"])
def test_iterative_solvers_centre_data_far_from_its_mean(solver):
    # X V - 1 (μᵀ V) in float32 loses the spread of data with a mean 1e4
    # times larger: such data is centred explicitly.
    rng = np.random.default_rng(0)
    m, d, k = 3000, 1200, 5
    spread = 3.0 * 2.0 ** -np.arange(d)
    X = (rng.standard_normal((m, d)) * spread + 1e4).astype(np.float32)
    X.flags.writeable = False
    exact = SkPCA(k, svd_solver="full").fit(X.astype(np.float64)).explained_variance_
    got = eigarray.EigenLayer(k, solver=solver, random_state=0).fit(X).explained_variance_
    np.testing.assert_allclose(got, exact, rtol=2e-3)


def test_wide_covariance_fit_works_in_sample_space():
    # Fewer samples than features: the SVD of the centred data through its QR
    # factors, not the d x d covariance; equal to scikit-learn's full SVD.
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 1500)) * np.geomspace(1.0, 1e-3, 1500) + 5.0
    for n_components in (None, 4, 0.9):
        ours = eigarray.EigenLayer(n_components, solver="covariance").fit(X)
        ref = SkPCA(n_components, svd_solver="full").fit(X)
        k = ref.n_components_
        assert ours.n_components_ == k
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_,
                                   rtol=1e-12, atol=1e-14 * ref.explained_variance_[0])
        np.testing.assert_allclose(ours.components_[:k - 1], ref.components_[:k - 1],
                                   atol=1e-10)
        np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_,
                                   atol=1e-14 * ref.explained_variance_[0])
        np.testing.assert_allclose(ours.components_ @ ours.components_.T, np.eye(k),
                                   atol=1e-14)
        np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=1e-9)


def test_wide_fit_continues_with_partial_fit():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((30, 80)), rng.standard_normal((40, 80))
    continued = eigarray.EigenLayer(5).fit(X).partial_fit(Y)
    whole = eigarray.EigenLayer(5).fit(np.vstack([X, Y]))
    np.testing.assert_allclose(continued.explained_variance_, whole.explained_variance_,
                               rtol=1e-12)
    np.testing.assert_allclose(continued.components_, whole.components_, atol=1e-12)
    np.testing.assert_allclose(continued.mean_, whole.mean_, atol=1e-15)


def test_lanczos_with_one_feature_names_the_solver():
    X = np.random.default_rng(0).standard_normal((10, 1))
    for n_components in (None, 1):
        with pytest.raises(ValueError, match="solver='lanczos' needs min"):
            eigarray.EigenLayer(n_components, solver="lanczos").fit(X)


def test_sparse_torch_tensors_are_named():
    torch = pytest.importorskip("torch")
    X = torch.eye(8, 6, dtype=torch.float64).to_sparse()
    with pytest.raises(TypeError, match="`X` is a sparse torch tensor.*scipy"):
        eigarray.TruncatedSVD(2).fit(X)
    with pytest.raises(TypeError, match="`X` is a sparse torch tensor"):
        eigarray.EigenLayer(2).fit(X)


# --------------------------------------------------------------------------
# Probabilistic PCA: score_samples, score, get_precision
# --------------------------------------------------------------------------

# A spectrum with a condition number of 16: the house bound below is then
# far under 1e-10 relative.
PPCA_SIGMA = (4.0, 3.0, 2.5, 2.0, 1.6, 1.3, 1.1, 1.0)


def ppca_tolerance(sk, d):
    """Relative bound on scores and precision: ``T d eps`` times the model's condition."""
    ev = sk.explained_variance_
    s2 = sk.noise_variance_
    cond = ev[0] / (s2 if s2 > 0 else ev[-1])
    tol = T * d * np.finfo(np.float64).eps * cond
    assert tol <= 1e-10
    return tol


def assert_ppca_matches(est, sk, X_test):
    d = X_test.shape[1]
    tol = ppca_tolerance(sk, d)
    ours, ref = host(est.score_samples(X_test)), sk.score_samples(X_test)
    assert ours.shape == (X_test.shape[0],)
    assert np.abs(ours - ref).max() <= tol * np.abs(ref).max()
    score = est.score(X_test)
    assert isinstance(score, float)
    assert abs(score - sk.score(X_test)) <= tol * np.abs(ref).max()
    P, Pref = host(est.get_precision()), sk.get_precision()
    assert np.abs(P - Pref).max() <= tol * np.abs(Pref).max()


@pytest.mark.parametrize("whiten", WHITEN, ids=str)
@pytest.mark.parametrize("n_components", [1, 3, 7, 8, None, "mle"], ids=str)
def test_score_samples_matches_sklearn(n_components, whiten):
    X, _, _ = pca_data(m=200, sigma=PPCA_SIGMA)
    X_test = np.random.default_rng(1).standard_normal((30, 8)) * 1.5 + X.mean(axis=0)
    X0, T0 = X.copy(), X_test.copy()
    est = eigarray.EigenLayer(n_components, whiten=whiten).fit(X)
    # scikit-learn's model for whiten=True scales its components (its issue
    # #13898); eigarray's model, like scikit-learn's unwhitened one, does not.
    sk = SkPCA(n_components, svd_solver="full").fit(X)
    assert est.n_components_ == sk.n_components_
    if est.n_components_ == 8:
        assert float(est.noise_variance_) == sk.noise_variance_ == 0.0
    assert_ppca_matches(est, sk, X_test)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(X_test, T0)


@pytest.mark.parametrize("solver", ["randomized", "lanczos"])
def test_score_samples_of_the_iterative_solvers(solver):
    X, _, _ = pca_data(m=200, sigma=PPCA_SIGMA)
    est = eigarray.EigenLayer(3, solver=solver, random_state=0).fit(X)
    assert_ppca_matches(est, SkPCA(3, svd_solver="full").fit(X), X[:40])


def test_precision_inverts_the_model_covariance():
    X, _, _ = pca_data(m=200, sigma=PPCA_SIGMA)
    for k in (0.5, 8):
        est = eigarray.EigenLayer(k).fit(X)
        C, P = est.get_covariance(), est.get_precision()
        ev = np.linalg.eigvalsh(C)                        # ascending
        residual = np.abs(P @ C - np.eye(8)).max()
        assert residual <= T * 8 * np.finfo(np.float64).eps * ev[-1] / ev[0]


def test_score_samples_every_backend(backend):
    X, _, _ = pca_data(m=200, sigma=PPCA_SIGMA)
    X_test = X[:25] + 0.5
    est = eigarray.EigenLayer(3, whiten=True).fit(to_backend(X, backend))
    ll = est.score_samples(to_backend(X_test, backend))
    assert is_backend_array(ll, backend)
    assert is_backend_array(est.get_precision(), backend)
    assert_ppca_matches(est, SkPCA(3, svd_solver="full").fit(X), to_backend(X_test, backend))
    # a layer fitted on NumPy scores the arrays of another namespace in it
    est = eigarray.EigenLayer(3).fit(X)
    ll = est.score_samples(to_backend(X_test, backend))
    assert is_backend_array(ll, backend)
    np.testing.assert_allclose(host(ll), est.score_samples(X_test), rtol=0,
                               atol=ppca_tolerance(SkPCA(3).fit(X), 8)
                               * np.abs(est.score_samples(X_test)).max())


def test_grid_search_by_likelihood():
    # scikit-learn's model selection by probabilistic PCA: GridSearchCV
    # scores each fold with ``score``
    from sklearn.model_selection import GridSearchCV

    X = low_rank_plus_noise(300, 10, 3, 0.5, rng=7)
    grid = {"n_components": [1, 2, 3, 4, 6, 9]}
    ours = GridSearchCV(eigarray.EigenLayer(), grid, cv=3).fit(X)
    ref = GridSearchCV(SkPCA(svd_solver="full"), grid, cv=3).fit(X)
    assert ours.best_params_ == ref.best_params_ == {"n_components": 3}
    scores, expected = ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"]
    tol = max(ppca_tolerance(SkPCA(k).fit(X), 10) for k in grid["n_components"])
    assert np.abs(scores - expected).max() <= tol * np.abs(expected).max()


def test_score_samples_singular_model_covariance():
    rng = np.random.default_rng(0)
    # n_components_ = 5 < 20 and no noise: scikit-learn inverts the singular
    # covariance (a LinAlgError, or an ill-conditioned inverse, by rounding)
    wide = rng.standard_normal((5, 20))
    est = eigarray.EigenLayer().fit(wide)
    assert float(est.noise_variance_) == 0.0
    for method in (est.get_precision, lambda: est.score_samples(wide),
                   lambda: est.score(wide)):
        with pytest.raises(ValueError, match="covariance is singular.*n_components_ = 5 < "
                                             "n_features = 20"):
            method()
    constant = eigarray.EigenLayer("mle").fit(np.ones((10, 3)))
    with pytest.raises(ValueError, match="covariance is singular"):
        constant.score(np.ones((2, 3)))


def test_score_samples_checks_its_input():
    X, _, _ = pca_data(m=200, sigma=PPCA_SIGMA)
    est = eigarray.EigenLayer(3)
    with pytest.raises(NotFittedError):
        est.score_samples(X)
    est.fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but EigenLayer is expecting 8"):
        est.score(X[:, :5])
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.score_samples(bad)


def test_score_after_partial_fit():
    X, _, _ = pca_data(m=200, sigma=PPCA_SIGMA)
    stream = eigarray.EigenLayer(3)
    for chunk in np.array_split(X, 4):
        stream.partial_fit(chunk)
    assert_ppca_matches(stream, SkPCA(3, svd_solver="full").fit(X), X[:30])


# --------------------------------------------------------------------------
# n_components='mle'
# --------------------------------------------------------------------------

def low_rank_plus_noise(m, d, rank, noise, rng):
    g = np.random.default_rng(rng)
    signal = g.standard_normal((m, rank)) @ g.standard_normal((rank, d)) * 3.0
    return signal + noise * g.standard_normal((m, d)) + g.standard_normal(d)


def test_mle_finds_a_clear_low_rank_signal():
    X = low_rank_plus_noise(500, 12, 4, 0.3, rng=0)
    est = eigarray.EigenLayer("mle").fit(X)
    sk = SkPCA("mle", svd_solver="full").fit(X)
    assert est.n_components_ == sk.n_components_ == 4
    assert_matches_sklearn(est, sk, X, np.finfo(np.float64).eps)


@pytest.mark.parametrize("case", range(24))
def test_mle_matches_sklearn(case):
    g = np.random.default_rng(case)
    d = int(g.integers(2, 30))
    m = int(g.integers(d, 400))
    rank = int(g.integers(1, d + 1))
    X = low_rank_plus_noise(m, d, rank, float(10.0 ** g.uniform(-3, 1)), rng=case)
    if case % 4 == 0:                                   # decaying, no clear rank
        X = X * np.geomspace(1.0, 1e-3, d)
    assert eigarray.EigenLayer("mle").fit(X).n_components_ == \
        SkPCA("mle", svd_solver="full").fit(X).n_components_


def test_mle_does_not_depend_on_the_units():
    # scikit-learn's absolute 1e-15 cut-off on the eigenvalues keeps no
    # component of the small-scale copy; eigarray's scales with the data
    X = low_rank_plus_noise(500, 12, 4, 0.3, rng=0)
    for scale in (1e-10, 1.0, 1e10):
        assert eigarray.EigenLayer("mle").fit(X * scale).n_components_ == 4


def test_mle_without_noise_and_degenerate_data():
    rng = np.random.default_rng(3)
    exact = rng.standard_normal((60, 3)) @ rng.standard_normal((3, 9))   # rank 3
    assert eigarray.EigenLayer("mle").fit(exact).n_components_ == \
        SkPCA("mle", svd_solver="full").fit(exact).n_components_ == 3
    # scikit-learn keeps no component of constant data or of a single feature
    for X in (np.ones((10, 3)), rng.standard_normal((30, 1))):
        est = eigarray.EigenLayer("mle").fit(X)
        with np.errstate(invalid="ignore"):               # its ratios of constant data: 0/0
            sk = SkPCA("mle", svd_solver="full").fit(X)
        assert est.n_components_ == sk.n_components_ == 0
        assert est.transform(X).shape == (X.shape[0], 0)
        np.testing.assert_allclose(est.inverse_transform(est.transform(X)),
                                   np.broadcast_to(X.mean(axis=0), X.shape))


def test_mle_streams_and_refuses_what_sklearn_refuses():
    X = low_rank_plus_noise(300, 10, 3, 0.2, rng=5)
    stream = eigarray.EigenLayer("mle")
    for chunk in np.array_split(X, 3):
        stream.partial_fit(chunk)
    assert stream.n_components_ == 3
    with pytest.raises(ValueError, match="'mle'.*needs n_samples >= n_features"):
        eigarray.EigenLayer("mle").fit(X[:8])
    for solver in ("randomized", "lanczos"):
        with pytest.raises(ValueError, match="'mle'.*needs the full spectrum"):
            eigarray.EigenLayer("mle", solver=solver).fit(X)
    with pytest.raises(ValueError, match="`n_components` must be .*'mle'.*got "
                                         "n_components='MLE'"):
        eigarray.EigenLayer("MLE").fit(X)


# --------------------------------------------------------------------------
# TruncatedSVD(algorithm='arpack')
# --------------------------------------------------------------------------

def test_truncated_svd_accepts_sklearns_arpack():
    from sklearn.base import clone

    X = term_document()
    est = eigarray.TruncatedSVD(4, algorithm="arpack", random_state=0)
    assert est.get_params()["algorithm"] == "arpack"
    assert clone(est).algorithm == "arpack"
    est.fit(X)
    assert est.algorithm == "arpack"
    lanczos = eigarray.TruncatedSVD(4, algorithm="lanczos", random_state=0).fit(X)
    np.testing.assert_array_equal(est.components_, lanczos.components_)
    np.testing.assert_array_equal(est.singular_values_, lanczos.singular_values_)
    with pytest.raises(ValueError, match=r"n_components < min\(n_samples, n_features\) = 40 "
                                         r"for algorithm='arpack'"):
        eigarray.TruncatedSVD(40, algorithm="arpack").fit(X)


def test_score_samples_refuses_a_model_singular_to_rounding():
    # Centred 20 x 20 data has rank 19: the smallest variance is rounding
    # (1e-16, or 1e-33 from the randomized solver), and scores built on it
    # were finite nonsense (scikit-learn gives -inf).
    X = np.random.default_rng(0).standard_normal((20, 20))
    for solver in ("covariance", "randomized"):
        est = eigarray.EigenLayer(solver=solver, random_state=0).fit(X)
        with pytest.raises(ValueError, match="singular"):
            est.score_samples(X)
        with pytest.raises(ValueError, match="singular"):
            est.get_precision()
    # more components than the data's rank: a noise variance of rounding
    rng = np.random.default_rng(1)
    low = rng.standard_normal((15, 3)) @ rng.standard_normal((3, 30))
    est = eigarray.EigenLayer(7, solver="covariance").fit(low)
    with pytest.raises(ValueError, match="singular"):
        est.score(low)


def test_score_samples_under_jax_jit():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    X = jnp.asarray(np.random.default_rng(3).standard_normal((80, 10)))
    est = eigarray.PCA(n_components=4).fit(X)
    np.testing.assert_allclose(np.asarray(jax.jit(est.score_samples)(X[:3])),
                               np.asarray(est.score_samples(X[:3])), rtol=1e-13)


def test_mle_on_float32_data_keeps_the_noise_that_float64_accumulation_resolves():
    # The spectrum of float32 data is accumulated in float64: its noise
    # eigenvalues (3e-5 here) are genuine, and a float32 floor (1.4e-4) cut
    # them (4 components where scikit-learn and float64 data give 11).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)) @ rng.standard_normal((4, 12)) * 3
    X += 5e-3 * rng.standard_normal((200, 12))
    X[:, 0] = 2.0
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        ours = eigarray.PCA(n_components="mle").fit(Xd).n_components_
        assert ours == SkPCA(n_components="mle", svd_solver="full").fit(Xd).n_components_ == 11
