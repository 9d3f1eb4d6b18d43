"""One template schedule (a ``Schedule`` or ``ScheduleV2`` event) as checked, plain data.

:func:`check_properties` is what the template loader calls for every schedule event, so a
bad expression, time zone, date or ``Input`` is a one-line template error at load time,
never a surprise in the scheduler. :func:`schedules_from` turns a loaded template's events
into :class:`ScheduleSpec` for the scheduler.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .expressions import At, Expression, ExpressionError, parse, parse_datetime, zone

if TYPE_CHECKING:
    from adapters.template.loaded import EventSource, LoadedTemplate

SCHEDULE_TYPES = ("Schedule", "ScheduleV2")
MAX_INPUT = 256 * 1024
"""EventBridge's limit on a target's constant Input (and on an event)."""
_NAME = re.compile(r"[0-9a-zA-Z_.\-]{1,64}")
"""A rule, schedule or schedule group name (AWS's pattern; it ends up in an ARN)."""


@dataclass(frozen=True)
class ScheduleSpec:
    function: str
    event: str
    kind: str
    """``Schedule`` (an EventBridge rule) or ``ScheduleV2`` (EventBridge Scheduler)."""
    expression: Expression
    text: str
    """The expression as written."""
    name: str
    """Rule or schedule name: ``Name``, else ``{stack}-{Function}{Event}``."""
    arn: str
    input: str | None
    enabled: bool
    flex_window_s: int = 0
    """FlexibleTimeWindow FLEXIBLE: each tick fires within this many seconds after it."""
    start: float | None = None
    end: float | None = None

    @property
    def rule(self) -> str:
        """Bounded, key- and label-safe id: ``Function.Event``."""
        return f"{self.function}.{self.event}"

    def next_tick(self, after: float) -> float | None:
        """The next tick strictly after ``after`` inside StartDate/EndDate, or None."""
        t = self.expression.next_after(max(after, (self.start or after) - 1e-6))
        if t is None or (self.end is not None and t > self.end):
            return None
        return t

    def ticks(self, after: float) -> Iterator[float]:
        """Every tick after ``after`` inside StartDate/EndDate, ascending (one walk)."""
        for t in self.expression.ticks_after(max(after, (self.start or after) - 1e-6)):
            if self.end is not None and t > self.end:
                return
            yield t


def _where(kind: str) -> str:
    return "Schedule" if kind == "Schedule" else "ScheduleExpression"


def check_properties(kind: str, props: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(property, problem)`` for the first thing AWS would refuse, else None."""
    tz_name = props.get("ScheduleExpressionTimezone") if kind == "ScheduleV2" else None
    if tz_name is not None:
        try:
            zone(tz_name)
        except ExpressionError as exc:
            return "ScheduleExpressionTimezone", str(exc)
    try:
        parse(props[_where(kind)], tz_name, allow_at=kind == "ScheduleV2")
    except ExpressionError as exc:
        return _where(kind), str(exc)
    for key in ("StartDate", "EndDate"):
        if key in props:
            try:
                parse_datetime(props[key])
            except ExpressionError as exc:
                return key, str(exc)
    flex = props.get("FlexibleTimeWindow") or {}
    if flex.get("Mode") == "FLEXIBLE" and "MaximumWindowInMinutes" not in flex:
        return "FlexibleTimeWindow.MaximumWindowInMinutes", "required when Mode is FLEXIBLE"
    for key in ("Name", "GroupName"):
        if key in props and not _NAME.fullmatch(props[key]):
            return key, "1-64 letters, digits, '.', '-' or '_'"
    text = props.get("Input")
    if text is not None:
        if len(text.encode()) > MAX_INPUT:
            return "Input", f"larger than {MAX_INPUT} bytes"
        try:  # the event a tick will really deliver, placeholders filled in
            _sample_event(kind, props)
        except ValueError as exc:
            return "Input", f"not valid JSON: {' '.join(str(exc).split())}"
    return None


def _sample_event(kind: str, props: Mapping[str, Any]) -> Any:
    """Build one tick's event with the real builder, so what loads is what fires."""
    from .events import scheduled_event  # events imports this module

    name = props.get("Name") or "sample"
    arn = (f"arn:aws:events:us-east-1:123456789012:rule/{name}" if kind == "Schedule" else
           f"arn:aws:scheduler:us-east-1:123456789012:schedule/"
           f"{props.get('GroupName', 'default')}/{name}")  # fmt: skip
    sample = ScheduleSpec(function="F", event="E", kind=kind, expression=At(0.0), text="",
                          name=name, arn=arn, input=props.get("Input"), enabled=True)  # fmt: skip
    return scheduled_event(sample, 0.0, "us-east-1", "123456789012")


def spec_of(source: EventSource, stack: str, region: str, account: str) -> ScheduleSpec:
    props = source.properties
    kind = source.type
    tz_name = props.get("ScheduleExpressionTimezone") if kind == "ScheduleV2" else None
    tz = zone(tz_name) if tz_name else None
    start = parse_datetime(props["StartDate"], tz) if "StartDate" in props else None
    end = parse_datetime(props["EndDate"], tz) if "EndDate" in props else None
    text = props[_where(kind)]
    name = props.get("Name") or f"{stack}-{source.function}{source.name}"
    if kind == "Schedule":
        arn = f"arn:aws:events:{region}:{account}:rule/{name}"
    else:
        group = props.get("GroupName", "default")
        arn = f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}"
    flex = props.get("FlexibleTimeWindow") or {}
    window = (
        int(flex.get("MaximumWindowInMinutes", 0)) * 60 if flex.get("Mode") == "FLEXIBLE" else 0
    )
    return ScheduleSpec(
        function=source.function, event=source.name, kind=kind,
        expression=parse(text, tz_name, allow_at=kind == "ScheduleV2", start=start),
        text=text, name=name, arn=arn, input=props.get("Input"),
        enabled=props.get("Enabled", True) is not False and props.get("State") != "DISABLED",
        flex_window_s=window, start=start, end=end,
    )  # fmt: skip


def schedules_from(loaded: LoadedTemplate) -> list[ScheduleSpec]:
    """Every enabled schedule of the template's functions (disabled ones never load)."""
    from adapters.template.models import ACCOUNT_ID

    return [spec_of(ev, loaded.stack.name, loaded.region, ACCOUNT_ID)
            for ev in loaded.events if ev.type in SCHEDULE_TYPES]  # fmt: skip
