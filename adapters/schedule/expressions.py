"""AWS schedule expressions — ``rate(...)``, six-field ``cron(...)``, ``at(...)`` — as pure
functions: parse (with a one-line error for anything AWS would refuse) and ``next_after``.

Why hand-written: croniter, the usual library, speaks Unix cron (day-of-week 0 = SUN, five
fields, no ``?``, no year field in the common releases, ``W`` unsupported), so using it would
mean translating AWS's dialect into another dialect and still special-casing ``W``, ``?``
and the year. AWS's grammar is small; a direct, tested implementation is less code than
the translation and has no semantic gaps.

AWS semantics implemented (EventBridge "Schedule expressions for rules", EventBridge
Scheduler "Schedule types"):

- cron fields: minutes, hours, day-of-month, month, day-of-week, year. Day-of-week counts
  1 = SUN … 7 = SAT (not Unix's 0 = SUN). Exactly one of day-of-month / day-of-week is
  ``?``. ``L`` (last day of month; ``nL`` in day-of-week = last such weekday of the month),
  ``nW`` / ``LW`` (weekday nearest to day n, never crossing the month), ``n#k`` (k-th such
  weekday). Ranges must ascend; steps are ``a/b``, ``*/b`` or ``a-b/c``.
- rate: ``rate(1 minute)`` singular for 1, plural otherwise (``rate(1 minutes)`` is an
  error, as it is on AWS). Ticks are anchored to the Unix epoch (AWS anchors to the rule's
  creation time, which a stack replayed on several machines does not have; the epoch gives
  every replica the same ticks) or to ``StartDate`` when a ScheduleV2 sets one.
- at: a one-time local date-time in the schedule's time zone.
- Time zones (ScheduleV2 ``ScheduleExpressionTimezone``, via zoneinfo): cron fields are
  wall-clock times there. As EventBridge Scheduler documents for daylight saving time: a
  wall-clock time skipped when clocks spring forward does not fire that day; a wall-clock
  time repeated when clocks fall back fires once (its first occurrence). rate is a fixed
  interval of real time and ignores DST. An ``at`` time inside a spring-forward gap is
  shifted forward by the gap (a one-time schedule must not silently never run).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_EXPRESSION = 256
MIN_YEAR, MAX_YEAR = 1970, 2199
MAX_RATE_S = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp()
                 - datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC).timestamp())  # fmt: skip
"""A longer rate would put ticks of a schedule running before MAX_YEAR past year 9999,
where no date-time (nor the ``lambdabus dev`` banner) can show them."""
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_AT = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})", re.ASCII)


class ExpressionError(ValueError):
    """A schedule expression AWS would reject; the message is one line for template errors."""


@dataclass(frozen=True)
class Rate:
    seconds: int
    anchor: float = 0.0
    """Epoch seconds of one tick; the others are whole multiples of ``seconds`` away."""

    def next_after(self, t: float) -> float | None:
        n = (t - self.anchor) // self.seconds + 1
        return self.anchor + max(n, 0) * self.seconds

    def ticks_after(self, t: float) -> Iterator[float]:
        first = self.next_after(t)
        assert first is not None
        k = 0
        while True:
            yield first + k * self.seconds
            k += 1


@dataclass(frozen=True)
class At:
    when: float
    """Epoch seconds of the one tick."""

    def next_after(self, t: float) -> float | None:
        return self.when if self.when > t else None

    def ticks_after(self, t: float) -> Iterator[float]:
        if self.when > t:
            yield self.when


@dataclass(frozen=True)
class DayRule:
    """Day-of-month or day-of-week, whichever is not ``?``."""

    days: frozenset[int] = frozenset()
    """Plain day-of-month numbers, or AWS day-of-week numbers (1 = SUN)."""
    last: bool = False
    """``L`` in day-of-month."""
    last_weekday: bool = False
    """``LW``."""
    nearest_weekday: frozenset[int] = frozenset()
    """``nW`` day numbers."""
    last_of: frozenset[int] = frozenset()
    """``nL`` in day-of-week: the last such weekday of the month."""
    nth: frozenset[tuple[int, int]] = frozenset()
    """``n#k`` in day-of-week: (weekday, k)."""


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: frozenset[int]
    dom: DayRule | None
    dow: DayRule | None
    tz: ZoneInfo | None = None

    def days_in(self, year: int, month: int) -> list[int]:
        """The days of ``month`` this expression fires on, ascending."""
        return sorted(_dom_days(self.dom, year, month) if self.dom is not None
                      else _dow_days(self.dow, year, month))  # fmt: skip

    def local_times(self, start: datetime) -> Iterator[datetime]:
        """Naive wall-clock times that match, from ``start`` (naive, whole minute) on."""
        for year in range(start.year, MAX_YEAR + 1):
            if year not in self.years:
                continue
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                for day in self.days_in(year, month):
                    if date(year, month, day) < start.date():
                        continue
                    today = date(year, month, day) == start.date()
                    for hour in self.hours:
                        if today and hour < start.hour:
                            continue
                        for minute in self.minutes:
                            t = datetime(year, month, day, hour, minute)
                            if t >= start:
                                yield t

    def next_after(self, t: float) -> float | None:
        return next(self.ticks_after(t), None)

    def ticks_after(self, t: float) -> Iterator[float]:
        """Every tick after ``t``, ascending, from one walk of the calendar (a week of
        minutely ticks costs one pass, not 10,080 searches from scratch)."""
        tz = self.tz or UTC
        local = datetime.fromtimestamp(t, tz).replace(tzinfo=None, fold=0)
        start = local.replace(second=0, microsecond=0)
        last = t
        for naive in self.local_times(start):
            aware = naive.replace(tzinfo=tz, fold=0)
            utc = aware.astimezone(UTC)
            if utc.astimezone(tz).replace(tzinfo=None) != naive:
                continue  # skipped by a spring-forward transition: AWS does not fire it
            stamp = utc.timestamp()
            if stamp > last:  # fold=0: a repeated wall-clock time fires once, first
                yield stamp
                last = stamp


