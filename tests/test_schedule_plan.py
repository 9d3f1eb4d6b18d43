"""Pure catch-up planning and flexible windows: no Redis, no clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.schedule.expressions import parse
from adapters.schedule.plan import MAX_TICKS_PER_PLAN, Cursor, Policy, due_at, flex_delay, plan
from adapters.schedule.spec import ScheduleSpec

T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC).timestamp()
H = 3600.0


def spec(text: str = "rate(1 hour)", flex_s: int = 0) -> ScheduleSpec:
    return ScheduleSpec(function="F", event="E", kind="ScheduleV2", expression=parse(text),
                        text=text, name="n", arn="arn", input=None, enabled=True,
                        flex_window_s=flex_s)  # fmt: skip


def test_on_time_ticks_fire_and_the_cursor_moves_to_now() -> None:
    cursor = Cursor(T0 - 1)
    p = plan(spec(), cursor, T0 + 30, Policy())
    assert (p.on_time, p.late, p.fire_late) == ([T0], [], [])
    assert cursor.after == T0 + 30
    assert plan(spec(), cursor, T0 + 60, Policy()).on_time == []  # not twice


@pytest.mark.parametrize(("policy", "fire"), [
    (Policy("latest"), [T0 + 9 * H]),
    (Policy("none"), []),
    (Policy("all", max_catchup=3), [T0 + 7 * H, T0 + 8 * H, T0 + 9 * H]),
])  # fmt: skip
def test_catch_up_policies(policy: Policy, fire: list[float]) -> None:
    p = plan(spec(), Cursor(T0 - 1), T0 + 9 * H + 600, policy)
    assert p.late_count == 10 and p.fire_late == fire and p.on_time == []


def test_lookback_bounds_the_work_after_a_long_outage() -> None:
    p = plan(spec("rate(1 minute)"), Cursor(T0 - 365 * 86400), T0, Policy(lookback_s=H))
    # only the last hour is considered: 60 ticks, of which the last 2 are within the grace
    assert (p.late_count, len(p.on_time)) == (58, 2)
    p = plan(spec("rate(1 minute)"), Cursor(T0 - 365 * 86400), T0, Policy(lookback_s=30 * 86400))
    assert p.late_count <= MAX_TICKS_PER_PLAN


def test_flexible_window_is_deterministic_and_bounded() -> None:
    s = spec(flex_s=15 * 60)
    delays = [flex_delay(s, T0 + i * H) for i in range(200)]
    assert delays == [flex_delay(s, T0 + i * H) for i in range(200)]  # every replica agrees
    assert all(0 <= d < 900 for d in delays) and len(set(delays)) > 50
    assert flex_delay(spec(), T0) == 0.0
    # a tick inside its window waits, then fires once it is due
    cursor = Cursor(T0 - 1)
    first = plan(s, cursor, T0, Policy())
    if due_at(s, T0) > T0:
        assert first.on_time == [] and cursor.waiting == {T0}
    later = plan(s, cursor, due_at(s, T0), Policy())
    assert T0 in later.on_time + first.on_time and cursor.waiting == set()
    assert later.late == []


def test_bad_policies() -> None:
    with pytest.raises(ValueError, match="catch-up policy must be one of"):
        Policy("burst")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_catchup"):
        Policy("all", max_catchup=0)


def test_owed_ticks_fire_whatever_the_policy_and_the_watermark_waits_for_them() -> None:
    """A tick claimed on time by a replica that died is owed, not missed (policy none)."""
    cursor = Cursor(T0 - 1)
    plan(spec(), cursor, T0 + 10, Policy("none"))
    cursor.waiting.add(T0)  # the scheduler keeps a tick another replica holds
    cursor.owed.add(T0)
    assert cursor.watermark() == T0 - 1e-3  # a restart re-examines it
    p = plan(spec(), cursor, T0 + 600, Policy("none"))  # its claim expired only now
    assert (p.owed, p.late, p.late_count) == ([T0], [], 0)
    cursor.waiting.clear()
    assert cursor.watermark() == T0 + 600
