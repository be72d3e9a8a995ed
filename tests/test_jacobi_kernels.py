"""Tests of the three Jacobi implementations, called directly.

* ``eigarray.kernels.cpu.jacobi``: the Numba kernels (and the LAPACK driver);
* ``eigarray._jacobi_reference``: the Array API reference, with NumPy (through
  array-api-compat) and array-api-strict;
* ``eigarray.kernels.cuda.jacobi_warp`` / ``jacobi_block``: the numba-cuda
  kernels under the CUDA simulator.

Numba reads ``NUMBA_ENABLE_CUDASIM`` when ``numba.cuda`` is first imported, and
this process already uses Numba for the CPU kernels, so the simulator runs in
one subprocess per session: this file, run as a script with the variable set
(``python tests/test_jacobi_kernels.py cudasim CASES.npz OUT.npz``), launches
both CUDA kernels on every case and saves the outputs; the tests then check
them here, against the accuracy standard and against the CPU kernel and the
reference.  The subprocess exits with code 3 when the simulator cannot be
imported, and the CUDA tests are skipped.

Accuracy standard (LAPACK's, per matrix): ``||A V - V diag(w)||_F / (n ||A||_F
eps) < 30``, ``||V^H V - I||_F / (n eps) < 30`` and
``max |w - w_numpy| / (n ||A||_F eps) < 30``; for graded positive definite
``A = D H D`` every eigenvalue to a relative error below
``100 cond(H) eps`` against a 50-digit mpmath reference.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

THRESHOLD = 30.0
DTYPES = [np.float64, np.complex128, np.float32, np.complex64]
REAL_AND_COMPLEX = [np.float64, np.complex128, np.float32]


# --------------------------------------------------------------------------
# helpers (to move to eigarray.testing)
# --------------------------------------------------------------------------


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def _wide(A):
    return A.astype(np.complex128 if np.iscomplexobj(A) else np.float64)


def _scale2(x, k):
    """``x * 2**k`` in two exact steps (``2**k`` itself may not be representable)."""
    return x * np.ldexp(1.0, k // 2) * np.ldexp(1.0, k - k // 2)


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(num == 0, 0.0, num / den)


def residual_ratio(A, w, V, dtype) -> np.ndarray:
    """``||A V - V diag(w)||_F / (n ||A||_F eps)`` of every matrix, eps of ``dtype``."""
    n = A.shape[-1]
    A, V = _wide(A), _wide(V)
    num = np.linalg.norm(A @ V - V * w.astype(np.float64)[..., None, :], axis=(-2, -1))
    return _ratio(num, n * np.linalg.norm(A, axis=(-2, -1)) * _eps(dtype))


def orthogonality_ratio(V, dtype) -> np.ndarray:
    """``||V^H V - I||_F / (n eps)`` of every matrix, eps of ``dtype``."""
    n = V.shape[-1]
    V = _wide(V)
    G = np.swapaxes(V.conj(), -1, -2) @ V - np.eye(n)
    return np.linalg.norm(G, axis=(-2, -1)) / (n * _eps(dtype))


def eigenvalue_ratio(A, w, w_ref, dtype) -> np.ndarray:
    """``max |w - w_ref| / (n ||A||_F eps)`` of every matrix, eps of ``dtype``."""
    n = A.shape[-1]
    num = np.max(np.abs(w.astype(np.float64) - w_ref.astype(np.float64)), axis=-1)
    return _ratio(num, n * np.linalg.norm(_wide(A), axis=(-2, -1)) * _eps(dtype))


def check_standard(A, w, V, dtype, w_ref=None):
    """Assert the standard for every matrix (eps of ``dtype``); ``w_ref``: numpy's."""
    res = residual_ratio(A, w, V, dtype)
    assert np.all(res < THRESHOLD), f"residual ratios {res}"
    orth = orthogonality_ratio(V, dtype)
    assert np.all(orth < THRESHOLD), f"orthogonality ratios {orth}"
    if w_ref is None:
        w_ref = np.linalg.eigvalsh(_wide(A))
    ev = eigenvalue_ratio(A, w, w_ref, dtype)
    assert np.all(ev < THRESHOLD), f"eigenvalue ratios {ev}"
    assert np.all(np.diff(w, axis=-1) >= 0), "eigenvalues not ascending"


