"""Result types, convergence information, warnings and errors.

Every solver returns a named tuple that unpacks like its peer's tuple and
carries ``.info``, a :class:`ConvergenceInfo`.  Arrays in the tuple live in the
caller's namespace and device; the convergence information is host NumPy, so
that it can be printed and plotted without touching the device again.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ConvergenceInfo",
    "EighResult",
    "SVDResult",
    "ConvergenceWarning",
    "NoConvergence",
]


class ConvergenceInfo(NamedTuple):
    """How a solver converged.

    Attributes
    ----------
    converged : numpy.ndarray of bool, shape (k,)
        Per returned pair, whether it met the tolerance.
    residual_norms : numpy.ndarray, shape (k,)
        True residual norms ``||A v - λ v||`` of the returned pairs, computed
        from the returned vectors (NaN when vectors were not requested).
    n_iter : int
        Iterations (for Lanczos: restart cycles) performed.
    n_matvec : int
        Operator applications, counting each column of a block product.
    history : dict of str to numpy.ndarray
        Per iteration: ``"ritz_values"`` (iterations x k), ``"residual_estimates"``
        (iterations x k) and ``"n_matvec"`` (iterations,), ready to plot.
        Lanczos, svds and subspace iteration add ``"product_error"``
        (iterations,): the error of the operator's products relative to
        ``||A||`` where the solver measured it above rounding, NaN elsewhere
        (see :func:`eigarray.eigsh`).  Other solvers keep their own keys.
    """

    converged: np.ndarray
    residual_norms: np.ndarray
    n_iter: int
    n_matvec: int
    history: dict

    @property
    def all_converged(self) -> bool:
        """True when every returned pair converged."""
        return bool(np.all(self.converged))


class _ResultTuple(tuple):
    """A tuple of named arrays that also carries ``info``.

    It unpacks exactly like the peer's tuple (``w, v = eigsh(...)``) while the
    convergence information rides along as an attribute, the way scipy's
    ``_make_tuple_bunch`` results do.
    """

    _fields: tuple[str, ...] = ()

    def __new__(cls, *values: Any, info: ConvergenceInfo | None = None):
        if len(values) != len(cls._fields):
            raise TypeError(f"{cls.__name__} takes {len(cls._fields)} arrays")
        self = super().__new__(cls, values)
        self.info = info
        return self

    def __getattr__(self, name: str) -> Any:
        try:
            return self[type(self)._fields.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        parts = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({parts}, info={self.info!r})"

    def __reduce__(self):
        return (_rebuild, (type(self), tuple(self), self.info))


def _rebuild(cls, values, info):
    return cls(*values, info=info)


class EighResult(_ResultTuple):
    """``(eigenvalues, eigenvectors)`` plus ``info``, unpacking as ``w, v``.

    Eigenvalues are ascending unless the solver documents otherwise;
    eigenvectors are the columns of ``eigenvectors``.
    """

    _fields = ("eigenvalues", "eigenvectors")


class SVDResult(_ResultTuple):
    """``(U, S, Vh)`` plus ``info``, unpacking as ``u, s, vh``."""

    _fields = ("U", "S", "Vh")


class ConvergenceWarning(RuntimeWarning):
    """Some requested pairs did not meet the tolerance within ``maxiter``."""


class NoConvergence(RuntimeError):
    """Raised instead of :class:`ConvergenceWarning` with ``on_nonconvergence='raise'``.

    Attributes
    ----------
    result : EighResult or SVDResult
        Everything the solver computed, unconverged pairs flagged in
        ``result.info.converged``.
    eigenvalues, eigenvectors
        Shortcuts into an :class:`EighResult` (as
        ``scipy.sparse.linalg.ArpackNoConvergence``); None when ``result``
        is an :class:`SVDResult` (read ``result.S`` and the vectors there).
    """

    def __init__(self, message: str, result: Any):
        super().__init__(message)
        self.result = result
        self.eigenvalues = result[0] if isinstance(result, EighResult) else None
        self.eigenvectors = result[1] if isinstance(result, EighResult) else None


def callback_stops(answer: Any) -> bool:
    """Whether a callback's return value asks the solver to stop.

    ``True``, Python's or NumPy's (a comparison such as ``state.x < 1e-6``
    gives ``numpy.bool_``); anything else, None included, lets it go on.
    """
    return answer is True or (isinstance(answer, np.bool_) and bool(answer))


def report_nonconvergence(result: Any, policy: str, what: str = "eigenpairs", *,
                          steps: str = "iterations", measure: str = "residual norm",
                          message: str | None = None, detail: str | None = None) -> None:
    """Warn about (or raise for) the pairs of ``result`` that did not converge.

    ``what`` names the items counted, ``steps`` the unit of ``info.n_iter``
    and ``measure`` what ``info.residual_norms`` holds; ``message``, when
    given, replaces the sentence built from them; ``detail`` follows it.
    """
    import warnings

    info = result.info
    missed = int(np.count_nonzero(~info.converged))
    if missed == 0:
        return
    if message is None:
        res = np.asarray(info.residual_norms, dtype=float)
        worst = float(np.nanmax(res)) if np.any(~np.isnan(res)) else float("nan")
        applied = f" and {info.n_matvec} operator applications" if info.n_matvec else ""
        message = (f"{missed} of {info.converged.size} {what} did not converge after "
                   f"{info.n_iter} {steps}{applied}; worst {measure} {worst:.3g}.")
    if detail:
        message = f"{message} {detail}"
    msg = f"{message} Unconverged ones are flagged in `result.info.converged`."
    if policy == "raise":
        raise NoConvergence(msg, result)
    warnings.warn(msg, ConvergenceWarning, stacklevel=3)
