"""S3 bucket notifications as Lambda's S3 event records (pure: no I/O, no clock).

S3 delivers notifications to lambdabus through a carrier queue (or a carrier
topic and then a queue); each carrier message holds a JSON document with a
``Records`` list. Every record becomes one event for the function, with a
stable id: the record's ``sequencer`` where S3 sends one, else the carrier
message's id plus the record's index — so a redelivered carrier message is
recognised, and a second upload of the same key is a second event.

Lambda's S3 record always carries ``userIdentity``, ``requestParameters``,
``responseElements``, ``s3.bucket.ownerIdentity`` and ``s3.object.sequencer``,
and handlers and Powertools' ``S3Model`` index them; moto (5.2) sends none of
them. What S3 sent is kept unchanged (object keys stay URL-encoded, as S3
sends them); a missing field gets the default documented at
:func:`lambda_s3_record`. Defaults are derived from the carrier message, never
from a clock or a counter, so a redelivered message yields the same record.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from .sqs_records import MalformedMessage

TEST_EVENT = "s3:TestEvent"
"""What S3 sends once when a notification configuration is created; not an event."""
DEFAULT_PRINCIPAL = "AWS:EXAMPLE"
DEFAULT_OWNER = "EXAMPLE"
DEFAULT_SOURCE_IP = "127.0.0.1"
DEFAULT_CONFIGURATION_ID = "lambdabus"

_ORDER = ("eventVersion", "eventSource", "awsRegion", "eventTime", "eventName", "userIdentity",
          "requestParameters", "responseElements", "s3")  # fmt: skip
"""Key order of Lambda's records (cosmetic: a handler printing the event sees AWS's order)."""


def iso_time(text: Any) -> float:
    """Epoch seconds of an AWS timestamp such as ``2019-09-03T19:37:27.192Z``."""
    if not isinstance(text, str):
        raise MalformedMessage(f"timestamp {text!r} is not a string")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise MalformedMessage(f"timestamp {text!r} is not ISO 8601") from None


def notification_document(body: str) -> dict[str, Any]:
    """The S3 notification in a carrier message body, unwrapping an SNS envelope
    (S3 → SNS topic → queue, raw delivery off) if there is one."""
    doc = _json_object(body, "carrier message body")
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        doc = _json_object(doc["Message"], "SNS Message")
    return doc


def _json_object(text: Any, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise MalformedMessage(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedMessage(f"{what} is not a JSON object")
    return doc


def s3_records(
    body: str, carrier_id: str, region: str = "us-east-1"
) -> list[tuple[str, dict[str, Any]]]:
    """(event id, Lambda S3 record) for every record of one carrier message.

    ``s3:TestEvent`` yields nothing. Raises :class:`MalformedMessage` if the body
    is not an S3 notification, so the caller leaves the message for redrive.
    """
    doc = notification_document(body)
    if doc.get("Event") == TEST_EVENT:
        return []
    records = doc.get("Records")
    if not isinstance(records, list):
        raise MalformedMessage("S3 notification has no Records list")
    out = []
    for index, raw in enumerate(records):
        record = lambda_s3_record(raw, carrier_id, index, region)
        out.append((event_id(record, carrier_id, index, raw), record))
    return out


def event_id(record: dict[str, Any], carrier_id: str, index: int, raw: dict[str, Any]) -> str:
    """The dedupe key: S3's sequencer, qualified by a digest of bucket and key because S3
    only promises sequencers to be ordered (and so distinct) per key; without one, the
    carrier message's id and the record's index. Computed from what S3 *sent*, before
    defaults are filled in."""
    sequencer = (raw.get("s3") or {}).get("object", {}).get("sequencer")
    if not isinstance(sequencer, str) or not sequencer:
        return f"{carrier_id}:{index}"
    where = f"{record['s3']['bucket']['name']}/{record['s3']['object']['key']}"
    return f"{sequencer}.{hashlib.blake2b(where.encode(), digest_size=8).hexdigest()}"


def lambda_s3_record(raw: Any, carrier_id: str, index: int, region: str) -> dict[str, Any]:
    """One record as Lambda delivers it; fields S3 left out get these defaults:

    - ``eventVersion`` "2.1", ``eventSource`` "aws:s3", ``awsRegion`` the carrier's region;
    - ``userIdentity.principalId`` "AWS:EXAMPLE" (the form of an IAM principal);
    - ``requestParameters.sourceIPAddress`` "127.0.0.1";
    - ``responseElements``: ``x-amz-request-id`` 16 upper-case hex digits and ``x-amz-id-2``
      a base64 string, both digests of the carrier message id and record index;
    - ``s3.s3SchemaVersion`` "1.0", ``s3.configurationId`` "lambdabus";
    - ``s3.bucket.ownerIdentity.principalId`` "EXAMPLE", ``s3.bucket.arn``
      ``arn:aws:s3:::{bucket}``;
    - ``s3.object.sequencer``: 18 upper-case hex digits, the event time in milliseconds
      then the record index, so events of one key sort by time as S3's sequencers do.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("eventName"), str):
        raise MalformedMessage(f"S3 record {index} has no eventName")
    s3 = raw.get("s3")
    if not isinstance(s3, dict):
        raise MalformedMessage(f"S3 record {index} has no s3 object")
    bucket, obj = s3.get("bucket"), s3.get("object")
    if not isinstance(bucket, dict) or not isinstance(bucket.get("name"), str):
        raise MalformedMessage(f"S3 record {index} has no s3.bucket.name")
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        raise MalformedMessage(f"S3 record {index} has no s3.object.key")
    millis = int(iso_time(raw.get("eventTime")) * 1000)
    digest = hashlib.sha256(f"{carrier_id}:{index}".encode()).digest()
    filled: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        **raw,
        "userIdentity": raw.get("userIdentity") or {"principalId": DEFAULT_PRINCIPAL},
        "requestParameters": raw.get("requestParameters") or {"sourceIPAddress": DEFAULT_SOURCE_IP},
        "responseElements": raw.get("responseElements")
        or {
            "x-amz-request-id": digest[:8].hex().upper(),
            "x-amz-id-2": base64.b64encode(digest + hashlib.sha256(digest).digest()).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": DEFAULT_CONFIGURATION_ID,
            **s3,
            "bucket": {
                "name": bucket["name"],
                "ownerIdentity": {"principalId": DEFAULT_OWNER},
                "arn": f"arn:aws:s3:::{bucket['name']}",
                **bucket,
            },
            "object": {**obj, "sequencer": obj.get("sequencer") or f"{millis:014X}{index:04X}"},
        },
    }
    return {**{k: filled[k] for k in _ORDER}, **filled}
