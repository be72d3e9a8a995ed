"""Argument checks shared by every public function.

Each helper takes the argument's public name and raises a ``ValueError`` or
``TypeError`` whose message names the argument, states the rule and shows the
value received, before any computation starts.
"""

from __future__ import annotations

import numbers
from typing import Any

__all__ = [
    "check_int",
    "check_choice",
    "check_tol",
    "check_finite",
    "check_square_shape",
    "check_callable_or_none",
    "check_bool",
    "as_array",
]


def check_int(value: Any, *, name: str, low: int | None = None, high: int | None = None,
              rule: str | None = None, allow_none: bool = False) -> int | None:
    """Check that ``value`` is an integer with ``low <= value <= high``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {name}={value!r}.")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if rule is None:
            lo = "" if low is None else f"{low} <= "
            hi = "" if high is None else f" <= {high}"
            rule = f"{lo}{name}{hi}"
        raise ValueError(f"`{name}` must be an integer with {rule}; got {name}={value}.")
    return value


def check_choice(value: Any, choices: tuple[str, ...], *, name: str) -> str:
    """Check that ``value`` is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {allowed}; got {name}={value!r}.")
    return value


def check_tol(value: Any, *, name: str = "tol") -> float:
    """Check a non-negative finite tolerance (0 means working precision)."""
    try:
        if isinstance(value, str) or _is_bool(value):
            raise TypeError
        tol = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a non-negative real number; got {name}={value!r}.") from None
    if not (tol >= 0.0) or tol == float("inf"):
        raise ValueError(f"`{name}` must be a non-negative finite number; got {name}={value!r}.")
    return tol


def check_finite(xp: Any, x: Any, *, name: str) -> None:
    """Raise if a dense array holds NaN or Inf (one host synchronisation)."""
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"`{name}` must not contain NaN or Inf.")


def check_square_shape(shape: Any, *, name: str = "A") -> int:
    """Check a 2-D square shape and return its order."""
    if shape is None or len(shape) != 2:
        raise ValueError(f"`{name}` must be a 2-D square matrix or operator; got shape={shape}.")
    m, n = shape
    if m != n:
        raise ValueError(f"`{name}` must be square; got shape=({m}, {n}).")
    return int(n)


def check_callable_or_none(value: Any, *, name: str) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"`{name}` must be callable or None; got {type(value).__name__}.")
    return value


def check_bool(value: Any, *, name: str) -> bool:
    """Check that ``value`` is a boolean (Python's or NumPy's) and return it as ``bool``."""
    if not _is_bool(value):
        raise TypeError(f"`{name}` must be True or False; got {name}={value!r}.")
    return bool(value)


def _is_bool(value: Any) -> bool:
    """Whether ``value`` is a boolean: Python's, NumPy's, or a 0-d boolean array.

    NumPy's class is ``numpy.bool`` (named ``bool``) since NumPy 2 and
    ``numpy.bool_`` before; it is no subclass of ``bool`` but converts to
    a float, so a tolerance check would read ``True`` as 1.0.
    """
    if isinstance(value, bool) or type(value).__name__ in ("bool", "bool_"):
        return True
    # 0-d boolean arrays (NumPy's, torch's) convert to a float just as well
    return getattr(value, "ndim", None) == 0 and "bool" in str(getattr(value, "dtype", ""))


def as_array(value: Any, *, name: str) -> Any:
    """``value`` itself if it is an array of a supported namespace; a nested
    list or tuple of numbers as a NumPy array (as ``numpy.linalg`` reads it)."""
    from . import _namespace as ns

    if ns.is_torch_sparse(value):
        raise TypeError(f"`{name}` is a sparse torch tensor ({value.layout}); this function "
                        f"takes dense arrays: convert it with `.to_dense()`.")
    if ns.is_array_api_obj(value):
        ns.refuse_traced(value, name=name)
        return value
    if isinstance(value, (list, tuple)):
        try:
            return ns.numpy_namespace().asarray(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must be an array or a nested list of numbers; got a "
                            f"{type(value).__name__} NumPy cannot read: {exc}") from None
    raise TypeError(f"`{name}` must be an array (NumPy, CuPy, torch, JAX, Dask or any Array "
                    f"API array); got {type(value).__name__}.")
