"""S3 and SNS notifications carried through SQS become exactly Lambda's records
(adapters/s3_records.py, adapters/sns_records.py; pure).

Inputs are what the carriers really deliver: moto's notification bodies
(recorded from moto 5.2) and AWS's canonical samples. Outputs are checked
against Powertools' ``S3Model`` / ``SnsModel`` and, where AWS's sample has
every field, against the sample itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model, SnsModel

from adapters.s3_records import iso_time, s3_records
from adapters.sns_records import sns_record
from adapters.sqs_records import MalformedMessage
from tests.conftest import SHARED, requires_shared

EVENTS = SHARED / "aws-events"

MOTO_S3_BODY = json.dumps({"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
    "eventTime": "2026-11-27T02:12:13.276Z", "eventName": "ObjectCreated:Put",
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "Xg143mpRSldkj",
           "bucket": {"name": "bkt", "arn": "arn:aws:s3:::bkt"},
           "object": {"key": "a%2Fb+c%2Bd.txt", "size": 2,
                      "eTag": "9336ebf25087d91c818ee6e9ec29f8c1"}}}]})  # fmt: skip
"""What moto's S3 sends to a queue for ``put_object(Key="a/b c+d.txt")``."""

MOTO_SNS_BODY = json.dumps({
    "Message": "hi",
    "MessageAttributes": {"bb": {"Type": "Binary", "Value": "AQ=="},
                          "k": {"Type": "String", "Value": "v"}},
    "MessageId": "4cec4256-6df6-43eb-b83f-62f1b734ce96",
    "Signature": "iRYdklKcpbrN2uOmO60Y/hp17V32cW0VGqS81Uvd==",
    "SignatureVersion": "2",
    "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1f.pem",
    "Subject": "subj",
    "Timestamp": "2026-11-27T02:12:13.402Z",
    "TopicArn": "arn:aws:sns:us-east-1:123456789012:t1",
    "Type": "Notification",
    "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
                      "arn:aws:sns:us-east-1:123456789012:t1:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
})  # fmt: skip
"""What moto's SNS sends to a subscribed queue (raw delivery off)."""


# -- S3 ---------------------------------------------------------------------------------


def test_moto_notification_gets_lambdas_missing_fields_and_keeps_what_s3_sent() -> None:
    [(event_id, record)] = s3_records(MOTO_S3_BODY, "carrier-1", "us-east-1")
    assert event_id == "carrier-1:0"  # no sequencer from moto: carrier id + index
    assert record["s3"]["object"]["key"] == "a%2Fb+c%2Bd.txt"  # as S3 sent it
    assert record["s3"]["configurationId"] == "Xg143mpRSldkj"
    assert record["userIdentity"] == {"principalId": "AWS:EXAMPLE"}
    assert record["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
    assert set(record["responseElements"]) == {"x-amz-request-id", "x-amz-id-2"}
    assert record["s3"]["bucket"]["ownerIdentity"] == {"principalId": "EXAMPLE"}
    millis = int(iso_time("2026-11-27T02:12:13.276Z") * 1000)
    assert record["s3"]["object"]["sequencer"] == f"{millis:014X}0000"
    assert list(record)[:9] == ["eventVersion", "eventSource", "awsRegion", "eventTime",
                                "eventName", "userIdentity", "requestParameters",
                                "responseElements", "s3"]  # fmt: skip
    S3Model.model_validate({"Records": [record]})


def test_the_same_carrier_message_always_yields_the_same_records() -> None:
    """A redelivered carrier message must look identical, or dedupe would be moot."""
    assert s3_records(MOTO_S3_BODY, "c", "us-east-1") == s3_records(MOTO_S3_BODY, "c", "us-east-1")
    other = s3_records(MOTO_S3_BODY, "d", "us-east-1")[0][1]
    assert other["responseElements"] != s3_records(MOTO_S3_BODY, "c")[0][1]["responseElements"]


def _record(key: str, sequencer: str | None, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": 1, "eTag": "e"}
    if sequencer:
        obj["sequencer"] = sequencer
    return {"eventTime": "2024-01-01T00:00:00.000Z", "eventName": name,
            "s3": {"bucket": {"name": "b"}, "object": obj}}  # fmt: skip


def test_event_ids_distinguish_every_distinct_event() -> None:
    body = json.dumps({"Records": [
        _record("k", "00A1"), _record("k", "00A2"),   # same key uploaded twice
        _record("other", "00A1"),                      # same sequencer, other key
        _record("k", None), _record("k", None),        # no sequencer: by index
    ]})  # fmt: skip
    ids = [i for i, _ in s3_records(body, "m")]
    assert len(set(ids)) == 5
    assert ids[0].startswith("00A1.") and ids[1].startswith("00A2.")
    assert ids[3:] == ["m:3", "m:4"]
    # Stable across redelivery of the carrier message (other receipt, same id).
    assert [i for i, _ in s3_records(body, "m")] == ids


def test_test_event_yields_nothing() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent",
                       "Time": "2026-11-27T02:12:13.267Z", "Bucket": "bkt"})  # fmt: skip
    assert s3_records(body, "m") == []


