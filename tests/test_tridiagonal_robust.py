"""Robustness of the lane-interleaved Householder + QL kernel (``kernels/cpu/tridiagonal.py``).

``eigh_batched`` sends host batches of at least ``LANES // 2`` matrices with
``JACOBI_MAX_N < n <= TRIDIAGONAL_MAX_N`` to that kernel.  Each case below
once broke it: NaN eigenvalues and a false non-convergence flag for
rank-deficient and strongly graded matrices (a local deflation test that a
cluster of eigenvalues at roundoff level never meets), eigenvectors far from
orthonormal for graded float32 input (sums of squares underflowing in
float32), and a ``ZeroDivisionError`` inside the kernel for complex input
with tiny entries (a reflector norm that underflowed to zero).

Every matrix is held to LAPACK's ratios (``eigarray.testing``), its
eigenvalues to ``numpy.linalg.eigvalsh`` within what those ratios
guarantee, and the kernel must report convergence (any
``ConvergenceWarning`` fails the test: ``filterwarnings = error``).
"""

from __future__ import annotations

import numpy as np
import pytest

import eigarray
from eigarray import testing
from eigarray.kernels.cpu import jacobi, tridiagonal

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
# A cluster of eigenvalues at roundoff level broke the old QL deflation test
# in double precision only (single precision deflates at float32's eps)
DOUBLE = [np.float64, np.complex128]
SIZES = [25, 32, 64, 97, 128]


@pytest.fixture
def kernel_calls(monkeypatch):
    """Records every call of the tridiagonal kernel, to prove the path taken."""
    calls = []
    real = tridiagonal.tridiagonal_eigh

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(tridiagonal, "tridiagonal_eigh", spy)
    return calls


def _is_complex(dtype) -> bool:
    return np.issubdtype(dtype, np.complexfloating)


def _random(rng, shape, dtype):
    X = rng.standard_normal(shape)
    if _is_complex(dtype):
        X = X + 1j * rng.standard_normal(shape)
    return X


def _hermitian(rng, B, n, dtype):
    H = _random(rng, (B, n, n), dtype)
    return H + np.conj(np.swapaxes(H, -1, -2))


def _solve_and_check(A, kernel_calls):
    """``eigh_batched`` on the stack ``A`` through the tridiagonal kernel, every matrix checked."""
    B, n = A.shape[0], A.shape[-1]
    assert jacobi.JACOBI_MAX_N < n <= tridiagonal.TRIDIAGONAL_MAX_N
    assert 2 * B >= tridiagonal.LANES
    res = eigarray.eigh_batched(A)
    w, V = res
    assert kernel_calls, "the stack did not reach the tridiagonal kernel"
    assert np.all(res.info.converged)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(V))
    assert np.all(np.diff(w, axis=-1) >= 0), "eigenvalues not ascending"
    eps = float(np.finfo(A.dtype).eps)
    for b in range(B):
        # scale-free: the ratios of A / max|A| (a power-of-ten grading
        # overflows the float64 norms of the unscaled matrix otherwise)
        Ab = A[b].astype(np.complex128)
        scale = float(np.abs(Ab).max()) or 1.0
        testing.assert_eigenpairs(Ab / scale, w[b].astype(np.float64) / scale, V[b], eps=eps,
                                  exact=np.linalg.eigvalsh(Ab / scale))
    return res


