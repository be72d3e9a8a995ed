"""Block thick-restart Lanczos for a few eigenpairs of a Hermitian operator.

Algorithm: the thick-restart Lanczos method of Wu & Simon (2000), which for a
Hermitian operator is the Krylov-Schur method of Stewart (2001), in its block
form.  A basis of orthonormal vectors is grown a block at a time: the
operator is applied to the ``block_size`` newest vectors (the *frontier*),
the products are orthogonalised against the whole basis by classical
Gram-Schmidt repeated under the DGKS criterion, as matrix products over the
basis block, after a local step that removes the coefficients known by
symmetry, and orthonormalised among themselves.  When ``ncv`` vectors have
been multiplied, Rayleigh-Ritz on the small projected matrix gives Ritz pairs
and, through the frontier, their residual norms.  Converged wanted pairs are
*locked* (kept in the basis, their coupling to the rest set to zero, never
touched again), and the basis is restarted with the best Ritz vectors and the
frontier, in one matrix product.  A block of two starting vectors (the
default) finds both copies of double eigenvalues, which a single Krylov
sequence cannot see; when the converged wanted values hold as many copies
of one value as the block has vectors (at least two), a check from a fresh
random block, on the operator deflated of the wanted pairs, looks for
further copies before the iteration stops (until its own Ritz values
nearest to the wanted ones converge); a product that falls into the
span of the basis (an invariant subspace) is replaced by a random vector
orthogonal to it.  For a requested accuracy ``tol`` above machine
precision the basis is only kept semi-orthogonal (Simon 1984): projections
below ``min(tol, sqrt(eps)) / 10`` are left in place.  Well above machine
precision they are not even measured (partial reorthogonalisation): bounds
on them are carried from step to step by an ω-recurrence
(:class:`_Orthogonality`), and only a block whose bound passes
``min(tol, sqrt(eps))`` is projected on the whole basis, with the block after
it (Simon's rule: its bound, made from this one, would pass too); a
restart then keeps a basis of the projected matrix's own invariant subspace
(Krylov-Schur) rather than Ritz vectors, so that the relation the estimates
rest on stays exact (:func:`_kept_subspace`).  The recurrence assumes
products exact to rounding: restarts 1, 2, 4, 8, ... measure the newest
row against the basis, and a departure beyond the bounds (products computed in lower
precision) gives the run up for one with full reorthogonalisation
(:func:`_solve`).  A last Rayleigh-Ritz
step on the returned vectors makes them orthonormal to working precision.

Storage: the basis is the rows of an ``(ncv + block_size, n)`` array in the
operator's namespace and on its device; the projected matrix and the
Rayleigh-Ritz problem live on the host, in float64 or complex128.

Host synchronisation: a few times per block of operator applications (the
projection coefficients and the norms), and once per restart (the Ritz
coefficients go to the device).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from . import _namespace as ns
from . import _validate as val
from ._linalg import (
    RowWork,
    check_start,
    cholesky_qr,
    combine_rows,
    gram_norms,
    host_iteration,
    iteration_scale,
    orthonormalize_rows,
    project_out,
    project_out_gram,
    random_vector,
    row_norms,
    set_rows,
    thin_product,
)
from ._operator import (
    LinearOperator,
    aslinearoperator,
    dask_products_on_host,
    host_view_operator,
)
from ._result import ConvergenceInfo, EighResult, report_nonconvergence
from ._result import callback_stops as _stops

__all__ = ["eigsh", "lanczos", "LanczosState"]

_WHICH = ("LM", "LA", "SA", "BE")


class LanczosState(NamedTuple):
    """What a ``callback`` sees after every restart (host NumPy values).

    Attributes
    ----------
    n_iter : int
        Restarts completed.
    n_matvec : int
        Operator applications so far.
    ritz_values : numpy.ndarray, shape (k,)
        Current approximations of the wanted eigenvalues, ascending.
    residual_estimates : numpy.ndarray, shape (k,)
        Their Ritz residual estimates ``β |s_m|``.
    n_converged : int
        How many of them meet the tolerance.
    """

    n_iter: int
    n_matvec: int
    ritz_values: Any
    residual_estimates: Any
    n_converged: int


def _preference(theta: Any, which: str) -> Any:
    """Indices of ``theta`` from most to least wanted."""
    hx = ns.numpy_namespace()
    if which == "LA":
        return hx.argsort(-theta, stable=True)
    if which == "SA":
        return hx.argsort(theta, stable=True)
    if which == "LM":
        return hx.argsort(-hx.abs(theta), stable=True)
    # BE: alternate between the top and the bottom, starting at the top.
    up = hx.argsort(-theta, stable=True)
    order, seen = [], set()
    lo, hi = len(theta) - 1, 0
    while len(order) < len(theta):
        for idx in (int(up[hi]), int(up[lo])):
            if idx not in seen:
                seen.add(idx)
                order.append(idx)
        hi, lo = hi + 1, lo - 1
    return hx.asarray(order, dtype=hx.int64)


def _wanted(theta: Any, k: int, which: str) -> Any:
    """Indices of the ``k`` wanted values (BE: ceil(k/2) high, floor(k/2) low)."""
    hx = ns.numpy_namespace()
    if which != "BE":
        return _preference(theta, which)[:k]
    up = hx.argsort(-theta, stable=True)
    n_high = (k + 1) // 2
    return hx.concat([up[:n_high], up[len(theta) - (k - n_high):]])


# LAPACK's test standard, ``||A v - λ v|| / (n ||A|| eps)`` below this, which
# a pair flagged converged at ``tol`` near eps must meet.
_STANDARD = 30.0

# A basis of fewer than k + min(k, _SMALL_BASIS) rows can lock a Ritz value
# that converged before a wanted eigenvalue was seen at all: the wanted set
# then came back with distinct values missing, flagged converged (uniform
# spectra, n = 40 to 100, k from n/4 to n - 8, 144 runs per setting at tol
# 1e-6: 23 at ncv = k + 3, 4 at k + 5, 3 at k + 8, none at k + 12 or 2k).
# Such a basis always ends with the check from a fresh block (as for
# copies), and when no row is left for it, every pair is flagged not
# converged: the set is not known to be the wanted one.  From 2k rows on
# (scipy's advice) the basis is not small: the check would cost a 4,900-row
# Laplacian at k = 6, ncv = 12, 2.2 times the products.  For k below
# _SMALL_BASIS_MIN the line is k + _SMALL_BASIS_MIN: at k = 2 ('LM', a
# triple eigenvalue 1 beside -0.97 and 0.97, n = 50), 19 of 80 runs at
# ncv = 4 and 5 returned -0.97 or -0.9 in place of the second 1, flagged
# converged (none of 120 at ncv = 6 to 12).
_SMALL_BASIS = 12
_SMALL_BASIS_MIN = 6


def _small_basis(ncv: int, k: int) -> bool:
    """Whether a basis of ``ncv`` rows is small for ``k`` wanted pairs (see _SMALL_BASIS)."""
    return ncv - k < max(min(k, _SMALL_BASIS), _SMALL_BASIS_MIN)


# A copy check (see :func:`_impl`) settles only once its contenders have
# converged (_CHECK_RESOLUTION), however long its first cycle: no number of
# rows is enough on every problem.  A rule that settled after one cycle of
# 40 rows or more returned sets with copies missing, flagged converged, on
# the 3-D Laplacian, whose top eigenvalues are triple: at n = 64,000 and
# 125,000 (k = 10, tol 1e-4 to 1e-8) from cycles of 50 to 90 rows, in 11
# of 12 runs at ncv = 60; at n = 300, five copies above a gap of 2%, 30 rows
# had sufficed.  A Krylov space tells a missed copy from the rest of the
# spectrum only once it resolves the gap between them, which on these
# spectra takes hundreds of products whatever the cycle's length.
#
# A copy check goes on until the residual norm of each contender (its Ritz
# values nearest to ranking among the wanted ones) is at most this fraction
# of its distance from them, or the tolerance.  Why that suffices: the
# check's space is a Krylov space of a random start, in which the top Ritz
# vector (for 'LA') is ``p(A) x`` with ``p`` growing beyond its roots, the
# other Ritz values below it; the part of it along an eigenvector of a
# missed copy ``c`` is bounded by its residual over ``c - θ``, so the
# start's component along the copy would have to be below this fraction of
# the one along the contender's eigenvector, which a random start gives
# with probability about ``2/π`` times this.  Measured, n = 30, five copies
# of the top eigenvalue, ncv = k + 3: the check then takes tens of cycles
# instead of the hundreds a residual at ``tol = eps`` needs.
_CHECK_RESOLUTION = 1e-3

# Products less accurate than the tolerance.  With every projection
# measured (full reorthogonalisation), what the Gram-Schmidt pass finds on
# the processed rows, after the local step removed the coefficients known by
# symmetry, is rounding for a Hermitian operator exact to rounding (measured
# 3-6 eps ||A||) and the products' own error otherwise (float32 products of a
# float64 operator: 1.3e-8 ||A||).  When its median over the last
# _NOISE_SAMPLES steps passes _NOISE_EPS eps ||A||, no residual can fall
# below it: once every wanted residual estimate has, the iteration stops,
# with the pairs above the tolerance flagged (measured on such an operator,
# a 3,000-row Laplacian, k = 6: at tol 1e-10, 16,303 products before, and
# 1.7 million, 10 minutes, at tol 0).
_NOISE_EPS = 1000.0
_NOISE_SAMPLES = 32
# Products in error by less than _NOISE_EPS eps (float16 products in a
# float32 solve: a few hundred eps) could leave the residual estimates
# wandering just above the tolerance for ever (at tol 0, a 900-row
# Laplacian with float16 products ran more than ten minutes without
# converging).  Past _NOISE_LOW_EPS eps ||A||, an order of magnitude above
# rounding (the median measured 0.4 to 4.0 eps ||A|| for exact products:
# Laplacians up to 40,000 rows, random, graded, clustered and low-rank
# matrices, real and complex, float32 and float64, every ``which``, and
# svds), the level stops the iteration too, but only on a plateau: when the
# largest wanted residual estimate has not halved over the last half of
# the restarts (at least _PLATEAU_RESTARTS of them).  A run that still
# converges keeps going.
_NOISE_LOW_EPS = 30.0
_PLATEAU_RESTARTS = 8


def _product_floor(level: float, largest: list[float], eps: float) -> float:
    """The products' error relative to ``||A||`` once it shows, else 0.

    ``level``: the median Gram-Schmidt leftover relative to ``||A||`` (0
    before _NOISE_SAMPLES steps); ``largest``: the largest wanted residual
    estimate of every restart so far.
    """
    if level > _NOISE_EPS * eps:
        return level
    if level > _NOISE_LOW_EPS * eps:
        recent = max(_PLATEAU_RESTARTS, len(largest) // 2)
        if len(largest) > recent and min(largest[-recent:]) > 0.5 * min(largest[:-recent]):
            return level
    return 0.0

# Two converged Ritz values within this many times ``tol ||A||`` of each
# other are taken for copies of one eigenvalue: each lies within its
# residual norm, at most ``tol ||A||``, of an eigenvalue.  A Ritz value of a
# fresh cycle (see :func:`_impl`) must beat the wanted ones by as much.
_COPIES_WIDTH = 4.0


def _copied(values: Any, copies: int, width: float) -> Any:
    """Mask of the ``values`` in chains of ``copies`` or more with gaps of at most ``width``."""
    hx = ns.numpy_namespace()
    order = hx.argsort(values, stable=True)
    mask = hx.zeros(len(values), dtype=bool)
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or values[order[end]] - values[order[end - 1]] > width:
            if end - start >= copies:
                mask[order[start:end]] = True
            start = end
    return mask


def _holds_copies(values: Any, copies: int, width: float) -> bool:
    """Whether ``copies`` or more of ``values`` form a chain with gaps of at most ``width``."""
    return bool(ns.numpy_namespace().any(_copied(values, copies, width)))


def _less_wanted(values: Any, theta: Any, which: str, width: float) -> Any:
    """``values`` made less wanted by ``width``, in the sense of ``which``.

    Less wanted: down for 'LA', up for 'SA', towards 0 for 'LM' and towards
    the middle of the spectrum ``theta`` for 'BE' (a shift of all values one
    way would favour one end of an 'LM' or 'BE' spectrum as it disfavours
    the other).
    """
    hx = ns.numpy_namespace()
    if which == "LA":
        return values - width
    if which == "SA":
        return values + width
    centre = 0.0 if which == "LM" else (float(hx.max(theta)) + float(hx.min(theta))) / 2
    return values - width * hx.sign(values - centre)


def _entered(theta: Any, nlock: int, k: int, which: str, width: float) -> bool:
    """Whether an active value ``theta[nlock:]`` ranks among the ``k`` wanted ones
    when every active value is made less wanted by ``width`` (:func:`_less_wanted`).
    """
    hx = ns.numpy_namespace()
    moved = _less_wanted(theta[nlock:], theta, which, width)
    ranked = _wanted(hx.concat([theta[:nlock], moved]), k, which)
    return bool(hx.any(ranked >= nlock))


def _entry_distance(values: Any, wanted: Any, which: str) -> Any:
    """How far each of ``values`` is from ranking among the ``wanted`` values (0 if it does)."""
    hx = ns.numpy_namespace()
    if which == "LA":
        d = hx.min(wanted) - values
    elif which == "SA":
        d = values - hx.max(wanted)
    elif which == "LM":
        d = hx.min(hx.abs(wanted)) - hx.abs(values)
    else:
        d = hx.min(hx.abs(wanted[None, :] - values[:, None]), axis=1)
    return hx.maximum(d, 0.0)


def _contenders(theta: Any, which: str) -> Any:
    """Indices of the Ritz values ``theta`` that come nearest to ranking among the
    wanted ones: the most wanted, and for 'LM' and 'BE' the extreme one at each end.

    'LM' needs both ends: a restart that keeps the largest magnitudes (in a
    basis of a few rows, one end's values) discards Ritz values nearer the
    other end, which damps it.  The check's contender then converged to
    0.876 while the operator held three copies of -1 (n = 50, k = 7,
    ``ncv = k + 3``), and the set came back with two of five copies of -1,
    flagged converged.  With both extremes kept and converged, the discarded
    values lie between them, and each end's argument holds (see
    _CHECK_RESOLUTION).
    """
    hx = ns.numpy_namespace()
    if which in ("LA", "SA") or theta.size == 0:
        return _preference(theta, which)[:1]
    hi, lo = int(hx.argmax(theta)), int(hx.argmin(theta))
    return hx.asarray([hi] if hi == lo else [hi, lo], dtype=hx.int64)


def _displaceable(values: Any, copies: int, width: float, which: str) -> Any:
    """Mask of the wanted ``values`` that further copies of a repeated one would displace.

    A copy the iteration has not found of a value held ``copies`` times
    (see :func:`_holds_copies`) ranks among the wanted ones ahead of every
    value it beats by more than ``width``; as many copies may be missing as
    there are wanted values.
    """
    hx = ns.numpy_namespace()
    k = len(values)
    repeated = values[_copied(values, copies, width)]
    if repeated.size == 0:
        return hx.zeros(k, dtype=bool)
    extra = hx.repeat(repeated, k)
    theta = hx.concat([values, extra])
    ranked = _wanted(hx.concat([values, _less_wanted(extra, theta, which, width)]), k, which)
    return ~hx.isin(hx.arange(k), ranked)


def _drop_unwanted_locks(xp: Any, B: Any, H: Any, pro: Any, locked_theta: list,
                        locked_est: list, k: int, which: str) -> tuple[Any, int]:
    """Keep only the ``k`` most wanted locked pairs, at the front of the basis.

    Called when every wanted pair is locked and nothing else is kept (the
    start of the check from a fresh block).  A pair locked early and
    outranked by pairs locked later held its row to the end, and with a
    basis not much larger than ``k`` the check was left a few rows: on 28
    copies of one eigenvalue (complex64, ``k = 66``, ``ncv = 89``) 20
    such pairs left it 3, whose Ritz values settled on a value tied with
    the ``k``-th and missed a copy, flagged converged.  The rows move
    forward only; ``H`` (diagonal on locked rows), the lists and the
    estimates of partial reorthogonalisation follow.  Returns ``B`` and
    the new number of locked rows.
    """
    hx = ns.numpy_namespace()
    nlock = len(locked_theta)
    keep = sorted(int(i) for i in _wanted(hx.asarray(locked_theta, dtype=hx.float64), k,
                                         which))
    if len(keep) == nlock:
        return B, nlock
    for r_, i in enumerate(keep):
        if r_ != i:
            B = set_rows(B, r_, B[i, ...])
    q = len(keep)
    H[:nlock, :] = 0.0
    H[:, :nlock] = 0.0
    for r_, i in enumerate(keep):
        H[r_, r_] = locked_theta[i]
    locked_theta[:] = [locked_theta[i] for i in keep]
    locked_est[:] = [locked_est[i] for i in keep]
    if pro is not None:
        idx = hx.asarray(keep)
        omega = hx.eye(pro.omega.shape[0], dtype=pro.omega.dtype)
        omega[:q, :q] = pro.omega[idx[:, None], idx[None, :]]
        rho = hx.zeros_like(pro.rho)
        rho[:q] = pro.rho[idx]
        pro.omega, pro.rho = omega, rho
    return B, q


def _fresh_block(xp: Any, B: Any, start: int, b: int, *, cplx: bool, rng: Any,
                 device: Any) -> tuple[Any, int]:
    """``B`` with ``b`` random rows orthonormal to ``B[:start]`` written at ``start``.

    Returns ``B`` and the number of rows now in it (fewer than
    ``start + b`` only if ``B[:start]`` spans nearly the whole space).
    """
    n = B.shape[1]
    V = xp.stack([random_vector(xp, n, B.dtype, rng, device) for _ in range(b)], axis=0)
    V, _, norms = project_out(xp, B, start, V, cplx=cplx)
    V, _, lost = orthonormalize_rows(xp, B, start, V, norms, cplx=cplx, breakdown=0.0,
                                     rng=rng)
    return set_rows(B, slice(start, start + b), V), start + b - lost


def record_restart(history: dict, callback: Callable | None, n_iter: int, n_matvec: int,
                   values: Any, estimates: Any, done: Any) -> bool:
    """Append a restart to ``history`` (ascending values) and call ``callback``.

    Returns True when the callback asks to stop.
    """
    hx = ns.numpy_namespace()
    order = hx.argsort(values, stable=True)
    history["ritz_values"].append(values[order])
    history["residual_estimates"].append(estimates[order])
    history["n_matvec"].append(n_matvec)
    if callback is None:
        return False
    state = LanczosState(n_iter, n_matvec, values[order], estimates[order],
                         int(hx.count_nonzero(done)))
    return _stops(callback(state))


# A block of two starting vectors: a single Krylov sequence never sees the
# second copy of a double eigenvalue (ARPACK's eigsh misses them on a square
# grid Laplacian); a block of two finds every copy of eigenvalues of
# multiplicity up to two in exact arithmetic, and higher ones through a
# cycle from a fresh block (see _impl, step 2) or rounding.
DEFAULT_BLOCK_SIZE = 2

# Basis rows added to the default per starting vector beyond the first.  A
# block of b vectors raises the degree of the Krylov space once per b
# products, so a cycle of a fixed basis size reaches a b times lower degree;
# on hard problems the restarts then cost many products.  Measured, k = 10,
# tol 1e-8, block of 2, anisotropic 700 x 700 Laplacian: 9,715 products at
# ncv = 80, 6,355 at 100, 6,081 at 120, 5,619 at 140 (ARPACK ncv=60: 6,318);
# on the 200 x 200 and 300 x 300 problems ncv changes the count by < 10%.
_NCV_PER_BLOCK_VECTOR = 40


def default_ncv(k: int, n: int, block_size: int = DEFAULT_BLOCK_SIZE) -> int:
    """eigarray's default basis size for ``k`` wanted pairs of an order-``n`` operator.

    ``max(3k, k + 70)`` for a single starting vector, and
    ``_NCV_PER_BLOCK_VECTOR`` more rows per further vector of the block.
    """
    return min(n, max(3 * k, k + 70) + _NCV_PER_BLOCK_VECTOR * (block_size - 1))


# The adaptive rule may keep at most this fraction of the free basis slots:
# its rate model trusts the far end of the Ritz spectrum, which is not yet
# converged, so past this point it overestimates the gain of keeping more.
_KEEP_MAX_FRACTION = 0.55

# A new basis vector whose projections on the basis are all below this
# fraction of the requested accuracy (capped at semi-orthogonality,
# sqrt(eps)) keeps them: the second Gram-Schmidt product is skipped.
_SKIP_FACTOR = 0.1


def default_keep(n_free: int, n_unconverged: int, theta: Any = None, target: int = 0) -> int:
    """Ritz vectors kept at a restart (Yamazaki, Bai, Simon, Wang & Wu's rule).

    ``theta`` holds the unlocked Ritz values ordered from most to least
    wanted along a line (values for 'LA', negated values for 'SA') and
    ``target`` is the position of the hardest unconverged wanted value.
    Keeping ``p`` vectors leaves ``n_free - p`` new Lanczos steps per cycle,
    whose convergence factor towards ``theta[target]`` behaves like the
    Chebyshev rate ``exp(-2 sqrt(γ_p))`` per step, with the gap ratio
    ``γ_p = (θ_t - θ_{p}) / (θ_{p} - θ_min)``; the rule maximises
    ``(n_free - p) sqrt(γ_p)`` over ``p <= 0.55 n_free``.  Without ``theta``
    (modes 'LM' and 'BE') it
    keeps the unconverged wanted vectors plus 40% of the remaining slots.
    """
    hx = ns.numpy_namespace()
    fallback = n_unconverged + int(0.4 * (n_free - n_unconverged))
    if theta is None or len(theta) < 3:
        return min(n_free - 1, fallback)
    spread = theta[target] - theta[-1]
    if not spread > 0:
        return min(n_free - 1, fallback)
    p = hx.arange(target + 1, min(int(_KEEP_MAX_FRACTION * n_free), len(theta) - 1) + 1)
    if p.size == 0:
        return min(n_free - 1, fallback)
    gap = (theta[target] - theta[p]) / hx.maximum(theta[p] - theta[-1], spread * 1e-12)
    score = (n_free - p) * hx.sqrt(hx.maximum(gap, 0.0))
    return int(p[int(hx.argmax(score))])


def _impl(op: LinearOperator, k: int, *, which: str, ncv: int, block_size: int,
          keep: Callable[[int, int], int], maxiter: int, tol: float, v0: Any, rng: Any,
          callback: Callable | None, want_vectors: bool,
          full_reorthogonalisation: bool = False,
          spent: _LostOrthogonality | None = None) -> EighResult:
    """Block thick-restart Lanczos on ``op`` (validated arguments).

    The basis rows ``B[:size]`` split into *processed* rows ``B[:j]``, whose
    products are known through ``A B[:j]ᵀ = B[:size]ᵀ H[:size, :j]``, and
    the *frontier* ``B[j:size]`` (``block_size`` rows) not yet multiplied.
    Processing a row appends its orthogonalised product to the frontier.
    Rayleigh-Ritz runs on ``H[:j, :j]``; the residual of a Ritz vector
    ``B[:j]ᵀ s`` is ``B[j:size]ᵀ (H[j:size, :j] s)``, whose norm needs no
    operator application.  A restart keeps Ritz vectors and the frontier.

    ``spent``: a semi-orthogonal attempt given up (:func:`_solve`), whose
    restarts, products and history this run continues.
    """
    xp = op.xp
    hx = ns.numpy_namespace()
    n = op.shape[0]
    m = ncv
    b = block_size
    dtype = op.dtype
    cplx = ns.is_complex(xp, dtype)
    host_dtype = hx.complex128 if cplx else hx.float64
    eps = ns.eps(xp, dtype)
    tol = max(tol, eps)
    skip = 0.0 if full_reorthogonalisation else _semi_orthogonality(eps, tol)
    # Counts continue those of an attempt given up: n_matvec counts every
    # product, n_iter every restart, both bounded by maxiter together.
    matvec0 = op.n_matvec - (spent.n_matvec if spent is not None else 0)

    B = xp.zeros((m + b, n), dtype=dtype, device=op.device)
    work = RowWork.of(B, b)
    H = hx.zeros((m + b, m + b), dtype=host_dtype)   # columns past m: see exhausted below
    V0 = xp.stack([v0 if (i == 0 and v0 is not None) else
                   random_vector(xp, n, dtype, rng, op.device) for i in range(b)], axis=0)
    V0, _, _ = orthonormalize_rows(xp, B, 0, V0, row_norms(xp, V0), cplx=cplx,
                                   breakdown=0.0, rng=rng)
    B = set_rows(B, slice(0, b), V0)
    size = b
    # Estimated inner products of the basis rows, kept when the basis need
    # only be semi-orthogonal: most new rows then skip the projection on it.
    pro = (_Orthogonality(m + b, host_dtype, eps) if skip >= _PRO_MIN_LEVEL * eps
           else None)
    pro_level = _PRO_FACTOR * skip       # bounds, not measurements: no margin
    project_next = False                 # the block after a projected one is projected too

    locked_theta: list[float] = []   # values of the locked pairs, rows 0..nlock-1 of B
    locked_est: list[float] = []
    nlock = 0
    j = 0                            # processed rows
    anorm = 0.0
    history: dict[str, list] = {"ritz_values": [], "residual_estimates": [], "n_matvec": [],
                                "product_error": []}
    n_iter = 0
    if spent is not None:
        history = {key: list(val_) for key, val_ in spent.history.items()}
        n_iter = spent.n_iter
    stop_reason = None
    exhausted = False
    fresh = False                    # the restart starts the copy check (see step 2)
    checking = False                 # the cycle belongs to the copy check
    owed = False                     # the iteration stopped with the check due
    # Products are divided by ``scale`` (a power of two, 1 unless ||A|| is
    # so large or small that squares of its entries would overflow or
    # underflow); values and residuals are scaled back on the way out.
    scale, scale_set = 1.0, False
    noise: list[float] = []          # Gram-Schmidt leftovers / ||A|| (see _NOISE_EPS)
    floor = 0.0                      # ... their median times ||A||, once it shows
    largest: list[float] = []        # the largest wanted residual estimate per restart

    while True:
        # 1. Process the frontier, a block of rows at a time, until m rows are.
        while j < m and j < size:
            r = min(size - j, m - j)
            V = B[j:j + r, ...]
            if work is not None:
                # NumPy: the product is written into, and orthonormalised in
                # place in, the rows it will occupy.
                W = op.matmat_rows(V, B[size:size + r, ...])
            else:
                W = op.matmat(V.T).T if r > 1 else op.matvec(V[0, ...])[None, :]
            if not scale_set:
                # The first nonzero product sets the scale of the iteration: a
                # zero one (a start in A's null space) says nothing of it.
                found = iteration_scale(xp, W, dtype)
                scale, scale_set = (1.0, False) if found is None else (found, True)
            if scale != 1.0:
                if work is not None:
                    W *= 1.0 / scale
                else:
                    W = W * (1.0 / scale)
            # Local step first: the coefficients of A V on the rows processed
            # before it are known by symmetry (conj(H[j:j+r, :j])), those on V
            # itself are a small product.  What is left for the Gram-Schmidt
            # pass over the whole basis is then small, and one pass usually
            # passes the DGKS test.
            known = H[j:j + r, :j]
            nz = (known != 0).any(axis=0).nonzero()[0]     # host arrays: NumPy methods
            lo = int(nz[0]) if nz.size else j
            Ctot = hx.zeros((size, r), dtype=host_dtype)
            K = None
            if lo < j:
                K = hx.conj(known[:, lo:j]) if cplx else known[:, lo:j]
                Ctot[lo:j, :] = K.T
            # Partial reorthogonalisation: the projections of W on the active
            # processed rows are estimated, not measured; the locked rows,
            # whose recurrence is not tracked, are projected.  The frontier
            # F (V, and the rows after it when a cycle ends on part of it)
            # is measured in the local step.
            estimated = pro is not None
            F = B[j:size, ...]
            Cl = gram = norms = None
            if work is not None and work.fused:
                # NumPy, long rows: the known coefficients, then those on F
                # (and then on the locked rows) measured and subtracted by
                # the fused kernels, which also give the Gram matrix.
                stages = [F, B[:nlock, ...]] if estimated and nlock else [F]
                Cs, gram = work.project(W, K, B[lo:j, ...], stages)
                Ctot[j:size, :] += Cs[0]
                Cl = Cs[1] if len(Cs) > 1 else (hx.zeros((0, r), dtype=host_dtype)
                                                if estimated else None)
                norms = gram_norms(gram)
            else:
                if K is not None:
                    Kd = _to_device(xp, K, dtype, B)
                    W = (work.sub(W, Kd, B[lo:j, ...]) if work is not None else
                         W - Kd @ B[lo:j, ...])
                D = thin_product(xp, F, W, cplx)
                W = work.sub(W, D.T, F) if work is not None else W - D.T @ F
                Ctot[j:size, :] += ns.to_host_numpy(D)
            E, projected = None, False
            if estimated:
                E = pro.estimate(H, Ctot, j, size, nlock, anorm, cplx)
                if Cl is None:
                    W, Cl, norms, _ = project_out_gram(xp, B, nlock, W, cplx=cplx,
                                                       work=work)
                C = hx.zeros((size, r), dtype=host_dtype)
                C[:nlock, :] = Cl
                if j > 0:
                    passed = not bool((abs(E).max(axis=0) <= pro_level * norms).all())
                else:
                    # No estimates yet, but the starting block's coefficients
                    # were measured once: what is left of them is a few eps
                    # ||A v||, large next to the new rows when the product
                    # nearly lay in the block (a start on an eigenvector).
                    # (Later estimates carry this: their rounding term holds
                    # eps times the sum of the block's coefficients.)
                    before = hx.sqrt(hx.sum(hx.abs(Ctot) ** 2, axis=0) + norms ** 2)
                    passed = bool(hx.any(_PRO_NOISE * eps * before > pro_level * norms))
                if passed or project_next:
                    # Simon's rule: the next block too, or its estimate, made
                    # from this block's and the previous one's, passes again.
                    project_next = passed and not project_next
                    W, C2, norms, gram = project_out_gram(xp, B, size, W, cplx=cplx,
                                                          work=work, norms_before=norms)
                    E, projected = pro.projected(C2, size, anorm), True
                    C = C + C2
            else:
                # Measured; with estimates kept, every projection is subtracted
                # so that the new rows are orthogonal to working precision.
                W, C, norms, measured_gram = project_out_gram(
                    xp, B, size, W, cplx=cplx, norms_before=norms,
                    skip_below=0.0 if pro is not None else skip, work=work)
                if bool(hx.any(C != 0)):
                    gram = measured_gram
            Ctot += C
            # ||A v||: its coefficients on the basis and what is left of it.
            product_norm = math.sqrt(float(((abs(Ctot) ** 2).sum(axis=0) + norms ** 2).max()))
            if not math.isfinite(product_norm):
                raise ValueError(f"`A` returned NaN or Inf for a finite vector (operator "
                                 f"application {op.n_matvec - matvec0}), or its product "
                                 f"overflows.")
            anorm = max(anorm, product_norm)
            if pro is None and j > nlock and anorm > 0.0:
                noise.append(float(hx.max(hx.linalg.vector_norm(C[nlock:j, :], axis=0)))
                             / anorm)
            Ctot[:nlock, :] = 0.0                     # locked pairs are deflated
            Q, R, lost = orthonormalize_rows(xp, B, size, W, norms, cplx=cplx,
                                             breakdown=eps * anorm * math.sqrt(n), rng=rng,
                                             work=work, gram=gram)
            H[:size, j:j + r] = Ctot
            H[size:size + r, j:j + r] = R
            if work is None:
                B = set_rows(B, slice(size, size + r), Q)
            if pro is not None:
                measured = None
                if not all(abs(R[c, c]) > 0 for c in range(R.shape[0])):
                    # Rows replaced by random vectors: their projections on
                    # the basis are measured, not estimated.
                    Qr = Q if work is None else B[size:size + r, ...]
                    measured = ns.to_host_numpy(thin_product(xp, B[:size, ...], Qr, cplx))
                pro.record(E, R, j, size, projected=projected, measured=measured)
            j += r
            size += r - lost
            exhausted = exhausted or lost > 0         # the basis spans the whole space
        exhausted = exhausted or j < m
        if exhausted and j < size:
            # The basis spans an invariant subspace (the whole space, when ncv
            # is close to n) with frontier rows left: their products lie in
            # its span, so their columns of H are their coefficients on it,
            # and Rayleigh-Ritz then sees the whole basis, with no residual.
            V = B[j:size, ...]
            W = op.matmat(V.T).T
            W = W if scale == 1.0 else W * (1.0 / scale)
            H[:size, j:size] = ns.to_host_numpy(thin_product(xp, B[:size, ...], W, cplx))
            H[:nlock, j:size] = 0.0                   # locked pairs are deflated
            j = size

        # 2. Rayleigh-Ritz on the active processed block; residuals from the frontier.
        Ha = H[nlock:j, nlock:j]
        theta, S = hx.linalg.eigh((Ha + hx.conj(Ha.T)) / 2)
        G = H[j:size, nlock:j] @ S                     # frontier coefficients of residuals
        est = hx.linalg.vector_norm(G, axis=0) if G.shape[0] else hx.zeros(theta.shape)
        anorm = max(anorm, float(hx.max(hx.abs(theta))) if theta.size else 0.0,
                    max((abs(t) for t in locked_theta), default=0.0))
        threshold = tol * anorm
        level = (float(hx.median(hx.asarray(noise[-_NOISE_SAMPLES:])))
                 if len(noise) >= _NOISE_SAMPLES else 0.0)
        width = _COPIES_WIDTH * threshold
        # Values locked at different restarts differ by rounding, tens of
        # eps ||A|| (measured), which at tol near eps exceeds ``width``:
        # values the accuracy standard cannot tell apart count as copies.
        copies_width = max(width, _STANDARD * n * eps * anorm)

        all_theta = hx.concat([hx.asarray(locked_theta, dtype=hx.float64), theta])
        all_est = hx.concat([hx.asarray(locked_est, dtype=hx.float64), est])
        wanted = _wanted(all_theta, k, which)
        largest.append(float(hx.max(all_est[wanted])))
        floor = _product_floor(level, largest, eps) * anorm
        settled = False
        if checking:
            # The copy check (step 4): every wanted pair was locked before
            # it.  One of its Ritz values that ranks among the wanted ones
            # whichever way it is moved by ``width`` makes the iteration go
            # on as usual.  Otherwise the locked pairs are the answer, once
            # its nearest contenders have converged (see _CHECK_RESOLUTION
            # and the note above it); until then the check restarts like any
            # cycle, keeping its best vectors.
            if _entered(all_theta, nlock, k, which, width):
                checking = False
            else:
                wanted = _wanted(all_theta[:nlock], k, which)
                top = _contenders(theta, which)
                reach = _CHECK_RESOLUTION * _entry_distance(theta[top], all_theta[wanted],
                                                            which)
                settled = bool(exhausted or top.size == 0
                               or hx.all(est[top] <= hx.maximum(threshold, reach)))
                checking = not settled
        done = all_est[wanted] <= threshold
        n_iter += 1
        if record_restart(history, callback, n_iter, op.n_matvec - matvec0,
                          all_theta[wanted] * scale, all_est[wanted] * scale, done):
            stop_reason = "callback"
        history["product_error"].append(floor / anorm if floor > 0.0 else math.nan)
        if (pro is not None and size > j and n_iter & (n_iter - 1) == 0
                and _lost_orthogonality(xp, B, pro, j, size, level=pro_level, cplx=cplx)):
            # Products not exact to rounding (float32 arithmetic in a
            # float64 operator) break the recurrence the estimates rest
            # on; the basis then drifts from orthogonality unnoticed, and
            # the iteration may never converge.  Measured at restarts 1, 2,
            # 4, 8, ...: a departure shows at the first (products that
            # inaccurate are so from the start), one that grows later is
            # caught before the run has doubled, and a long run pays a few
            # passes over the basis, not one per restart (which cost 4 % of
            # the time on the 200 x 200 anisotropic Laplacian).
            raise _LostOrthogonality(n_iter, op.n_matvec - matvec0, history)
        # Residuals at the products' error (see _NOISE_EPS): none will go lower.
        at_floor = floor > threshold and bool(hx.all(all_est[wanted] <= floor))
        stop = settled or exhausted or n_iter >= maxiter or stop_reason or at_floor
        # A block of b vectors sees at most b copies of an eigenvalue in
        # exact arithmetic; further ones appear through rounding, which a
        # tol above eps may not leave time for.  With b (at least two)
        # copies among the wanted values, a check from a fresh random block
        # on the operator deflated of every wanted pair finds a copy left
        # out, or shows there is none.  The block needs room beside the
        # pairs it is deflated of and a row to grow into; a smaller one
        # than b still checks (a random vector has a part along every copy
        # left out).  A small basis checks whatever the copies (see
        # _SMALL_BASIS).  Locked pairs no longer wanted give their rows to
        # the check (_drop_unwanted_locks).  With no room at all (ncv = k + 1),
        # or when maxiter ends the iteration first, the check is owed (step 5).
        # A run that stops before every pair converged owes the check as
        # well: its converged pairs may be ones that copies not yet found
        # outrank (4 copies of the top value, k = 5, maxiter = 3: 1.48 came
        # back flagged among the wanted, in place of the fourth 2.0).
        check_needed = (not settled and not exhausted
                        and (checking or _small_basis(m, k)
                             or _holds_copies(all_theta[wanted], max(b, 2), copies_width)))
        check_due = bool(hx.all(done)) and check_needed
        b_check = min(b, m - k - 1)                  # once outranked locks are dropped
        room = b_check >= 1
        fresh = check_due and not checking and room and not stop
        owed = check_needed and bool(stop or (check_due and not (checking or room)))
        if stop or (bool(hx.all(done)) and not (checking or fresh)):
            break

        # 3. Lock the converged wanted pairs and choose the Ritz vectors to keep.
        active_wanted = [int(i) - nlock for i in wanted if i >= nlock]
        new_lock = [i for i in active_wanted if est[i] <= threshold]
        unconverged = [i for i in active_wanted if est[i] > threshold]
        if checking:
            # The check goes on: its nearest contenders are the pairs to converge.
            unconverged = [int(i) for i in top if est[i] > threshold]
        if fresh:
            # Every wanted pair is locked; nothing else is kept, and a fresh
            # block replaces the frontier (step 4).
            kept, fw = [], 0
        else:
            n_free = m - nlock - len(new_lock)
            locked_set = set(new_lock)
            rest = [int(i) for i in _preference(theta, which) if int(i) not in locked_set]
            if checking:
                # The contenders first, unconverged ones ahead: both ends for
                # 'LM' (see _contenders).
                first = unconverged + [int(i) for i in top if int(i) not in unconverged]
                rest = first + [i for i in rest if i not in first]
            if keep is default_keep and which in ("LA", "SA"):
                line = theta[rest] if which == "LA" else -theta[rest]
                target = max((rest.index(i) for i in unconverged), default=0)
                n_keep = default_keep(n_free, len(unconverged), line, target)
            else:
                n_keep = keep(n_free, len(unconverged))
            n_keep = min(n_free - 1, max(len(top) if checking else len(unconverged), n_keep))
            kept = rest[:n_keep]
            fw = size - j
        sel = new_lock + kept
        p = len(sel)

        # 4. Thick restart: Ritz vectors, then the frontier rows, at the front.
        n_new = len(new_lock)
        Ysel = hx.asarray(S[:, sel], dtype=host_dtype)
        Tk = None
        if pro is not None:
            # A semi-orthogonal basis leaves Ha slightly non-Hermitian; the
            # kept vectors then span Ha's own invariant subspace, so that the
            # restarted relation stays exact (see _kept_subspace).
            Ysel, Tk, err = _kept_subspace(Ha, theta, S, new_lock, kept)
            pro.restart(Ysel, err, nlock, j, j + fw)
        Gk = H[j:j + fw, nlock:j] @ Ysel[:, n_new:]
        Y = ns.from_host_numpy(Ysel, xp, like=B)
        Y = xp.astype(Y, dtype) if Y.dtype != dtype else Y
        B = combine_rows(xp, B, Y, start=nlock, stop=j)
        for r_ in range(fw):                          # moves rows forward only
            B = set_rows(B, nlock + p + r_, B[j + r_, ...])
        H[nlock:, :] = 0.0
        for r_, i in enumerate(new_lock):
            H[nlock + r_, nlock + r_] = theta[i]
        if Tk is None:
            for r_, i in enumerate(kept):
                H[nlock + n_new + r_, nlock + n_new + r_] = theta[i]
        else:
            H[nlock + n_new:nlock + p, nlock + n_new:nlock + p] = Tk
        H[nlock + p:nlock + p + fw, nlock + n_new:nlock + p] = Gk
        locked_theta += [float(theta[i]) for i in new_lock]
        locked_est += [float(est[i]) for i in new_lock]
        nlock += n_new
        j = nlock + len(kept)
        size = j + fw
        if fresh:
            # Locked pairs that later ones outranked are dropped first: the
            # rows they held go to the check (see _drop_unwanted_locks).
            B, nlock = _drop_unwanted_locks(xp, B, H, pro, locked_theta, locked_est, k,
                                            which)
            j = size = nlock                          # = k: b_check counted on it
            B, size = _fresh_block(xp, B, size, b_check, cplx=cplx, rng=rng,
                                   device=op.device)
            project_next = False
            checking = True

    # 5. The wanted pairs, ascending, with true residuals.
    vals = all_theta[wanted]
    order = hx.argsort(vals, stable=True)
    idx = wanted[order]
    values = vals[order] * scale
    converged = all_est[idx] <= threshold
    if owed:
        # maxiter (or the callback) ended the iteration before the copy
        # check could run or settle, or before every pair converged: the
        # values that a copy not found would displace are not known to be
        # wanted ones.
        converged &= ~_displaceable(vals, max(b, 2), copies_width, which)[order]
        if _small_basis(m, k):
            # ... or a value not seen at all (see _SMALL_BASIS).
            converged[:] = False
    real_dtype = ns.real_dtype(xp, dtype)
    w_out = xp.asarray(ns.from_host_numpy(hx.asarray(values), xp, like=B), dtype=real_dtype)
    info_hist = {key: hx.asarray(val_) for key, val_ in history.items()}
    if not want_vectors and skip == 0.0:          # nothing to check: vectors not needed
        info = ConvergenceInfo(converged, hx.full(k, hx.nan), n_iter, op.n_matvec - matvec0,
                               info_hist)
        return EighResult(w_out, None, info=info)

    # Ritz vectors as rows: locked ones are basis rows, active ones combinations.
    Ycols = hx.zeros((j, k), dtype=host_dtype)
    for c_, i in enumerate(idx):
        i = int(i)
        if i < nlock:
            Ycols[i, c_] = 1.0
        else:
            Ycols[nlock:j, c_] = S[:, i - nlock]
    Y = ns.from_host_numpy(Ycols, xp, like=B)
    Y = xp.astype(Y, dtype) if Y.dtype != dtype else Y
    X = (Y.T @ B[:j, ...]).T                         # (n, k), columns are the vectors
    # Release the basis before the final products: views of it (V, F, W, Q, stages)
    # would otherwise keep it alive beside the k-vector blocks made below.
    B = V = F = W = Q = stages = work = None
    AX = op.matmat(X)
    pair = [X, AX if scale == 1.0 else AX * (1.0 / scale)]
    X = AX = None
    X, AX, w_out, departure = _final_rayleigh_ritz(xp, pair, w_out / scale, cplx=cplx,
                                                   eps=eps)
    R = AX - X * xp.astype(w_out, dtype)
    res = ns.to_host_numpy(xp.linalg.vector_norm(R, axis=0)).astype(hx.float64) * scale
    w_out = w_out * scale
    # The flags rest on estimated residuals and values.  A basis that lost
    # its orthogonality unnoticed would make both wrong: its Ritz vectors
    # then depart from orthonormality far beyond the semi-orthogonality
    # level sqrt(eps) (eps^(1/4) is the line), and no pair is passed off as
    # converged; nor is one whose true residual exceeds twice the tolerance
    # (or the accuracy standard, 30 n eps ||A||, that a solve at tol=0 meets).
    believed = converged
    converged = converged & (res <= max(2.0 * threshold, _STANDARD * n * eps * anorm) * scale)
    lost = not departure <= eps ** 0.25
    if lost:
        converged[:] = False
    if skip > 0.0 and (lost or bool(hx.any(believed & ~converged))):
        # Semi-orthogonality rests on a Hermitian operator exact to rounding;
        # products accurate to 1e-7 only (float32 data in a float64 solve)
        # break it: the caller runs again with full reorthogonalisation.
        raise _LostOrthogonality(n_iter, op.n_matvec - matvec0, history)
    if not want_vectors:
        res, X = hx.full(k, hx.nan), None
    info = ConvergenceInfo(converged, res, n_iter, op.n_matvec - matvec0, info_hist)
    return EighResult(w_out, X, info=info)


class _LostOrthogonality(Exception):
    """A semi-orthogonal run given up (see :func:`_solve`): its restarts, products
    and history, which the run with full reorthogonalisation continues."""

    def __init__(self, n_iter: int, n_matvec: int, history: dict):
        super().__init__(n_iter, n_matvec)
        self.n_iter, self.n_matvec, self.history = n_iter, n_matvec, history


def _solve(op: LinearOperator, k: int, **kwargs: Any) -> EighResult:
    """:func:`_impl`, run again with full reorthogonalisation when a semi-orthogonal
    run finds, at a restart or in its final check, that its basis lost
    orthogonality or its flags are wrong.  The second run continues the
    first one's counts and history, and takes what is left of ``maxiter``
    (at least one cycle)."""
    with host_iteration(op, op.shape[0], parallel_steps=True):
        try:
            return _impl(op, k, **kwargs)
        except _LostOrthogonality as lost:
            spent = lost
        return _impl(op, k, full_reorthogonalisation=True, spent=spent, **kwargs)


def _final_rayleigh_ritz(xp: Any, pair: list, w: Any, *, cplx: bool, eps: float) -> tuple:
    """Rayleigh-Ritz on the span of the ``k`` Ritz vectors ``X`` given ``A X``.

    ``pair`` is ``[X, A X]``; it is emptied, so that each ``(n, k)`` block can
    be released as soon as it is replaced: at most four are alive at once
    (inside Cholesky-QR2), where holding every intermediate took six.

    The basis is kept orthogonal to the semi-orthogonality level only (see
    :func:`_semi_orthogonality`), so Ritz vectors formed from it are
    orthonormal to that level; one Cholesky-QR of ``X`` and the ``k x k``
    eigenproblem of ``Qᴴ A Q`` (with ``A Q = (A X) R⁻¹``, no operator
    application) return vectors orthonormal to working precision, and
    values and residuals for exactly those vectors.  Should ``X`` be
    numerically rank deficient (it is not, for an orthogonal or
    semi-orthogonal basis), ``(X, A X, w)`` come back unchanged.  Also
    returns the departure of ``X`` from orthonormality, ``max |XᴴX - I|``
    (inf for a rank-deficient ``X``).
    """
    hx = ns.numpy_namespace()
    X, AX = pair
    pair.clear()
    Q, R, _ = cholesky_qr(xp, X, cplx=cplx, eps=eps)
    d = hx.abs(hx.diagonal(R))
    if not (d.size and float(hx.min(d)) > 64.0 * d.size * eps * float(hx.max(d))):
        return X, AX, w, math.inf
    departure = float(hx.max(hx.abs(hx.conj(R.T) @ R - hx.eye(R.shape[0]))))
    X = None
    Rinv = _to_device(xp, hx.linalg.inv(R), Q.dtype, Q)
    AQ = AX @ Rinv
    AX = None
    Hk = ns.to_host_numpy(xp.conj(Q).T @ AQ if cplx else Q.T @ AQ)
    Hk = hx.asarray(Hk, dtype="complex128" if cplx else "float64")
    w, Z = hx.linalg.eigh((Hk + hx.conj(Hk.T)) / 2)
    Zd = _to_device(xp, Z, Q.dtype, Q)
    w_out = xp.asarray(ns.from_host_numpy(w, xp, like=Q), dtype=ns.real_dtype(xp, Q.dtype))
    X = Q @ Zd
    Q = None
    return X, AQ @ Zd, w_out, departure


def _to_device(xp: Any, a: Any, dtype: Any, like: Any) -> Any:
    out = ns.from_host_numpy(ns.numpy_namespace().asarray(a), xp, like=like)
    return xp.astype(out, dtype) if out.dtype != dtype else out


def _prepare(A: Any, k: int, which: str, v0: Any, ncv: Any, maxiter: Any, tol: Any, rng: Any,
             callback: Any, on_nonconvergence: str, block_size: Any = None) -> tuple:
    # CPU torch and JAX data iterate on zero-copy NumPy views: a Lanczos step
    # is a handful of small vector operations, where per-call dispatch costs
    # of those frameworks would dominate.  Results go back to the caller's
    # namespace at the end (:func:`_to_caller`).
    hosted = host_view_operator(A)
    op, caller = (hosted[0], hosted[1:]) if hosted is not None else (aslinearoperator(A), None)
    if op.xp is None:
        if v0 is not None and ns.is_array_api_obj(v0):
            op = op.bind(ns.array_namespace(v0), device=ns.device(v0))
        else:
            op = op.bind(ns.numpy_namespace())
    if caller is None and ns.is_dask_namespace(op.xp):
        # An operator whose vectors are Dask arrays (over a Dask array, or a
        # duck-typed one bound to Dask by a Dask `v0`): run lazily, every
        # host read would compute the whole iteration so far.  On the host,
        # each product computed once, results back in Dask.
        caller = (op.xp, v0 if ns.is_dask_array(v0) else None)
        op = dask_products_on_host(op)
    n = val.check_square_shape(op.shape, name="A")
    if n < 2:
        raise ValueError(
            f"`A` must be at least 2 x 2 for a partial eigensolver; got shape={op.shape}.")
    k = val.check_int(k, name="k", low=1, high=n - 1, rule=f"0 < k < n = {n}")
    which = val.check_choice(which, _WHICH, name="which")
    if ncv is None:
        if block_size is None:
            ncv = default_ncv(k, n)
        else:
            b = val.check_int(block_size, name="block_size", low=1, high=n - k,
                              rule=f"1 <= block_size <= n - k = {n - k}")
            ncv = default_ncv(k, n, b)
    ncv = val.check_int(ncv, name="ncv", low=k + 1, high=n, rule=f"k < ncv <= n = {n} (k={k})")
    maxiter = val.check_int(maxiter, name="maxiter", low=1, allow_none=True)
    if maxiter is None:
        maxiter = max(n * 10, 1000)
    tol = val.check_tol(tol, name="tol")
    val.check_callable_or_none(callback, name="callback")
    val.check_choice(on_nonconvergence, ("warn", "raise"), name="on_nonconvergence")
    rng = ns.host_rng(rng)
    if v0 is not None:
        v0 = check_start(op, v0, n, name="v0")
    return op, k, which, v0, ncv, maxiter, tol, rng, caller


def _to_caller(result: EighResult, caller: tuple | None) -> EighResult:
    """``result`` with its arrays moved to the caller's namespace (see :func:`_prepare`)."""
    if caller is None:
        return result
    xp, like = caller
    w, V = (None if a is None else ns.from_host_numpy(a, xp, like=like) for a in result)
    return EighResult(w, V, info=result.info)


def eigsh(A: Any, k: int = 6, which: str = "LM", v0: Any = None, ncv: int | None = None,
          maxiter: int | None = None, tol: float = 0, return_eigenvectors: bool = True, *,
          M: Any = None, sigma: Any = None, Minv: Any = None, OPinv: Any = None,
          mode: str = "normal", rng: Any = None, callback: Callable | None = None,
          on_nonconvergence: str = "warn") -> Any:
    """Find ``k`` eigenpairs of a real symmetric or complex Hermitian operator.

    :func:`scipy.sparse.linalg.eigsh`'s arguments and results (standard
    problem, no shift-invert; ``M``, ``sigma``, ``Minv``, ``OPinv`` and
    ``mode`` keyword-only, where scipy takes ``M`` and ``sigma`` third and
    fourth) on the array the caller has: NumPy, CuPy, torch,
    JAX or array-api-strict arrays, scipy / cupyx sparse matrices, torch
    sparse tensors and matrix-free operators.  The solver is thick-restart
    Lanczos with full reorthogonalisation and locking (see
    :func:`eigarray.lanczos` for the knobs).

    Parameters
    ----------
    A : array, sparse matrix or operator, shape (n, n)
        Hermitian.  Anything :func:`eigarray.aslinearoperator` accepts.
    k : int, default=6
        Number of eigenpairs, ``0 < k < n``.
    which : {'LM', 'LA', 'SA', 'BE'}, default='LM'
        Largest magnitude, largest algebraic, smallest algebraic, or both
        ends (``ceil(k/2)`` from the top, ``floor(k/2)`` from the bottom).
    v0 : array, shape (n,), optional
        Starting vector (default: random, drawn from ``rng``).  For a plain
        callable operator its namespace is the namespace of the iteration.
    ncv : int, optional
        Number of basis vectors multiplied between restarts, ``k < ncv <= n``;
        default ``min(n, max(3k, k + 70) + 40)`` (the basis of the default
        block of two starting vectors; ``max(3k, k + 70)`` for one vector).
        The block holds ``min(2, ncv - k)`` vectors: one for ``ncv = k + 1``.
        Keep ``ncv`` well above ``k``: in a basis of fewer than
        ``k + min(max(k, 6), 12)`` rows a pair that ranks among the wanted ones only
        within the small basis can be locked (for instance with
        ``which='SA'`` on a rank-deficient matrix and ``ncv = k + 1``, a
        positive eigenvalue in place of a zero one); such a basis ends with
        a check from a fresh block, which costs products, and where the
        check has no room (``ncv = k + 1``) every pair comes back flagged
        not converged (see :doc:`lanczos`).
    maxiter : int, optional
        Maximum number of restarts (default ``max(10 n, 1000)``), the
        cycles of the copy check and of a run again with full
        reorthogonalisation included (see Notes).
    tol : float, default=0
        Relative accuracy: a pair is converged when its residual norm is at
        most ``tol * ||A||`` (``||A||`` estimated from the iteration);
        0 means machine precision of the working dtype.
    return_eigenvectors : bool, default=True
        When False, return the eigenvalues alone (an array), as scipy does.
    M, sigma, Minv, OPinv : None
        Generalised (``M``, ``Minv``) and shift-invert (``sigma``,
        ``OPinv``) problems are not implemented.
    mode : {'normal'}, default='normal'
        scipy's shift-invert modes ``'buckling'`` and ``'cayley'`` are not
        implemented.
    rng : None, int or numpy.random.Generator, optional
        Source of the starting and restart vectors.
    callback : callable, optional
        Called as ``callback(state)`` with a :class:`LanczosState` after each
        restart; returning ``True`` stops the iteration.
    on_nonconvergence : {'warn', 'raise'}, default='warn'
        What to do when some pairs miss the tolerance within ``maxiter``.

    Returns
    -------
    EighResult
        ``(eigenvalues, eigenvectors)``: eigenvalues ascending, shape (k,),
        real dtype of the working precision; eigenvectors as columns, shape
        (n, k); both in the namespace and on the device of ``A`` (or ``v0``).
        ``result.info`` is a :class:`ConvergenceInfo` with true residual
        norms, per-pair ``converged`` flags, restarts (``n_iter``), operator
        applications (``n_matvec``) and per-restart ``history``.
        With ``return_eigenvectors=False``, the eigenvalue array alone.

    Raises
    ------
    ValueError
        For a non-square operator, ``k`` outside ``0 < k < n``, an unknown
        ``which`` or ``mode``, NaN or Inf in a dense or sparse ``A``, a
        ``v0`` of the wrong shape, or ``ncv`` outside ``k < ncv <= n``.
    NotImplementedError
        For ``M``, ``sigma``, ``Minv`` or ``OPinv`` other than None, or
        ``mode='buckling'`` or ``'cayley'``.
    NoConvergence
        With ``on_nonconvergence='raise'``, when some pairs did not converge.

    Warns
    -----
    ConvergenceWarning
        When some pairs did not converge (their values are still returned,
        flagged in ``result.info.converged``).

    See Also
    --------
    scipy.sparse.linalg.eigsh : ARPACK's implicitly restarted Lanczos.
    lanczos : The same iteration with its basis size and restart policy exposed.

    Notes
    -----
    The iteration starts from a block of ``min(2, ncv - k)`` vectors (``v0``
    and a random one; ``v0`` alone for ``ncv = k + 1``), so both copies of a
    double eigenvalue are found (ARPACK's single vector misses second
    copies, e.g. on a square-grid Laplacian); use :func:`lanczos` with
    ``block_size=1`` for the classical single-vector method.

    A block of ``b`` vectors sees at most ``b`` copies of an eigenvalue in
    exact arithmetic.  When every wanted pair has converged and the wanted
    values hold ``b`` (and at least two) copies of one value (values within
    ``4 tol ||A||``, or the accuracy standard ``30 n eps ||A||``, of each
    other), the wanted pairs are locked and a check runs from a fresh random
    block on the operator deflated of them: when one of its Ritz values
    ranks among the wanted ones by more than ``4 tol ||A||`` the iteration
    goes on (checking again when it next converges); otherwise it stops
    once the check's own Ritz values nearest to the wanted ones have
    converged, to a thousandth of their distance from them.  A cycle of a
    fixed length is not enough: on the 3-D Laplacian (triple eigenvalues,
    64,000 and 125,000 rows, ``ncv = 60``) checks that settled after one
    cycle of 50 rows returned third copies missing, flagged converged.
    On the 300 x 300 square-grid Laplacian (``k = 10``, tol 1e-8) the
    check costs 1,570 to 1,650 products on top of 2,594.  The check
    runs only on problems with such copies, from a smaller block where the
    basis has no room for ``b`` more rows.  When it cannot run, because
    ``maxiter`` (or the callback) ends the iteration first (before every
    pair converged, too) or the basis has
    no room even for one row (``ncv = k + 1``), the pairs that a copy not
    found would displace (those less wanted than a repeated value) are
    flagged not converged,
    with a :class:`ConvergenceWarning`, even though their residuals meet
    ``tol``: the set returned is not known to be the wanted one.  A basis
    of fewer than ``k + min(max(k, 6), 12)`` rows can also lock a Ritz value that
    converged before a wanted eigenvalue had been seen at all (uniform spectra at
    ``tol=1e-6``: 23 of 144 runs at ``ncv = k + 3`` returned a distinct
    value missing, flagged converged; none at ``k + 12``): such a basis
    always ends with the check, whatever the copies, and when the check
    cannot run every pair is flagged.  The check costs those runs more
    products (1.6 to 2.2 times as many at ``ncv = k + 3``, a quarter to
    two fifths more at ``k + 5`` to ``k + 8``; none from ``2k`` rows when
    ``k >= 6``).  For 'LM' and 'BE' the check converges its extreme Ritz
    values at both ends, keeping both at its restarts: one that watched the
    largest magnitude alone settled at one end while copies missing from
    the set lay at the other.

    With a ``tol`` above machine precision the basis is kept only
    semi-orthogonal, which rests on products exact to rounding.  When they
    are not (a float64 operator that computes in float32, say), the basis
    departs from orthogonality faster than the estimates allow; restarts
    1, 2, 4, 8, ... measure that on the newest row, and on a departure the solve
    runs again with full reorthogonalisation.  ``n_iter``, ``n_matvec`` and
    ``history`` then count both runs, which share ``maxiter``.  Pairs whose
    true residuals miss ``2 tol ||A||`` (a ``tol`` below the products'
    accuracy) are flagged not converged.  With every projection measured,
    the Gram-Schmidt passes also measure the products' own error (what is
    left on the basis after the coefficients known by symmetry are
    removed: a few eps ``||A||`` for a Hermitian operator exact to
    rounding).  Once its median passes ``1000 eps ||A||`` and ``tol ||A||``,
    the iteration stops when every wanted residual estimate is below it,
    rather than running to ``maxiter``, since no residual can go lower (past
    ``30 eps ||A||`` only, when the estimates have also stopped falling:
    the largest wanted one has not halved over the last half of the
    restarts); the
    pairs are flagged not converged, the warning says why, and
    ``info.history["product_error"]`` holds the level (relative to
    ``||A||``) per restart (NaN where it was not measured or stayed at
    rounding).

    Cost per operator application: the product with ``A`` plus, for
    each of one (usually) or two Gram-Schmidt passes, two products with the
    ``(j, n)`` basis block; per restart one ``(p, ncv) x (ncv, n)`` product.
    With a ``tol`` above machine precision the basis is kept semi-orthogonal
    (projections below ``min(tol, sqrt(eps)) / 10`` stay in the new vector,
    which saves the second product of most passes), and a final
    Rayleigh-Ritz on the ``k`` Ritz vectors returns them orthonormal to
    working precision (see :doc:`accuracy`).
    A restart keeps the unconverged wanted Ritz vectors and more: 30% of
    the free slots for a sparse matrix with few entries per row, whose
    products are cheap against a restart, otherwise the number a
    convergence model predicts best (see :doc:`lanczos`).
    Memory: a peak of about ``(ncv + k + 8) n`` numbers of the working
    precision (the basis and the ``k`` Ritz vectors formed from it).  A random
    vector replaces any product that falls into the span of the basis.

    References
    ----------
    K. Wu and H. Simon, "Thick-restart Lanczos method for large symmetric
    eigenvalue problems", SIAM J. Matrix Anal. Appl. 22(2), 602-616, 2000.

    H. D. Simon, "The Lanczos algorithm with partial reorthogonalization",
    Math. Comp. 42(165), 115-142, 1984.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> from eigarray.testing import laplacian_2d
    >>> A, exact = laplacian_2d(30, 30)
    >>> w, v = eigarray.eigsh(A, k=4, which="LA", rng=0)
    >>> bool(np.allclose(w, exact[-4:], rtol=1e-12))
    True
    """
    mode = val.check_choice(mode, ("normal", "buckling", "cayley"), name="mode")
    for name, given, what in (("M", M is not None, "generalised problems"),
                              ("sigma", sigma is not None, "shift-invert"),
                              ("Minv", Minv is not None, "generalised problems"),
                              ("OPinv", OPinv is not None, "shift-invert"),
                              ("mode", mode != "normal", f"shift-invert mode {mode!r}")):
        if given:
            raise NotImplementedError(
                f"`{name}` ({what}) is not implemented; eigsh solves the standard "
                f"Hermitian problem A x = λ x.")
    return_eigenvectors = val.check_bool(return_eigenvectors, name="return_eigenvectors")
    op, k, which, v0, ncv, maxiter, tol, rng, caller = _prepare(
        A, k, which, v0, ncv, maxiter, tol, rng, callback, on_nonconvergence)
    result = _solve(op, k, which=which, ncv=ncv, block_size=min(DEFAULT_BLOCK_SIZE, ncv - k),
                   keep=_default_policy(A, op.shape[0], ncv), maxiter=maxiter, tol=tol,
                   v0=v0, rng=rng, callback=callback, want_vectors=return_eigenvectors)
    result = _to_caller(result, caller)
    report_nonconvergence(result, on_nonconvergence, detail=_product_error_note(result))
    return result if return_eigenvectors else result.eigenvalues


def lanczos(A: Any, k: int, *, which: str = "LA", ncv: int | None = None,
            keep: int | float | Callable[[int, int], int] | None = None,
            block_size: int | None = None,
            maxiter: int | None = None, tol: float = 0, v0: Any = None, rng: Any = None,
            callback: Callable | None = None, on_nonconvergence: str = "warn") -> EighResult:
    """Thick-restart Lanczos with its basis size and restart policy exposed.

    The iteration behind :func:`eigsh`, for libraries that embed it and want
    to trade memory for operator applications.

    Parameters
    ----------
    A : array, sparse matrix or operator, shape (n, n)
        Hermitian.
    k : int
        Number of wanted eigenpairs, ``0 < k < n``.
    which : {'LA', 'SA', 'LM', 'BE'}, default='LA'
        As in :func:`eigsh`.
    ncv : int, optional
        Basis size (default ``min(n, max(3k, k + 70) + 40 (block_size - 1))``,
        as in :func:`eigsh`).  Peak memory is about ``(ncv + k + 4 block_size) n``.
        Keep it well above ``k``: a basis of fewer than ``k + min(max(k, 6), 12)`` rows
        ends with a check for values it never reached, and with
        ``ncv = k + 1`` (where the default block is one vector) every pair
        is flagged not converged (see :func:`eigsh`).
    keep : int, float or callable, optional
        Restart policy: how many unlocked Ritz vectors to keep at a restart.
        An int keeps that many (at least the unconverged wanted ones), a float
        in (0, 1) keeps the unconverged wanted ones plus that fraction of the
        remaining free slots, and a callable ``keep(n_free, n_unconverged)``
        returns the count.  Default, as :func:`eigsh`: for a sparse matrix
        with at most ``ncv / 4`` stored entries per row, whose products cost
        no more than a restart's, the unconverged wanted pairs plus 30% of
        the remaining free slots; for any other operator, for 'LA' and 'SA'
        the count that maximises the predicted convergence per cycle (a
        Chebyshev rate model), for 'LM' and 'BE' the unconverged wanted
        pairs plus 40% of the remaining free slots.
    block_size : int, optional
        Number of starting vectors, ``1 <= block_size <= ncv - k`` (default
        ``min(2, ncv - k)``, as :func:`eigsh`).  A block of ``b`` vectors
        finds every copy of eigenvalues of multiplicity up to ``b``, and
        further copies through the check from a fresh block that runs when
        the converged wanted values hold ``b`` (and at least two) copies of
        one value (see :func:`eigsh`); ``block_size=1`` is the classical
        single-vector method, which needs fewer operator applications when
        the wanted eigenvalues are known to be simple, and finds a second
        copy of a repeated one only through rounding errors.
    maxiter, tol, v0, rng, callback, on_nonconvergence
        As in :func:`eigsh`.

    Returns
    -------
    EighResult
        As :func:`eigsh`.

    See Also
    --------
    eigsh : The scipy-compatible entry point.
    """
    op, k, which, v0, ncv, maxiter, tol, rng, caller = _prepare(
        A, k, which, v0, ncv, maxiter, tol, rng, callback, on_nonconvergence, block_size)
    policy = _default_policy(A, op.shape[0], ncv) if keep is None else _keep_policy(keep)
    if block_size is None:
        block_size = min(DEFAULT_BLOCK_SIZE, ncv - k)
    block_size = val.check_int(block_size, name="block_size", low=1, high=ncv - k,
                               rule=f"1 <= block_size <= ncv - k = {ncv - k}")
    result = _solve(op, k, which=which, ncv=ncv, block_size=block_size, keep=policy,
                   maxiter=maxiter, tol=tol, v0=v0,
                   rng=rng, callback=callback, want_vectors=True)
    result = _to_caller(result, caller)
    report_nonconvergence(result, on_nonconvergence, detail=_product_error_note(result))
    return result


def _product_error_note(result: Any,
                        products: str = "The operator's products depart from a Hermitian "
                                        "operator's",
                        where: str = "the Gram-Schmidt passes") -> str | None:
    """What the warning adds when the products' own error stopped the iteration."""
    errors = result.info.history.get("product_error")
    if errors is None or not errors.size or math.isnan(float(errors[-1])):
        return None
    return (f"{products} by about "
            f"{float(errors[-1]):.1e} ||A|| (measured in {where}; products "
            f"computed in a lower precision than the solve's do), more than `tol` allows: "
            f"residuals cannot fall below that, and the iteration stopped once its "
            f"estimates had.")


# A restart forms each kept vector from the whole basis (``2 ncv n`` flops),
# a Lanczos step applies the operator and orthogonalises (a few passes over
# ``n``).  For a sparse matrix with up to ``ncv / _CHEAP_ROWS_DIVISOR``
# stored entries per row, the restarts' products cost as much as the steps,
# and keeping fewer vectors trades a few more products for much less restart
# work: keeping the unconverged wanted vectors plus ``_CHEAP_KEEP`` of the
# free slots took 20%, 12% and 3% less time on the 200 x 200, 300 x 300 and
# 700 x 700 benchmark Laplacians (eigsh, k = 10, tol 1e-8; 1.5%, 6% and 2%
# more products) than the convergence-model rule, which stays the default
# for every other operator (dense matrices, functions), whose products cost
# more than a restart.
_CHEAP_KEEP = 0.3
_CHEAP_ROWS_DIVISOR = 4


def _default_policy(A: Any, n: int, ncv: int) -> Callable[..., int]:
    """The restart policy for ``A`` when the caller names none (see ``_CHEAP_KEEP``)."""
    nnz = _stored_entries(A)
    if nnz is not None and nnz * _CHEAP_ROWS_DIVISOR <= n * ncv:
        return _keep_policy(_CHEAP_KEEP)
    return default_keep


def _stored_entries(A: Any) -> int | None:
    """Stored entries of a sparse matrix (scipy, cupyx, torch); None for anything else."""
    if ns.is_torch_array(A):
        return int(A._nnz()) if "sparse" in str(A.layout) else None
    nnz = getattr(A, "nnz", None)
    try:
        return int(operator.index(nnz))
    except TypeError:
        return None


def _keep_policy(keep: Any) -> Callable[[int, int], int]:
    if keep is None:
        return default_keep
    if callable(keep):
        def call(n_free: int, n_unc: int) -> int:
            count = val.check_int(keep(n_free, n_unc), name="keep(n_free, n_unconverged)",
                                  low=0)
            return min(n_free - 1, count)

        return call
    if isinstance(keep, float) and not isinstance(keep, bool):
        if not 0.0 < keep < 1.0:
            raise ValueError(f"`keep` as a float must lie in (0, 1); got keep={keep}.")
        return lambda n_free, n_unc: min(n_free - 1, n_unc + int(keep * (n_free - n_unc)))
    count = val.check_int(keep, name="keep", low=1)
    return lambda n_free, n_unc: min(n_free - 1, count)


# Partial reorthogonalisation is used when the semi-orthogonality level is
# at least this many eps; below, the estimates (whose rounding terms are a
# few eps) could never skip a projection.
_PRO_MIN_LEVEL = 1000.0

# Rounding term of an estimate, in units of eps times the norms involved,
# added in the direction of the estimate's value.
_PRO_NOISE = 4.0
# A bound on the projections (not a measurement) is compared with the
# semi-orthogonality level itself, min(tol, sqrt(eps)), without the margin
# of 1/_SKIP_FACTOR that measured projections keep.
_PRO_FACTOR = 1.0 / _SKIP_FACTOR


class _Orthogonality:
    """Estimated inner products of the basis rows (partial reorthogonalisation).

    Simon's ω-recurrence, in the form that follows the projected matrix
    ``H`` and so serves blocks and thick restarts alike.  For a processed
    row ``b_k``, ``A b_k = Σ_l H[l, k] b_l + e_k``; a new block
    ``W = A B[j:size] - Σ_i C[i] b_i`` therefore has
    ``b_kᴴ W = Σ_l conj(H[l, k]) Ω[l, j:size] - Ω[k, :] C + e_kᴴ B[j:size]``
    with ``Ω`` the Gram matrix of the basis.  ``|e_k|`` is a few eps times
    the norms involved for a row made by a Lanczos step; a vector kept at a
    restart also carries what the restart's small eigenproblem left of its
    relation (:func:`_kept_subspace`); ``rho`` bounds that per row, through
    one 2-norm bound ``sigma`` for all the vectors kept, which restarts only
    add to.  Each estimate is widened by these bounds in the direction of
    its own value (as PROPACK widens its ω estimates by a rounding term of
    their sign), so that it stays above the true inner product; a block
    whose estimate exceeds the semi-orthogonality level is orthogonalised
    against the whole basis.
    Locked rows are not tracked: they are projected out of every block.
    """

    def __init__(self, size: int, dtype: Any, eps: float):
        hx = ns.numpy_namespace()
        self.omega = hx.eye(size, dtype=dtype)
        self.rho = hx.zeros(size)
        self.sigma = 0.0
        self.eps = eps

    def estimate(self, H: Any, C: Any, j: int, size: int, nlock: int, anorm: float,
                 cplx: bool) -> Any:
        """Estimated inner products of rows ``B[:size]`` with the new block (``(size, r)``).

        The rows ``B[:j]`` by the recurrence; the frontier ``B[j:size]``, on
        which the block was just projected, by the rounding term alone.
        """
        hx = ns.numpy_namespace()
        Om = self.omega
        Hk = H[:size, :j]
        made_from = slice(j, j + C.shape[1])          # the rows the block is A times
        E = hx.zeros((size, C.shape[1]), dtype=Om.dtype)
        E[:j] = (Hk.conj().T if cplx else Hk.T) @ Om[:size, made_from] - Om[:j, :size] @ C
        noise = _PRO_NOISE * self.eps * (anorm + abs(C).sum(axis=0))
        if cplx:
            size_ = hx.abs(E)
            direction = hx.where(size_ > 0, E / hx.where(size_ > 0, size_, 1.0), 1.0)
        else:
            direction = hx.where(E >= 0, 1.0, -1.0)
        E = E + direction * (noise[None, :] + self.rho[:size, None])
        E[:nlock, :] = 0.0
        return E

    def projected(self, C: Any, size: int, anorm: float) -> Any:
        """Bounds on the inner products of ``B[:size]`` with a block just projected on them.

        A pass of Gram-Schmidt with coefficients ``c`` on rows whose Gram
        matrix is ``I + Δ`` leaves ``-Δ c`` of them in the block: the basis's
        own departure from orthogonality, not eps, sets what is left.  Near
        an invariant subspace, where the block is small next to ``||A||``,
        that is large relative to the block once it is normalised, and
        estimates restarted from eps would miss it.  ``C``: the
        coefficients of the projection, ``(size, r)``.
        """
        hx = ns.numpy_namespace()
        D = hx.abs(self.omega[:size, :size])
        hx.fill_diagonal(D, 0.0)
        noise = _PRO_NOISE * self.eps * (anorm + hx.sum(hx.abs(C), axis=0))
        return D @ hx.abs(C) + noise[None, :]

    def record(self, E: Any, R: Any, j: int, size: int, *, projected: bool,
               measured: Any = None) -> None:
        """Set the rows ``size:size+r`` made from the block ``W = Rᵀ Q``.

        ``E``: estimates of ``B[:size] Wᴴ`` (:meth:`estimate`), or with
        ``projected`` bounds on them after a projection (:meth:`projected`).
        Through ``Q = R⁻ᵀ W`` they grow by the inverse of the block's norm:
        a block that is small next to ``||A||`` (near an invariant subspace)
        keeps relatively more of the basis.  Rows the
        orthonormalisation replaced by random vectors (a zero on ``R``'s
        diagonal) take their columns of ``measured``, ``B[:size] Qᴴ``.
        """
        hx = ns.numpy_namespace()
        r = R.shape[0]
        new = slice(size, size + r)
        Om = self.omega
        Om[:, new] = 0.0
        Om[new, :] = 0.0
        self.rho[new] = 0.0
        # Through Q = R⁻ᵀ W, column by column: estimates with their signs,
        # as Simon's recurrence carries them; bounds after a projection, and
        # columns that follow a replaced row (whose column is measured), in
        # absolute value.
        X = hx.empty((size, r), dtype=E.dtype)
        signed = not projected
        for c in range(r):
            d = R[c, c].real
            if d <= 0:
                X[:, c] = hx.abs(measured[:, c]) + self.eps
                signed = False
            elif signed:
                X[:, c] = (E[:, c] - X[:, :c] @ R[:c, c]) / d
            else:
                X[:, c] = (hx.abs(E[:, c]) + hx.abs(X[:, :c]) @ hx.abs(R[:c, c])) / d
        Om[:size, new] = X
        Om[new, :size] = Om[:size, new].conj().T
        for c in range(r):                            # Om[new, new] = I (zeroed above)
            Om[size + c, size + c] = 1.0

    def restart(self, Y: Any, err: float, nlock: int, j: int, size: int) -> None:
        """Carry the estimates through a thick restart.

        The new rows are the locked rows, the kept vectors ``B[nlock:j]ᵀ Y``
        and the frontier ``B[j:size]``: ``Ω`` becomes ``Tᴴ Ω T`` for the
        matrix ``T`` of that change of rows, and the bound ``sigma`` on the
        kept vectors' relation errors gains ``err``.
        """
        hx = ns.numpy_namespace()
        p = Y.shape[1]
        fw = size - j
        new_size = nlock + p + fw
        T = hx.zeros((size, new_size), dtype=self.omega.dtype)
        T[:nlock, :nlock] = hx.eye(nlock)
        T[nlock:j, nlock:nlock + p] = Y
        T[j:size, nlock + p:] = hx.eye(fw)
        rotated = T.conj().T @ self.omega[:size, :size] @ T
        # The relation errors of the kept vectors, the columns of
        # [e_nlock .. e_j] Y plus the new ones, are bounded together in the
        # 2-norm: Y has orthonormal columns, so the bound only adds up.
        self.sigma = (max(self.sigma, float(hx.max(self.rho[nlock:j], initial=0.0)))
                      + err + self.eps * j)
        rho = hx.zeros_like(self.rho)
        rho[nlock:nlock + p] = self.sigma
        rho[nlock + p:new_size] = self.rho[j:size]
        self.rho = rho
        self.omega = hx.eye(self.omega.shape[0], dtype=self.omega.dtype)
        self.omega[:new_size, :new_size] = rotated
        hx.fill_diagonal(self.omega, 1.0)


def _kept_subspace(Ha: Any, theta: Any, S: Any, new_lock: list, kept: list
                   ) -> tuple[Any, Any, float]:
    """Basis ``[S_lock, Y_kept]`` for a restart that keeps the Lanczos relation exact.

    ``Ha`` (the active projected matrix) is Hermitian only up to the
    non-orthogonality of a semi-orthogonal basis.  Keeping its Hermitian
    part's eigenvectors ``S`` leaves each kept vector's relation
    ``A y = Σ H y + f g`` wrong by ``B (Ha - Haᴴ)/2 s``, a combination of
    basis vectors the restart discards, which every later estimate must then
    carry.  Krylov-Schur's remedy: keep an orthonormal basis ``Y_kept`` of
    ``Ha``'s own invariant subspace for the kept eigenvalues (from first-order
    perturbation of ``S`` while no kept value is close to a discarded one,
    else from ``Ha``'s eigenvectors; orthonormalised against the locked
    ones), whose projected block ``T = Y_keptᴴ Ha Y_kept`` is then exact and
    full.  Returns the basis, ``T`` and a bound (Frobenius) on the 2-norm of
    the relation error left; the Hermitian part's eigenvectors (``T`` None)
    when they leave the smaller error (or when a kept eigenvalue is
    complex).
    """
    hx = ns.numpy_namespace()
    sel = new_lock + kept
    Ysym = S[:, sel]

    def error(Y: Any, Yk: Any) -> float:
        if Yk.shape[1] == 0:
            return 0.0
        R = Ha @ Yk
        # Frobenius: a bound on the 2-norm without an SVD per restart.
        return float(hx.linalg.matrix_norm(R - Y @ (Y.conj().T @ R), ord="fro"))

    n_new = len(new_lock)
    sym_err = error(Ysym, Ysym[:, n_new:])
    if not kept or sym_err == 0.0:
        return Ysym, None, sym_err
    Sl = S[:, new_lock]

    def subspace(Vk: Any) -> tuple[Any, Any, float]:
        Vk = Vk - Sl @ (Sl.conj().T @ Vk)
        Yk, _ = hx.linalg.qr(Vk)
        Y = hx.concat([Sl.astype(Ha.dtype), Yk], axis=1)
        return Y, Yk, error(Y, Yk)

    # First order: Ha's invariant subspace is span(S_k + S_o X) with
    # X = (S_oᴴ Ha S_k) / (θ_k - θ_o), valid while X is small (no kept
    # value close to a discarded one); otherwise Ha's eigenvectors.
    kept_set = set(kept)
    others = [i for i in range(len(theta)) if i not in kept_set]
    Sk, So = S[:, kept], S[:, others]
    gaps = theta[kept][None, :] - theta[others][:, None]
    M = So.conj().T @ Ha @ Sk
    tiny = hx.finfo(hx.float64).eps * float(hx.max(hx.abs(theta)))
    if bool(hx.all(hx.abs(M) <= 1e-6 * hx.abs(gaps))):
        Y, Yk, err = subspace(Sk + So @ (M / gaps))
        if err <= 1e-3 * sym_err or err <= len(theta) * tiny:
            return Y, Yk.conj().T @ Ha @ Yk, err
    w, V = hx.linalg.eig(Ha)                   # complex arrays, as the Array API has it
    # Match eigenvalues by rank: Ha's are within ||Ha - Haᴴ|| of theta.
    by_rank = hx.empty(len(theta), dtype=hx.int64)
    by_rank[hx.argsort(theta, stable=True)] = hx.argsort(hx.real(w), stable=True)
    cols = by_rank[kept]
    Vk = V[:, cols]
    if not hx.iscomplexobj(Ha):
        if bool(hx.any(hx.imag(w[cols]) != 0)):      # a complex pair: no real subspace here
            return Ysym, None, sym_err
        Vk = hx.real(Vk)
    Y, Yk, inv_err = subspace(Vk)
    if not inv_err < sym_err:
        return Ysym, None, sym_err
    return Y, Yk.conj().T @ Ha @ Yk, inv_err


def _lost_orthogonality(xp: Any, B: Any, pro: _Orthogonality, j: int, size: int, *,
                        level: float, cplx: bool) -> bool:
    """Whether the newest row ``B[size - 1]`` departs from the processed rows by
    more than the estimates allow (partial reorthogonalisation).

    The estimates bound the inner products only for an operator exact to
    rounding; the newest row, made from all the others, shows a departure
    first.  A measured inner product above the semi-orthogonality ``level``
    and above ``_PRO_FACTOR`` times its bound means the basis is no longer
    semi-orthogonal.  Cost: one pass over the processed rows (a few % of a
    restart; the whole frontier would double it).
    """
    hx = ns.numpy_namespace()
    M = hx.abs(ns.to_host_numpy(thin_product(xp, B[:j, ...], B[size - 1:size, ...], cplx)))
    bound = (hx.abs(pro.omega[:j, size - 1:size]) + pro.rho[:j, None]
             + pro.rho[size - 1])
    return bool(hx.any(M > hx.maximum(level, _PRO_FACTOR * bound)))


def _semi_orthogonality(eps: float, tol: float) -> float:
    """Level below which a new basis vector's projections on the basis are left in it.

    Simon (1984): a Lanczos basis orthogonal to ``sqrt(eps)`` (semi-orthogonal)
    gives Ritz values accurate to working precision; eigarray keeps it below
    ``tol / 10`` as well, so with the default ``tol`` (machine precision) every
    projection is subtracted, as in full reorthogonalisation.
    """
    return min(math.sqrt(eps), tol) * _SKIP_FACTOR
