"""eigarray.spectral: Hessian eigenpairs from HVPs and stochastic Lanczos quadrature."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import Backend, is_backend_array, to_backend

import eigarray
from eigarray import spectral, testing
from eigarray.spectral import SpectralDensity, hessian_eigsh, spectral_density

ROOT = pathlib.Path(__file__).resolve().parents[1]
EPS64 = np.finfo(np.float64).eps


def namespace_of(backend: Backend):
    """The module a user would pass as ``xp=`` for ``backend``."""
    import importlib

    return importlib.import_module({"jax": "jax.numpy"}.get(backend.module, backend.module))


def hutchinson(A, Z, j):
    """Per-probe ``zᵀ A^j z / n`` on the host (the estimate SLQ reproduces exactly)."""
    Aj = np.linalg.matrix_power(A, j)
    return np.einsum("pi,ij,pj->p", Z, Aj, Z) / A.shape[0]


def known_spectrum(n, rng):
    lam = np.r_[np.linspace(-1.0, 1.0, n - 3), [2.0, 3.0, 5.0]]
    A, _ = testing.matrix_with_spectrum(lam, rng=rng)
    return A, lam


# --------------------------------------------------------------------------
# spectral_density
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["gaussian", "lorentzian"])
def test_weights_sum_to_one_and_density_integrates_to_one(kind, rng):
    A, lam = known_spectrum(80, rng)
    sd = spectral_density(lambda v: A @ v, 80, n_probes=6, n_steps=15, rng=0, kind=kind)
    assert isinstance(sd, SpectralDensity)
    nodes, weights, grid, density = sd                  # unpacks as a 4-tuple
    assert nodes.shape == weights.shape == (6, 15)
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=15 * 4 * EPS64)
    # Ritz values lie inside the spectrum.
    assert lam.min() - 1e3 * EPS64 <= np.nanmin(nodes) and np.nanmax(nodes) <= lam.max() + 1e-12
    assert np.all(density >= 0) and grid.ndim == 1 and density.shape == grid.shape
    if kind == "gaussian":
        assert abs(np.trapezoid(density, grid) - 1.0) < 1e-3
    else:
        # Heavy tails: a grid of width L centred on the mass misses about
        # 4 sigma / (pi L) of it; on a wide grid the integral approaches 1.
        sigma = 0.01 * (np.nanmax(nodes) - np.nanmin(nodes))
        wide = np.linspace(-2000 * sigma, 2000 * sigma, 400001)
        missed = 4 * sigma / (np.pi * (wide[-1] - wide[0]))
        assert abs(np.trapezoid(sd.density_at(wide, kind="lorentzian"), wide)
                   - (1 - missed)) < 1e-3


def test_moments_match_traces_within_hutchinson_error(rng):
    n, n_probes = 100, 20
    A, lam = known_spectrum(n, rng)
    sd = spectral_density(lambda v: A @ v, n, n_probes=n_probes, n_steps=10, rng=7)
    for j in range(5):
        Aj = np.linalg.matrix_power(A, j)
        exact = np.sum(lam ** j) / n
        std = np.sqrt(2 * (np.sum(Aj ** 2) - np.sum(np.diag(Aj) ** 2)) / n_probes) / n
        err = abs(sd.moments(j) - exact)
        assert err <= 4 * std + 30 * n * EPS64 * max(1.0, np.abs(lam).max() ** j), (j, err, std)
    assert sd.moments(0) == pytest.approx(1.0, abs=10 * EPS64)
    np.testing.assert_array_equal(sd.moments([0, 1]), [sd.moments(0), sd.moments(1)])
    np.testing.assert_array_equal(sd.moments(np.arange(3)), sd.moments([0, 1, 2]))


def test_moments_are_the_hutchinson_estimates_of_the_same_probes(rng):
    # Gauss quadrature with m nodes is exact for degree <= 2m - 1.
    n, m, n_probes = 60, 4, 5
    A, lam = known_spectrum(n, rng)
    sd = spectral_density(lambda v: A @ v, n, n_probes=n_probes, n_steps=m, rng=3)
    Z = spectral.rademacher_probes(n_probes, n, np.random.default_rng(3))
    anorm = np.abs(lam).max()
    for j in range(2 * m):
        ref = hutchinson(A, Z, j).mean()
        assert abs(sd.moments(j) - ref) <= 30 * n * EPS64 * anorm ** j, j
    # Degree 2m is not integrated exactly any more: the check above can fail.
    assert abs(sd.moments(2 * m) - hutchinson(A, Z, 2 * m).mean()) > 1e-6 * anorm ** (2 * m)


def test_few_distinct_eigenvalues_stop_early_and_are_exact(rng):
    # Lanczos finds an invariant subspace after as many steps as distinct
    # eigenvalues: the rule is exact for every moment.
    n = 90
    distinct = np.array([-2.0, 0.5, 1.0, 3.0])
    A, _ = testing.matrix_with_spectrum(np.repeat(distinct, n // 4 + 1)[:n], rng=rng)
    calls = []

    def matvec(v):
        calls.append(1)
        return A @ v

    sd = spectral_density(matvec, n, n_probes=3, n_steps=30, rng=1)
    assert len(calls) == 3 * 4                     # 4 products per probe, then breakdown
    assert np.all(np.isfinite(sd.nodes[:, :4])) and np.all(np.isnan(sd.nodes[:, 4:]))
    assert np.all(sd.weights[:, 4:] == 0)
    np.testing.assert_allclose(sd.nodes[:, :4], np.tile(distinct, (3, 1)), rtol=0,
                               atol=30 * n * EPS64 * 3.0)
    Z = spectral.rademacher_probes(3, n, np.random.default_rng(1))
    for j in (1, 5, 11):
        ref = hutchinson(A, Z, j).mean()
        assert abs(sd.moments(j) - ref) <= 30 * n * EPS64 * 3.0 ** j
    assert sd.expectation(np.exp) == pytest.approx(
        np.mean(np.einsum("pi,ij,pj->p", Z, _expm_sym(A), Z)) / n, rel=30 * n * EPS64)


def _expm_sym(A):
    w, Q = np.linalg.eigh(A)
    return (Q * np.exp(w)) @ Q.T


@pytest.mark.parametrize("n", [1, 2, 5])
def test_tiny_operators_cap_the_steps(n, rng):
    A, lam = known_spectrum(n + 3, rng)
    A = A[:n, :n]
    sd = spectral_density(lambda v: A @ v, n, n_probes=2, n_steps=30, rng=0)
    assert sd.nodes.shape == (2, 30)
    assert np.all(np.isnan(sd.nodes[:, n:]))
    np.testing.assert_allclose(sd.weights.sum(axis=1), 1.0, rtol=0, atol=30 * n * EPS64)
    # n steps span the whole space: every moment is the probes' Hutchinson estimate.
    Z = spectral.rademacher_probes(2, n, np.random.default_rng(0))
    anorm = np.abs(np.linalg.eigvalsh(A)).max()
    for j in range(7):
        ref = hutchinson(A, Z, j).mean()
        assert abs(sd.moments(j) - ref) <= 30 * n * EPS64 * max(anorm, 1.0) ** j, j


def test_constant_spectrum_and_sigma_grid_arguments():
    sd = spectral_density(lambda v: 2.5 * v, 10, n_probes=2, n_steps=5, rng=0)
    assert np.all(sd.nodes[:, 0] == 2.5) and np.all(np.isnan(sd.nodes[:, 1:]))
    assert abs(np.trapezoid(sd.density, sd.grid) - 1.0) < 1e-3
    grid = np.linspace(0, 5, 501)
    sd2 = spectral_density(lambda v: 2.5 * v, 10, n_probes=2, n_steps=5, rng=0, sigma=0.1,
                           grid=grid)
    np.testing.assert_array_equal(sd2.grid, grid)
    peak = 1 / (0.1 * np.sqrt(2 * np.pi))
    assert sd2.density[250] == pytest.approx(peak, rel=30 * EPS64)


def test_a_spectrum_constant_to_rounding_smooths_like_a_constant_one():
    # Q (2.5 I) Qᵀ formed in floating point: its nodes spread by a few ulps,
    # and 1% of that as sigma left the grid 3 distinct points; the density
    # integrated to 14.
    H = testing.matrix_with_spectrum(np.full(100, 2.5), rng=0)[0]
    H = (H + H.T) / 2
    sd = spectral_density(lambda v: H @ v, 100, n_probes=10, n_steps=5, rng=0)
    exact = spectral_density(lambda v: 2.5 * v, 100, n_probes=10, n_steps=5, rng=0)
    assert abs(np.trapezoid(sd.density, sd.grid) - 1.0) < 1e-3
    np.testing.assert_allclose(sd.grid, exact.grid, rtol=1e-12)
    np.testing.assert_allclose(sd.density, exact.density, rtol=1e-6, atol=1e-6)


def test_every_backend_gets_the_same_quadrature(backend, rng):
    n = 50
    A, lam = known_spectrum(n, rng)
    Ab = to_backend(A, backend)
    seen = []

    def matvec(v):
        seen.append(is_backend_array(v, backend))
        return Ab @ v

    sd = spectral_density(matvec, n, n_probes=3, n_steps=6, rng=5, xp=namespace_of(backend),
                          dtype="float64")
    assert all(seen) and len(seen) == 18
    assert isinstance(sd.nodes, np.ndarray) and isinstance(sd.density, np.ndarray)
    Z = spectral.rademacher_probes(3, n, np.random.default_rng(5))
    for j in range(12):
        assert abs(sd.moments(j) - hutchinson(A, Z, j).mean()) <= 30 * n * EPS64 * 5.0 ** j
    np.testing.assert_array_equal(testing._host(Ab), A)


# --------------------------------------------------------------------------
# hessian_eigsh
# --------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_quadratic_model_recovers_known_eigenvalues(which, rng):
    n = 120
    lam = np.r_[np.linspace(-3.0, 1.0, n - 4), [2.0, 4.0, 6.0, 8.0]]
    H, _ = testing.matrix_with_spectrum(lam, rng=rng)
    ref = {"LA": lam[-4:], "SA": lam[:4], "LM": np.sort(lam[np.argsort(-np.abs(lam))[:4]])}
    res = hessian_eigsh(lambda v: H @ v, n, k=4, which=which, tol=0, rng=0)
    testing.assert_eigenpairs(H, res.eigenvalues, res.eigenvectors, exact=ref[which])
    assert res.info.all_converged and res.info.n_matvec > 0


def test_default_tolerance_bounds_the_eigenvalue_error(rng):
    n = 150
    lam = np.r_[np.linspace(0.0, 1.0, n - 3), [1.5, 2.0, 3.0]]
    H, _ = testing.matrix_with_spectrum(lam, rng=rng)
    loose = hessian_eigsh(lambda v: H @ v, n, k=3, rng=0)
    tight = hessian_eigsh(lambda v: H @ v, n, k=3, tol=0, rng=0)
    assert loose.info.all_converged
    assert np.all(loose.info.residual_norms <= 2 * np.sqrt(EPS64) * 3.0)
    # Hermitian: each eigenvalue error is at most the residual norm.
    err = np.abs(loose.eigenvalues - lam[-3:])
    assert np.all(err <= loose.info.residual_norms + 30 * n * EPS64 * 3.0)
    assert loose.info.n_matvec < tight.info.n_matvec


def test_float32_hvp(rng):
    n = 100
    lam = np.r_[np.linspace(-1.0, 1.0, n - 2), [3.0, 5.0]]
    H, _ = testing.matrix_with_spectrum(lam, rng=rng)
    H32 = H.astype(np.float32)
    v0 = np.ones(n, dtype=np.float32)
    res = hessian_eigsh(lambda v: H32 @ v, n, k=2, v0=v0, rng=0)
    assert res.eigenvalues.dtype == np.float32 and res.eigenvectors.dtype == np.float32
    assert res.info.all_converged
    eps32 = float(np.finfo(np.float32).eps)
    exact32 = np.linalg.eigvalsh(H32.astype(np.float64))[-2:]
    err = np.abs(res.eigenvalues.astype(np.float64) - exact32)
    assert np.all(err <= res.info.residual_norms + 30 * n * eps32 * 5.0)
    res = hessian_eigsh(lambda v: H32 @ v, n, k=2, dtype=np.float32, tol=0, rng=0)
    testing.assert_eigenpairs(H32, res.eigenvalues, res.eigenvectors)


def test_every_backend_returns_its_own_arrays(backend, rng):
    n = 60
    A, lam = known_spectrum(n, rng)
    Ab = to_backend(A, backend)
    v0 = to_backend(np.ones(n), backend)
    for kwargs in ({"xp": namespace_of(backend), "dtype": "float64"}, {"v0": v0}):
        w, V = hessian_eigsh(lambda v: Ab @ v, n, k=3, tol=0, rng=0, **kwargs)
        assert is_backend_array(w, backend) and is_backend_array(V, backend)
        testing.assert_eigenpairs(A, w, V, exact=lam[-3:])
    np.testing.assert_array_equal(testing._host(v0), np.ones(n))
    np.testing.assert_array_equal(testing._host(Ab), A)


def test_hvp_in_another_namespace_is_moved(rng):
    torch = pytest.importorskip("torch")
    A, lam = known_spectrum(40, rng)
    w, V = hessian_eigsh(lambda v: A @ testing._host(v), 40, k=2, xp=torch,
                         dtype=torch.float64, tol=0, rng=0)
    assert isinstance(w, torch.Tensor)
    testing.assert_eigenpairs(A, w, V, exact=lam[-2:])


def test_torch_products_that_require_grad_are_detached(rng):
    torch = pytest.importorskip("torch")
    A, lam = known_spectrum(40, rng)
    At = torch.from_numpy(A).requires_grad_()
    w, V = hessian_eigsh(lambda v: At @ v, 40, k=2, xp=torch, dtype=torch.float64,
                         device="cpu", tol=0, rng=0)
    assert not w.requires_grad and not V.requires_grad
    testing.assert_eigenpairs(A, w, V, exact=lam[-2:])
    sd = spectral_density(lambda v: At @ v, 40, n_probes=2, n_steps=3, xp=torch,
                          dtype=torch.float64, device="cpu", rng=0)
    assert np.all(np.isfinite(sd.density))
    with pytest.raises(ValueError, match="`device` must be a device of"):
        hessian_eigsh(lambda v: At @ v, 40, k=2, xp=torch, device="no-such-device")


def test_nonconvergence_warns_or_raises(rng):
    A, _ = known_spectrum(200, rng)
    with pytest.warns(eigarray.ConvergenceWarning) as record:
        res = hessian_eigsh(lambda v: A @ v, 200, k=3, tol=0, maxiter=1, ncv=8, rng=0)
    assert record[0].filename == __file__               # the warning names the caller
    assert not res.info.all_converged
    with pytest.raises(eigarray.NoConvergence) as exc:
        hessian_eigsh(lambda v: A @ v, 200, k=3, tol=0, maxiter=1, ncv=8, rng=0,
                      on_nonconvergence="raise")
    assert exc.value.result.eigenvalues.shape == (3,)


def test_hvp_less_accurate_than_tol_stops_at_its_error():
    # An HVP computed in float32 but handed back in float64 (no dtype
    # warning): at tol=0 Lanczos stops at the products' error, and the
    # warning, which names the caller, says why.
    A, _ = testing.laplacian_2d(50, 60)
    A32 = A.astype(np.float32)
    n = A.shape[0]
    with pytest.warns(eigarray.ConvergenceWarning, match="depart from a Hermitian") as record:
        res = hessian_eigsh(lambda v: (A32 @ v.astype(np.float32)).astype(np.float64), n,
                            k=4, tol=0, rng=0)
    assert record[0].filename == __file__
    assert res.info.n_matvec < 1000 and not res.info.converged.any()


def test_callback_sees_the_restarts(rng):
    A, _ = known_spectrum(100, rng)
    states = []
    hessian_eigsh(lambda v: A @ v, 100, k=2, rng=0, ncv=10, callback=states.append)
    assert len(states) >= 1 and states[-1].n_converged == 2


def test_power_method(rng):
    n = 80
    lam = np.r_[np.linspace(0.0, 1.0, n - 3), [3.0, 4.0, 6.0]]
    H, _ = testing.matrix_with_spectrum(lam, rng=rng)
    res = hessian_eigsh(lambda v: H @ v, n, k=3, method="power", tol=0, rng=0)
    testing.assert_eigenpairs(H, res.eigenvalues, res.eigenvectors, exact=lam[-3:])
    # Default tolerance, a starting vector: errors within the residual norms.
    res = hessian_eigsh(lambda v: H @ v, n, k=3, method="power", v0=np.ones(n), rng=0)
    assert res.info.all_converged
    err = np.abs(res.eigenvalues - lam[-3:])
    assert np.all(err <= res.info.residual_norms + 30 * n * EPS64 * 6.0)
    with pytest.raises(ValueError, match="`which='BE'` needs method='lanczos'"):
        hessian_eigsh(lambda v: H @ v, n, k=2, method="power", which="BE")
    with pytest.raises(ValueError, match="`ncv` is the Lanczos basis size"):
        hessian_eigsh(lambda v: H @ v, n, k=2, method="power", ncv=10)


# --------------------------------------------------------------------------
# Real autodiff HVPs, and the examples of docs/spectral.rst
# --------------------------------------------------------------------------

def doc_examples() -> dict[str, str]:
    text = (ROOT / "docs" / "spectral.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", text)
    out = {}
    for block in blocks:
        code = "\n".join(line[3:] for line in block.splitlines())
        out["torch" if "import torch" in code else "jax"] = code
    return out


def run_example(name: str, capsys) -> dict:
    code = doc_examples()[name]
    scope: dict = {"__name__": f"spectral_doc_{name}"}
    exec(compile(code, f"docs/spectral.rst[{name}]", "exec"), scope)
    capsys.readouterr()
    return scope


def check_autodiff_example(scope, H, xp_kwargs):
    """The example's results against the dense Hessian ``H`` (host float64)."""
    H = (H + H.T) / 2
    n = H.shape[0]
    exact = np.linalg.eigvalsh(H)
    hnorm = np.abs(exact).max()
    # Default tolerance: eigenvalue errors bounded by the residual norms.
    res = scope["result"]
    assert res.info.all_converged and res.info.n_matvec > 0
    err = np.abs(testing._host(res.eigenvalues) - exact[-3:])
    assert np.all(err <= res.info.residual_norms + 30 * n * EPS64 * hnorm)
    assert testing._host(res.eigenvectors).shape == (n, 3)
    # Working precision: LAPACK's ratios against the dense Hessian.
    tight = scope["hessian_eigsh"](scope["hvp"], n, k=3, tol=0, rng=0, **xp_kwargs)
    testing.assert_eigenpairs(H, tight.eigenvalues, tight.eigenvectors, exact=exact[-3:])
    # SLQ: exact Gauss quadrature of the same probes (j < 2 n_steps).
    sd = scope["sd"]
    assert sd.nodes.shape == (4, 15)
    Z = spectral.rademacher_probes(4, n, np.random.default_rng(0))
    for j in range(5):
        ref = hutchinson(H, Z, j).mean()
        assert abs(sd.moments(j) - ref) <= 30 * n * EPS64 * max(hnorm, 1.0) ** j
    assert abs(np.trapezoid(sd.density, sd.grid) - 1.0) < 1e-3