def test_delete_events_need_no_size_and_validate() -> None:
    body = json.dumps(
        {
            "Records": [
                {
                    **_record("k", None, "ObjectRemoved:Delete"),
                    "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}},
                }
            ]
        }
    )
    [(_, record)] = s3_records(body, "m")
    assert "size" not in record["s3"]["object"]
    S3Model.model_validate({"Records": [record]})


def test_notification_carried_by_an_sns_topic_is_unwrapped() -> None:
    wrapped = json.dumps(
        {
            "Type": "Notification",
            "MessageId": "x",
            "TopicArn": "arn:t",
            "Message": MOTO_S3_BODY,
            "Timestamp": "2024-01-01T00:00:00Z",
        }
    )
    assert s3_records(wrapped, "c") == s3_records(MOTO_S3_BODY, "c")


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        json.dumps({"Records": "nope"}),
        json.dumps({"Something": "else"}),
        json.dumps({"Records": [42]}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        json.dumps({"Records": [{**_record("k", None), "eventTime": "yesterday"}]}),
        json.dumps({"Records": [{**_record("k", None), "s3": {"bucket": {"name": "b"}}}]}),
        json.dumps({"Type": "Notification", "Message": "not json"}),
        "[" * 100_000,
    ],
    ids=[
        "text",
        "array",
        "records-str",
        "no-records",
        "record-int",
        "no-s3",
        "bad-time",
        "no-object",
        "sns-garbage",
        "deep-nesting",
    ],
)
def test_malformed_s3_notifications_raise_a_clear_error(body: str) -> None:
    with pytest.raises(MalformedMessage):
        s3_records(body, "m")


@requires_shared
@pytest.mark.parametrize("sample", sorted(p.name for p in (EVENTS / "s3").glob("*.json")))
def test_aws_s3_samples_pass_through_unchanged(sample: str) -> None:
    """A complete S3 record (as real S3 sends) must come out exactly as it went in."""
    event = json.loads((EVENTS / "s3" / sample).read_text())
    made = s3_records(json.dumps(event), "carrier", "us-east-1")
    assert [r for _, r in made] == event["Records"]
    assert [i.split(".")[0] for i, _ in made] == [
        r["s3"]["object"]["sequencer"] for r in event["Records"]
    ]
    S3Model.model_validate({"Records": [r for _, r in made]})


@requires_shared
def test_s3_via_sqs_sample_body_becomes_the_records_s3_sent() -> None:
    event = json.loads((EVENTS / "s3-via-sqs" / "powertools__s3SqsEvent.json").read_text())
    carrier = event["Records"][0]
    made = s3_records(carrier["body"], carrier["messageId"], carrier["awsRegion"])
    assert [r for _, r in made] == json.loads(carrier["body"])["Records"]
    S3Model.model_validate({"Records": [r for _, r in made]})


# -- SNS --------------------------------------------------------------------------------


def test_moto_sns_notification_becomes_lambdas_sns_record() -> None:
    event_id, record = sns_record(MOTO_SNS_BODY) or ("", {})
    assert event_id == "4cec4256-6df6-43eb-b83f-62f1b734ce96"
    assert record == {
        "EventVersion": "1.0",
        "EventSubscriptionArn":
            "arn:aws:sns:us-east-1:123456789012:t1:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        "EventSource": "aws:sns",
        "Sns": {
            "SignatureVersion": "2",
            "Timestamp": "2026-11-27T02:12:13.402Z",
            "Signature": "iRYdklKcpbrN2uOmO60Y/hp17V32cW0VGqS81Uvd==",
            "SigningCertUrl":
                "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1f.pem",
            "MessageId": "4cec4256-6df6-43eb-b83f-62f1b734ce96",
            "Message": "hi",
            "MessageAttributes": {"bb": {"Type": "Binary", "Value": "AQ=="},
                                  "k": {"Type": "String", "Value": "v"}},
            "Type": "Notification",
            "UnsubscribeUrl": json.loads(MOTO_SNS_BODY)["UnsubscribeURL"],
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t1",
            "Subject": "subj",
        },
    }  # fmt: skip
    SnsModel.model_validate({"Records": [record]})


