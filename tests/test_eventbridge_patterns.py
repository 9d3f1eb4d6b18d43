"""EventBridge patterns: the operator summary of AWS's "Comparison operators for use in event
patterns" (the rows tests/test_patterns.py does not already cover), a property test of
:mod:`adapters.patterns` against a small reference matcher written here, and fuzzing that
any malformed pattern is refused with PatternError and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.patterns import PatternError, compile_pattern

# (name, rule syntax as the summary table writes it, event, expected)
OPERATOR_SUMMARY: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("and", {"Location": ["New York"], "Day": ["Monday"]},
     {"Location": "New York", "Day": "Monday"}, True),
    ("and, one differs", {"Location": ["New York"], "Day": ["Monday"]},
     {"Location": "New York", "Day": "Friday"}, False),
    ("begins with", {"Region": [{"prefix": "us-"}]}, {"Region": "us-east-1"}, True),
    ("begins with, other region", {"Region": [{"prefix": "us-"}]}, {"Region": "eu-west-1"}, False),
    ("begins with ignore case", {"service": [{"prefix": {"equals-ignore-case": "eventb"}}]},
     {"service": "EventBridge"}, True),
    ("ends with ignore case", {"service": [{"suffix": {"equals-ignore-case": "tbridge"}}]},
     {"service": "EVENTBRIDGE"}, True),
    ("ends with ignore case, miss", {"service": [{"suffix": {"equals-ignore-case": "tbridge"}}]},
     {"service": "EventBus"}, False),
    ("empty", {"LastName": [""]}, {"LastName": ""}, True),
    ("empty is not missing", {"LastName": [""]}, {"FirstName": "Ada"}, False),
    ("equals", {"Name": ["Alice"]}, {"Name": "Alice"}, True),
    ("equals is case sensitive", {"Name": ["Alice"]}, {"Name": "alice"}, False),
    ("equals ignore case", {"Name": [{"equals-ignore-case": "alice"}]}, {"Name": "ALICE"}, True),
    ("exists", {"ProductName": [{"exists": True}]}, {"ProductName": "Widget"}, True),
    ("does not exist", {"ProductName": [{"exists": False}]}, {"Price": 3}, True),
    ("does not exist, present", {"ProductName": [{"exists": False}]},
     {"ProductName": "Widget"}, False),
    ("not", {"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Sunny"}, True),
    ("not, raining", {"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Raining"}, False),
    ("null", {"UserID": [None]}, {"UserID": None}, True),
    ("null is not empty", {"UserID": [None]}, {"UserID": ""}, False),
    ("numeric equals", {"Price": [{"numeric": ["=", 100]}]}, {"Price": 100.0}, True),
    ("numeric equals, other", {"Price": [{"numeric": ["=", 100]}]}, {"Price": 100.5}, False),
    ("numeric range, bottom open", {"Price": [{"numeric": [">", 10, "<=", 20]}]},
     {"Price": 10}, False),
    ("or", {"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Debit"}, True),
    ("or, neither", {"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Cash"}, False),
    ("or, multiple fields", {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]},
     {"Location": "Boston", "Day": "Monday"}, True),
    ("or, multiple fields, neither", {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]},
     {"Location": "Boston", "Day": "Sunday"}, False),
    ("wildcard", {"FileName": [{"wildcard": "dir/*.png"}]}, {"FileName": "dir/photo.png"}, True),
    ("wildcard spans slashes", {"FileName": [{"wildcard": "dir/*.png"}]},
     {"FileName": "dir/sub/photo.png"}, True),
    ("wildcard, other folder", {"FileName": [{"wildcard": "dir/*.png"}]},
     {"FileName": "other/photo.png"}, False),
    ("ip address", {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]},
     {"sourceIPAddress": "10.0.0.255"}, True),
    ("ip address, outside", {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]},
     {"sourceIPAddress": "10.0.1.0"}, False),
    ("anything-but ends with", {"FileName": [{"anything-but": {"suffix": ".png"}}]},
     {"FileName": "notes.txt"}, True),
    ("anything-but begins with", {"Region": [{"anything-but": {"prefix": "us-"}}]},
     {"Region": "us-west-2"}, False),
    ("custom event, nested", {"source": ["demo.orders"], "detail-type": ["order.created"],
                              "detail": {"total": [{"numeric": [">", 100]}]}},
     {"source": "demo.orders", "detail-type": "order.created", "detail": {"total": 250}}, True),
    ("custom event, too small", {"source": ["demo.orders"], "detail-type": ["order.created"],
                                 "detail": {"total": [{"numeric": [">", 100]}]}},
     {"source": "demo.orders", "detail-type": "order.created", "detail": {"total": 100}}, False),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "event", "expected"), [c[1:] for c in OPERATOR_SUMMARY],
                         ids=[c[0] for c in OPERATOR_SUMMARY])  # fmt: skip
def test_operator_summary(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert compile_pattern(pattern).matches(event) is expected
    assert compile_pattern(json.dumps(pattern)).matches(event) is expected  # as JSON text too


MALFORMED: list[tuple[str, Any, str]] = [
    ("consecutive wildcards", {"f": [{"wildcard": "a**b"}]}, "consecutive *"),
    ("anything-but mixed types", {"f": [{"anything-but": ["a", 1]}]}, "only one of them"),
    ("or with one branch", {"$or": [{"a": ["x"]}]}, "at least 2"),
    ("numeric upside down", {"n": [{"numeric": ["<", 5, ">", 1]}]}, "lower bound"),
    ("numeric empty range", {"n": [{"numeric": [">", 5, "<", 1]}]}, "less than top"),
    ("cidr without mask", {"ip": [{"cidr": "10.0.0.1"}]}, "malformed CIDR"),
    ("exists not boolean", {"f": [{"exists": "yes"}]}, "true or false"),
    ("prefix number", {"f": [{"prefix": 5}]}, "takes a string"),
    ("unknown operator", {"f": [{"contains": "x"}]}, "unrecognized match type"),
    ("leaf not in array", {"source": "demo.orders"}, "must be an object or an array"),
    ("empty pattern", {}, "empty objects"),
    ("not JSON", "{source: [x]}", "not valid JSON"),
    ("too long", {"f": ["x" * 5000]}, "over the 4096 limit"),
]


@pytest.mark.parametrize(("pattern", "message"), [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])  # fmt: skip
def test_malformed_patterns_are_refused(pattern: Any, message: str) -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(pattern)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# -- a straightforward reference matcher -------------------------------------------------

_ABSENT = object()


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for item in value for x in _leaves(item)]
    return [] if value is _ABSENT or isinstance(value, dict) else [value]


def _wildcard(pattern: str, v: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), v, re.DOTALL) is not None


def _in_cidr(net: str, v: str) -> bool:
    try:
        return ipaddress.ip_address(v) in ipaddress.ip_network(net)
    except ValueError:
        return False


def _condition(cond: Any, v: Any) -> bool:
    """Does one present leaf value satisfy one element of a pattern array?"""
    if not isinstance(cond, dict):
        if cond is None or isinstance(cond, bool):
            return v is cond
        if isinstance(cond, str):
            return isinstance(v, str) and v == cond
        return _num(v) and v == cond
    ((op, arg),) = cond.items()
    if op == "exists":
        return bool(arg)
    if op == "anything-but":
        if isinstance(arg, dict):
            ((inner, text),) = arg.items()
            return not (isinstance(v, str) and v.startswith(text if inner == "prefix" else "\0"))
        excluded = arg if isinstance(arg, list) else [arg]
        if isinstance(v, str):
            return v not in [x for x in excluded if isinstance(x, str)]
        if _num(v):
            return v not in [x for x in excluded if _num(x)]
        return True
    if not isinstance(v, str):
        return op == "numeric" and _num(v) and arg[1] < v < arg[3]
    return {
        "prefix": lambda: v.startswith(arg),
        "suffix": lambda: v.endswith(arg),
        "equals-ignore-case": lambda: v.lower() == arg.lower(),
        "wildcard": lambda: _wildcard(arg, v),
        "cidr": lambda: _in_cidr(arg, v),
    }.get(op, lambda: False)()


def reference(pattern: dict[str, Any], event: Any) -> bool:
    """Fields AND; a leaf array ORs; event arrays match if any element does; a missing
    leaf satisfies only ``exists: false``; an object pattern over a non-object sees nothing."""
    event = event if isinstance(event, dict) else {}
    for key, sub in pattern.items():
        if key == "$or":
            if not any(reference(branch, event) for branch in sub):
                return False
            continue
        value = event.get(key, _ABSENT)
        if isinstance(sub, dict):
            if not reference(sub, value):
                return False
            continue
        leaves = _leaves(value)
        if not leaves:
            if not any(isinstance(c, dict) and c.get("exists") is False for c in sub):
                return False
        elif not any(_condition(c, v) for c in sub for v in leaves):
            return False
    return True


# -- generators ----------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c"])
TEXT = st.one_of(
    st.sampled_from(["", "a", "ab", "Ab", "abc", "x.png", "10.0.0.7", "10.1.0.1", "::1"]),
    st.text(alphabet="abAB.*", max_size=4),
)
NUMBER = st.one_of(st.integers(-5, 5), st.sampled_from([0.5, -1.5, 2.0, 300, 3e2]))
SCALAR = st.one_of(TEXT, NUMBER, st.booleans(), st.none())
LEAF_VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=3))
EVENTS = st.recursive(LEAF_VALUE, lambda inner: st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=8).filter(lambda e: isinstance(e, dict))  # fmt: skip

PLAIN = st.text(alphabet="abAB.", max_size=3)


def _range(bounds: tuple[int, int]) -> dict[str, Any]:
    lo, hi = sorted(bounds)
    return {"numeric": [">", lo, "<", hi + 1]}


CONDITIONS = st.one_of(
    SCALAR,
    st.builds(lambda t: {"prefix": t}, PLAIN),
    st.builds(lambda t: {"suffix": t}, PLAIN),
    st.builds(lambda t: {"equals-ignore-case": t}, PLAIN),
    st.builds(
        lambda t: {"wildcard": t},
        st.text(alphabet="ab*", max_size=4).filter(lambda t: "**" not in t),
    ),
    st.builds(lambda t: {"cidr": t}, st.sampled_from(["10.0.0.0/24", "10.0.0.0/8", "::/0"])),
    st.builds(lambda t: {"exists": t}, st.booleans()),
    st.builds(_range, st.tuples(st.integers(-5, 5), st.integers(-5, 5))),
    st.builds(
        lambda t: {"anything-but": t},
        st.one_of(
            st.lists(TEXT, min_size=1, max_size=3),
            st.lists(st.integers(-3, 3), min_size=1, max_size=3),
            TEXT,
            st.integers(-3, 3),
        ),
    ),
    st.builds(lambda t: {"anything-but": {"prefix": t}}, PLAIN.filter(bool)),
)
LEAF_PATTERN = st.lists(CONDITIONS, min_size=1, max_size=3)


def _objects(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    fields = st.dictionaries(KEYS, inner, min_size=1, max_size=3)
    with_or = st.builds(lambda f, branches: {**f, "$or": branches}, st.dictionaries(
        KEYS, inner, max_size=2), st.lists(fields, min_size=2, max_size=2))  # fmt: skip
    return st.one_of(fields, with_or)


PATTERNS = st.recursive(LEAF_PATTERN, _objects, max_leaves=6).filter(lambda p: isinstance(p, dict))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=PATTERNS, event=EVENTS)
def test_matches_like_the_reference(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    assert compile_pattern(pattern).matches(event) is reference(pattern, event)


@settings(max_examples=600, deadline=None)
@given(conditions=LEAF_PATTERN, value=st.one_of(LEAF_VALUE, st.just(_ABSENT)))
def test_each_operator_like_the_reference(conditions: list[Any], value: Any) -> None:
    """One field, so every generated operator meets every kind of value often."""
    event = {} if value is _ABSENT else {"k": value}
    assert compile_pattern({"k": conditions}).matches(event) is reference({"k": conditions}, event)


JUNK = st.recursive(
    st.one_of(SCALAR, st.sampled_from(["prefix", "numeric", "$or", "exists", "anything-but"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(
                KEYS, st.sampled_from(["$or", "numeric", "prefix", "cidr", "wildcard", "exists"])
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(junk=JUNK)
def test_anything_malformed_is_a_pattern_error(junk: Any) -> None:
    try:
        compiled = compile_pattern(junk)
    except PatternError as exc:
        assert "\n" not in str(exc) and str(exc).split(":")[0]
        return
    compiled.matches({"a": 1, "b": ["x"], "c": {"a": None}})  # whatever compiles, runs
