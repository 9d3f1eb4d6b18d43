"""Retry delays: capped exponential bound, full jitter inside it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.backoff import backoff_bound_s, compute_backoff_s

FAST = settings(max_examples=250, deadline=None)

bases = st.floats(min_value=0.001, max_value=10.0)
caps = st.floats(min_value=0.001, max_value=100_000.0)
attempts = st.integers(min_value=1, max_value=10_000)


def test_bound_doubles_per_attempt_until_the_cap() -> None:
    bounds = [backoff_bound_s(a, 1.0, 120.0) for a in range(1, 11)]
    assert bounds == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 120.0, 120.0, 120.0]


def test_bound_with_fractional_base() -> None:
    assert [backoff_bound_s(a, 0.25, 1.0) for a in range(1, 6)] == [0.25, 0.5, 1.0, 1.0, 1.0]


@FAST
@given(attempt=attempts, base=bases, cap=caps)
def test_bound_matches_the_formula(attempt: int, base: float, cap: float) -> None:
    expected = min(cap, base * 2.0 ** min(attempt - 1, 1000))
    assert backoff_bound_s(attempt, base, cap) == pytest.approx(expected, rel=1e-12)


@FAST
@given(attempt=st.integers(min_value=1, max_value=200), base=bases, cap=caps)
def test_bound_is_2x_the_previous_one_or_capped(attempt: int, base: float, cap: float) -> None:
    prev = backoff_bound_s(attempt, base, cap)
    nxt = backoff_bound_s(attempt + 1, base, cap)
    assert prev <= nxt <= cap
    assert nxt == cap or nxt == pytest.approx(2 * prev, rel=1e-12)


@pytest.mark.parametrize("attempt", [0, -1, -(10**9)])
def test_attempt_zero_or_less_has_no_delay(attempt: int) -> None:
    assert backoff_bound_s(attempt, 1.0, 120.0) == 0.0
    assert compute_backoff_s(attempt, 1.0, 120.0, random.Random(1)) == 0.0


@pytest.mark.parametrize("attempt", [63, 64, 1024, 1025, 10**6, 10**18, 2**200])
def test_huge_attempts_do_not_overflow_and_hit_the_cap(attempt: int) -> None:
    assert backoff_bound_s(attempt, 1.0, 120.0) == 120.0
    delay = compute_backoff_s(attempt, 1.0, 120.0, random.Random(attempt % 1000))
    assert 0.0 <= delay <= 120.0


def test_huge_base_does_not_overflow() -> None:
    assert backoff_bound_s(10**9, 1e300, 60.0) == 60.0


@FAST
@given(
    attempt=st.integers(min_value=-5, max_value=10**12),
    base=bases,
    cap=caps,
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_always_within_zero_and_the_bound(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = compute_backoff_s(attempt, base, cap, random.Random(seed))
    assert 0.0 <= delay <= backoff_bound_s(attempt, base, cap)


@FAST
@given(attempt=st.integers(min_value=1, max_value=50), base=bases, cap=caps)
def test_delay_without_an_rng_is_within_bounds(attempt: int, base: float, cap: float) -> None:
    assert 0.0 <= compute_backoff_s(attempt, base, cap) <= backoff_bound_s(attempt, base, cap)


def test_jitter_varies() -> None:
    rng = random.Random(1234)
    delays = [compute_backoff_s(5, 1.0, 120.0, rng) for _ in range(200)]
    assert len(set(delays)) > 190
    assert all(0.0 <= d <= 16.0 for d in delays)
    # Full jitter spreads over the whole [0, bound] range, not a narrow band near the bound.
    assert min(delays) < 2.0
    assert max(delays) > 14.0
    assert 6.0 < sum(delays) / len(delays) < 10.0


def test_jitter_differs_between_seeds_and_repeats_for_one_seed() -> None:
    a = [compute_backoff_s(3, 1.0, 120.0, random.Random(1)) for _ in range(3)]
    b = [compute_backoff_s(3, 1.0, 120.0, random.Random(2)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    assert a[0] != b[0]


def test_the_given_rng_is_used() -> None:
    expected = random.Random(99).uniform(0.0, 8.0)
    assert compute_backoff_s(4, 1.0, 120.0, random.Random(99)) == expected