def test_no_subject_is_null_and_no_attributes_an_empty_map() -> None:
    doc = json.loads(MOTO_SNS_BODY)
    del doc["Subject"], doc["MessageAttributes"]
    _, record = sns_record(json.dumps(doc)) or ("", {})
    assert record["Sns"]["Subject"] is None
    assert record["Sns"]["MessageAttributes"] == {}
    SnsModel.model_validate({"Records": [record]})


def test_subscription_arn_falls_back_when_sns_names_none() -> None:
    doc = json.loads(MOTO_SNS_BODY)
    doc["UnsubscribeURL"] = "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    _, given = sns_record(json.dumps(doc), "arn:aws:sns:us-east-1:1:t1:sub") or ("", {})
    assert given["EventSubscriptionArn"] == "arn:aws:sns:us-east-1:1:t1:sub"
    _, derived = sns_record(json.dumps(doc)) or ("", {})
    assert derived["EventSubscriptionArn"].startswith(doc["TopicArn"] + ":")
    assert sns_record(json.dumps(doc)) == sns_record(json.dumps(doc))  # stable


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_subscription_control_messages_are_not_events(kind: str) -> None:
    assert sns_record(json.dumps({**json.loads(MOTO_SNS_BODY), "Type": kind})) is None


@pytest.mark.parametrize(
    "body",
    [
        "hi",  # raw message delivery on: the body is the message itself
        json.dumps(["x"]),
        json.dumps({**json.loads(MOTO_SNS_BODY), "Type": "Other"}),
        json.dumps({k: v for k, v in json.loads(MOTO_SNS_BODY).items() if k != "MessageId"}),
        json.dumps({**json.loads(MOTO_SNS_BODY), "Message": {"not": "a string"}}),
        json.dumps({**json.loads(MOTO_SNS_BODY), "Timestamp": "soon"}),
        json.dumps({**json.loads(MOTO_SNS_BODY), "MessageAttributes": {"a": {"Type": "String"}}}),
        json.dumps({**json.loads(MOTO_SNS_BODY), "MessageAttributes": ["a"]}),
    ],
    ids=[
        "raw",
        "array",
        "type",
        "no-id",
        "message-obj",
        "bad-time",
        "attr-no-value",
        "attrs-list",
    ],
)
def test_malformed_sns_notifications_raise_a_clear_error(body: str) -> None:
    with pytest.raises(MalformedMessage):
        sns_record(body)


@requires_shared
@pytest.mark.parametrize(
    "sample", ["powertools__snsSqsEvent.json", "powertools__snsSqsFifoEvent.json"]
)
def test_sns_via_sqs_sample_bodies_become_sns_records(sample: str) -> None:
    carrier = json.loads((EVENTS / "sns-via-sqs" / sample).read_text())["Records"][0]
    doc = json.loads(carrier["body"])
    event_id, record = sns_record(carrier["body"]) or ("", {})
    assert event_id == doc["MessageId"]
    sns = record["Sns"]
    assert sns["Message"] == doc["Message"] and sns["TopicArn"] == doc["TopicArn"]
    assert sns["UnsubscribeUrl"] == doc["UnsubscribeURL"]
    assert sns.get("SigningCertUrl") == doc.get("SigningCertURL")
    assert record["EventSubscriptionArn"] == doc["UnsubscribeURL"].split("SubscriptionArn=")[1]
    SnsModel.model_validate({"Records": [record]})


@requires_shared
def test_lambdas_sns_sample_is_reproduced_from_the_notification_it_came_from() -> None:
    event = json.loads((EVENTS / "sns" / "powertools__snsEvent.json").read_text())
    expected = event["Records"][0]
    wire = {("SigningCertURL" if k == "SigningCertUrl" else
             "UnsubscribeURL" if k == "UnsubscribeUrl" else k): v
            for k, v in expected["Sns"].items()}  # fmt: skip
    _, record = sns_record(json.dumps(wire), expected["EventSubscriptionArn"]) or ("", {})
    assert record == expected
