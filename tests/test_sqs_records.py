"""SQS messages become exactly Lambda's SQS records (adapters/sqs_records.py, pure).

Checked three ways: against the record we expect field by field, against
Powertools' ``SqsModel``, and against AWS's canonical samples (each sample
record turned back into the ReceiveMessage entry it came from, then
normalized again: the result must be the sample).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from adapters.sqs_records import (
    MalformedMessage,
    api_message_attributes,
    arn_parts,
    lambda_message_attribute,
    message_size,
    sqs_record,
)
from tests.conftest import SHARED, requires_shared

ARN = "arn:aws:sqs:eu-west-1:123456789012:orders"
FIFO_ARN = "arn:aws:sqs:eu-west-1:123456789012:orders.fifo"


def received(**overrides: Any) -> dict[str, Any]:
    """A message as aiobotocore's ReceiveMessage returns it (binary values are bytes)."""
    message: dict[str, Any] = {
        "MessageId": "b549293c-be0f-4ea2-b09c-09eb917d98e3",
        "ReceiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Body": "hello",
        "Attributes": {
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "SentTimestamp": "1795745530147",
            "ApproximateReceiveCount": "1",
            "ApproximateFirstReceiveTimestamp": "1795745530159",
        },
        "MD5OfMessageAttributes": "a3432800a91149982c1ada4320198f29",
        "MessageAttributes": {
            "a": {"StringValue": "x", "DataType": "String"},
            "b": {"BinaryValue": b"\x00\x01\xff", "DataType": "Binary"},
            "n": {"StringValue": "5", "DataType": "Number.int"},
        },
    }
    message.update(overrides)
    return message


# -- the record -------------------------------------------------------------------------


def test_standard_message_becomes_lambdas_record_field_by_field() -> None:
    record = sqs_record(received(), ARN)
    assert record == {
        "messageId": "b549293c-be0f-4ea2-b09c-09eb917d98e3",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": "hello",
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795745530147",
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "ApproximateFirstReceiveTimestamp": "1795745530159",
        },
        "messageAttributes": {
            "a": {"stringValue": "x", "stringListValues": [], "binaryListValues": [],
                  "dataType": "String"},
            "b": {"binaryValue": "AAH/", "stringListValues": [], "binaryListValues": [],
                  "dataType": "Binary"},
            "n": {"stringValue": "5", "stringListValues": [], "binaryListValues": [],
                  "dataType": "Number.int"},
        },
        "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "md5OfMessageAttributes": "a3432800a91149982c1ada4320198f29",
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "eu-west-1",
    }  # fmt: skip
    # Key order as Lambda prints it, for handlers that log the event.
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes",
                            "messageAttributes", "md5OfBody", "md5OfMessageAttributes",
                            "eventSource", "eventSourceARN", "awsRegion"]  # fmt: skip
    SqsModel.model_validate({"Records": [record]})


def test_no_message_attributes_no_md5_of_them() -> None:
    message = received(MessageAttributes=None)
    del message["MD5OfMessageAttributes"]
    record = sqs_record(message, ARN)
    assert record["messageAttributes"] == {}
    assert "md5OfMessageAttributes" not in record
    SqsModel.model_validate({"Records": [record]})


def test_fifo_attributes_are_kept_and_unknown_system_attributes_dropped() -> None:
    attrs = {
        **received()["Attributes"],
        "MessageGroupId": "g1",
        "MessageDeduplicationId": "d1",
        "SequenceNumber": "18849496460467696128",
        "AWSTraceHeader": "Root=1-5e1b4151-5ac6c58239c1e5b4",
        "SomethingNew": "not Lambda's",
    }
    record = sqs_record(received(Attributes=attrs), FIFO_ARN)
    assert record["attributes"] == {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1795745530147",
        "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
        "ApproximateFirstReceiveTimestamp": "1795745530159",
        "SequenceNumber": "18849496460467696128",
        "MessageGroupId": "g1",
        "MessageDeduplicationId": "d1",
        "AWSTraceHeader": "Root=1-5e1b4151-5ac6c58239c1e5b4",
    }
    parsed = SqsModel.model_validate({"Records": [record]})
    assert parsed.Records[0].attributes.MessageGroupId == "g1"


def test_list_values_are_carried_in_lambdas_casing() -> None:
    attr = {"StringListValues": ["a", "b"], "BinaryListValues": [b"\x00", b"\x01"],
            "BinaryValue": b"1100", "DataType": "Binary"}  # fmt: skip
    assert lambda_message_attribute("x", attr) == {
        "binaryValue": "MTEwMA==",
        "stringListValues": ["a", "b"],
        "binaryListValues": ["AA==", "AQ=="],
        "dataType": "Binary",
    }