def test_torch_model_doc_example(capsys):
    torch = pytest.importorskip("torch")
    scope = run_example("torch", capsys)
    assert isinstance(scope["w"], torch.Tensor) and scope["w"].dtype == torch.float64
    H = scope["H"].detach().numpy()
    assert H.shape == (41, 41)
    check_autodiff_example(scope, H, {"xp": torch, "dtype": torch.float64})


def test_jax_model_doc_example(capsys):
    pytest.importorskip("jax")
    import jax

    jax.config.update("jax_enable_x64", True)
    scope = run_example("jax", capsys)
    assert eigarray._namespace.is_jax_array(scope["w"])
    H = np.asarray(scope["H"])
    assert H.shape == (41, 41) and H.dtype == np.float64
    check_autodiff_example(scope, H, {"xp": scope["jnp"]})


# torch's forward-mode AD loads its decompositions with torch.jit.script on
# first use, which warns in torch 2.13 (torch's own deprecation, not ours).
TORCH_JIT_DEPRECATION = "ignore:`torch.jit.script` is deprecated:DeprecationWarning"


@pytest.mark.filterwarnings(TORCH_JIT_DEPRECATION)
@pytest.mark.parametrize("idiom", ["torch.func.jvp", "torch.autograd.functional.hvp"])
def test_torch_functional_hvps_of_a_quadratic(idiom, rng):
    # f(t) = ½ tᵀ H t + Σ t⁴ has the Hessian H at t = 0.
    torch = pytest.importorskip("torch")
    n = 12
    lam = np.r_[np.linspace(-1.0, 1.0, n - 2), [2.0, 3.0]]
    H, _ = testing.matrix_with_spectrum(lam, rng=rng)
    Ht = torch.from_numpy(H)

    def loss(t):
        return 0.5 * t @ (Ht @ t) + (t ** 4).sum()

    theta = torch.zeros(n, dtype=torch.float64)
    if idiom == "torch.func.jvp":
        def hvp(v):
            return torch.func.jvp(torch.func.grad(loss), (theta,), (v,))[1]
    else:
        def hvp(v):
            return torch.autograd.functional.hvp(loss, theta, v)[1]
    res = hessian_eigsh(hvp, n, k=2, xp=torch, dtype=torch.float64, tol=0, rng=0)
    assert isinstance(res.eigenvalues, torch.Tensor)
    testing.assert_eigenpairs(H, res.eigenvalues, res.eigenvectors, exact=lam[-2:])


