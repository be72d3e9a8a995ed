"""What the launchers share."""

from __future__ import annotations

import contextlib
import warnings

__all__ = ["small_grids_allowed"]


@contextlib.contextmanager
def small_grids_allowed():
    """Silence numba-cuda's low-occupancy warning for this launch.

    A stack of a few matrices is a legitimate small grid; the warning would
    reach the caller of ``eigh_batched`` on every small batch, or fail a test
    suite that turns warnings into errors.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*Grid size \d+ will likely result in GPU "
                                r"under-utilization")
        yield
