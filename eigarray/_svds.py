"""Thick-restart Golub-Kahan-Lanczos bidiagonalisation for a few singular triplets.

Algorithm: the Golub-Kahan-Lanczos (GKL) bidiagonalisation with full
reorthogonalisation of both bases (as PROPACK), restarted by the thick
restart / augmentation of Baglama & Reichel (2005, IRLBA), which for the
bidiagonalisation is the Krylov-Schur method of Stewart and the thick restart
of Wu & Simon.  The operator is oriented so that it is tall, ``B = A`` when
``m >= n`` and ``B = Aᴴ`` otherwise, so that the *right* basis lives on the
smaller side.  Each step applies ``B`` to the newest right vector and ``Bᴴ``
to the newest left vector; the products are orthogonalised against the whole
left (resp. right) basis by classical Gram-Schmidt repeated under the DGKS
criterion, as products over the basis block.  The projected matrix
``M = Uᴴ B V`` (upper bidiagonal after a cold start, "arrow + bidiagonal"
after a restart) is never formed from ``AᴴA`` or the augmented matrix, so
small singular values keep their absolute accuracy ``eps ||A||``.  When
``ncv`` steps have been taken, the SVD of the small ``M`` on the host gives
Ritz triplets and their residual estimates ``|β_j p_{j,i}|``; converged
wanted triplets are locked (their coupling to the rest set to zero, never
touched again) and the basis is restarted with the best Ritz vectors and the
last right vector, in one matrix product per basis.  For the smallest
values, restarts keep harmonic Ritz vectors instead (Baglama & Reichel's
harmonic augmentation, from the SVD of ``Uᴴ B [V, v_{j+1}]``), while
convergence and the returned triplets stay with ordinary Ritz triplets.
After each restart the restarted rows of both bases are measured against
the basis and orthonormalised again if they drifted.  At the end the flags
of the residual estimates are checked against the true residuals and the
orthonormality of the returned vectors.  A single start vector sees one
copy of a repeated singular value: when every wanted triplet has converged,
a check from a fresh random start vector on the operator deflated of them
looks for further copies until its nearest Ritz values have converged (as
eigsh does beyond its block size).

Storage: the right and left bases are the rows of ``(ncv + 1, min(m, n))``
and ``(ncv + 1, max(m, n))`` arrays, in the operator's namespace and on its
device; the projected ``(ncv + 1) x (ncv + 1)`` matrix and its SVD live on
the host in float64 or complex128.

Host synchronisation: a few scalars per operator application (projection
coefficients and norms), and a few times per restart (the Ritz
coefficients go to the device, the overlaps of the restarted rows come
back).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import _namespace as ns
from . import _validate as val
from ._lanczos import (
    _CHECK_RESOLUTION,
    _COPIES_WIDTH,
    _NOISE_SAMPLES,
    _STANDARD,
    _contenders,
    _displaceable,
    _entered,
    _entry_distance,
    _product_error_note,
    _product_floor,
    _small_basis,
    default_keep,
    record_restart,
)
from ._linalg import (
    check_start,
    cholesky_qr,
    combine_rows,
    gram,
    host_iteration,
    orthonormalize_rows,
    project_out,
    random_vector,
    row_norms,
    scaled_operator,
    set_rows,
    thin_product,
)
from ._operator import (
    LinearOperator,
    aslinearoperator,
    dask_host_operator,
    dask_products_on_host,
)
from ._power import svd_impl as power_svd_impl
from ._randomized import svd_impl as randomized_svd_impl
from ._result import ConvergenceInfo, SVDResult, report_nonconvergence

__all__ = ["svds"]

_WHICH = ("LM", "SM")
_SOLVERS = ("lanczos", "randomized", "power")
_RETURN_VECTORS = (True, False, "u", "vh")
# Departure from orthonormality of restarted rows, in units of eps sqrt(n),
# past which they are orthonormalised again (see _reorthonormalize).
_DRIFT = 16.0


def default_ncv(k: int, m: int, n: int, which: str = "LM") -> int:
    """eigarray's default basis size for ``k`` triplets of an ``m x n`` operator.

    ``min(m, n, max(2k + 1, k + 24))`` for the largest values; the smallest
    ones are clustered on the scale of ``AᴴA``, whose Krylov space the
    bidiagonalisation builds, and get ``min(m, n, max(3k, k + 64))``.
    """
    if which == "SM":
        return min(min(m, n), max(3 * k, k + 64))
    return min(min(m, n), max(2 * k + 1, k + 24))


def _impl(op: LinearOperator, k: int, *, which: str, ncv: int, maxiter: int, tol: float,
          v0: Any, rng: Any, callback: Callable | None, want_vectors: bool) -> SVDResult:
    """Thick-restart GKL bidiagonalisation on ``op`` (validated arguments).

    With ``B`` the tall orientation of ``op``, the right basis rows ``V[:j+1]``
    and left basis rows ``U[:j]`` satisfy ``B V_j = U_j M`` and
    ``Bᴴ U_j = V_j Mᴴ + β v_{j+1} e_jᵀ`` (``M = M[:j, :j]`` on the host).
    A harmonic restart ('SM') takes one more forward step first, so that
    ``B V_{j+1} = U_{j+1} M[:j+1, :j+1]``; the rows ``nlock:`` are active.
    Returns singular values ascending.
    """
    # On A / s (s a power of two, 1 unless ||A|| is so large or small that
    # squares of its entries would overflow or underflow: see
    # scaled_operator); values and residuals are scaled back on the way out.
    op, scale = scaled_operator(op)
    xp = op.xp
    hx = ns.numpy_namespace()
    m_a, n_a = op.shape
    flip = m_a < n_a                       # B = Aᴴ: the right basis is A's left side
    mB, nB = (n_a, m_a) if flip else (m_a, n_a)
    fwd = op.rmatvec if flip else op.matvec
    adj = op.matvec if flip else op.rmatvec
    dtype = op.dtype
    cplx = ns.is_complex(xp, dtype)
    host_dtype = hx.complex128 if cplx else hx.float64
    eps = ns.eps(xp, dtype)
    tol = max(tol, eps)
    count0 = op.n_matvec + op.n_rmatvec

    def n_products() -> int:
        return op.n_matvec + op.n_rmatvec - count0

    V = xp.zeros((ncv + 1, nB), dtype=dtype, device=op.device)
    U = xp.zeros((ncv + 1, mB), dtype=dtype, device=op.device)
    M = hx.zeros((ncv + 1, ncv + 1), dtype=host_dtype)
    v = v0 if v0 is not None else random_vector(xp, nB, dtype, rng, op.device)
    v = v / xp.astype(xp.linalg.vector_norm(v), dtype)
    V = set_rows(V, 0, v)

    locked_s: list[float] = []
    locked_est: list[float] = []
    nlock = 0
    j = 0
    beta = 0.0
    anorm = 0.0
    history: dict[str, list] = {"ritz_values": [], "residual_estimates": [], "n_matvec": [],
                                "product_error": []}
    n_iter = 0
    stop_reason = None
    exhausted = False
    # The products' own error (as eigsh measures it and stops at it, see
    # _lanczos._NOISE_EPS and _lanczos._product_floor):
    # the coefficients of Bᴴ u_j on the right basis are known, row j of M,
    # from B's products; what Gram-Schmidt finds beyond them is rounding for
    # an adjoint exact to it, and the products' error otherwise.
    noise: list[float] = []
    floor = 0.0
    largest: list[float] = []        # the largest wanted residual estimate per restart
    skip_forward = False               # after a harmonic restart u_j already exists
    # The cycle that looks for further copies of wanted values (steps 2-4):
    # ``verifying`` while it runs; ``reach`` is the line that a singular value
    # of the deflated operator must pass to rank among the wanted ones.
    verifying = False
    reach = 0.0
    # Unless the bound of _out_of_reach ends it, the check goes on
    # (``continuing``), keeping its best vectors, until its nearest
    # contenders have converged: one cycle, of however many rows, settled on
    # Ritz values far inside a clustered spectrum (see
    # _lanczos._CHECK_RESOLUTION).  A small basis (fewer than k + min(max(k, 6), 12)
    # rows, see _lanczos._SMALL_BASIS) can also lock a triplet before a
    # wanted value was seen: it always ends with the check.
    small = _small_basis(ncv, k)
    continuing = False
    fresh_cycle = False               # the cycle started from a fresh vector alone

    def forward(j: int) -> None:
        """``u_j`` from ``B v_j``: column ``j`` of ``M``."""
        nonlocal U, anorm
        w = fwd(V[j, ...])[None, :]
        nw = row_norms(xp, w)
        anorm = max(anorm, _finite_norm(nw, "adjoint product" if flip else "product"))
        w, C, norms = project_out(xp, U, j, w, cplx=cplx, norms_before=nw)
        C[:nlock, :] = 0.0                            # locked triplets are deflated
        Q, R, lost = orthonormalize_rows(xp, U, j, w, norms, cplx=cplx,
                                         breakdown=eps * anorm * math.sqrt(mB), rng=rng)
        q = _random_orthogonal(xp, U, j, mB, dtype, cplx, rng) if lost else None
        U = set_rows(U, j, Q[0, ...] if q is None else q)
        M[:j, j] = C[:, 0]
        M[j, j] = R[0, 0]

    def backward(j: int) -> tuple[float, int]:
        """``v_{j+1}`` from ``Bᴴ u_j``; returns ``β_j`` and whether it was lost."""
        nonlocal V, anorm
        z = adj(U[j, ...])[None, :]
        nz = row_norms(xp, z)
        anorm = max(anorm, _finite_norm(nz, "product" if flip else "adjoint product"))
        z, C, norms = project_out(xp, V, j + 1, z, cplx=cplx, norms_before=nz)
        if j >= nlock and anorm > 0.0:
            known = hx.conj(M[j, nlock:j + 1])
            noise.append(float(hx.linalg.vector_norm(C[nlock:j + 1, 0] - known)) / anorm)
        Q, R, lost = orthonormalize_rows(xp, V, j + 1, z, norms, cplx=cplx,
                                         breakdown=eps * anorm * math.sqrt(nB), rng=rng)
        if not lost:
            V = set_rows(V, j + 1, Q[0, ...])
            return abs(complex(R[0, 0])), 0
        q = _random_orthogonal(xp, V, j + 1, nB, dtype, cplx, rng)
        if q is None:
            return 0.0, 1                             # the right basis spans the space
        V = set_rows(V, j + 1, q)
        return 0.0, 0

    while True:
        # 1. GKL steps with full reorthogonalisation until ncv right vectors are multiplied.
        out_of_reach = False
        while j < ncv and not exhausted:
            if skip_forward:
                skip_forward = False
            else:
                forward(j)
            beta, lost = backward(j)
            j += 1
            exhausted = lost > 0                      # the right basis spans the space
            if (verifying and fresh_cycle and which == "LM"
                    and _out_of_reach(M, nlock, j, reach, nB, ncv)):
                out_of_reach = True
                break                                 # no further copy, but for odds of 1e-4

        # 2. Ritz triplets from the SVD of the active M = Uᴴ B V; residuals |β p_last|.
        P, s, Qh = hx.linalg.svd(M[nlock:j, nlock:j])
        Qr = hx.conj(Qh.T)
        est = beta * hx.abs(P[-1, :]) if P.shape[0] else hx.zeros(0)
        anorm = max(anorm, float(s[0]) if s.size else 0.0, max(locked_s, default=0.0))
        threshold = tol * anorm
        level = (float(hx.median(hx.asarray(noise[-_NOISE_SAMPLES:])))
                 if len(noise) >= _NOISE_SAMPLES else 0.0)

        width = _COPIES_WIDTH * threshold
        all_s = hx.concat([hx.asarray(locked_s, dtype=hx.float64), s])
        all_est = hx.concat([hx.asarray(locked_est, dtype=hx.float64), est])
        wanted = _preference(all_s, which)[:k]
        largest.append(float(hx.max(all_est[wanted])))
        floor = _product_floor(level, largest, eps) * anorm
        settled = False
        if verifying:
            # The cycle from a fresh start vector (step 4), every wanted
            # triplet locked before it: unless one of its Ritz values ranks
            # among the wanted by more than ``width``, the locked triplets
            # are the answer; otherwise the iteration goes on with it.
            verifying = continuing = False
            line = "LA" if which == "LM" else "SA"
            settled = not _entered(all_s, nlock, k, line, width)
            locked_wanted = _preference(all_s[:nlock], which)[:k]
            if settled and not (out_of_reach or exhausted):
                top = _contenders(s, line)
                reach_c = _CHECK_RESOLUTION * _entry_distance(s[top], all_s[locked_wanted], line)
                continuing = bool(top.size) and not bool(
                    hx.all(est[top] <= hx.maximum(threshold, reach_c)))
                settled = not continuing
            if settled or continuing:
                wanted = locked_wanted
        done = all_est[wanted] <= threshold
        n_iter += 1
        if record_restart(history, callback, n_iter, n_products(), all_s[wanted] * scale(),
                          all_est[wanted] * scale(), done):
            stop_reason = "callback"
        history["product_error"].append(floor / anorm if floor > 0.0 else math.nan)
        # Residuals at the products' error: none will go lower.
        at_floor = floor > threshold and bool(hx.all(all_est[wanted] <= floor))
        stop = settled or exhausted or n_iter >= maxiter or stop_reason or at_floor
        if continuing and not stop:
            verifying = True
        elif bool(hx.all(done)) and not stop:
            # One start vector sees one copy of a repeated singular value in
            # exact arithmetic; further ones appear through rounding, which
            # a tol above eps may not leave time for (and even tol=0 may
            # miss).  One cycle from a fresh random start vector on the
            # operator deflated of every wanted triplet finds a copy left
            # out, or shows there is none (eigsh does the same for copies
            # beyond its block size).
            n_after = nlock + sum(1 for i in wanted if i >= nlock)
            verifying = n_after + 1 < ncv
            reach = (float(hx.min(all_s[wanted])) + width if which == "LM"
                     else float(hx.max(all_s[wanted])) - width)
        if stop or (bool(hx.all(done)) and not verifying):
            break

        # 3. Lock the converged wanted triplets and choose the vectors to keep.  For
        #    'SM' without new locks, the harmonic Ritz vectors (Baglama & Reichel)
        #    are kept instead: from the SVD of M⁺ = Uᴴ B [V, v_{j+1}], which needs
        #    one more product, u_{j+1} = (B v_{j+1} - β u_j) / α.
        active_wanted = [int(i) - nlock for i in wanted if i >= nlock]
        new_lock = [i for i in active_wanted if est[i] <= threshold]
        unconverged = [i for i in active_wanted if est[i] > threshold]
        if continuing:
            # The check goes on: its nearest contenders are the pairs to converge.
            unconverged = [int(i) for i in top if est[i] > threshold]
        harmonic = which == "SM" and not new_lock and beta > 0.0 and not verifying
        if harmonic:
            forward(j)
            alpha = M[j, j]
            P, s, Qh = hx.linalg.svd(M[nlock:j, nlock:j + 1], full_matrices=True)
            Qr = hx.conj(Qh.T)                        # last column: the null vector of M⁺
        n_free = ncv - nlock - len(new_lock)
        locked_set = set(new_lock)
        rest = [int(i) for i in _preference(s, which) if int(i) not in locked_set]
        line = s[rest] ** 2 if which == "LM" else -(s[rest] ** 2)   # eigenvalues of BᴴB
        target = max((rest.index(i) for i in unconverged), default=0)
        n_keep = default_keep(n_free, len(unconverged), line, target)
        n_keep = min(n_free - 1, max(len(unconverged), n_keep))
        # Before the cycle from a fresh start vector every wanted triplet is
        # locked (all converged) and nothing else is kept.
        kept = [] if verifying and not continuing else rest[:n_keep]
        sel = new_lock + kept
        p = len(sel)
        M[nlock:, :] = 0.0
        M[:, nlock:] = 0.0
        for r_, i in enumerate(sel):
            M[nlock + r_, nlock + r_] = s[i]

        # 4. Thick restart.  Ritz: the Ritz vectors, then v_{j+1}, the next vector
        #    to multiply.  Harmonic: right vectors [V, v_{j+1}] [Q_sel, null vector],
        #    left vectors [U P_sel, u_{j+1}], coupled through the last row of M;
        #    the next step starts at Bᴴ u_{j+1}.
        if harmonic:
            Y = hx.concat([Qr[:, sel], Qr[:, -1:]], axis=1)
            V = combine_rows(xp, V, _to_device(xp, Y, dtype, V), start=nlock, stop=j + 1)
            U = combine_rows(xp, U, _to_device(xp, P[:, sel], dtype, U), start=nlock, stop=j)
            U = set_rows(U, nlock + p, U[j, ...])
            last = j - nlock
            for r_, i in enumerate(sel):
                M[nlock + p, nlock + r_] = alpha * Qr[last, i]
            M[nlock + p, nlock + p] = alpha * Qr[last, -1]
            skip_forward = True
        else:
            V = combine_rows(xp, V, _to_device(xp, Qr[:, sel], dtype, V), start=nlock, stop=j)
            fresh = (_random_orthogonal(xp, V, nlock + p, nB, dtype, cplx, rng)
                     if verifying and not continuing else None)
            V = set_rows(V, nlock + p, V[j, ...] if fresh is None else fresh)
            U = combine_rows(xp, U, _to_device(xp, P[:, sel], dtype, U), start=nlock, stop=j)
        V = _reorthonormalize(xp, V, nlock, nlock + p + 1, cplx=cplx, eps=eps)
        U = _reorthonormalize(xp, U, nlock, nlock + p + (1 if harmonic else 0), cplx=cplx,
                              eps=eps)
        fresh_cycle = verifying and not continuing
        locked_s += [float(s[i]) for i in new_lock]
        locked_est += [float(est[i]) for i in new_lock]
        nlock += len(new_lock)
        j = nlock + len(kept)

    # 5. The wanted triplets, ascending, with true residuals.
    vals = all_s[wanted]
    order = hx.argsort(vals, stable=True)
    idx = wanted[order]
    converged = all_est[idx] <= threshold
    if (small or continuing) and not (settled or exhausted):
        # The check for copies (or, in a small basis, for values never
        # reached) did not run (no row left for it) or did not finish
        # within maxiter: the set is not known to be the wanted one.
        converged[:] = False
    elif not (settled or exhausted):
        # The iteration stopped (maxiter, the callback, the products' error)
        # before the check could start: one start vector sees one copy of
        # each value, so any wanted one may have copies not found, which
        # would displace the values below them (three copies of the top
        # value, maxiter = 1: 0.886 and 0.9 came back flagged in place of
        # two of them).
        line = "LA" if which == "LM" else "SA"
        copies_width = max(_COPIES_WIDTH * threshold, _STANDARD * max(m_a, n_a) * eps * anorm)
        converged &= ~_displaceable(vals, 1, copies_width, line)[order]
    real_dtype = ns.real_dtype(xp, dtype)
    s_scaled = xp.asarray(ns.from_host_numpy(hx.asarray(vals[order]), xp, like=V),
                          dtype=real_dtype)
    s_out = s_scaled * scale() if scale() != 1.0 else s_scaled
    info_hist = {key: hx.asarray(val_) for key, val_ in history.items()}

    # The vectors are formed even when only the values are asked for: the
    # flags are checked on them (k more products with A and k with Aᴴ).
    Yv = hx.zeros((j, k), dtype=host_dtype)
    Yu = hx.zeros((j, k), dtype=host_dtype)
    for c_, i in enumerate(idx):
        i = int(i)
        if i < nlock:
            Yv[i, c_] = Yu[i, c_] = 1.0
        else:
            Yv[nlock:j, c_] = Qr[:, i - nlock]
            Yu[nlock:j, c_] = P[:, i - nlock]
    XV = _to_device(xp, Yv, dtype, V).T @ V[:j, ...]       # (k, nB): right vectors of B
    XU = _to_device(xp, Yu, dtype, U).T @ U[:j, ...]       # (k, mB): left vectors of B
    Ucols, Vrows = (XV.T, XU) if flip else (XU.T, XV)       # A's left columns, right rows
    Vh = xp.conj(Vrows) if cplx else Vrows
    Vcols = Vrows.T                                         # A's right vectors as columns
    sd = xp.astype(s_scaled, dtype)
    R1 = op.matmat(Vcols) - Ucols * sd                      # residuals of A / s
    R2 = op.rmatmat(Ucols) - Vcols * sd
    r1 = ns.to_host_numpy(xp.linalg.vector_norm(R1, axis=0)).astype(hx.float64) * scale()
    r2 = ns.to_host_numpy(xp.linalg.vector_norm(R2, axis=0)).astype(hx.float64) * scale()
    res = hx.maximum(r1, r2)
    # The flags rest on the estimates |β p_last|, which assume that Bᴴ is
    # the adjoint of B and that both bases are orthonormal.  A triplet is
    # passed off as converged only if its true residual is within twice
    # the tolerance (or the accuracy standard, 30 max(m, n) eps ||A||, that
    # a solve at tol=0 meets): an adjoint product that is not the adjoint
    # fails here, and so does a NaN or Inf residual.  Vectors that are not
    # orthonormal to that standard clear every flag.
    line = 30.0 * max(m_a, n_a) * eps
    converged = converged & (res <= max(2.0 * threshold, line * anorm) * scale())
    if not (_departure(xp, Ucols, cplx) <= line and _departure(xp, Vcols, cplx) <= line):
        converged[:] = False
    info = ConvergenceInfo(converged, res, n_iter, n_products(), info_hist)
    if not want_vectors:
        return SVDResult(None, s_out, None, info=info)
    return SVDResult(Ucols, s_out, Vh, info=info)


def _departure(xp: Any, X: Any, cplx: bool) -> float:
    """``||Xᴴ X - I||_1`` of a block of columns (NaN if ``X`` holds NaN)."""
    hx = ns.numpy_namespace()
    G = gram(xp, X, cplx) - hx.eye(X.shape[1])
    return float(hx.max(hx.sum(hx.abs(G), axis=0)))


def _reorthonormalize(xp: Any, B: Any, start: int, stop: int, *, cplx: bool,
                      eps: float) -> Any:
    """Make the restarted rows ``B[start:stop]`` orthonormal again, if they drifted.

    Gram-Schmidt under the DGKS criterion leaves a new vector orthogonal to
    the basis only as well as the basis is orthonormal itself, so whatever
    departure the basis has is inherited by every new vector; restarts mix
    the new vectors into the kept ones, and over hundreds of restarts that
    keep most of the basis (a small ``ncv``, 'SM') the departure grew
    geometrically until the returned vectors were no longer orthonormal.
    One product measures the rows against ``B[:stop]``; past a rounding
    level they are projected off the locked rows ``B[:start]`` and
    orthonormalised by Cholesky-QR2.  The change is of the size of the
    departure, which the relation ``B V = U M`` then carries as rounding.
    """
    hx = ns.numpy_namespace()
    if stop <= start:                  # a restart that kept no left vector
        return B
    rows = B[start:stop, ...]
    C = hx.array(ns.to_host_numpy(thin_product(xp, B[:stop, ...], rows, cplx)))
    C[start:stop, :] -= hx.eye(stop - start)
    if float(hx.max(hx.abs(C))) <= _DRIFT * eps * math.sqrt(B.shape[1]):
        return B
    if start > 0:
        rows = project_out(xp, B, start, rows, cplx=cplx)[0]
    Q, _, _ = cholesky_qr(xp, rows.T, cplx=cplx, eps=eps)
    return set_rows(B, slice(start, stop), Q.T)


# Odds, over the random start vector, that the check for further copies of a
# wanted singular value ends early (see _out_of_reach) while a copy that
# belongs among the wanted ones is left out: a bound, summed over the steps.
_MISS = 1e-4


def _out_of_reach(M: Any, nlock: int, j: int, reach: float, n: int, ncv: int) -> bool:
    """Whether the cycle from a fresh start vector may stop: no singular value
    of the deflated operator passes ``reach``, but for odds of ``_MISS``.

    The ``d = j - nlock`` steps of that cycle span the Krylov space
    ``K_d(B̃ᴴB̃, v)`` of the deflated operator ``B̃`` from a random ``v``,
    and the largest Ritz value of ``B̃ᴴB̃`` there is ``s_1²``, ``s_1`` the
    largest singular value of the bidiagonal ``M[nlock:j, nlock:j]``.
    Kuczyński & Woźniakowski (1992) bound, for any positive semidefinite
    matrix of order ``n`` and ``v`` uniform on the sphere, the odds that
    ``d`` steps leave ``s_1² <= (1 - ε) σ_max²`` by
    ``1.648 sqrt(n) exp(-sqrt(ε) (2d - 1))``, whatever the spectrum; with
    ``d - 1`` in place of ``d`` (whether their count of products is ``d``
    or ``d - 1``) and the odds split over the at most ``ncv`` steps, ``ε``
    follows, and ``σ_max <= s_1 / sqrt(1 - ε) <= reach`` ends the cycle.
    On a spectrum that decays this happens well before the cycle's end;
    near a cluster the bound stays loose and the cycle runs in full.
    """
    hx = ns.numpy_namespace()
    d = j - nlock
    if d < 2:
        return False
    root = math.log(1.648 * math.sqrt(n) * ncv / _MISS) / (2 * d - 3)
    if root >= 1.0:
        return False
    s1 = float(hx.linalg.svdvals(M[nlock:j, nlock:j])[0])
    return s1 <= reach * math.sqrt(1.0 - root * root)


def _finite_norm(norms: Any, product: str) -> float:
    """The norm of one product, refused when NaN or Inf.

    Python's ``max`` passes over a NaN, which would leave the basis and the
    projected matrix poisoned while ``||A||`` looked sane; eigsh refuses
    such products the same way.
    """
    value = float(norms[0])
    if not math.isfinite(value):
        raise ValueError(f"`A` returned NaN or Inf for a finite vector (in its {product}), "
                         f"or the product overflows.")
    return value


def _random_orthogonal(xp: Any, B: Any, size: int, n: int, dtype: Any, cplx: bool,
                       rng: Any) -> Any:
    """A random unit vector orthogonal to ``B[:size]`` (None when ``size >= n``).

    Used after a breakdown that :func:`orthonormalize_rows` could not repair:
    its test keeps a random vector only if half its norm survives the
    projection, which fails when the basis fills most of the space (a random
    vector keeps about ``sqrt((n - size) / n)`` of its norm).  Two projections
    make the survivor orthogonal to working precision whatever its size.
    """
    if size >= n:
        return None
    r = random_vector(xp, n, dtype, rng, ns.device(B))[None, :]
    n0 = float(row_norms(xp, r)[0])
    for _ in range(2):
        r, _, norms = project_out(xp, B, size, r, cplx=cplx)
    nr = float(norms[0])
    if not nr > 1e3 * ns.eps(xp, dtype) * math.sqrt(n) * n0:
        return None
    return r[0, ...] / xp.astype(xp.asarray(nr, dtype=ns.real_dtype(xp, dtype),
                                            device=ns.device(B)), dtype)


def _preference(s: Any, which: str) -> Any:
    """Indices of ``s`` from most to least wanted."""
    hx = ns.numpy_namespace()
    return hx.argsort(-s if which == "LM" else s, stable=True)


def _to_device(xp: Any, a: Any, dtype: Any, like: Any) -> Any:
    hx = ns.numpy_namespace()
    out = ns.from_host_numpy(hx.ascontiguousarray(a), xp, like=like)
    return xp.astype(out, dtype) if out.dtype != dtype else out


def _check_return(value: Any) -> Any:
    if isinstance(value, bool) or type(value).__name__ == "bool":   # numpy.bool_ too
        return bool(value)
    if not any(isinstance(value, str) and value == c for c in _RETURN_VECTORS):
        raise ValueError("`return_singular_vectors` must be one of True, False, 'u', 'vh'; "
                         f"got return_singular_vectors={value!r}.")
    return value


def svds(A: Any, k: int = 6, ncv: int | None = None, tol: float = 0, which: str = "LM",
         v0: Any = None, maxiter: int | None = None, return_singular_vectors: Any = True, *,
         solver: str = "lanczos", rng: Any = None, callback: Callable | None = None,
         on_nonconvergence: str = "warn") -> Any:
    """Find ``k`` singular triplets of a matrix or operator.

    A drop-in for :func:`scipy.sparse.linalg.svds` that runs on the array the
    caller has: NumPy, CuPy, torch, JAX or array-api-strict arrays, scipy /
    cupyx sparse matrices, torch sparse tensors and operators with an adjoint
    product.  The default solver is thick-restart Golub-Kahan-Lanczos
    bidiagonalisation with full reorthogonalisation of both bases (Baglama &
    Reichel's augmented restart, PROPACK's reorthogonalisation): it applies
    ``A`` and ``Aᴴ`` alternately and never forms ``AᴴA``, so small singular
    values are as accurate as large ones (absolute error ``O(eps ||A||)``).
    ``solver='randomized'`` (Halko-Martinsson-Tropp, a fixed number of
    passes) and ``solver='power'`` (block power iteration) take fewer passes
    where the spectrum allows.

    Parameters
    ----------
    A : array, sparse matrix or operator, shape (m, n)
        Anything :func:`eigarray.aslinearoperator` accepts that has an
        adjoint product (``rmatvec`` or ``rmatmat``); dense and sparse
        matrices always do.
    k : int, default=6
        Number of singular triplets: ``0 < k < min(m, n)`` for
        ``solver='lanczos'`` (scipy's rule), ``0 < k <= min(m, n)`` for the
        other solvers.
    ncv : int, optional
        ``solver='lanczos'`` only: number of Lanczos vectors of each side
        between restarts, ``k < ncv <= min(m, n)``; default
        ``min(min(m, n), max(2k + 1, k + 24))`` for 'LM' and
        ``min(min(m, n), max(3k, k + 64))`` for 'SM'.  Ignored by the other
        solvers.  Below ``k + min(max(k, 6), 12)`` the final check costs more, and at
        ``ncv = k + 1`` every triplet is flagged not converged (see Notes).
    tol : float, default=0
        Relative accuracy; 0 means machine precision of the working dtype.
        ``solver='lanczos'`` iterates until the residual estimate of every
        wanted triplet is at most ``tol * ||A||`` (``||A||`` estimated by
        the largest Ritz value and product norm), then flags a triplet
        converged only if its true residual
        ``max(||A v - σ u||, ||Aᴴ u - σ v||)`` is at most
        ``max(2 tol, 30 max(m, n) eps) * ||A||`` and the returned ``u`` and
        ``v`` are orthonormal to ``30 max(m, n) eps``.
        ``solver='randomized'`` makes its fixed number of passes whatever
        ``tol`` and flags a triplet converged when its true residual is at
        most ``max(tol, 30 max(m, n) eps) * σ_max`` (``σ_max`` the largest
        value found).  ``solver='power'`` iterates until the true residuals
        are at most ``max(tol, eps sqrt(max(m, n))) * σ_max``.
    which : {'LM', 'SM'}, default='LM'
        Largest or smallest singular values.  'SM' is for ``solver='lanczos'``
        only and converges well when the smallest singular values are
        separated from each other (not a cluster at zero); otherwise it warns.
    v0 : array, shape (min(m, n),), optional
        ``solver='lanczos'`` only: starting vector, as scipy: an approximate
        right singular vector when ``m >= n``, a left one when ``m < n``
        (default: random, drawn from ``rng``).  Ignored by the other solvers.
    maxiter : int, optional
        ``solver='lanczos'``: maximum number of restarts (default
        ``max(10 min(m, n), 1000)``); ``solver='power'``: maximum number of
        iterations.  Ignored by ``solver='randomized'``.
    return_singular_vectors : {True, False, 'u', 'vh'}, default=True
        As scipy: False returns the singular values alone (an array), 'u'
        returns ``(u, s, None)`` and 'vh' returns ``(None, s, vh)``,
        whatever the shape.  (scipy's docstring still describes an older
        rule, under which 'u' dropped ``vh`` only when ``m <= n``; since
        scipy 1.8 its code returns None for the side not asked for, and so
        does eigarray.)
    solver : {'lanczos', 'randomized', 'power'}, default='lanczos'
        The algorithm (see Notes).
    rng : None, int or numpy.random.Generator, optional
        Source of the starting and restart vectors.
    callback : callable, optional
        ``solver='lanczos'`` only: called as ``callback(state)`` with a
        :class:`LanczosState` (``ritz_values`` are singular values) after
        each restart; returning ``True`` stops the iteration.
    on_nonconvergence : {'warn', 'raise'}, default='warn'
        What to do when some triplets miss the tolerance within ``maxiter``.

    Returns
    -------
    SVDResult
        ``(u, s, vh)``: ``s`` ascending, shape (k,), real dtype of the
        working precision (as scipy's ``svds`` returns them); ``u`` of shape
        (m, k) with the left singular vectors as columns; ``vh`` of shape
        (k, n) with the right singular vectors as rows; all in the namespace
        and on the device of ``A``.  ``result.info`` is a
        :class:`ConvergenceInfo` whose ``residual_norms`` are the true
        ``max(||A v - σ u||, ||Aᴴ u - σ v||)``, ``n_matvec`` counts products
        with ``A`` and with ``Aᴴ``, ``n_iter`` counts restarts and
        ``history`` holds per restart the Ritz values, residual estimates
        and product counts.  With ``return_singular_vectors=False``, the
        array ``s`` alone.

    Raises
    ------
    ValueError
        For ``k``, ``ncv``, ``which``, ``solver``, ``tol``, ``maxiter`` or
        ``return_singular_vectors`` out of range, NaN or Inf in a dense or
        sparse ``A`` or in ``v0``, a zero ``v0`` or one of the wrong shape,
        an empty ``A``, ``which='SM'`` or a ``callback`` with a solver
        other than 'lanczos', or, with the Lanczos solver, a product with
        ``A`` or ``Aᴴ`` that holds NaN or Inf.
    TypeError
        For an operator ``A`` without an adjoint product, a non-integer
        ``k``, ``ncv`` or ``maxiter``, or a complex ``v0`` for a real ``A``.
    NoConvergence
        With ``on_nonconvergence='raise'``, when some triplets did not converge.

    Warns
    -----
    ConvergenceWarning
        When some triplets did not converge (they are still returned,
        flagged in ``result.info.converged``).

    See Also
    --------
    scipy.sparse.linalg.svds : ARPACK on the normal matrix, or PROPACK.
    eigsh : Thick-restart Lanczos for Hermitian operators.

    Notes
    -----
    Which solver: 'lanczos' (the default) for a few triplets to working
    accuracy, the smallest ones included, and whenever singular values are
    close together; 'randomized' for a low-rank approximation of a matrix
    whose spectrum decays, in a fixed small number of passes over ``A``
    (the best choice for Dask arrays and out-of-core data; the passes do not
    depend on ``tol``, which only judges the result: where the spectrum
    decays slowly the residuals stay far above the accuracy standard, and a
    ``ConvergenceWarning`` says so unless ``tol`` asks for no more than the
    approximation gives); 'power' to refine or track the top singular
    subspace.

    The Lanczos solver orients the operator so that its right basis is on
    the smaller side (it works on ``Aᴴ`` when ``m < n``): for ``which='SM'``
    the small Ritz values then approximate the ``min(m, n)`` singular values
    and not the zero eigenvalues of the larger Gram matrix.  Each step costs
    one product with ``A``, one with ``Aᴴ`` and, per Gram-Schmidt pass (one
    or two), two products with each ``(j, m)`` and ``(j, n)`` basis block;
    each restart costs one ``(p, ncv) x (ncv, m + n)`` product, and one of
    the same size that measures the restarted rows' drift from
    orthonormality (rarely, a Cholesky-QR then restores it).  The final
    check costs ``k`` products with ``A`` and ``k`` with ``Aᴴ``, also when
    only the values are returned.  Memory: ``(ncv + 2)(m + n)`` numbers of
    the working precision.

    Repeated singular values: a single starting vector sees one copy of a
    repeated value in exact arithmetic, and further copies appear only
    through rounding, which a ``tol`` above working precision (and at times
    ``tol=0``) does not wait for: the next values came back in their place,
    flagged converged.  So when every wanted triplet has converged, they
    are locked and a check runs from a fresh random start vector orthogonal
    to their right vectors, on the operator deflated of them (its products
    are made orthogonal to their left vectors): if one of its Ritz values
    ranks among the wanted ones by more than ``4 tol ||A||``, the iteration
    goes on with it (and checks again when it next converges); otherwise
    the locked triplets are returned, once the check's Ritz values nearest
    to the wanted ones have converged to a thousandth of their distance
    from them, the check restarting like any cycle, keeping its best
    vectors, until then.  For 'LM' the check ends as soon as Kuczyński &
    Woźniakowski's bound for Lanczos from a random start puts every
    singular value of the deflated operator below that line, with odds of
    at most 1e-4 that a copy above it is missed; on a spectrum that decays
    this comes well before the first cycle's end.  One cycle of a fixed
    length is not enough near a cluster: on the 3-D Laplacian (triple
    values, 27,000 and 64,000 rows, ``tol=1e-4``) checks that settled
    after one cycle of 24 and 30 rows returned copies missing, flagged
    converged.  What this guarantees: every call makes the check (unless
    ``ncv = k + 1``, which leaves no room for it); for 'LM' a check that
    ends on the bound leaves out a singular value that belongs among the
    wanted ones by more than ``4 tol ||A||`` with odds of at most 1e-4
    over the random start, and otherwise a copy is missed only if the
    random start's part along it is below a thousandth of its part along
    the check's nearest Ritz vector (odds of about 1e-3).  A copy of the
    ``k``-th value itself is not looked for (the values returned are
    right, the vectors one basis of its singular subspace among many).
    When ``maxiter`` ends the check before it settles, every triplet is
    flagged not converged, with a :class:`ConvergenceWarning`; when it (or
    the callback) ends the iteration before the check starts, the triplets
    that copies not found could displace (all but the copies of the most
    wanted value) are.
    Cost, measured with ``rng=0``: none on decaying spectra, where the
    bound ends the check early (2000 x 300, values halving or falling by
    0.9 at each step, ``k`` = 6 or 10: 94 to 128 products in all); 20 to
    30% more products in all where it does not: 496 and 532 instead of
    402 and 442 (one cycle) for values spread evenly over [1, 2],
    498 and 604 instead of 384 and 490 for
    ``scipy.sparse.random(5000, 2000, density=0.01)``, and for 'SM'
    (600 x 200, values spread evenly over [0.1, 1], ``k = 4``) 848
    instead of 662.
    A basis of fewer than ``k + min(max(k, 6), 12)`` rows leaves the check a cycle of a few
    rows, whose Ritz values stay far inside the spectrum; in such a basis a
    triplet can also be locked before a wanted value has been seen at all
    (uniform spectra, 96 runs per setting at ``tol=1e-6``: a wanted value
    missing and every triplet flagged converged at ``ncv`` from ``k + 1`` to
    ``k + 8``; 'SM' on a rank-deficient matrix, 0.5 among the smallest
    values).  Such a basis always ends with the check, and when it cannot
    run (``ncv = k + 1`` leaves no row for it), every triplet is flagged
    not converged, with a :class:`ConvergenceWarning`.

    For 'SM' the restarts that lock nothing keep harmonic Ritz vectors
    (Baglama & Reichel), from the SVD of the ``j x (j+1)`` matrix
    ``Uᴴ B [V, v_{j+1}]`` (one more product per restart), while convergence
    is judged, and the triplets are returned, by ordinary Ritz triplets,
    whose residuals reach ``eps ||A||`` even for singular values far below
    ``||A||`` (harmonic Ritz vectors of such values are ill-determined).
    'SM' converges slowly towards a cluster of tiny singular values (a
    geometric decay down to ``1e-12 ||A||``) and says so through
    ``ConvergenceWarning``.

    Host synchronisation: a few scalars per product, one small SVD per
    restart.  With the Lanczos solver, a Dask array, an operator over one,
    or a duck-typed operator bound to Dask by a Dask ``v0`` is run on the
    host: each product is computed at once and the bases are NumPy arrays
    (a lazy basis would recompute the whole iteration at every read); the
    result comes back as Dask arrays.

    References
    ----------
    J. Baglama and L. Reichel, "Augmented implicitly restarted Lanczos
    bidiagonalization methods", SIAM J. Sci. Comput. 27(1), 19-42, 2005.
    K. Wu and H. Simon, "Thick-restart Lanczos method for large symmetric
    eigenvalue problems", SIAM J. Matrix Anal. Appl. 22(2), 602-616, 2000.
    R. M. Larsen, "Lanczos bidiagonalization with partial
    reorthogonalization", DAIMI PB-357, 1998 (PROPACK).
    J. Kuczyński and H. Woźniakowski, "Estimating the largest eigenvalue by
    the power and Lanczos algorithms with a random start", SIAM J. Matrix
    Anal. Appl. 13(4), 1094-1122, 1992.

    Examples
    --------
    >>> import numpy as np, eigarray
    >>> from eigarray.testing import matrix_with_singular_values
    >>> sigma = np.r_[np.linspace(1.0, 0.5, 57), [3e-10, 2e-10, 1e-10]]
    >>> A, _, _ = matrix_with_singular_values(180, 60, sigma, rng=0)
    >>> u, s, vh = eigarray.svds(A, k=3, which="SM", rng=0)   # ascending, as scipy
    >>> bool(np.max(np.abs(s - [1e-10, 2e-10, 3e-10])) < 1e-15)
    True
    >>> u, s, vh = eigarray.svds(A, k=2, rng=0)
    >>> bool(np.allclose(s, [sigma[1], sigma[0]], rtol=1e-14))
    True
    """
    # Lanczos on Dask: products computed one at a time on the persisted matrix
    hosted = dask_host_operator(A) if solver == "lanczos" else None
    op = hosted[0] if hosted is not None else aslinearoperator(A)
    if op.xp is None:
        if v0 is not None and ns.is_array_api_obj(v0):
            op = op.bind(ns.array_namespace(v0), device=ns.device(v0))
        else:
            op = op.bind(ns.numpy_namespace())
    if hosted is None and solver == "lanczos" and ns.is_dask_namespace(op.xp):
        # An operator whose vectors are Dask arrays (an operator over a Dask
        # array, or a duck-typed one bound to Dask by a Dask `v0`): run on
        # the host as for a Dask `A`, each product computed once.
        hosted = (dask_products_on_host(op), op.xp, v0 if ns.is_dask_array(v0) else None)
        op = hosted[0]
    shape = op.shape
    if len(shape) != 2:
        raise ValueError(f"`A` must be 2-D; got shape={shape}.")
    m, n = shape
    if m < 1 or n < 1:
        raise ValueError(f"`A` must not be empty; got shape={shape}.")
    if not op.has_adjoint:
        raise TypeError("`A` must provide its adjoint product (`rmatvec` or `rmatmat`) for "
                        "svds; wrap it with eigarray.aslinearoperator or give the object "
                        "an `rmatmat` method.")
    solver = val.check_choice(solver, _SOLVERS, name="solver")
    small = min(m, n)
    if solver == "lanczos":
        k = val.check_int(k, name="k", low=1, high=small - 1,
                          rule=f"0 < k < min(m, n) = {small}")
    else:
        k = val.check_int(k, name="k", low=1, high=small,
                          rule=f"0 < k <= min(m, n) = {small} for solver={solver!r}")
    which = val.check_choice(which, _WHICH, name="which")
    tol = val.check_tol(tol, name="tol")
    maxiter = val.check_int(maxiter, name="maxiter", low=1, allow_none=True)
    return_singular_vectors = _check_return(return_singular_vectors)
    val.check_callable_or_none(callback, name="callback")
    val.check_choice(on_nonconvergence, ("warn", "raise"), name="on_nonconvergence")
    rng = ns.host_rng(rng)
    if v0 is not None:
        v0 = check_start(op, v0, small, name="v0", note=" = (min(m, n),)")
    want = return_singular_vectors is not False

    if solver == "lanczos":
        if ncv is None:
            ncv = default_ncv(k, m, n, which)
        ncv = val.check_int(ncv, name="ncv", low=k + 1, high=small,
                            rule=f"k < ncv <= min(m, n) = {small} (k={k})")
        if maxiter is None:
            maxiter = max(10 * small, 1000)
        with host_iteration(op, max(m, n)):
            result = _impl(op, k, which=which, ncv=ncv, maxiter=maxiter, tol=tol, v0=v0,
                           rng=rng, callback=callback, want_vectors=want)
    else:
        if which != "LM":
            raise ValueError(f"`which` must be 'LM' for solver={solver!r} (only the Lanczos "
                             f"solver finds the smallest singular values); got which={which!r}.")
        if callback is not None:
            raise ValueError(f"`callback` is supported by solver='lanczos' only; "
                             f"got solver={solver!r}.")
        result = _ascending(op.xp, _delegate(op, k, solver, tol=tol, maxiter=maxiter, rng=rng))
    if hosted is not None:
        _, xp, like = hosted
        result = SVDResult(*(None if a is None else ns.from_host_numpy(a, xp, like=like)
                             for a in result), info=result.info)
    report_nonconvergence(result, on_nonconvergence, "singular triplets",
                          detail=_product_error_note(
                              result, "The products with A and Aᴴ depart from those of a "
                                      "matrix and its adjoint",
                              where=("the Gram-Schmidt passes" if solver == "lanczos"
                                     else "the Rayleigh-Ritz matrix")))
    if not want:
        return result.S
    if return_singular_vectors == "u":
        return SVDResult(result.U, result.S, None, info=result.info)
    if return_singular_vectors == "vh":
        return SVDResult(None, result.S, result.Vh, info=result.info)
    return result


def _delegate(op: LinearOperator, k: int, solver: str, *, tol: float, maxiter: int | None,
              rng: Any) -> SVDResult:
    if solver == "randomized":
        m, n = op.shape
        n_iter = 7 if k < 0.1 * min(m, n) else 4              # scikit-learn's 'auto'
        res = randomized_svd_impl(op, k, n_oversamples=10, n_iter=n_iter, normalizer="auto",
                                  method="range_finder", rng=rng, transpose=m < n,
                                  residuals=True)
        return _judge(res, tol, ns.eps(op.xp, op.dtype), max(m, n))
    return power_svd_impl(op, k, tol=tol, maxiter=maxiter, block_size=None, rng=rng)


def _judge(res: SVDResult, tol: float, eps: float, length: int) -> SVDResult:
    """Flags of a randomized SVD from its true residuals.

    The range finder makes a fixed number of passes and has no stopping
    test of its own; a triplet is flagged converged when its residual is at
    most ``max(tol, 30 max(m, n) eps) * σ_max`` (the accuracy standard at
    ``tol=0``), ``σ_max`` the largest value found.  NaN fails.
    """
    hx = ns.numpy_namespace()
    s = ns.to_host_numpy(res.S).astype(hx.float64)
    bound = max(tol, 30.0 * length * eps) * float(hx.max(s))
    converged = hx.asarray(res.info.residual_norms) <= bound
    return SVDResult(res.U, res.S, res.Vh, info=res.info._replace(converged=converged))


def _ascending(xp: Any, res: SVDResult) -> SVDResult:
    """Reorder a result with descending singular values to ascending (scipy's order)."""
    hx = ns.numpy_namespace()
    k = res.S.shape[0]
    rev = xp.asarray(ns.from_host_numpy(hx.arange(k - 1, -1, -1), xp, like=res.S))
    U = xp.take(res.U, rev, axis=1) if res.U is not None else None
    Vh = xp.take(res.Vh, rev, axis=0) if res.Vh is not None else None
    info = res.info
    if info is not None:
        info = info._replace(converged=hx.asarray(info.converged)[::-1].copy(),
                             residual_norms=hx.asarray(info.residual_norms)[::-1].copy())
    return SVDResult(U, xp.take(res.S, rev, axis=0), Vh, info=info)
