"""Retry delays: capped exponential backoff with full jitter (pure)."""

from __future__ import annotations

import random


def backoff_bound_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Upper bound of the delay before retry number ``attempt`` (1-based)."""
    if attempt < 1:
        return 0.0
    # 2**attempt overflows floats for huge attempts; the cap wins long before that.
    exp = min(attempt - 1, 62)
    return min(cap_s, base_s * float(2**exp))


def compute_backoff_s(
    attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, bound] spreads retry storms."""
    bound = backoff_bound_s(attempt, base_s, cap_s)
    return (rng or random).uniform(0.0, bound)
