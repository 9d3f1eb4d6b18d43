"""Matching compiled event patterns against events: the per-event half of :mod:`.patterns`.

:mod:`.patterns` validates a pattern once and builds the tree of :class:`Obj` and
:class:`Leaf` nodes defined here, filling leaves with the predicates made by the
factories below; nothing here raises on a bad pattern, and nothing here may raise on
a hostile event. Semantics, per the EventBridge and Lambda docs and the Event Ruler
README: fields AND, a leaf array ORs its values, an event array matches if any
element does, and a sub-pattern over an array of objects must match within one
element. Exact numbers compare numerically (300 == 3.0e2) and never equal strings or
booleans; null and "" differ. ``exists`` looks at leaves only: a null leaf exists, an
object or an empty array does not. Other operators need a present leaf of their type,
except ``anything-but``, which matches any present leaf (null, other types) outside it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

MISSING: Any = object()
"""An absent field (or an attribute SNS ignores): unlike null, it does not exist."""
Pred = Callable[[Any], bool]


def is_num(v: Any) -> bool:
    return type(v) is int or type(v) is float  # bool is not a number here


def loads_or_missing(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return MISSING


def _flatten(value: Any, leaves: list[Any], objects: list[Any]) -> None:
    """Split a (nested) event array into its scalar leaves and its objects."""
    for item in value:
        if isinstance(item, list | tuple):
            _flatten(item, leaves, objects)
        else:
            (objects if isinstance(item, Mapping) else leaves).append(item)


class Leaf:
    """A pattern's value array: exact values in sets, operators as predicates."""

    __slots__ = ("absent", "bools", "null", "nums", "preds", "present", "strs")

    def __init__(self) -> None:
        self.strs: set[str] = set()
        self.nums: set[int | float] = set()  # hash(300) == hash(300.0): numeric equality
        self.bools: set[bool] = set()
        self.null = self.present = self.absent = False  # [null], exists true, exists false
        self.preds: list[Pred] = []

    def match(self, value: Any) -> bool:
        values: list[Any] = []
        if isinstance(value, list | tuple):
            _flatten(value, values, [])
        elif value is not MISSING and not isinstance(value, Mapping):
            values.append(value)
        if not values:
            return self.absent
        return self.present or any(self._one(v) for v in values)

    def _one(self, v: Any) -> bool:
        if isinstance(v, str):
            hit = v in self.strs
        elif isinstance(v, bool):
            hit = v in self.bools
        else:
            hit = v in self.nums if is_num(v) else v is None and self.null
        return hit or any(pred(v) for pred in self.preds)


class Obj:
    """A pattern object: every field must match, and one branch of every ``$or``."""

    __slots__ = ("fields", "ors")

    def __init__(self, fields: list[tuple[str, Obj | Leaf]], ors: list[list[Obj]]) -> None:
        self.fields = tuple(fields)
        self.ors = tuple(tuple(branches) for branches in ors)

    def match(self, value: Any) -> bool:
        if isinstance(value, list | tuple):
            objects: list[Any] = []
            _flatten(value, [], objects)
            if objects:  # array consistency: the whole sub-pattern within one element
                return any(self.match(obj) for obj in objects)
        if not isinstance(value, Mapping):
            value = {}
        if not all(child.match(value.get(key, MISSING)) for key, child in self.fields):
            return False
        return all(any(b.match(value) for b in branches) for branches in self.ors)

    def shapes(self, key: str) -> set[str]:
        found = {"object" if isinstance(c, Obj) else "leaf" for k, c in self.fields if k == key}
        return found.union(*(b.shapes(key) for bs in self.ors for b in bs))

    def nested(self) -> bool:
        return any(isinstance(c, Obj) for _, c in self.fields) or any(
            b.nested() for bs in self.ors for b in bs
        )


class Pattern:
    """A compiled pattern; immutable, so safe to share between threads."""

    __slots__ = ("_root", "source")

    def __init__(self, root: Obj, source: Mapping[str, Any]) -> None:
        self._root, self.source = root, source

    def matches(self, event: Mapping[str, Any]) -> bool:
        return self._root.match(event)

    def field_shapes(self, key: str) -> frozenset[str]:
        """How the top level (with its ``$or`` branches) uses ``key``: "object" and/or "leaf"."""
        return frozenset(self._root.shapes(key))

    def nested(self) -> bool:
        """Whether any field holds an object (SNS allows that only on message bodies)."""
        return self._root.nested()


# Operator predicates, from arguments the compiler has already validated.


def affix(op: str, text: str, *, ignore_case: bool = False) -> Pred:
    """``prefix`` or ``suffix``; with ``ignore_case``, ``text`` must already be lower-case."""
    test = str.startswith if op == "prefix" else str.endswith
    if ignore_case:
        return lambda v: isinstance(v, str) and test(v.lower(), text)
    return lambda v: isinstance(v, str) and test(v, text)


def equals_ignore_case(folded: str) -> Pred:
    return lambda v: isinstance(v, str) and v.lower() == folded


