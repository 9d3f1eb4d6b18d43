"""SQS messages as Lambda's SQS event records (pure: no I/O, no clock).

Lambda's record is not the ReceiveMessage response: keys are camelCase
(``messageId``, ``md5OfBody``), message attributes use ``stringValue`` /
``binaryValue`` (base64) / ``stringListValues`` / ``binaryListValues`` /
``dataType``, only the documented system attributes are kept, and
``eventSource``, ``eventSourceARN`` and ``awsRegion`` are added. Handlers and
Powertools index these keys, so the shape is built field by field here, and
checked against Powertools' ``SqsModel`` and AWS's own samples in the tests.

The reverse direction (:func:`api_message_attributes`) serves the dead-letter
forwarder, which sends a failed message's attributes on to the queue's DLQ.

Attributes SQS does not report are left out, never invented: moto, for one,
reports no ``SequenceNumber`` for FIFO queues, and a made-up one would be
worse than none.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
"""The system attributes Lambda passes on, in the order its records list them."""


class MalformedMessage(ValueError):
    """A message (or notification body) that cannot become the record Lambda would deliver."""


def arn_parts(arn: str) -> tuple[str, str, str]:
    """(region, account, name) of an SQS queue or SNS topic ARN."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or not parts[5]:
        raise ValueError(f"not a queue or topic ARN: {arn!r}")
    return parts[3], parts[4], parts[5]


def _b64(value: Any, where: str) -> str:
    """Lambda shows binary values as base64 text; botocore hands us the raw bytes."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, str):  # already the wire form (a JSON client, or a test sample)
        return value
    raise MalformedMessage(f"{where}: binary value is {type(value).__name__}")


def lambda_message_attribute(name: str, attr: Any) -> dict[str, Any]:
    """One message attribute in Lambda's casing (``StringValue`` → ``stringValue``, …)."""
    if not isinstance(attr, Mapping) or not isinstance(attr.get("DataType"), str):
        raise MalformedMessage(f"message attribute {name!r} has no DataType")
    out: dict[str, Any] = {}
    if "StringValue" in attr:
        out["stringValue"] = str(attr["StringValue"])
    if "BinaryValue" in attr:
        out["binaryValue"] = _b64(attr["BinaryValue"], f"message attribute {name!r}")
    out["stringListValues"] = [str(v) for v in attr.get("StringListValues") or []]
    out["binaryListValues"] = [
        _b64(v, f"message attribute {name!r}") for v in attr.get("BinaryListValues") or []
    ]
    out["dataType"] = attr["DataType"]
    return out


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """The record Lambda puts in ``event["Records"]`` for one received message.

    ``message`` is one entry of aiobotocore's ``ReceiveMessage`` response, received
    with all system and message attributes. Raises :class:`MalformedMessage` if it
    lacks what every SQS message has (id, receipt handle, body).
    """
    try:
        message_id = message["MessageId"]
        receipt = message["ReceiptHandle"]
        body = message["Body"]
    except (KeyError, TypeError):
        raise MalformedMessage("message lacks MessageId, ReceiptHandle or Body") from None
    if not all(isinstance(v, str) for v in (message_id, receipt, body)):
        raise MalformedMessage("MessageId, ReceiptHandle and Body must be strings")
    region = arn_parts(queue_arn)[0]
    raw_attrs = message.get("Attributes") or {}
    attributes = {k: str(raw_attrs[k]) for k in SYSTEM_ATTRIBUTES if k in raw_attrs}
    user_attrs = message.get("MessageAttributes") or {}
    if not isinstance(user_attrs, Mapping):
        raise MalformedMessage("MessageAttributes is not a map")
    record: dict[str, Any] = {
        "messageId": message_id,
        "receiptHandle": receipt,
        "body": body,
        "attributes": attributes,
        "messageAttributes": {
            str(name): lambda_message_attribute(str(name), attr)
            for name, attr in user_attrs.items()
        },
        "md5OfBody": str(message.get("MD5OfBody", "")),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = str(message["MD5OfMessageAttributes"])
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


def message_size(message: Mapping[str, Any]) -> int:
    """Bytes SQS counts against its message size limit: the body plus every attribute's
    name, data type and value (as the SQS developer guide defines message size)."""
    size = len(str(message.get("Body", "")).encode())
    for name, attr in (message.get("MessageAttributes") or {}).items():
        size += len(str(name).encode())
        if not isinstance(attr, Mapping):
            continue
        size += len(str(attr.get("DataType", "")).encode())
        for key in ("StringValue", "BinaryValue"):
            value = attr.get(key)
            if isinstance(value, bytes | bytearray):
                size += len(value)
            elif value is not None:
                size += len(str(value).encode())
    return size


def api_message_attributes(record_attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Lambda-cased message attributes back in the casing SendMessage takes.

    Binary values go back to bytes. The list values are dropped: SQS reserves them
    ("not implemented") and rejects them on SendMessage.
    """
    out: dict[str, Any] = {}
    for name, attr in record_attributes.items():
        if not isinstance(attr, Mapping) or not isinstance(attr.get("dataType"), str):
            continue
        api: dict[str, Any] = {"DataType": attr["dataType"]}
        if attr.get("stringValue") is not None:
            api["StringValue"] = str(attr["stringValue"])
        elif attr.get("binaryValue") is not None:
            api["BinaryValue"] = base64.b64decode(str(attr["binaryValue"]))
        else:
            continue
        out[str(name)] = api
    return out