def test_torch_mlp_without_flattening_helper_tuple_is_named():
    torch = pytest.importorskip("torch")
    theta = torch.zeros(5, dtype=torch.float64)

    def loss(t):
        return (t ** 4).sum() + (t ** 2).sum()

    with pytest.raises(TypeError, match=r"`hvp` must return an array.*second element"):
        hessian_eigsh(lambda v: torch.autograd.functional.hvp(loss, theta, v), 5, k=1,
                      xp=torch, dtype=torch.float64)


# --------------------------------------------------------------------------
# Bad input, import weight
# --------------------------------------------------------------------------

@pytest.mark.parametrize("n, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                      (True, TypeError), ("10", TypeError)])
def test_bad_n(n, error):
    with pytest.raises(error, match="`n` must be an integer"):
        hessian_eigsh(lambda v: v, n, k=1)
    with pytest.raises(error, match="`n` must be an integer"):
        spectral_density(lambda v: v, n)


def test_probes_and_density_arguments_are_checked():
    from eigarray.spectral import rademacher_probes

    np.testing.assert_array_equal(rademacher_probes(2, 5, 0),
                                  rademacher_probes(2, 5, np.random.default_rng(0)))
    assert rademacher_probes(3, 4, None).shape == (3, 4)
    with pytest.raises(ValueError, match="`n_probes` must be an integer with 1 <= n_probes"):
        rademacher_probes(-1, 5, 0)
    with pytest.raises(TypeError, match="`rng` must be None, an int"):
        rademacher_probes(2, 5, "seed")
    with pytest.raises(TypeError, match="`dtype` must .*foo"):
        hessian_eigsh(lambda v: v, 10, k=1, dtype="foo")
    density = spectral_density(lambda v: 2 * v, 20, rng=0)
    with pytest.raises(TypeError, match="`f` must be callable"):
        density.expectation(3)
    assert density.expectation(np.exp) == pytest.approx(np.exp(2.0), rel=1e-12)


def test_bad_arguments_are_named():
    A = np.diag(np.arange(1.0, 11.0))

    def hvp(v):
        return A @ v

    with pytest.raises(TypeError, match="`hvp` must be a callable"):
        hessian_eigsh(A, 10)
    with pytest.raises(TypeError, match="`matvec` must be a callable"):
        spectral_density(A, 10)
    with pytest.raises(ValueError, match=r"`hvp` must return an array of shape \(10,\)"):
        hessian_eigsh(lambda v: np.zeros(9), 10, k=2)
    with pytest.raises(ValueError, match=r"`matvec` must return an array of shape \(10,\)"):
        spectral_density(lambda v: np.zeros((10, 1)), 10)
    with pytest.raises(TypeError, match="`hvp` must return an array"):
        hessian_eigsh(lambda v: list(v), 10, k=2)
    with pytest.raises(ValueError, match=r"`k` must be an integer with 0 < k < n = 10"):
        hessian_eigsh(hvp, 10, k=10)
    with pytest.raises(ValueError, match="`which` must be one of"):
        hessian_eigsh(hvp, 10, k=2, which="XX")
    with pytest.raises(ValueError, match="`method` must be one of"):
        hessian_eigsh(hvp, 10, k=2, method="arnoldi")
    with pytest.raises(ValueError, match="`tol` must be a non-negative"):
        hessian_eigsh(hvp, 10, k=2, tol=-1.0)
    with pytest.raises(TypeError, match="`xp` must be an array namespace"):
        hessian_eigsh(hvp, 10, k=2, xp="numpy")
    with pytest.raises(TypeError, match="`v0` must be an array"):
        hessian_eigsh(hvp, 10, k=2, v0=[1.0] * 10)
    for v0 in (np.ones(9), np.ones((10, 1))):
        with pytest.raises(ValueError, match=r"`v0` must have shape \(10,\) to match `n`"):
            hessian_eigsh(hvp, 10, k=2, v0=v0)
    with pytest.raises(TypeError, match="`dtype` must have a real or complex floating"):
        hessian_eigsh(hvp, 10, k=2, dtype="U3")
    for value in (0, -1):
        with pytest.raises(ValueError, match="`n_probes` must be an integer with n_probes >= 1"):
            spectral_density(hvp, 10, n_probes=value)
        with pytest.raises(ValueError, match="`n_steps` must be an integer with n_steps >= 1"):
            spectral_density(hvp, 10, n_steps=value)
    with pytest.raises(TypeError, match="`n_steps` must be an integer"):
        spectral_density(hvp, 10, n_steps=3.0)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        spectral_density(hvp, 10, kind="box")
    for sigma in (0.0, -1.0, np.inf):
        with pytest.raises(ValueError, match="`sigma` must be a"):
            spectral_density(hvp, 10, sigma=sigma)
    with pytest.raises(ValueError, match="`grid` must be a non-empty 1-D array"):
        spectral_density(hvp, 10, grid=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="`grid` must not contain NaN"):
        spectral_density(hvp, 10, grid=np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="`j` must be an integer with j >= 0"):
        spectral_density(hvp, 10, n_probes=1, n_steps=2).moments(-1)
    with pytest.raises(TypeError, match="`j` must be an integer"):
        spectral_density(hvp, 10, n_probes=1, n_steps=2).moments([1, 0.5])


def test_inputs_are_not_modified_and_warnings_stay_quiet(rng):
    A, _ = known_spectrum(30, rng)
    v0 = np.ones(30)
    v0.setflags(write=False)
    grid = np.linspace(-2, 6, 11)
    grid.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hessian_eigsh(lambda v: A @ v, 30, k=2, v0=v0, rng=0)
        spectral_density(lambda v: A @ v, 30, n_probes=2, n_steps=4, grid=grid, rng=0)
    np.testing.assert_array_equal(v0, np.ones(30))
    np.testing.assert_array_equal(grid, np.linspace(-2, 6, 11))


def test_submodule_import_is_light():
    code = ("import sys; import eigarray.spectral; from eigarray import spectral;"
            " heavy = [m for m in ('numba', 'scipy', 'torch', 'jax', 'dask', 'cupy')"
            " if m in sys.modules]; print(heavy); import eigarray;"
            " print(sorted(spectral.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == str(sorted(["SpectralDensity", "hessian_eigsh", "rademacher_probes",
                                 "spectral_density"]))


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_hvp_returning_nan_is_named(method):
    calls = []

    def hvp(v):
        calls.append(1)
        return v * (np.nan if len(calls) > 3 else 2.0)

    with pytest.raises(ValueError, match="`hvp` returned NaN or Inf"):
        hessian_eigsh(hvp, 10, k=2, method=method, rng=0)
    with pytest.raises(ValueError, match="`matvec` returned NaN or Inf"):
        spectral_density(lambda v: v * np.inf, 10, n_probes=2, n_steps=3, rng=0)