@pytest.mark.parametrize("dtype", DOUBLE, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_rank_deficient_psd(rank, dtype, kernel_calls):
    """``X Xᴴ`` of rank 1-3: a cluster of ``n - rank`` eigenvalues at roundoff level.

    The old kernel returned NaN eigenvalues (and a ConvergenceWarning about
    "sweeps") for some matrices of every such stack.
    """
    rng = np.random.default_rng(0)
    for n in SIZES:
        X = _random(rng, (16, n, rank), dtype)
        A = (X @ np.conj(np.swapaxes(X, -1, -2))).astype(dtype)
        _solve_and_check(A, kernel_calls)


def test_rank2_audit_reproducer(kernel_calls):
    """The audit's stack: float64 rank 2, n = 32; matrices 7, 8, 11, 13, 14 came back NaN."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 32, 2))
    A = X @ np.swapaxes(X, -1, -2)
    res = _solve_and_check(A, kernel_calls)
    assert np.all(res.info.history["sweeps"] == 0)
    np.testing.assert_allclose(res.eigenvalues[:, -2:], np.linalg.eigvalsh(A)[:, -2:],
                               rtol=testing.THRESHOLD * 32 * np.finfo(float).eps)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_strongly_graded(dtype, kernel_calls):
    """``D H D``, ``D = 10**uniform(-g, g)`` per entry, ``g = 150`` (double) / ``15`` (single).

    Old kernel: NaN eigenvalues for double, eigenvectors far from
    orthonormal for single precision.
    """
    rng = np.random.default_rng(0)
    g = 15 if np.finfo(dtype).precision < 10 else 150
    for n in SIZES:
        for B in (8, 16):
            H = _hermitian(rng, B, n, dtype)
            D = 10.0 ** rng.uniform(-g, g, (B, n))
            A = (D[..., :, None] * H * D[..., None, :]).astype(dtype)
            _solve_and_check(A, kernel_calls)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64], ids=lambda d: np.dtype(d).name)
def test_single_precision_geometric_grading(dtype, kernel_calls):
    """``D H D`` with ``D = logspace(0, -12, n)`` in single precision: entries 1 .. 1e-24.

    Their squares underflow in float32; the old kernel's reflectors were
    then far from orthogonal (``||VᴴV - I|| / (n eps)`` near 1e5).
    """
    rng = np.random.default_rng(0)
    for n in (32, 64, 128):
        H = _hermitian(rng, 16, n, dtype)
        D = np.logspace(0, -12, n)
        A = (D[:, None] * H * D).astype(dtype)
        _solve_and_check(A, kernel_calls)


@pytest.mark.parametrize("n", [25, 64, 128])
def test_complex_tiny_entry(n, kernel_calls):
    """One tiny complex off-diagonal entry, whose square underflows.

    The old kernel raised ``SystemError`` (a ``ZeroDivisionError``, complex
    division by zero, inside the njit code): the reflector's norm was zero.
    """
    A = np.zeros((8, n, n), dtype=np.complex128)
    A[:, 0, 0] = 1.0
    A[:, 2, 1] = 1e-200 * (1 + 1j) * np.arange(1, 9)
    A[:, 1, 2] = np.conj(A[:, 2, 1])
    res = _solve_and_check(A, kernel_calls)
    np.testing.assert_array_equal(res.eigenvalues[:, -1], 1.0)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_complex_tiny_off_diagonal_zero_diagonal(dtype, kernel_calls):
    """``A[0, 0] = 1`` and every other entry tiny (the audit's crashing ``zero_diag_tiny``)."""
    rng = np.random.default_rng(0)
    tiny = 1e-30 if dtype == np.complex64 else 1e-200
    for n in SIZES:
        A = _hermitian(rng, 16, n, dtype) * tiny
        A[:, np.arange(n), np.arange(n)] = 0.0
        A[:, 0, 0] = 1.0
        _solve_and_check(A.astype(dtype), kernel_calls)


@pytest.mark.parametrize("dtype", DOUBLE, ids=lambda d: np.dtype(d).name)
def test_structured_stacks(dtype, kernel_calls):
    """Zero, diagonal, Wilkinson, tight clusters and null clusters in one stack.

    The null cluster (``n - 2`` zero eigenvalues in ``Q diag(λ) Qᴴ``) is what
    failed before; the others guard the deflation test and the reflectors
    of zero columns.
    """
    rng = np.random.default_rng(1)
    for n in SIZES:
        m = (n - 1) / 2
        T = np.diag(np.ones(n - 1), 1)
        cases = [np.zeros((n, n)),
                 np.diag(rng.standard_normal(n)),
                 np.diag(np.abs(np.arange(n) - m)) + T + T.T,          # Wilkinson W+
                 np.diag(np.arange(n) - m) + T + T.T]                  # Wilkinson W-
        for spread in (1e-10, 0.0):
            lam = 1.0 + spread * rng.standard_normal(n)
            lam[:3] = [-1.0, 0.0, 2.0]
            cases.append(testing.matrix_with_spectrum(lam, rng=rng, complex=_is_complex(dtype))[0])
        for spread in (1e-13, 0.0):
            lam = spread * rng.standard_normal(n)
            lam[-2:] = [1.0, -0.5]
            cases.append(testing.matrix_with_spectrum(lam, rng=rng, complex=_is_complex(dtype))[0])
        A = np.stack(cases).astype(dtype)
        _solve_and_check(A, kernel_calls)


def test_kernel_directly_rank_deficient_lanes():
    """The kernel alone (no dispatch): a full block of lanes of rank-2 matrices, no NaN."""
    rng = np.random.default_rng(0)
    n, B = 32, 2 * tridiagonal.LANES + 3             # two full blocks and a tail block
    X = rng.standard_normal((B, n, 2))
    A = np.ascontiguousarray(X @ np.swapaxes(X, -1, -2))
    w = np.empty((B, n))
    V = np.empty((B, n, n))
    tridiagonal.tridiagonal_eigh(A, w, V, True)
    assert np.all(np.isfinite(w))
    w_only = np.empty((B, n))
    tridiagonal.tridiagonal_eigh(A, w_only, np.empty((1, 1, 1)), False)
    np.testing.assert_array_equal(w_only, w)
    eps = np.finfo(float).eps
    for b in range(B):
        testing.assert_eigenpairs(A[b], w[b], V[b], eps=eps, exact=np.linalg.eigvalsh(A[b]))
