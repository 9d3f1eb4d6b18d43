"""A DynamoDB Streams GetRecords record → exactly Lambda's DynamoDB event record.

botocore parses the wire JSON into Python types: binary attribute values (``B``,
``BS``, nested in ``M``/``L``) become bytes and ``ApproximateCreationDateTime`` a
datetime. Lambda hands handlers the wire form, so both are turned back: bytes
to base64 text, the time to epoch seconds (a number). Lambda adds
``eventSourceARN``; the rest is the stream's record as it came.

The ordering key (the envelope's ``partition``) is the item's key, canonically
encoded, so every change of one item runs in order and different items don't
wait for each other.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bus.envelope import Envelope

EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
VIEW_TYPES = frozenset({"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"})
_TYPES = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})
MAX_DEPTH = 32
"""DynamoDB allows 32 levels of nesting; deeper input is hostile."""


class MalformedRecord(ValueError):
    """A stream record that can't be Lambda's record (skipped, counted and logged)."""


def _b64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, str):  # already wire form (a server that wasn't parsed by botocore)
        return value
    raise MalformedRecord(f"binary attribute value of type {type(value).__name__}")


def wire_value(value: Any, depth: int = 0) -> dict[str, Any]:
    """One attribute value in DynamoDB's JSON wire form."""
    if depth > MAX_DEPTH:
        raise MalformedRecord(f"attribute values nested deeper than {MAX_DEPTH}")
    if not isinstance(value, Mapping) or len(value) != 1:
        raise MalformedRecord(f"not an attribute value: {value!r:.100}")
    [(kind, inner)] = value.items()
    if kind not in _TYPES:
        raise MalformedRecord(f"unknown attribute type {kind!r}")
    if kind == "B":
        return {"B": _b64(inner)}
    if kind == "BS":
        return {"BS": [_b64(v) for v in _list(inner)]}
    if kind == "M":
        return {"M": wire_image(inner, depth + 1)}
    if kind == "L":
        return {"L": [wire_value(v, depth + 1) for v in _list(inner)]}
    return {kind: inner}


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedRecord(f"expected a list, got {type(value).__name__}")
    return value


def wire_image(image: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(image, Mapping):
        raise MalformedRecord(f"expected an item image, got {type(image).__name__}")
    return {str(k): wire_value(v, depth) for k, v in image.items()}


def epoch_seconds(value: Any) -> float | int:
    if isinstance(value, datetime):
        ts = value.timestamp()
        return int(ts) if ts == int(ts) else ts
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise MalformedRecord(f"ApproximateCreationDateTime is {type(value).__name__}")


def lambda_record(raw: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """Lambda's DynamoDB event record for one GetRecords record."""
    ddb = raw.get("dynamodb")
    if not isinstance(ddb, Mapping):
        raise MalformedRecord("record without a dynamodb section")
    name = raw.get("eventName")
    if name not in EVENT_NAMES:
        raise MalformedRecord(f"eventName {name!r} is not INSERT, MODIFY or REMOVE")
    event_id, seq = raw.get("eventID"), ddb.get("SequenceNumber")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise MalformedRecord("record without a usable eventID")
    if not isinstance(seq, str) or not seq.isdigit() or len(seq) > 64:
        raise MalformedRecord(f"SequenceNumber {seq!r} is not a numeric string")
    if not ddb.get("Keys"):
        raise MalformedRecord("record without Keys")
    section: dict[str, Any] = {}
    if "ApproximateCreationDateTime" in ddb:
        section["ApproximateCreationDateTime"] = epoch_seconds(ddb["ApproximateCreationDateTime"])
    section["Keys"] = wire_image(ddb["Keys"])
    for image in ("NewImage", "OldImage"):
        if image in ddb:
            section[image] = wire_image(ddb[image])
    section["SequenceNumber"] = seq
    section["SizeBytes"] = int(ddb.get("SizeBytes") or 0)
    if ddb.get("StreamViewType") not in VIEW_TYPES:
        raise MalformedRecord(f"StreamViewType {ddb.get('StreamViewType')!r}")
    section["StreamViewType"] = ddb["StreamViewType"]
    record: dict[str, Any] = {
        "eventID": event_id,
        "eventName": name,
        "eventVersion": str(raw.get("eventVersion") or "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": str(raw.get("awsRegion") or stream_arn.split(":")[3]),
    }
    identity = raw.get("userIdentity")
    if isinstance(identity, Mapping):  # TTL deletions carry it
        # The API's Identity shape says PrincipalId/Type; Lambda's event principalId/type.
        record["userIdentity"] = {
            "type": str(identity.get("Type") or identity.get("type") or ""),
            "principalId": str(identity.get("PrincipalId") or identity.get("principalId") or ""),
        }
    record["dynamodb"] = section
    record["eventSourceARN"] = stream_arn
    return record


def item_key(keys: Mapping[str, Any]) -> str:
    """The item's key as one canonical string (attribute order doesn't matter)."""
    return json.dumps(keys, sort_keys=True, separators=(",", ":"))


def record_time(record: Mapping[str, Any], default: float) -> float:
    value = record["dynamodb"].get("ApproximateCreationDateTime")
    return float(value) if value is not None else default


def envelope(record: dict[str, Any], shard_id: str, now: float) -> Envelope:
    """Envelope id = eventID (stable across re-reads: the dedupe key); partition = the
    item's key; subject = the shard, for the OnFailure record's DDBStreamBatchInfo."""
    return Envelope(
        id=record["eventID"],
        source="aws:dynamodb",
        type=record["eventName"],
        trigger="",
        record=record,
        time=record_time(record, now),
        subject=shard_id,
        partition=item_key(record["dynamodb"]["Keys"]),
        first_seen=now,
    )
