"""Which ticks of a schedule to fire now: pure functions, no Redis, no clock of their own.

Catch-up after downtime is a policy (``LAMBDABUS_SCHEDULE_CATCHUP``):

- ``latest`` (default): of the ticks missed while nothing ran, fire only the newest —
  a daily backup that missed noon runs once when the scheduler returns, not N times;
- ``none``: fire none of them (AWS's own behaviour: a missed rule tick is gone);
- ``all``: fire them, oldest first, but at most ``max_catchup`` (the newest ones), never
  a burst of hundreds.

A tick is *late* when its due time is more than ``grace_s`` behind the clock; ticks due
within the grace are on time and always fire. Ticks older than ``lookback_s`` are neither
fired nor counted (bounds the work after a long outage). Missed ticks are the late ones
not fired.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from .spec import ScheduleSpec

CatchUp = Literal["latest", "none", "all"]
CATCHUP_POLICIES: tuple[CatchUp, ...] = ("latest", "none", "all")
MAX_TICKS_PER_PLAN = 20_000
"""Ticks examined in one plan at most (a rate(1 minute) schedule has 10,080 in a week)."""


@dataclass(frozen=True)
class Policy:
    catchup: CatchUp = "latest"
    max_catchup: int = 10
    grace_s: float = 60.0
    lookback_s: float = 7 * 86400.0

    def __post_init__(self) -> None:
        if self.catchup not in CATCHUP_POLICIES:
            raise ValueError(f"catch-up policy must be one of {CATCHUP_POLICIES}, "
                             f"got {self.catchup!r}")  # fmt: skip
        if self.max_catchup < 1 or self.grace_s < 0 or self.lookback_s <= 0:
            raise ValueError("max_catchup >= 1, grace_s >= 0 and lookback_s > 0 required")


def flex_delay(spec: ScheduleSpec, tick: float) -> float:
    """FlexibleTimeWindow: a delay in [0, window) that every replica computes alike."""
    if spec.flex_window_s <= 0:
        return 0.0
    digest = hashlib.blake2b(f"{spec.rule}\x00{int(tick)}".encode(), digest_size=8).digest()
    return float(int.from_bytes(digest, "big") % spec.flex_window_s)


def due_at(spec: ScheduleSpec, tick: float) -> float:
    return tick + flex_delay(spec, tick)


@dataclass
class Cursor:
    """What one replica has handled of one schedule."""

    after: float
    """Every tick up to here is handled or in ``waiting``."""
    waiting: set[float] = field(default_factory=set)
    """Ticks at or before ``after`` not handled yet (inside their flexible window, or
    claimed by a replica that has not finished)."""


@dataclass(frozen=True)
class Plan:
    on_time: list[float]
    late: list[float]
    """Late ticks, oldest first (only those the policy fires and the newest one)."""
    late_count: int
    fire_late: list[float]
    """The late ticks the policy fires."""


def plan(spec: ScheduleSpec, cursor: Cursor, now: float, policy: Policy) -> Plan:
    """Advance ``cursor`` to ``now`` and say which ticks are due. Pure but for ``cursor``."""
    start = max(cursor.after, now - policy.lookback_s)
    candidates = sorted(t for t in cursor.waiting if t > now - policy.lookback_s)
    t = spec.next_tick(start)
    examined = 0
    while t is not None and t <= now and examined < MAX_TICKS_PER_PLAN:
        candidates.append(t)
        cursor.after = t
        examined += 1
        t = spec.next_tick(t)
    if t is None or t > now:
        cursor.after = max(cursor.after, now)
    due = [c for c in candidates if due_at(spec, c) <= now]
    cursor.waiting = {c for c in candidates if due_at(spec, c) > now}
    late = [c for c in due if due_at(spec, c) < now - policy.grace_s]
    on_time = [c for c in due if due_at(spec, c) >= now - policy.grace_s]
    if policy.catchup == "latest":
        fire = late[-1:]
    elif policy.catchup == "all":
        fire = late[-policy.max_catchup :]
    else:
        fire = []
    return Plan(on_time=on_time, late=late, late_count=len(late), fire_late=fire)


def next_wake(spec: ScheduleSpec, cursor: Cursor) -> float | None:
    """When this schedule next needs attention: its next tick's due time, or a waiting one."""
    times = [due_at(spec, t) for t in cursor.waiting]
    t = spec.next_tick(cursor.after)
    if t is not None:
        times.append(due_at(spec, t))
    return min(times) if times else None