def glob_match(parts: tuple[str, ...], value: str) -> bool:
    """Whether ``value`` is the pieces with anything between them, in linear time.

    No regex: ``a.*b.*c`` backtracks polynomially, and a client chooses ``value``
    (PutEvents details, SQS bodies), so one small event could stall the process.
    Taking each middle piece at its earliest place is right for ``*``-only globs.
    """
    if len(parts) == 1:
        return value == parts[0]
    first, *middle, last = parts
    if len(value) < len(first) + len(last) or not value.startswith(first):
        return False
    at, end = len(first), len(value) - len(last)
    for piece in middle:
        at = value.find(piece, at, end)
        if at < 0:
            return False
        at += len(piece)
    return value.endswith(last)


def wildcard(parts: tuple[str, ...]) -> Pred:
    return lambda v: isinstance(v, str) and glob_match(parts, v)


def in_network(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Pred:
    def pred(v: Any) -> bool:
        try:
            return isinstance(v, str) and ipaddress.ip_address(v) in net
        except ValueError:
            return False

    return pred


def numeric_range(lo: float, lo_in: bool, hi: float, hi_in: bool) -> Pred:
    """Numbers between ``lo`` and ``hi``; ``lo_in``/``hi_in``: is that bound included?"""
    above = (lambda v: v >= lo) if lo_in else (lambda v: v > lo)
    below = (lambda v: v <= hi) if hi_in else (lambda v: v < hi)
    return lambda v: is_num(v) and above(v) and below(v)


def anything_but(excluded: Collection[Any]) -> Pred:
    # "1" != 1, and is_num keeps True from equalling 1
    return lambda v: not ((isinstance(v, str) or is_num(v)) and v in excluded)


def anything_but_text(op: str, texts: tuple[str, ...]) -> Pred:
    """``anything-but`` over ``prefix``, ``suffix`` or ``equals-ignore-case`` (lower-cased)."""
    if op == "prefix":
        return lambda v: not (isinstance(v, str) and v.startswith(texts))
    if op == "suffix":
        return lambda v: not (isinstance(v, str) and v.endswith(texts))
    folded = frozenset(texts)
    return lambda v: not (isinstance(v, str) and v.lower() in folded)


def anything_but_wildcard(globs: Sequence[tuple[str, ...]]) -> Pred:
    return lambda v: not (isinstance(v, str) and any(glob_match(g, v) for g in globs))


# Matching whole records of an event source.


def lambda_filter_matches(
    filters: Sequence[Pattern],
    record: Mapping[str, Any],
    *,
    body_field: str | None,
    body_base64: bool | None = None,
) -> bool:
    """Lambda FilterCriteria: does ``record`` pass any of ``filters`` (none: no filtering)?

    ``body_field`` names the data key: "body" for SQS, "data" for Kinesis and MQ, whose
    data is base64 (``body_base64`` defaults to ``body_field == "data"``). A body that
    decodes to a JSON object or array is matched as that document, any other as text.
    As Lambda documents, a filter with an object pattern for the body drops a text body,
    one with an array (plain string) pattern drops a JSON body, and a filter that does
    not mention the body filters on the other fields only.
    """
    if not filters:
        return True
    if body_field is None or body_field not in record:
        return any(f.matches(record) for f in filters)
    b64 = body_field == "data" if body_base64 is None else body_base64
    is_json, body = _decode_body(record[body_field], b64)
    event = {**record, body_field: body}
    for pattern in filters:
        shapes = pattern.field_shapes(body_field)
        if shapes and ("leaf" if is_json else "object") in shapes:
            continue  # body and pattern formats differ: Lambda drops the record
        if pattern.matches(event):
            return True
    return False


def _decode_body(raw: Any, b64: bool) -> tuple[bool, Any]:
    if not isinstance(raw, str | bytes):
        return isinstance(raw, Mapping | list), raw  # already a document (DynamoDB)
    text: Any = raw
    try:
        text = base64.b64decode(raw, validate=True) if b64 else raw
        text = text.decode() if isinstance(text, bytes) else text
    except (binascii.Error, ValueError):  # not base64 or not UTF-8: match the raw text
        text = raw
    doc = loads_or_missing(text)
    return (True, doc) if isinstance(doc, dict | list) else (False, text)


def sns_attributes_event(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """The document an attribute-scoped SNS filter policy is matched against."""
    values = {name: _sns_attribute(attr) for name, attr in (attributes or {}).items()}
    return {k: v for k, v in values.items() if v is not MISSING}


def _sns_attribute(attr: Any) -> Any:
    if not isinstance(attr, Mapping):
        return attr
    kind = str(attr.get("Type", attr.get("DataType", "String")))
    value = attr.get("Value", attr.get("StringValue"))
    if kind.startswith("Binary") or value is None:
        return MISSING
    if not isinstance(value, str) or not kind.startswith(("Number", "String.Array")):
        return value
    parsed = loads_or_missing(value)
    if kind.endswith(".Array"):
        return parsed if isinstance(parsed, list) else value
    return parsed if is_num(parsed) else value
