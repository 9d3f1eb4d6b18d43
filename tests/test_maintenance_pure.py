"""Stream id arithmetic used by trimming (pure functions of bus.maintenance)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.maintenance import next_id, safe_minid

U64 = 2**64 - 1


def parse(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


@pytest.mark.parametrize(
    ("entry_id", "expected"),
    [
        ("5-3", "5-4"),
        ("0-0", "0-1"),
        ("1700000000000-0", "1700000000000-1"),
        ("1700000000000-99", "1700000000000-100"),
        ("7", "7-1"),  # an id without a sequence means <ms>-0
    ],
)
def test_next_id(entry_id: str, expected: str) -> None:
    assert next_id(entry_id) == expected


@settings(max_examples=200, deadline=None)
@given(ms=st.integers(0, U64), seq=st.integers(0, U64 - 1))
def test_next_id_is_the_successor(ms: int, seq: int) -> None:
    nxt = next_id(f"{ms}-{seq}")
    assert parse(nxt) == (ms, seq + 1)
    assert parse(nxt) > (ms, seq)


def test_next_id_after_the_largest_sequence_rolls_over_to_the_next_millisecond() -> None:
    # Stream ids are two unsigned 64-bit numbers; "5-18446744073709551616" is not an id
    # Redis accepts (XTRIM MINID would fail). The successor of <ms>-<max> is <ms+1>-0.
    assert next_id(f"5-{U64}") == "6-0"


def test_safe_minid_keeps_the_oldest_pending_entry() -> None:
    assert safe_minid("100-5", "90-2") == "90-2"
    assert safe_minid("100-5", "100-5") == "100-5"


@pytest.mark.parametrize("pending", [None, ""])
def test_safe_minid_without_pending_trims_through_the_last_delivered(pending: str | None) -> None:
    assert safe_minid("100-5", pending) == "100-6"
    assert safe_minid("0-0", pending) == "0-1"


@settings(max_examples=200, deadline=None)
@given(
    last=st.tuples(st.integers(0, 2**48), st.integers(0, 1000)),
    pending=st.none() | st.tuples(st.integers(0, 2**48), st.integers(0, 1000)),
)
def test_safe_minid_never_drops_pending_or_undelivered_entries(
    last: tuple[int, int], pending: tuple[int, int] | None
) -> None:
    if pending is not None and pending > last:
        pending = last  # an entry can only be pending after it was delivered
    last_id = f"{last[0]}-{last[1]}"
    pending_id = None if pending is None else f"{pending[0]}-{pending[1]}"
    minid = parse(safe_minid(last_id, pending_id))
    if pending is not None:
        assert minid == pending  # the oldest pending entry survives XTRIM MINID
    else:
        assert minid > last  # everything delivered (and acknowledged) may go
        assert minid == (last[0], last[1] + 1)  # ... but nothing undelivered