# --------------------------------------------------------------------------
# test matrices (host, seeded)
# --------------------------------------------------------------------------


def random_hermitian(rng, B, n, dtype):
    X = rng.standard_normal((B, n, n))
    if np.issubdtype(dtype, np.complexfloating):
        X = X + 1j * rng.standard_normal((B, n, n))
    return ((X + np.swapaxes(X.conj(), -1, -2)) / 2).astype(dtype)


def random_unitary(rng, n, dtype):
    X = rng.standard_normal((n, n))
    if np.issubdtype(dtype, np.complexfloating):
        X = X + 1j * rng.standard_normal((n, n))
    Q, R = np.linalg.qr(X)
    return Q * (np.diag(R) / np.abs(np.diag(R)))


def with_spectrum(rng, lam, dtype):
    """``Q diag(lam) Q^H`` for one random unitary ``Q`` per row of ``lam``."""
    out = []
    for row in np.atleast_2d(lam):
        Q = random_unitary(rng, row.size, dtype)
        A = (Q * row) @ Q.conj().T
        out.append((A + A.conj().T) / 2)
    return np.array(out).astype(dtype)


def graded_pd(rng, B, n, dtype, span=1e-8):
    """``A = D H D``: unit-diagonal ``H`` with eigenvalues in [1, 4] scaled back, ``D``
    a permutation of ``logspace(0, log10(span), n)``.  Returns ``A, cond(H)``."""
    mats, conds = [], []
    for _ in range(B):
        H = with_spectrum(rng, rng.uniform(1.0, 4.0, n), np.complex128)[0]
        if not np.issubdtype(dtype, np.complexfloating):
            H = H.real
        s = 1 / np.sqrt(np.diag(H).real)
        H = s[:, None] * H * s[None, :]
        conds.append(np.linalg.cond(H))
        d = rng.permutation(np.logspace(0, np.log10(span), n))
        A = d[:, None] * H * d[None, :]
        mats.append((A + A.conj().T) / 2)
    return np.array(mats).astype(dtype), np.array(conds)


def mp_eigenvalues(A):
    """Eigenvalues of the stored matrices to 50 digits (mpmath), as float64."""
    mpmath = pytest.importorskip("mpmath")
    out = []
    with mpmath.workdps(50):
        for M in A:
            if np.iscomplexobj(M):
                X = mpmath.matrix([[mpmath.mpc(complex(x)) for x in row] for row in M])
                ev = mpmath.eighe(X, eigvals_only=True)
            else:
                X = mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in M])
                ev = mpmath.eigsy(X, eigvals_only=True)
            out.append(sorted(float(x) for x in ev))
    return np.array(out)


# --------------------------------------------------------------------------
# CPU kernel
# --------------------------------------------------------------------------