def test_unicode_body_and_attribute_survive_unchanged() -> None:
    body = 'ünïcødé ✓ 🚀 \u2028 <xml/> "quotes"'
    attrs = {"emoji": {"StringValue": "🎉", "DataType": "String"}}
    record = sqs_record(received(Body=body, MessageAttributes=attrs), ARN)
    assert record["body"] == body
    assert record["messageAttributes"]["emoji"]["stringValue"] == "🎉"


# -- hostile input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"MessageId": "m", "ReceiptHandle": "r"},
        {"MessageId": 1, "ReceiptHandle": "r", "Body": "b"},
        received(MessageAttributes={"a": {"StringValue": "x"}}),
        received(MessageAttributes={"a": "not a map"}),
        received(MessageAttributes=["not", "a", "map"]),
        received(MessageAttributes={"b": {"BinaryValue": 12, "DataType": "Binary"}}),
    ],
    ids=["empty", "no-body", "id-not-str", "no-datatype", "attr-not-map", "attrs-list", "bin-int"],
)
def test_malformed_messages_raise_a_clear_error(message: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        sqs_record(message, ARN)


@pytest.mark.parametrize("arn", ["", "queue-url", "arn:aws:sqs:us-east-1:123", "arn:aws:sqs:r:a:"])
def test_queue_arn_must_be_an_arn(arn: str) -> None:
    with pytest.raises(ValueError):
        arn_parts(arn)


def test_message_size_counts_body_and_attributes_as_sqs_does() -> None:
    message = received(Body="é" * 10)  # 2 bytes each
    expected = 20 + (1 + 6 + 1) + (1 + 6 + 3) + (1 + 10 + 1)
    assert message_size(message) == expected
    big = received(Body="x" * (1024 * 1024), MessageAttributes={})
    assert message_size(big) == 1024 * 1024
    assert message_size(received(Body="x" * (1024 * 1024))) > 1024 * 1024


def test_attributes_go_back_to_the_sendmessage_casing() -> None:
    record = sqs_record(received(), ARN)
    assert api_message_attributes(record["messageAttributes"]) == {
        "a": {"DataType": "String", "StringValue": "x"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        "n": {"DataType": "Number.int", "StringValue": "5"},
    }
    assert api_message_attributes({"junk": "x", "empty": {"dataType": "String"}}) == {}


# -- AWS's own samples --------------------------------------------------------------------


def _bytes_or_text(value: str) -> bytes | str:
    """A sample's base64 value as botocore would hand it over (placeholders stay text)."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value


def as_received(record: dict[str, Any]) -> dict[str, Any]:
    """The ReceiveMessage entry a Lambda SQS record was made from."""
    attrs = {}
    for name, a in record["messageAttributes"].items():
        api: dict[str, Any] = {"DataType": a["dataType"]}
        if "stringValue" in a:
            api["StringValue"] = a["stringValue"]
        if "binaryValue" in a:
            api["BinaryValue"] = _bytes_or_text(a["binaryValue"])
        api["StringListValues"] = a.get("stringListValues", [])
        api["BinaryListValues"] = [_bytes_or_text(v) for v in a.get("binaryListValues", [])]
        attrs[name] = api
    message = {
        "MessageId": record["messageId"],
        "ReceiptHandle": record["receiptHandle"],
        "MD5OfBody": record["md5OfBody"],
        "Body": record["body"],
        "Attributes": {**record["attributes"], "SomethingLambdaDrops": "x"},
        "MessageAttributes": attrs,
    }
    if record.get("md5OfMessageAttributes"):
        message["MD5OfMessageAttributes"] = record["md5OfMessageAttributes"]
    return message


def _normalized_sample(record: dict[str, Any]) -> dict[str, Any]:
    """Samples omit empty list values; Lambda itself sends them (as we do)."""
    out = dict(record)
    out["messageAttributes"] = {
        name: {"stringListValues": [], "binaryListValues": [], **a}
        for name, a in record["messageAttributes"].items()
    }
    return out


@requires_shared
@pytest.mark.parametrize(
    "sample",
    [
        *sorted(p.name for p in (SHARED / "aws-events" / "sqs").glob("*.json")),
        "../sns-via-sqs/powertools__snsSqsEvent.json",
        "../sns-via-sqs/powertools__snsSqsFifoEvent.json",
        "../s3-via-sqs/powertools__s3SqsEvent.json",
    ],
)
def test_aws_samples_are_reproduced_exactly(sample: str) -> None:
    event = json.loads((SHARED / "aws-events" / "sqs" / sample).read_text())
    records = [sqs_record(as_received(r), r["eventSourceARN"]) for r in event["Records"]]
    assert records == [_normalized_sample(r) for r in event["Records"]]
    SqsModel.model_validate({"Records": records})
