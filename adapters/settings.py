"""Settings read from the environment, checked the same way everywhere.

lambdabus's own knobs that SAM has no property for live in ``LAMBDABUS_*``
variables (DESIGN.md); a bad value is one clear line naming the variable, never a
traceback or a silent default.
"""

from __future__ import annotations

import os


class SettingError(ValueError):
    """A ``LAMBDABUS_*`` variable holds a value it can't have; the message names it."""


def seconds_from_env(name: str, default: float, *, most: float = 86400.0) -> float:
    """A positive number of seconds (below ``most``) from ``name``, or ``default`` if unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < most:  # NaN fails too
        raise SettingError(f"{name}: expected seconds between 0 and {most:g}, got {raw!r}")
    return value