def cpu_eigh(A, tol=None, max_sweeps=50, want_vectors=True, serial=False):
    from eigarray.kernels.cpu import jacobi

    B, n, _ = A.shape
    rdtype = np.finfo(A.dtype).dtype
    tol = _eps(rdtype) if tol is None else tol
    W = np.ascontiguousarray(A).copy()
    w = np.empty((B, n), rdtype)
    V = np.full((B, n, n), np.nan, A.dtype)
    sweeps = np.empty(B, np.int32)
    off = np.empty(B, rdtype)
    kernel = jacobi.jacobi_eigh_serial if serial else jacobi.jacobi_eigh
    kernel(W, w, V, tol, max_sweeps, want_vectors, sweeps, off)
    return w, V, sweeps, off


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 17, 32])
def test_cpu_random(n, dtype):
    rng = np.random.default_rng(n)
    A = random_hermitian(rng, 67 if n <= 8 else 5, n, dtype)  # 67: not a multiple of the lanes
    w, V, sweeps, off = cpu_eigh(A)
    check_standard(A, w, V, dtype)
    assert np.all(sweeps >= 0)
    assert np.all(off <= 2 * _eps(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda t: np.dtype(t).name)
def test_cpu_n64(dtype):
    A = random_hermitian(np.random.default_rng(64), 3, 64, dtype)
    w, V, sweeps, off = cpu_eigh(A)
    check_standard(A, w, V, dtype)
    assert np.all(sweeps > 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("n", [4, 8, 17])
def test_cpu_repeated_eigenvalues(n, dtype):
    rng = np.random.default_rng(100 + n)
    lam = np.sort(np.resize([-1.0, -1.0, 2.0, 2.0, 2.0, 3.5, 7.0, 7.0], n))  # clusters
    A = with_spectrum(rng, np.tile(lam, (4, 1)), dtype)
    w, V, sweeps, off = cpu_eigh(A)
    check_standard(A, w, V, dtype, w_ref=np.sort(np.tile(lam, (4, 1)), axis=-1))
    assert np.all(sweeps >= 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 9])
def test_cpu_diagonal_and_zero(n, dtype):
    rng = np.random.default_rng(7)
    diag = rng.standard_normal((3, n)).astype(dtype)
    D = np.zeros((4, n, n), dtype)
    for b in range(3):
        D[b][np.diag_indices(n)] = diag[b]  # D[3] stays zero
    w, V, sweeps, off = cpu_eigh(D)
    assert np.array_equal(sweeps, np.zeros(4, np.int32))
    assert np.array_equal(off, np.zeros(4, off.dtype))
    expected = np.sort(np.concatenate([diag.real, np.zeros((1, n))]), axis=-1)
    assert np.array_equal(w, expected.astype(w.dtype))  # exact, no rounding anywhere
    assert np.array_equal(V[3], np.eye(n, dtype=dtype))
    for b in range(3):  # a permutation matrix, with the diagonal in its order
        assert np.array_equal(np.abs(V[b]), np.abs(V[b]).round())
        assert np.array_equal(np.sort(np.abs(V[b]), axis=0)[-1], np.ones(n, V.real.dtype))
        assert np.array_equal(V[b].conj().T @ D[b] @ V[b], np.diag(w[b]).astype(dtype))


@pytest.mark.parametrize(
    "dtype, exponent",
    [(np.float64, 1000), (np.float64, -1000), (np.complex128, 1000), (np.complex128, -1000),
     (np.float32, 120), (np.float32, -120), (np.complex64, 120), (np.complex64, -120)],
)
@pytest.mark.parametrize("n", [2, 3, 6, 17])
def test_cpu_near_overflow_and_underflow(n, dtype, exponent):
    """Entries near 1e301 / 1e-301 (float64), 1e36 / 1e-36 (float32)."""
    A = random_hermitian(np.random.default_rng(11), 5, n, dtype)
    scaled = (A * np.ldexp(1.0, exponent)).astype(dtype)  # exact
    w, V, sweeps, off = cpu_eigh(scaled)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(V)) and np.all(sweeps >= 0)
    check_standard(A, _scale2(w.astype(np.float64), -exponent), V, dtype)
    w_unscaled = cpu_eigh(A)[0]
    assert np.array_equal(w, _scale2(w_unscaled.astype(np.float64), exponent).astype(w.dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: np.dtype(t).name)
def test_cpu_subnormal_entries(dtype):
    """All entries subnormal: exact power-of-two scaling, the outputs round once."""
    e = -1060 if dtype == np.float64 else -140
    A = (random_hermitian(np.random.default_rng(12), 5, 4, dtype) * np.ldexp(1.0, e)).astype(dtype)
    stored = _scale2(A.astype(np.float64), -e)  # the stored matrix, rescaled exactly
    w, V, sweeps, off = cpu_eigh(A)
    assert np.all(sweeps >= 0)
    check_standard(stored, np.linalg.eigvalsh(stored), V, dtype)  # vectors to full accuracy
    grid = 4 * np.finfo(dtype).smallest_subnormal  # w itself is subnormal: its spacing
    ev = np.abs(_scale2(np.linalg.eigvalsh(stored), e) - w)
    bound = THRESHOLD * 4 * np.linalg.norm(A.astype(np.float64), axis=(1, 2))[:, None] * _eps(dtype)
    assert np.all(ev <= bound + grid)


@pytest.mark.parametrize("dtype", REAL_AND_COMPLEX, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("n", [3, 4, 6, 8])
def test_cpu_graded_relative_accuracy(n, dtype):
    rng = np.random.default_rng(200 + n)
    # float32 LAPACK is sometimes lucky on a 1e-8 grading of small matrices
    A, cond = graded_pd(rng, 6, n, dtype, span=1e-12 if dtype == np.float32 else 1e-8)
    exact = mp_eigenvalues(A)
    w, V, sweeps, off = cpu_eigh(A)
    bound = 100 * cond[:, None] * _eps(dtype)
    rel = np.abs(w - exact) / exact
    assert np.all(rel < bound), f"relative errors {rel.max(axis=-1)}, bounds {bound[:, 0]}"
    assert exact.min() < 1e-14  # the grading is real: tiny eigenvalues are present
    assert np.all(sweeps >= 0)
    w_lapack = np.linalg.eigvalsh(A)
    rel_lapack = np.abs(w_lapack - exact) / exact
    assert np.any(rel_lapack > bound), "numpy.linalg.eigh met the relative bound: weak test"


def test_cpu_not_converged_is_flagged():
    A = random_hermitian(np.random.default_rng(3), 70, 8, np.float64)
    w, V, sweeps, off = cpu_eigh(A, max_sweeps=1)
    assert np.all(sweeps == -1)
    assert np.all(off > _eps(np.float64))
    assert np.all(np.isfinite(w)) and np.all(np.diff(w, axis=-1) >= 0)
    assert np.all(orthogonality_ratio(V, np.float64) < THRESHOLD)  # still orthogonal
    w0, V0, sweeps0, off0 = cpu_eigh(A, max_sweeps=0)
    assert np.all(sweeps0 == -1)
    assert np.array_equal(w0, np.sort(np.diagonal(A, axis1=1, axis2=2), axis=-1))


def test_cpu_values_only_and_thread_count():
    import numba

    A = random_hermitian(np.random.default_rng(4), 150, 6, np.complex128)
    w, V, sweeps, off = cpu_eigh(A)
    w2, V2, sweeps2, off2 = cpu_eigh(A, want_vectors=False)
    assert np.array_equal(w, w2) and np.array_equal(sweeps, sweeps2) and np.array_equal(off, off2)
    assert np.all(np.isnan(V2))  # not written
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        w3, V3, sweeps3, off3 = cpu_eigh(A)
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(w, w3) and np.array_equal(V, V3) and np.array_equal(sweeps, sweeps3)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("n", [1, 3, 8, 17])
def test_cpu_serial_driver_matches_parallel(n, dtype):
    # Small batches run on the calling thread (no thread pool): the same
    # chunks, the same arithmetic, bit for bit.
    A = random_hermitian(np.random.default_rng(n), 70, n, dtype)
    for got, want in zip(cpu_eigh(A, serial=True), cpu_eigh(A), strict=True):
        assert np.array_equal(got, want)


def test_lapack_driver_and_crossover_constant():
    from eigarray.kernels.cpu import jacobi

    A = random_hermitian(np.random.default_rng(5), 9, 12, np.float64)
    w = np.empty((9, 12))
    V = np.empty((9, 12, 12))
    jacobi.lapack_eigh(A, w, V, True)
    check_standard(A, w, V, np.float64)
    assert isinstance(jacobi.JACOBI_MAX_N, int) and jacobi.JACOBI_MAX_N >= 3


# --------------------------------------------------------------------------
# Householder + QL kernel (the CPU path for JACOBI_MAX_N < n <= TRIDIAGONAL_MAX_N)
# --------------------------------------------------------------------------


def tri_eigh(A, want_vectors=True):
    """The tridiagonal kernel on a copy of ``A``; checks that it left ``A`` alone."""
    from eigarray.kernels.cpu import tridiagonal

    B, n, _ = A.shape
    W = np.ascontiguousarray(A).copy()
    w = np.full((B, n), np.nan, np.finfo(A.dtype).dtype)
    V = np.full((B, n, n), np.nan, A.dtype)
    tridiagonal.tridiagonal_eigh(W, w, V, want_vectors)
    assert np.array_equal(W, A)
    return w, V


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("n, B", [(1, 5), (2, 21), (3, 3), (17, 37), (33, 35), (64, 17)])
def test_tridiagonal_random(n, B, dtype):
    """Full lane blocks of 16 and a partial block (``B mod 16``) in one call."""
    A = random_hermitian(np.random.default_rng(300 + n), B, n, dtype)
    w, V = tri_eigh(A)
    check_standard(A, w, V, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("n", [8, 40])
def test_tridiagonal_repeated_eigenvalues(n, dtype):
    rng = np.random.default_rng(400 + n)
    lam = np.sort(np.resize([-1.0, -1.0, 2.0, 2.0, 2.0, 3.5, 7.0, 7.0], n))  # clusters
    A = with_spectrum(rng, np.tile(lam, (17, 1)), dtype)
    w, V = tri_eigh(A)
    check_standard(A, w, V, dtype, w_ref=np.sort(np.tile(lam, (17, 1)), axis=-1))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
def test_tridiagonal_diagonal_and_zero(dtype):
    n = 30
    diag = np.random.default_rng(8).standard_normal((3, n)).astype(dtype)
    D = np.zeros((4, n, n), dtype)
    for b in range(3):
        D[b][np.diag_indices(n)] = diag[b]  # D[3] stays zero
    w, V = tri_eigh(D)
    expected = np.sort(np.concatenate([diag.real, np.zeros((1, n))]), axis=-1)
    assert np.array_equal(w, expected.astype(w.dtype))  # exact: no reflector, no rotation
    assert np.array_equal(V[3], np.eye(n, dtype=dtype))
    for b in range(3):  # a permutation matrix, with the diagonal in its order
        assert np.array_equal(np.abs(V[b]), np.abs(V[b]).round())
        assert np.array_equal(V[b].conj().T @ D[b] @ V[b], np.diag(w[b]).astype(dtype))


@pytest.mark.parametrize(
    "dtype, exponent",
    [(np.float64, 1000), (np.float64, -1000), (np.complex128, -1000),
     (np.float32, 100), (np.float32, -100), (np.complex64, 100)],
)
def test_tridiagonal_near_overflow_and_underflow(dtype, exponent):
    """Entries near 1e301 / 1e-301 (float64), 1e30 / 1e-30 (float32): scaled exactly."""
    A = random_hermitian(np.random.default_rng(13), 19, 26, dtype)
    scaled = (A * np.ldexp(1.0, exponent)).astype(dtype)  # exact
    w, V = tri_eigh(scaled)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(V))
    check_standard(A, _scale2(w.astype(np.float64), -exponent), V, dtype)
    w_unscaled, V_unscaled = tri_eigh(A)
    assert np.array_equal(w, _scale2(w_unscaled.astype(np.float64), exponent).astype(w.dtype))
    assert np.array_equal(V, V_unscaled)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda t: np.dtype(t).name)
def test_tridiagonal_subnormal_and_graded_columns(dtype):
    """All entries subnormal; and a column of tiny entries beside normal ones,
    which takes the rescaled reflector."""
    e = -1060 if dtype == np.float64 else -140
    rng = np.random.default_rng(14)
    A = (random_hermitian(rng, 5, 25, dtype) * np.ldexp(1.0, e)).astype(dtype)
    stored = _scale2(A.astype(np.float64), -e)  # the stored matrix, rescaled exactly
    w, V = tri_eigh(A)
    check_standard(stored, np.linalg.eigvalsh(stored), V, dtype)  # vectors to full accuracy
    grid = 4 * np.finfo(dtype).smallest_subnormal  # w itself is subnormal: its spacing
    ev = np.abs(_scale2(np.linalg.eigvalsh(stored), e) - w)
    anorm = np.linalg.norm(A.astype(np.float64), axis=(1, 2))[:, None]
    bound = THRESHOLD * 25 * anorm * _eps(dtype)
    assert np.all(ev <= bound + grid)
    G = random_hermitian(rng, 3, 25, dtype)
    # float64: squares of 2**-530 are subnormal, the first reflector is rescaled
    tiny = np.ldexp(1.0, -530 if dtype == np.float64 else -120)
    G[:, 1:, 0] *= tiny  # column 0 below the diagonal: tiny
    G[:, 0, 1:] *= tiny
    w, V = tri_eigh(G)
    check_standard(G, w, V, dtype)


def test_tridiagonal_values_only_threads_and_lower_triangle():
    import numba

    A = random_hermitian(np.random.default_rng(15), 40, 27, np.complex128)
    w, V = tri_eigh(A)
    w2, V2 = tri_eigh(A, want_vectors=False)
    assert np.array_equal(w, w2) and np.all(np.isnan(V2))  # same values, V not written
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        w3, V3 = tri_eigh(A)
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(w, w3) and np.array_equal(V, V3)
    junk = A.copy()
    i, j = np.triu_indices(27, 1)
    junk[:, i, j] = 99.0 + 7j  # only the lower triangle is read
    junk[:, range(27), range(27)] += 3j  # and the real part of the diagonal
    w4, V4 = tri_eigh(junk)
    assert np.array_equal(w, w4) and np.array_equal(V, V4)
    w5, V5 = tri_eigh(np.zeros((0, 27, 27), np.complex128))
    assert w5.shape == (0, 27) and V5.shape == (0, 27, 27)


def test_tridiagonal_crossover_constant():
    from eigarray.kernels.cpu import jacobi, tridiagonal

    assert isinstance(tridiagonal.TRIDIAGONAL_MAX_N, int)
    assert jacobi.JACOBI_MAX_N < tridiagonal.TRIDIAGONAL_MAX_N


# --------------------------------------------------------------------------
# Array API reference
# --------------------------------------------------------------------------


def _namespaces():
    import array_api_compat.numpy as xp_numpy

    out = [pytest.param(xp_numpy, id="numpy")]
    try:
        import array_api_strict
    except ImportError:
        skip = pytest.mark.skip(reason="array_api_strict is not installed")
        out.append(pytest.param(None, id="array_api_strict", marks=skip))
    else:
        out.append(pytest.param(array_api_strict, id="array_api_strict"))
    return out


def ref_eigh(A, xp, **kw):
    from eigarray._jacobi_reference import jacobi_eigh_xp

    kw = {"tol": None, "max_sweeps": 50, "want_vectors": True, **kw}
    w, V, sweeps, off = jacobi_eigh_xp(xp.asarray(A), xp, **kw)
    return tuple(None if x is None else np.asarray(x) for x in (w, V, sweeps, off))


@pytest.mark.parametrize("xp", _namespaces())
@pytest.mark.parametrize("dtype", REAL_AND_COMPLEX, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_reference_random_matches_kernel(n, dtype, xp):
    A = random_hermitian(np.random.default_rng(300 + n), 6, n, dtype)
    w, V, sweeps, off = ref_eigh(A, xp)
    check_standard(A, w, V, dtype)
    assert w.dtype == np.finfo(dtype).dtype and V.dtype == dtype and sweeps.dtype == np.int32
    assert np.all(sweeps >= 0) and np.all(off <= 2 * _eps(dtype))
    w_cpu = cpu_eigh(A)[0]
    assert np.all(eigenvalue_ratio(A, w, w_cpu, np.finfo(dtype).dtype) < THRESHOLD)


@pytest.mark.parametrize("xp", _namespaces())
def test_reference_special_matrices(xp):
    rng = np.random.default_rng(8)
    n = 5
    Z = np.zeros((1, n, n))
    D = np.diag(rng.standard_normal(n))[None]
    A = random_hermitian(rng, 2, n, np.float64)
    for M in (Z, D):
        w, V, sweeps, off = ref_eigh(M, xp)
        assert np.array_equal(sweeps, [0]) and np.array_equal(off, [0.0])
        assert np.array_equal(w[0], np.sort(np.diag(M[0])))
    for e in (1000, -1000):
        scaled = A * np.ldexp(1.0, e)
        w, V, sweeps, off = ref_eigh(scaled, xp)
        check_standard(A, w * np.ldexp(1.0, -e), V, np.float64)
    w, V, sweeps, off = ref_eigh(A, xp, max_sweeps=1)
    assert np.all(sweeps == -1) and np.all(off > _eps(np.float64))
    w2, V2, _, _ = ref_eigh(A, xp, want_vectors=False)
    assert V2 is None and np.array_equal(w2, ref_eigh(A, xp)[0])


@pytest.mark.parametrize("xp", _namespaces())
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda t: np.dtype(t).name)
def test_reference_graded_relative_accuracy(dtype, xp):
    A, cond = graded_pd(np.random.default_rng(400), 2, 6, dtype)
    exact = mp_eigenvalues(A)
    w = ref_eigh(A, xp)[0]
    bound = 100 * cond[:, None] * _eps(dtype)
    assert np.all(np.abs(w - exact) / exact < bound)
    assert np.any(np.abs(np.linalg.eigvalsh(A) - exact) / exact > bound)


def test_reference_batch_shape():
    import array_api_compat.numpy as xp

    A = random_hermitian(np.random.default_rng(9), 6, 4, np.float64).reshape(2, 3, 4, 4)
    w, V, sweeps, off = ref_eigh(A, xp)
    assert w.shape == (2, 3, 4) and V.shape == (2, 3, 4, 4) and sweeps.shape == (2, 3)
    check_standard(A.reshape(6, 4, 4), w.reshape(6, 4), V.reshape(6, 4, 4), np.float64)


def test_round_robin_covers_every_pair_once():
    from eigarray._jacobi_reference import round_robin_pairs

    for n in range(1, 12):
        rounds = round_robin_pairs(n)
        pairs = [pq for r in rounds for pq in r]
        assert sorted(pairs) == [(p, q) for p in range(n) for q in range(p + 1, n)]
        for r in rounds:  # disjoint within a round
            flat = [i for pq in r for i in pq]
            assert len(flat) == len(set(flat))


# --------------------------------------------------------------------------
# CUDA kernels under the simulator (one subprocess, see the module docstring)
# --------------------------------------------------------------------------


def _cuda_cases():
    """name -> (kernel, A): small batches, small n (the simulator is slow).

    ``warp`` cases go to :mod:`jacobi_warp` with NaN in the upper triangle
    (it must read only the lower one), ``warp_upper`` cases with NaN in the
    lower triangle; ``block`` cases to :mod:`jacobi_block` as they are.
    """
    rng = np.random.default_rng(500)
    cases = {}
    for dtype in DTYPES:
        name = np.dtype(dtype).name
        for n in (1, 2, 3, 5):
            cases[f"warp-{name}-{n}"] = ("warp", random_hermitian(rng, 3, n, dtype))
    for dtype, n in [(np.float64, 8), (np.float64, 9), (np.complex128, 6)]:
        cases[f"warp-{np.dtype(dtype).name}-{n}"] = ("warp", random_hermitian(rng, 2, n, dtype))
    for dtype, n in [(np.float64, 5), (np.complex128, 4)]:
        cases[f"warp_upper-{np.dtype(dtype).name}-{n}"] = (
            "warp_upper", random_hermitian(rng, 2, n, dtype))
    cases["warp-float64-graded"] = ("warp", graded_pd(rng, 3, 4, np.float64)[0])
    special = np.stack([np.zeros((3, 3)), np.diag([3.0, -1.0, 2.0])])  # zero, diagonal
    cases["warp-float64-special"] = ("warp", special)
    cases["warp-float64-huge"] = ("warp", random_hermitian(rng, 2, 3, np.float64) * 2.0**1000)
    for dtype, n in [(np.float64, 1), (np.float64, 5), (np.float64, 8), (np.complex128, 4),
                     (np.float32, 5), (np.complex64, 3)]:
        cases[f"block-{np.dtype(dtype).name}-{n}"] = ("block", random_hermitian(rng, 2, n, dtype))
    cases["block-float64-graded"] = ("block", graded_pd(rng, 2, 4, np.float64)[0])
    cases["block-float64-special"] = ("block", special)
    return cases


CUDA_CASES = _cuda_cases()


@pytest.fixture(scope="module", autouse=True)
def _cudasim_process(request, tmp_path_factory):
    """Start the simulator subprocess with the module, so that it runs while
    this process compiles the CPU kernels; ``None`` if no CUDA test is selected."""
    if not any(item.name.startswith("test_cudasim") for item in request.session.items):
        yield None
        return
    tmp = tmp_path_factory.mktemp("cudasim")
    src, dst = tmp / "cases.npz", tmp / "out.npz"
    np.savez(src, **{f"{kind}|{name}": A for name, (kind, A) in CUDA_CASES.items()})
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.Popen(
        [sys.executable, __file__, "cudasim", str(src), str(dst)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    yield proc, dst
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def cudasim_results(_cudasim_process):
    proc, dst = _cudasim_process
    stdout, stderr = proc.communicate(timeout=600)
    if proc.returncode == 3:
        pytest.skip(f"CUDA simulator unusable: {stdout.strip()}")
    assert proc.returncode == 0, stderr[-3000:]
    with np.load(dst) as out:
        return {k: out[k] for k in out.files}


@pytest.mark.parametrize("name", list(CUDA_CASES))
def test_cudasim(name, cudasim_results):
    kind, A = CUDA_CASES[name]
    w, V, sweeps, off = (cudasim_results[f"{name}|{x}"] for x in ("w", "V", "sweeps", "off"))
    dtype = A.dtype
    rdtype = np.finfo(dtype).dtype
    if "graded" in name:
        exact = mp_eigenvalues(A)
        cond = np.array([np.linalg.cond(A[b] / np.sqrt(np.outer(np.diag(A[b]), np.diag(A[b]))))
                         for b in range(len(A))])
        assert np.all(np.abs(w - exact) / exact < 100 * cond[:, None] * _eps(rdtype))
    elif "huge" in name:
        check_standard(A * 2.0**-1000, w * 2.0**-1000, V, dtype)
    else:
        check_standard(A, w, V, dtype)
    assert np.all(sweeps >= 0)
    if kind != "block":  # read in place, never written, one triangle only
        assert cudasim_results[f"{name}|unchanged"]
    if "huge" in name:  # no norms of A here: they overflow
        assert np.all(np.isfinite(w))
        return
    if "special" in name:
        assert np.array_equal(sweeps, [0, 0]) and np.array_equal(w[1], [-1.0, 2.0, 3.0])
    # both kernels take the reference's round-robin order: the same rotations
    import array_api_compat.numpy as xp

    w_tol = np.linalg.norm(_wide(A), axis=(-2, -1))[:, None] * _eps(rdtype) * 4 * A.shape[-1]
    w_ref, V_ref, sweeps_ref, _ = ref_eigh(A, xp)
    assert np.array_equal(sweeps, sweeps_ref)
    assert np.all(np.abs(w - w_ref) <= w_tol)
    assert np.all(np.abs(V - V_ref) <= 30 * A.shape[-1] * _eps(rdtype))
    assert np.all(eigenvalue_ratio(A, w, cpu_eigh(A)[0], rdtype) < THRESHOLD)


def _run_cudasim(src: str, dst: str) -> int:
    """Subprocess entry: launch the CUDA kernels on every case (simulator)."""
    try:
        from numba import cuda  # noqa: F401

        from eigarray.kernels.cuda import jacobi_block, jacobi_warp
    except ImportError as exc:  # pragma: no cover - environment without numba.cuda
        print(exc)
        return 3
    out = {}
    with np.load(src) as cases:
        for key in cases.files:
            kind, name = key.split("|")
            A = np.ascontiguousarray(cases[key]).copy()
            B, n, _ = A.shape
            rdtype = np.finfo(A.dtype).dtype
            w = np.empty((B, n), rdtype)
            V = np.empty((B, n, n), A.dtype)
            sweeps = np.empty(B, np.int32)
            off = np.empty(B, rdtype)
            if kind == "block":
                jacobi_block.launch(A, w, V, _eps(rdtype), 50, True, sweeps, off)
                unchanged = False
            else:
                upper = kind == "warp_upper"
                other = np.tril if upper else np.triu
                A[:, other(np.ones((n, n), bool), -1 if upper else 1)] = np.nan
                before = A.copy()
                jacobi_warp.launch(A, w, V, _eps(rdtype), 50, True, sweeps, off, upper=upper)
                unchanged = np.array_equal(A, before, equal_nan=True)
            outputs = {"w": w, "V": V, "sweeps": sweeps, "off": off, "unchanged": unchanged}
            out.update({f"{name}|{key}": value for key, value in outputs.items()})
    np.savez(dst, **out)
    return 0


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "cudasim":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(_run_cudasim(sys.argv[2], sys.argv[3]))
