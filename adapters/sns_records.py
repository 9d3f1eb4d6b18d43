"""SNS notifications as Lambda's SNS event records (pure: no I/O, no clock).

lambdabus receives a topic's messages through an SQS carrier queue subscribed
with raw message delivery off, so each carrier message body is SNS's JSON
envelope. Lambda's record wraps the same fields under ``Sns``, with two keys
spelt differently (``SigningCertURL`` → ``SigningCertUrl``, ``UnsubscribeURL``
→ ``UnsubscribeUrl``) and ``Subject`` null when the publisher gave none. The
event id is SNS's ``MessageId``, which SNS keeps across its own retries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .s3_records import iso_time
from .sqs_records import MalformedMessage

CONTROL_TYPES = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})
"""Sent to a cross-account queue subscriber; not messages for the function."""
_REQUIRED = ("MessageId", "TopicArn", "Message", "Timestamp")
_SIGNATURE = (("SignatureVersion", "SignatureVersion"), ("Signature", "Signature"),
              ("SigningCertURL", "SigningCertUrl"))  # fmt: skip
"""(SNS JSON key, Lambda key); FIFO topics send none of them."""


def notification(body: str) -> dict[str, Any] | None:
    """The SNS envelope in a carrier message body; None for subscription control messages."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError, RecursionError):
        raise MalformedMessage("not an SNS notification: body is not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedMessage("not an SNS notification: body is not a JSON object")
    if doc.get("Type") in CONTROL_TYPES:
        return None
    if doc.get("Type") != "Notification":
        raise MalformedMessage(
            f"not an SNS notification (Type {doc.get('Type')!r}); is raw message delivery on?"
        )
    for key in _REQUIRED:
        if not isinstance(doc.get(key), str):
            raise MalformedMessage(f"SNS notification has no {key}")
    return doc


def subscription_arn_of(doc: Mapping[str, Any], fallback: str | None = None) -> str:
    """The subscription's ARN: SNS names it in every ``UnsubscribeURL``; else ``fallback``;
    else the topic ARN plus a UUID derived from it (stable, in the ARN's usual form)."""
    url = doc.get("UnsubscribeURL")
    if isinstance(url, str):
        found = parse_qs(urlsplit(url).query).get("SubscriptionArn")
        if found and found[0].startswith("arn:"):
            return found[0]
    if fallback:
        return fallback
    topic = str(doc["TopicArn"])
    return f"{topic}:{uuid.uuid5(uuid.NAMESPACE_URL, topic)}"


def _attributes(raw: Any) -> dict[str, dict[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise MalformedMessage("SNS MessageAttributes is not a map")
    out: dict[str, dict[str, str]] = {}
    for name, attr in raw.items():
        if not (isinstance(attr, Mapping) and isinstance(attr.get("Type"), str)
                and isinstance(attr.get("Value"), str)):  # fmt: skip
            raise MalformedMessage(f"SNS message attribute {name!r} lacks Type or Value")
        out[str(name)] = {"Type": attr["Type"], "Value": attr["Value"]}
    return out


def sns_record(body: str, subscription_arn: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """(event id, Lambda SNS record) for one carrier message body.

    None for subscription control messages. Raises :class:`MalformedMessage` for
    anything that is not an SNS notification (including a raw-delivery body).
    """
    doc = notification(body)
    if doc is None:
        return None
    iso_time(doc["Timestamp"])  # a notification with an unreadable time is malformed
    sns: dict[str, Any] = {}
    for wire, lambda_key in _SIGNATURE[:1]:
        if wire in doc:
            sns[lambda_key] = doc[wire]
    sns["Timestamp"] = doc["Timestamp"]
    for wire, lambda_key in _SIGNATURE[1:]:
        if wire in doc:
            sns[lambda_key] = doc[wire]
    sns.update(MessageId=doc["MessageId"], Message=doc["Message"],
               MessageAttributes=_attributes(doc.get("MessageAttributes")),
               Type="Notification")  # fmt: skip
    if "UnsubscribeURL" in doc:
        sns["UnsubscribeUrl"] = doc["UnsubscribeURL"]
    sns["TopicArn"] = doc["TopicArn"]
    sns["Subject"] = doc.get("Subject")
    if "SequenceNumber" in doc:  # FIFO topics
        sns["SequenceNumber"] = doc["SequenceNumber"]
    record = {
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn_of(doc, subscription_arn),
        "EventSource": "aws:sns",
        "Sns": sns,
    }
    return doc["MessageId"], record