Expression = Rate | At | Cron


def parse(text: str, tz_name: str | None = None, *, allow_at: bool = True,
          start: float | None = None) -> Expression:  # fmt: skip
    """Parse an AWS schedule expression; :class:`ExpressionError` names what is wrong."""
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION:
        raise ExpressionError(f"expected a schedule expression of at most {MAX_EXPRESSION} chars")
    tz = zone(tz_name) if tz_name else None
    m = re.fullmatch(r"(rate|cron|at)\((.*)\)", text.strip(), re.S)
    if m is None:
        raise ExpressionError(f"expected rate(...), cron(...) or at(...), got {text!r}")
    kind, body = m.group(1), m.group(2).strip()
    try:
        if kind == "rate":
            return _rate(body, start)
        if kind == "at":
            if not allow_at:
                raise ExpressionError("at(...) is only for ScheduleV2 (EventBridge Scheduler)")
            return At(_local_epoch(_at(body), tz or UTC))
        return _cron(body, tz)
    except ExpressionError as exc:  # one line, whatever whitespace the input carried
        raise ExpressionError(" ".join(str(exc).split())) from None


def zone(name: str) -> ZoneInfo:
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", name or ""):
        raise ExpressionError(f"not an IANA time zone name: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(f"unknown time zone {name!r}") from None


def parse_datetime(text: str, tz: ZoneInfo | None = None) -> float:
    """``StartDate``/``EndDate``: ISO 8601; without an offset, in the schedule's time zone."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise ExpressionError(f"not an ISO 8601 date-time: {text!r}") from None
    if dt.tzinfo is None:
        return _local_epoch(dt, tz or UTC)
    return dt.timestamp()


# -- rate and at ------------------------------------------------------------------------


def _rate(body: str, start: float | None) -> Rate:
    m = re.fullmatch(r"(\d{1,9}) +(minute|minutes|hour|hours|day|days)", body, re.ASCII)
    if m is None:
        raise ExpressionError(
            f"expected rate(VALUE UNIT) with UNIT minute(s), hour(s) or day(s), got rate({body})"
        )
    value, unit = int(m.group(1)), m.group(2)
    if value < 1:
        raise ExpressionError(f"rate value must be a positive whole number, got {value}")
    singular = unit.rstrip("s")
    if (value == 1) != (unit == singular):
        want = singular if value == 1 else singular + "s"
        raise ExpressionError(f"rate({value} {unit}): AWS requires rate({value} {want})")
    seconds = value * _RATE_UNITS[singular]
    if seconds > MAX_RATE_S:
        raise ExpressionError(f"rate({value} {unit}): the interval runs past year 9999")
    return Rate(seconds, start or 0.0)


def _at(body: str) -> datetime:
    m = _AT.fullmatch(body)
    if m is None:
        raise ExpressionError(f"expected at(yyyy-mm-ddThh:mm:ss), got at({body})")
    try:
        y, mo, d, h, mi, sec = (int(g) for g in m.groups())
        return datetime(y, mo, d, h, mi, sec)
    except ValueError as exc:
        raise ExpressionError(f"at({body}): {exc}") from None


def _local_epoch(naive: datetime, tz: tzinfo) -> float:
    """Wall-clock time in ``tz`` to epoch seconds; a time skipped by DST moves forward by
    the gap (fold=0 takes the pre-transition offset), a repeated time is its first."""
    return naive.replace(tzinfo=tz, fold=0).timestamp()


# -- cron -------------------------------------------------------------------------------


def _cron(body: str, tz: ZoneInfo | None) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ExpressionError(
            f"cron needs 6 fields (minutes hours day-of-month month day-of-week year), "
            f"got {len(fields)} in cron({body})"
        )
    mi, hr, dom, mon, dow, yr = fields
    if (dom == "?") == (dow == "?"):
        raise ExpressionError(
            f"cron({body}): exactly one of day-of-month and day-of-week must be '?'"
        )
    return Cron(
        minutes=tuple(sorted(_plain(mi, "minutes", 0, 59))),
        hours=tuple(sorted(_plain(hr, "hours", 0, 23))),
        months=tuple(sorted(_plain(mon, "month", 1, 12, _MONTHS))),
        years=frozenset(_plain(yr, "year", MIN_YEAR, MAX_YEAR)),
        dom=None if dom == "?" else _day_of_month(dom),
        dow=None if dow == "?" else _day_of_week(dow),
        tz=tz,
    )


def _value(token: str, name: str, lo: int, hi: int, names: list[str] | None) -> int:
    upper = token.upper()
    if names is not None and upper in names:
        return names.index(upper) + lo
    if not (token.isascii() and token.isdigit()) or len(token) > 4:
        raise ExpressionError(f"cron {name}: {token!r} is not a number" +
                              (" or a name" if names else ""))  # fmt: skip
    n = int(token)
    if not lo <= n <= hi:
        raise ExpressionError(f"cron {name}: {n} is out of range {lo}-{hi}")
    return n


def _plain(field: str, name: str, lo: int, hi: int, names: list[str] | None = None) -> set[int]:
    """``*``, numbers, names, ``a-b`` ranges, ``/step`` and ``,`` lists."""
    out: set[int] = set()
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            step = _value(step_text, f"{name} step", 1, hi - lo + 1, None) if step_text else 0
            if step < 1:
                raise ExpressionError(f"cron {name}: bad step in {part!r}")
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, name, lo, hi, names), _value(b, name, lo, hi, names)
            if first > last:
                raise ExpressionError(f"cron {name}: range {base!r} must ascend")
        else:
            first = _value(base, name, lo, hi, names)
            last = hi if slash else first
        out.update(range(first, last + 1, step))
    return out


def _day_of_month(field: str) -> DayRule:
    if field == "L":
        return DayRule(last=True)
    if field == "LW":
        return DayRule(last_weekday=True)
    if re.fullmatch(r"\d{1,2}W", field, re.ASCII):
        return DayRule(nearest_weekday=frozenset({_value(field[:-1], "day-of-month", 1, 31, None)}))
    if "L" in field or "W" in field or "#" in field:
        raise ExpressionError(f"cron day-of-month: {field!r} is not valid (L, LW or nW)")
    return DayRule(days=frozenset(_plain(field, "day-of-month", 1, 31)))


def _day_of_week(field: str) -> DayRule:
    if field == "L":
        return DayRule(days=frozenset({7}))  # as in Quartz: L alone is the last day, SAT
    if re.fullmatch(r"[0-9A-Za-z]+L", field):
        return DayRule(last_of=frozenset({_value(field[:-1], "day-of-week", 1, 7, _DAYS)}))
    if "#" in field:
        if "," in field or field.count("#") > 1:
            raise ExpressionError(f"cron day-of-week: {field!r}: only one n#k expression allowed")
        day, _, nth = field.partition("#")
        k = _value(nth, "day-of-week #", 1, 5, None)
        return DayRule(nth=frozenset({(_value(day, "day-of-week", 1, 7, _DAYS), k)}))
    if "W" in field.upper().replace("WED", ""):
        raise ExpressionError(f"cron day-of-week: {field!r} is not valid (W is day-of-month)")
    return DayRule(days=frozenset(_plain(field, "day-of-week", 1, 7, _DAYS)))


def aws_weekday(d: date) -> int:
    """AWS's day-of-week number: 1 = SUN … 7 = SAT (Python's weekday() has MON = 0)."""
    return (d.weekday() + 1) % 7 + 1


def _dom_days(rule: DayRule | None, year: int, month: int) -> set[int]:
    assert rule is not None
    ndays = calendar.monthrange(year, month)[1]
    out = {d for d in rule.days if d <= ndays}
    if rule.last:
        out.add(ndays)
    if rule.last_weekday:
        out.add(_nearest_weekday(year, month, ndays))
    for n in rule.nearest_weekday:
        if n <= ndays:
            out.add(_nearest_weekday(year, month, n))
    return out


def _nearest_weekday(year: int, month: int, n: int) -> int:
    """The MON-FRI day nearest to day ``n``, staying inside the month (Quartz's ``W``)."""
    ndays = calendar.monthrange(year, month)[1]
    wd = date(year, month, n).weekday()
    if wd == 5:  # Saturday: Friday before, unless that leaves the month
        return n - 1 if n > 1 else n + 2
    if wd == 6:  # Sunday: Monday after, unless that leaves the month
        return n + 1 if n < ndays else n - 2
    return n


def _dow_days(rule: DayRule | None, year: int, month: int) -> set[int]:
    assert rule is not None
    ndays = calendar.monthrange(year, month)[1]
    out: set[int] = set()
    for day in range(1, ndays + 1):
        wd = aws_weekday(date(year, month, day))
        if wd in rule.days:
            out.add(day)
        if wd in rule.last_of and day + 7 > ndays:
            out.add(day)
        if (wd, (day - 1) // 7 + 1) in rule.nth:
            out.add(day)
    return out


def describe_next(expr: Expression, after: float, count: int = 3) -> list[str]:
    """The next ``count`` ticks as ISO strings (for ``validate``-style output and errors)."""
    out, t = [], after
    for _ in range(count):
        nxt = expr.next_after(t)
        if nxt is None:
            break
        out.append(datetime.fromtimestamp(nxt, UTC).isoformat().replace("+00:00", "Z"))
        t = nxt
    return out
