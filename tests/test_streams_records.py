"""Pure parts of the DynamoDB Streams source: Lambda's record, shard lineage, start
positions, the OnFailure record, and the template's DynamoDB event settings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamLambdaOnFailureDestinationModel,
    DynamoDBStreamModel,
)

from adapters.streams import StreamMapping, mappings_from_template
from adapters.streams.failures import batches, failure_record
from adapters.streams.records import (
    MalformedRecord,
    envelope,
    item_key,
    lambda_record,
)
from adapters.streams.shards import (
    SHARD_END,
    MalformedShard,
    Position,
    Shard,
    created_since,
    fair_share,
    later,
    latest_cut,
    ordered_by_lineage,
    parse_shard,
    readable,
    start_position,
)
from adapters.template import TemplateError, load_template
from bus.spec import Trigger
from tests.conftest import SHARED, requires_shared

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/src/stream/2026-01-01T00:00:00.000"


def raw_record(**over: Any) -> dict[str, Any]:
    """A GetRecords record as botocore parses it: bytes for binary, a datetime for the time."""
    ddb = {
        "ApproximateCreationDateTime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "Keys": {"pk": {"S": "a"}, "sk": {"N": "1"}},
        "NewImage": {
            "pk": {"S": "a"},
            "sk": {"N": "1"},
            "blob": {"B": b"\x00\xff"},
            "nested": {"M": {"bs": {"BS": [b"\x01", b"\x02"]}, "l": {"L": [{"B": b"x"}]}}},
            "flag": {"BOOL": True},
            "nothing": {"NULL": True},
            "ns": {"NS": ["1", "2.5"]},
        },
        "OldImage": {"pk": {"S": "a"}, "sk": {"N": "1"}},
        "SequenceNumber": "300000000000000000001",
        "SizeBytes": 77,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    raw: dict[str, Any] = {
        "eventID": "f07f8ca4b0b26cb9c4e5e77e69f274ee",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": ddb,
    }
    raw.update(over)
    return raw


# -- the record ---------------------------------------------------------------------------


def test_record_is_lambdas_wire_form_and_validates_under_powertools() -> None:
    record = lambda_record(raw_record(), ARN)
    DynamoDBStreamModel.model_validate({"Records": [record]})
    assert list(record) == [
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    ]
    assert record["eventSourceARN"] == ARN
    ddb = record["dynamodb"]
    assert ddb["ApproximateCreationDateTime"] == 1767323045  # epoch seconds, a number
    assert ddb["NewImage"]["blob"] == {"B": base64.b64encode(b"\x00\xff").decode()}
    assert ddb["NewImage"]["nested"]["M"]["bs"] == {"BS": ["AQ==", "Ag=="]}
    assert ddb["NewImage"]["nested"]["M"]["l"] == {"L": [{"B": "eA=="}]}
    assert ddb["NewImage"]["ns"] == {"NS": ["1", "2.5"]}
    assert (ddb["SequenceNumber"], ddb["SizeBytes"]) == ("300000000000000000001", 77)
    json.dumps(record)  # what a handler gets is plain JSON


def test_ttl_deletion_identity_is_in_lambdas_casing() -> None:
    """The API says ``PrincipalId``/``Type`` (botocore's Identity shape); Lambda's event,
    and the handlers and Powertools reading it, say ``principalId``/``type``."""
    identity = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    record = lambda_record(raw_record(eventName="REMOVE", userIdentity=identity), ARN)
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    DynamoDBStreamModel.model_validate({"Records": [record]})


def test_fractional_creation_time_stays_fractional() -> None:
    raw = raw_record()
    raw["dynamodb"]["ApproximateCreationDateTime"] = datetime(
        2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC
    )
    assert lambda_record(raw, ARN)["dynamodb"]["ApproximateCreationDateTime"] == 1767225600.25


@requires_shared
@pytest.mark.parametrize(
    "name", ["aws-lambda-go__dynamodb-event.json", "sam-cli__DynamoDBUpdate.json"]
)
def test_lambdas_own_sample_events_come_out_unchanged(name: str) -> None:
    """Feed the stream part of AWS's sample events through: Lambda's record comes back."""
    event = json.loads((SHARED / "aws-events" / "dynamodb" / name).read_text())
    for sample in event["Records"]:
        raw = {k: v for k, v in sample.items() if k != "eventSourceARN"}
        assert lambda_record(raw, sample["eventSourceARN"]) == sample


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("dynamodb"), "dynamodb section"),
        (lambda r: r.update(eventName="UPSERT"), "eventName"),
        (lambda r: r.update(eventID=""), "eventID"),
        (lambda r: r.update(eventID="x" * 500), "eventID"),
        (lambda r: r["dynamodb"].update(SequenceNumber="12a"), "SequenceNumber"),
        (lambda r: r["dynamodb"].update(SequenceNumber=None), "SequenceNumber"),
        (lambda r: r["dynamodb"].update(Keys={}), "Keys"),
        (lambda r: r["dynamodb"].update(StreamViewType="ALL"), "StreamViewType"),
        (lambda r: r["dynamodb"]["NewImage"].update(x={"Q": "1"}), "unknown attribute type"),
        (lambda r: r["dynamodb"]["NewImage"].update(x={"S": "1", "N": "2"}), "not an attribute"),
        (lambda r: r["dynamodb"]["NewImage"].update(x={"B": 5}), "binary"),
        (lambda r: r["dynamodb"]["NewImage"].update(x={"L": "nope"}), "expected a list"),
        (lambda r: r["dynamodb"].update(NewImage=["x"]), "item image"),
        (lambda r: r["dynamodb"].update(ApproximateCreationDateTime="soon"), "CreationDateTime"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(change: Any, message: str) -> None:
    raw = raw_record()
    change(raw)
    with pytest.raises(MalformedRecord, match=message):
        lambda_record(raw, ARN)


def test_hostile_nesting_is_refused_not_recursed_forever() -> None:
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(200):
        value = {"M": {"x": value}}
    raw = raw_record()
    raw["dynamodb"]["NewImage"] = {"deep": value}
    with pytest.raises(MalformedRecord, match="nested deeper"):
        lambda_record(raw, ARN)


def test_partition_is_the_items_key_whatever_the_attribute_order() -> None:
    a = item_key({"pk": {"S": "a"}, "sk": {"N": "1"}})
    assert a == item_key({"sk": {"N": "1"}, "pk": {"S": "a"}})
    assert a != item_key({"pk": {"S": "a"}, "sk": {"N": "2"}})
    assert item_key({"pk": {"S": "1"}}) != item_key({"pk": {"N": "1"}})
    env = envelope(lambda_record(raw_record(), ARN), "shardId-1", now=2e9)
    assert (env.id, env.partition, env.subject) == (
        "f07f8ca4b0b26cb9c4e5e77e69f274ee",
        a,
        "shardId-1",
    )
    assert (env.source, env.type, env.time) == ("aws:dynamodb", "MODIFY", 1767323045.0)


# -- shards ---------------------------------------------------------------------------------


def shard(sid: str, parent: str | None = None, closed: bool = False) -> Shard:
    return Shard(sid, parent, "1", "9" if closed else None)


def test_lineage_puts_parents_before_children_whatever_the_listing_order() -> None:
    listing = [shard("d", "b"), shard("c", "a"), shard("b", "a", True), shard("a", None, True)]
    order = [s.id for s in ordered_by_lineage(listing)]
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("a") < order.index("c")


def test_a_child_waits_until_its_parent_is_read_to_the_end() -> None:
    listing = [shard("a", None, True), shard("b", "a"), shard("c", "a")]
    assert [s.id for s in readable(listing, {})] == ["a"]
    assert [s.id for s in readable(listing, {"a": "5"})] == ["a"]
    assert [s.id for s in readable(listing, {"a": SHARD_END})] == ["b", "c"]
    # A parent no longer listed (trimmed away) doesn't hold its child back.
    assert [s.id for s in readable([shard("b", "gone")], {})] == ["b"]
    # Cycles in a hostile listing don't hang.
    assert {s.id for s in ordered_by_lineage([shard("x", "y"), shard("y", "x")])} == {"x", "y"}


def test_start_positions() -> None:
    assert start_position("42") == Position("AFTER_SEQUENCE_NUMBER", "42")
    assert start_position(None) == Position("TRIM_HORIZON")  # never a LATEST iterator
    assert start_position(SHARD_END) == Position("TRIM_HORIZON")
    assert latest_cut("LATEST", True, 100.5) == 100.5
    assert latest_cut("LATEST", False, 100.5) is None  # born later: read whole
    assert latest_cut("TRIM_HORIZON", True, 100.5) is None
    assert created_since(100.6, 100.5) and not created_since(100.4, 100.5)
    # AWS rounds creation times down to the second: 100 may be 100.9, so it is kept.
    assert created_since(100.0, 100.5) and not created_since(99.0, 100.5)
    assert Position("AFTER_SEQUENCE_NUMBER", "42").args() == {
        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
        "SequenceNumber": "42",
    }


def test_parse_shard_and_its_errors() -> None:
    parsed = parse_shard(
        {
            "ShardId": "s1",
            "ParentShardId": "s0",
            "SequenceNumberRange": {"StartingSequenceNumber": "10", "EndingSequenceNumber": "20"},
        }
    )
    assert parsed == Shard("s1", "s0", "10", "20") and parsed.closed
    with pytest.raises(MalformedShard):
        parse_shard({"ShardId": "s1"})
    with pytest.raises(MalformedShard):
        parse_shard({"SequenceNumberRange": {}})


def test_fair_share_and_sequence_order() -> None:
    assert [fair_share(n, 2) for n in (0, 1, 2, 3)] == [1, 1, 1, 2]
    assert fair_share(5, 0) == 5
    assert later("1000000000000000000000", "999999999999999999999")
    assert not later("5", "5")


# -- the OnFailure record ----------------------------------------------------------------------


def test_failure_record_is_lambdas_and_validates_under_powertools() -> None:
    trigger = Trigger("S", ordered=True, max_record_age_s=86400.0)
    mapping = StreamMapping("Fn", trigger, ARN, on_failure="arn:aws:sqs:eu-west-1:1:q")
    records = [
        lambda_record(
            raw_record(
                eventID=f"e{i}",
                dynamodb={**raw_record()["dynamodb"], "SequenceNumber": f"30000000000000000000{i}"},
            ),
            ARN,
        )
        for i in (1, 2)
    ]
    envs = [envelope(r, "shardId-7", now=1767323050.0)._replace(trigger="S") for r in records]
    fields = {b"failed_at_ms": b"1", b"reason": b"RetriesExhausted", b"attempts": b"3"}
    letters = [(b"1-0", envs[0], fields), (b"1-1", envs[1], fields)]
    [batch] = batches(letters, "S")
    record = failure_record(batch, mapping, ARN, now=1767323060.0)
    DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(record)
    info = record["DDBStreamBatchInfo"]
    assert info == {
        "shardId": "shardId-7",
        "startSequenceNumber": "300000000000000000001",
        "endSequenceNumber": "300000000000000000002",
        "approximateArrivalOfFirstRecord": "2026-01-02T03:04:05.000Z",
        "approximateArrivalOfLastRecord": "2026-01-02T03:04:05.000Z",
        "batchSize": 2,
        "streamArn": ARN,
    }
    ctx = record["requestContext"]
    assert (ctx["condition"], ctx["approximateInvokeCount"]) == ("RetryAttemptsExhausted", 3)
    assert ctx["functionArn"] == "arn:aws:lambda:eu-west-1:123456789012:function:Fn"
    # Given up when too old for MaximumRecordAgeInSeconds: Lambda says so.
    late = {**fields, b"failed_at_ms": str((1767323045 + 86400) * 1000).encode()}
    old = failure_record([(i, e, late) for i, e, _ in batch], mapping, ARN, now=1767323045.0)
    assert old["requestContext"]["condition"] == "RecordAgeExceeded"


def test_failure_batches_split_by_give_up_and_skip_other_triggers() -> None:
    env = envelope(lambda_record(raw_record(), ARN), "s", now=0.0)
    a = {b"failed_at_ms": b"1", b"reason": b"R"}
    b = {b"failed_at_ms": b"2", b"reason": b"R"}
    letters = [
        (b"1", env._replace(trigger="S"), a),
        (b"2", env._replace(trigger="S"), a),
        (b"3", env._replace(trigger="Other"), a),
        (b"4", env._replace(trigger="S"), b),
    ]
    groups = [[x[0] for x in g] for g in batches(letters, "S") if g]
    assert groups == [[b"1", b"2"], [b"4"]]


# -- the template ---------------------------------------------------------------------------


def template(tmp_path: Path, **props: Any) -> Path:
    doc = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Src": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                },
            },
            "Dlq": {"Type": "AWS::SQS::Queue"},
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "app.h",
                    "CodeUri": ".",
                    "Events": {
                        "Changes": {
                            "Type": "DynamoDB",
                            "Properties": {"Stream": {"Fn::GetAtt": ["Src", "StreamArn"]}, **props},
                        }
                    },
                },
            },
        },
    }
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(doc))
    return path


def test_template_mapping_carries_lambdas_settings(tmp_path: Path) -> None:
    loaded = load_template(
        template(
            tmp_path,
            StartingPosition="LATEST",
            BatchSize=7,
            BisectBatchOnFunctionError=True,
            MaximumRetryAttempts=2,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            FilterCriteria={"Filters": [{"Pattern": json.dumps({"eventName": ["INSERT"]})}]},
            DestinationConfig={"OnFailure": {"Destination": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
        ),
        {},
        "st",
    )
    [m] = mappings_from_template(loaded)
    assert (m.function, m.starting_position, m.label) == ("Fn", "LATEST", "dynamodb:Fn.Changes")
    assert m.stream_arn.startswith("arn:aws:dynamodb:") and "/stream/" in m.stream_arn
    assert m.on_failure is not None and m.on_failure.endswith(":st-Dlq")
    assert m.filters == (json.dumps({"eventName": ["INSERT"]}),)
    t = m.trigger
    assert (t.ordered, t.batch_size, t.bisect_on_error, t.max_retry_attempts) == (True, 7, True, 2)
    assert (t.partial_batch, t.item_id_path) == ("checkpoint", ("dynamodb", "SequenceNumber"))
    assert t.max_record_age_s == 86400.0  # -1: until the record leaves the stream


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"StartingPosition": "AT_TIMESTAMP"}, "Changes.Properties.StartingPosition"),
        (
            {"StartingPosition": "TRIM_HORIZON", "MaximumRecordAgeInSeconds": 5},
            "MaximumRecordAgeInSeconds",
        ),
        ({"StartingPosition": "TRIM_HORIZON", "BatchSize": 0}, "BatchSize"),
        ({"StartingPosition": "TRIM_HORIZON", "TumblingWindowInSeconds": 5}, "Tumbling"),
    ],
)
def test_bad_dynamodb_events_are_one_line_errors(
    tmp_path: Path, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateError) as err:
        load_template(template(tmp_path, **props), {}, "st")
    text = str(err.value)
    assert "\n" not in text and "template.yaml" in text and "Fn" in text and message in text
