"""Choice rules of JSONPath states: every comparison operator, And/Or/Not, Is* tests.

Comparisons never coerce: a value of another type than the operator's makes the
rule false (``BooleanEquals: true`` is false for ``1``), as in AWS.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from . import paths

_KINDS = ("String", "Numeric", "Boolean", "Timestamp")
_OPS = ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")
COMPARISONS = frozenset(
    [f"{k}{o}" for k in _KINDS for o in _OPS if not (k == "Boolean" and o != "Equals")]
    + [f"{k}{o}Path" for k in _KINDS for o in _OPS if not (k == "Boolean" and o != "Equals")]
    + ["StringMatches"]
)
TESTS = frozenset(["IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"])


def operator_of(rule: dict[str, Any]) -> str | None:
    for key in rule:
        if key in COMPARISONS or key in TESTS:
            return key
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp with an offset, or None (AWS rejects naive ones)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _compare(kind: str, op: str, a: Any, b: Any) -> bool:
    if kind == "String":
        if not isinstance(a, str) or not isinstance(b, str):
            return False
    elif kind == "Numeric":
        if not _is_num(a) or not _is_num(b):
            return False
    elif kind == "Boolean":
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    else:
        a, b = parse_timestamp(a), parse_timestamp(b)
        if a is None or b is None:
            return False
    return {
        "Equals": a == b,
        "LessThan": a < b,
        "GreaterThan": a > b,
        "LessThanEquals": a <= b,
        "GreaterThanEquals": a >= b,
    }[op]


def string_matches(value: str, pattern: str) -> bool:
    """``*`` matches any run of characters; ``\\*`` and ``\\\\`` are literal."""
    rx, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            rx += re.escape(pattern[i + 1])
            i += 2
            continue
        rx += ".*" if c == "*" else re.escape(c)
        i += 1
    return re.fullmatch(rx, value, flags=re.DOTALL) is not None


def evaluate(rule: dict[str, Any], data: Any, context: Any) -> bool:
    """Does a (possibly compound) rule hold for the state's input?"""
    if "And" in rule:
        return all(evaluate(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate(rule["Not"], data, context)
    op = operator_of(rule)
    if op is None:
        return False
    value = paths.get(rule["Variable"], data, context)
    operand = rule[op]
    if op == "IsPresent":
        return (value is not paths.MISSING) == bool(operand)
    if value is paths.MISSING:
        paths.require(rule["Variable"], data, context)
    if op in TESTS:
        holds = {
            "IsNull": value is None,
            "IsNumeric": _is_num(value),
            "IsString": isinstance(value, str),
            "IsBoolean": isinstance(value, bool),
            "IsTimestamp": parse_timestamp(value) is not None,
        }[op]
        return holds == bool(operand)
    if op == "StringMatches":
        return (
            isinstance(value, str) and isinstance(operand, str) and string_matches(value, operand)
        )
    if op.endswith("Path"):
        operand = paths.require(operand, data, context)
        op = op[:-4]
    kind = next(k for k in _KINDS if op.startswith(k))
    return _compare(kind, op[len(kind) :], value, operand)