def test_jax_float32_dtype_given_as_a_scalar_class(tmp_path):
    # JAX's namespace gives scalar classes (jax.numpy.float32) for dtypes: the
    # host iteration must still run in float32 (it fell back to float64, and
    # without x64 the flags were wrong).
    pytest.importorskip("jax")
    script = tmp_path / "jax_dtype.py"
    script.write_text(
        "import numpy as np, jax, jax.numpy as jnp, eigarray.spectral as sp\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "S = np.diag(np.linspace(1.0, 2.0, 30))\n"
        "seen = set()\n"
        "def hvp(v):\n"
        "    seen.add(str(v.dtype)); return jnp.asarray(S, dtype=v.dtype) @ v\n"
        "for dt in (jnp.float32, 'float32'):\n"
        "    r = sp.hessian_eigsh(hvp, 30, 2, xp=jnp, dtype=dt, rng=0)\n"
        "    assert seen == {'float32'} and str(r[0].dtype) == 'float32', (seen, r[0].dtype)\n"
        "    seen.clear()\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_float32_density_beside_a_large_outlier_uses_every_step():
    # The stopping test once carried a factor sqrt(n): in float32 a bulk
    # 1,700 eps ||A|| wide beside an outlier counted as one cluster, and the
    # density came from 3 steps (off by 3.5 where it is 0.5).
    n = 2000
    d = np.concatenate([np.linspace(-1.0, 1.0, n - 1), [1e4]])
    np.random.default_rng(0).shuffle(d)
    x = np.linspace(-0.8, 0.8, 81)
    for dtype in (np.float64, np.float32):
        dd = d.astype(dtype)
        density = spectral_density(lambda v, dd=dd: dd * v, n, n_probes=4, n_steps=40,
                                   dtype=dtype, rng=0)
        assert np.all(np.isfinite(density.nodes).sum(axis=1) == 40)
        assert np.max(np.abs(density.density_at(x, sigma=0.05) - 0.5)) < 0.05


def test_expectation_sees_only_nodes():
    # A probe that stops early (n_steps > n) leaves unused slots: f (here a
    # log, for a log-determinant) is not evaluated at 0 there.
    A = np.diag(np.arange(1.0, 11.0))
    density = spectral_density(lambda v: A @ v, 10, n_steps=20, rng=0)
    with np.errstate(all="raise"):
        value = density.expectation(np.log)
    assert value == pytest.approx(np.mean(np.log(np.arange(1.0, 11.0))), rel=1e-12)


def test_float64_without_jax_x64_is_named():
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    code = ("import numpy as np, jax.numpy as jnp\n"
            "from eigarray.spectral import hessian_eigsh\n"
            "try:\n"
            "    hessian_eigsh(lambda v: 2.0 * v, 10, k=1, xp=jnp, dtype=jnp.float64)\n"
            "except TypeError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "JAX_ENABLE_X64": "0"})
    assert "`dtype` is float64" in out.stdout and "jax_enable_x64" in out.stdout


def test_small_argument_checks_are_consistent():
    density = spectral_density(lambda v: 2.0 * v, 10, rng=0)
    assert density.moments(np.array(2)) == density.moments(2) == pytest.approx(4.0)
    for sigma in (0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="`sigma` must be a positive finite number"):
            density.density_at([0.0], sigma=sigma)
    with pytest.raises(TypeError, match="`v0` is complex but `dtype` is real"):
        hessian_eigsh(lambda v: 2.0 * v, 10, k=1, v0=np.ones(10) * 1j, dtype=np.float64)
    from eigarray.testing import assert_eigenpairs

    with pytest.raises(AssertionError, match="3 eigenvalues, but 2 exact ones"):
        assert_eigenpairs(np.eye(3), np.ones(3), np.eye(3), exact=np.ones(2))


# --------------------------------------------------------------------------
# Product dtypes, grids, and the limits the docs state
# --------------------------------------------------------------------------

def test_complex_product_in_a_real_solve_is_refused(backend, rng):
    # The cast to the real working dtype dropped the imaginary part: the
    # spectrum of Re(A) came back, flagged converged.
    n = 30
    G = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    A = (G + G.conj().T) / 2
    Ab = to_backend(A, backend)
    xp = namespace_of(backend)

    def product(v):
        return Ab @ eigarray._namespace.array_namespace(v).astype(v, Ab.dtype)

    with pytest.raises(TypeError, match=r"`hvp` returned a complex array \(complex128\) in a "
                                        r"real solve.*pass a complex `dtype`"):
        hessian_eigsh(product, n, k=2, xp=xp, dtype="float64", rng=0)
    with pytest.raises(TypeError, match=r"`matvec` returned a complex array.*complex `dtype`"):
        spectral_density(product, n, n_probes=2, n_steps=3, xp=xp, dtype="float64", rng=0)
    # With a complex dtype the same callable gives the spectrum of A.
    w, V = hessian_eigsh(product, n, k=2, xp=xp, dtype="complex128", tol=0, rng=0)
    testing.assert_eigenpairs(A, w, V, exact=np.linalg.eigvalsh(A)[-2:])
    np.testing.assert_array_equal(testing._host(Ab), A)


def _precision_warnings(record):
    return [w for w in record if "array in a float64 solve" in str(w.message)]


def test_less_precise_products_warn_once_and_change_nothing(rng):
    # A float32 product in a float64 solve can cost hundreds of restarts
    # against float32 noise; the first product's dtype warns, once.
    n = 60
    H, _ = testing.matrix_with_spectrum(np.linspace(-1.0, 5.0, n), rng=rng)

    def hvp32(v):
        return (H @ v).astype(np.float32)

    def hvp64(v):                                  # the same numbers, in float64
        return hvp32(v).astype(np.float64)

    kwargs = {"k": 3, "rng": 0, "maxiter": 3, "on_nonconvergence": "raise"}
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            res = hessian_eigsh(hvp32, n, **kwargs)
        except eigarray.NoConvergence as exc:
            res = exc.result
        sd = spectral_density(hvp32, n, n_probes=3, n_steps=8, rng=0)
    found = _precision_warnings(record)
    assert len(found) == 2, [str(w.message) for w in record]
    assert [w.category for w in found] == [RuntimeWarning] * 2
    assert all(w.filename == __file__ for w in found)          # names the caller
    assert "`hvp` returned a float32 array" in str(found[0].message)
    assert "`matvec` returned a float32 array" in str(found[1].message)
    assert all("dtype=float32" in str(w.message) for w in found)
    # Results unchanged: bit for bit those of the same products in float64.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            ref = hessian_eigsh(hvp64, n, **kwargs)
        except eigarray.NoConvergence as exc:
            ref = exc.result
        sd_ref = spectral_density(hvp64, n, n_probes=3, n_steps=8, rng=0)
    np.testing.assert_array_equal(res.eigenvalues, ref.eigenvalues)
    np.testing.assert_array_equal(res.info.n_matvec, ref.info.n_matvec)
    np.testing.assert_array_equal(sd.nodes, sd_ref.nodes)
    # At the products' precision there is nothing to warn about.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = hessian_eigsh(hvp32, n, k=3, rng=0, dtype=np.float32)
    assert res.info.all_converged and res.eigenvalues.dtype == np.float32


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_float32_model_in_a_float64_solve_warns(framework, rng):
    n = 20
    H, _ = testing.matrix_with_spectrum(np.linspace(1.0, 2.0, n), rng=rng)
    if framework == "torch":
        torch = pytest.importorskip("torch")
        H32, xp, dtype = torch.from_numpy(H.astype(np.float32)), torch, torch.float64

        def hvp(v):
            return H32 @ v.to(torch.float32)
    else:
        pytest.importorskip("jax")
        import jax
        import jax.numpy as xp

        jax.config.update("jax_enable_x64", True)
        H32, dtype = xp.asarray(H, dtype=xp.float32), xp.float64

        def hvp(v):
            return H32 @ v.astype(xp.float32)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        spectral_density(hvp, n, n_probes=2, n_steps=4, xp=xp, dtype=dtype, rng=0)
    found = _precision_warnings(record)
    assert len(found) == 1 and "`matvec` returned a float32 array" in str(found[0].message)


def test_complex_grid_is_refused():
    # Its imaginary part was dropped.
    with pytest.raises(TypeError, match=r"`grid` must be a 1-D array of real numbers; got "
                                        r"ndarray of dtype complex128"):
        spectral_density(lambda v: 2.0 * v, 10, grid=np.array([1 + 1j, 2.0]))
    density = spectral_density(lambda v: 2.0 * v, 10, n_probes=1, rng=0)
    with pytest.raises(TypeError, match="`x` must be a 1-D array of real numbers"):
        density.density_at(np.array([2.0 + 0.5j]))


def test_lorentzian_mass_outside_the_grid_is_as_documented():
    # Notes of spectral_density: arctan(sigma / d) / pi past an end at
    # distance d; on the default grid 1.1% (mass at the centre), 1.8%
    # (uniform spectrum), 5.6% (mass at the two extreme nodes).
    notes = spectral_density.__doc__
    assert "4 sigma / (π L)" in notes and "1.1%" in notes
    n = 400
    for quoted, d in {"1.8%": np.linspace(0.0, 1.0, n),
                      "5.6%": np.repeat([0.0, 1.0], n // 2)}.items():
        sd = spectral_density(lambda v, d=d: d * v, n, n_probes=10, n_steps=60, rng=0,
                              kind="lorentzian")
        missed = 1 - np.trapezoid(sd.density, sd.grid)
        assert quoted in notes
        assert round(100 * missed, 1) == float(quoted[:-1]), (quoted, missed)
    # One node at the centre of a grid of width L: 2 arctan(2 sigma / L) / pi,
    # about 4 sigma / (pi L); the default grid has L = 112 sigma.
    density = spectral_density(lambda v: 2.0 * v, 10, n_probes=1, n_steps=3, rng=0)
    for L, sigma in ((2.0, 0.01), (1.12, 0.01)):
        x = np.linspace(2.0 - L / 2, 2.0 + L / 2, 200001)
        missed = 1 - np.trapezoid(density.density_at(x, sigma=sigma, kind="lorentzian"), x)
        assert missed == pytest.approx(2 * np.arctan(2 * sigma / L) / np.pi, rel=1e-4)
        assert missed == pytest.approx(4 * sigma / (np.pi * L), rel=1e-3)
    assert round(100 * missed, 1) == 1.1


@pytest.mark.parametrize("copies, k", [(30, 6), (8, 10), (20, 10)])
def test_every_copy_of_a_null_space_up_to_k(copies, k):
    # Notes of hessian_eigsh: a null space of many dimensions is found as
    # many times as k allows, at the default tol (before the check for
    # further copies, 4 of 6 copies came back, then 0.5 flagged converged).
    n = 150
    lam = np.r_[np.zeros(copies), np.linspace(0.5, 3.0, n - copies)]
    H, _ = testing.matrix_with_spectrum(lam, rng=0)
    res = hessian_eigsh(lambda v: H @ v, n, k=k, which="SA", rng=0)
    assert res.info.all_converged
    exact = lam[:k]
    err = np.abs(res.eigenvalues - exact)
    assert np.all(err <= res.info.residual_norms + 30 * n * EPS64 * 3.0), res.eigenvalues


def test_power_finds_every_copy_up_to_k(rng):
    n = 150
    lam = np.r_[np.zeros(8), np.linspace(0.5, 3.0, n - 8)]
    H, _ = testing.matrix_with_spectrum(lam, rng=0)
    res = hessian_eigsh(lambda v: H @ v, n, k=10, which="SA", method="power", rng=0)
    assert res.info.all_converged
    err = np.abs(res.eigenvalues - lam[:10])
    assert np.all(err <= res.info.residual_norms + 30 * n * EPS64 * 3.0)


def test_bfloat16_products_in_a_torch_solve():
    # bfloat16 has no NumPy dtype: the products are read as float32 (the
    # solve warned, then crashed in the move to the host).
    torch = pytest.importorskip("torch")
    n = 40
    H = np.random.default_rng(0).standard_normal((n, n))
    H = H + H.T
    Ht = torch.asarray(H, dtype=torch.float32)
    with pytest.warns(RuntimeWarning, match="bfloat16"):
        res = hessian_eigsh(lambda v: (Ht @ v).to(torch.bfloat16), n, k=2, rng=0, xp=torch,
                            dtype=torch.float32, tol=1e-2)
    assert isinstance(res.eigenvalues, torch.Tensor)
    exact = np.linalg.eigvalsh(H)[-2:]
    np.testing.assert_allclose(res.eigenvalues.numpy(), exact, rtol=0.05)
