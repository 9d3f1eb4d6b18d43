"""Sample events (``lambdabus generate-event``): each kind validates under
aws-lambda-powertools' parser model for it (someone else's reading of what AWS
sends), placeholders land in the right fields, ids and timestamps have AWS's
formats, mistakes raise KeyError naming the valid choices, and each event has the
key set of the canonical samples in ../shared/aws-events."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlparse

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
    DynamoDBStreamModel,
    EventBridgeModel,
    S3Model,
    SnsModel,
    SqsModel,
)
from pydantic import BaseModel

from adapters.samples import SOURCES, InvalidValue, generate, placeholders
from tests.conftest import SHARED, requires_shared

ROOT = Path(__file__).resolve().parents[1]
MODELS: dict[str, type[BaseModel]] = {
    "s3": S3Model,
    "sqs": SqsModel,
    "sns": SnsModel,
    "dynamodb": DynamoDBStreamModel,
    "apigateway": APIGatewayProxyEventModel,
    "apigatewayv2": APIGatewayProxyEventV2Model,
    "cloudwatch": EventBridgeModel,
    "eventbridge": EventBridgeModel,
}
KINDS = [(source, event) for source, events in SOURCES.items() for event in events]
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ISO_S = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def near_now(at: datetime, slack_s: float = 120) -> bool:
    return abs(datetime.now(UTC) - at) < timedelta(seconds=slack_s)


def from_ms(ms: str | int) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def record(event: dict[str, Any], i: int = 0) -> dict[str, Any]:
    records: list[dict[str, Any]] = event["Records"]
    return records[i]


# -- every kind ------------------------------------------------------------------------


def test_sources_and_variants_are_sam_clis() -> None:
    assert SOURCES == {
        "s3": ("put", "delete"),
        "sqs": ("receive-message",),
        "sns": ("notification",),
        "dynamodb": ("update",),
        "apigateway": ("aws-proxy",),
        "apigatewayv2": ("http-api-proxy",),
        "cloudwatch": ("scheduled-event",),
        "eventbridge": ("event",),
    }


@pytest.mark.parametrize(("source", "event"), KINDS)
def test_validates_under_powertools_model(source: str, event: str) -> None:
    MODELS[source].model_validate(generate(source, event, {}))


@pytest.mark.parametrize(("source", "event"), KINDS)
def test_every_placeholder_overridden_still_validates(source: str, event: str) -> None:
    overrides = {
        "region": "eu-central-1", "account": "210987654321", "bucket": "photos",
        "key": "a b/c.jpg", "size": "7", "queue": "orders", "body": "hi", "topic": "alerts",
        "subject": "s", "message": "m", "table": "Orders", "path": "/x", "method": "PUT",
        "stage": "dev", "query": "a=1", "cookies": "c=1", "rule": "nightly",
        "source": "com.example.orders", "detail-type": "Order Placed", "detail": '{"id": 1}',
    }  # fmt: skip
    values = {name: overrides[name] for name in placeholders(source, event)}
    generated = generate(source, event, values)
    MODELS[source].model_validate(generated)
    assert "eu-central-1" in json.dumps(generated)


@pytest.mark.parametrize(("source", "event"), KINDS)
def test_json_serializable_with_fresh_ids(source: str, event: str) -> None:
    first, second = generate(source, event, {}), generate(source, event, {})
    assert json.loads(json.dumps(first)) == first
    assert first != second  # new ids each time, so the bus never dedupes two samples


def shape(value: Any) -> Any:
    """The keys of an event, all the way down, without the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def test_default_variant_is_the_first() -> None:
    for source, events in SOURCES.items():
        assert shape(generate(source, None, {})) == shape(generate(source, events[0], {}))
    assert shape(generate("s3", None, {})) != shape(generate("s3", "delete", {}))


def test_placeholders_lists_defaults() -> None:
    assert placeholders("s3") == {
        "region": "us-east-1", "bucket": "example-bucket", "key": "test/key", "size": "1024"
    }  # fmt: skip
    assert "size" not in placeholders("s3", "delete")
    assert placeholders("eventbridge")["detail-type"] == "EC2 Instance State-change Notification"


# -- placeholders and formats, per source ----------------------------------------------


def test_s3_put() -> None:
    key = "holiday 2024/dt=1 (cat).jpg"
    values = {"region": "eu-west-1", "bucket": "photos", "key": key, "size": "2048"}
    r = record(generate("s3", "put", values))
    assert r["awsRegion"] == "eu-west-1" and r["eventName"] == "ObjectCreated:Put"
    assert r["s3"]["bucket"]["name"] == "photos"
    assert r["s3"]["bucket"]["arn"] == "arn:aws:s3:::photos"
    obj = r["s3"]["object"]
    assert obj["key"] == "holiday+2024/dt%3D1+%28cat%29.jpg"  # URL-encoded as S3 does
    assert unquote_plus(obj["key"]) == key
    assert obj["size"] == 2048 and re.fullmatch(r"[0-9a-f]{32}", obj["eTag"])
    assert re.fullmatch(r"00[0-9A-F]{16}", obj["sequencer"])
    assert ISO_MS.fullmatch(r["eventTime"])
    assert near_now(datetime.fromisoformat(r["eventTime"]))
    assert re.fullmatch(r"AWS:AIDA[A-Z2-7]{17}", r["userIdentity"]["principalId"])
    assert re.fullmatch(r"[0-9A-F]{16}", r["responseElements"]["x-amz-request-id"])
    base64.b64decode(r["responseElements"]["x-amz-id-2"], validate=True)
    assert r["eventVersion"] == "2.1" and r["s3"]["s3SchemaVersion"] == "1.0"


def test_s3_delete_has_no_size_or_etag() -> None:
    r = record(generate("s3", "delete", {"bucket": "photos", "key": "old.txt"}))
    assert r["eventName"] == "ObjectRemoved:Delete"
    assert set(r["s3"]["object"]) == {"key", "sequencer"}
    assert r["s3"]["object"]["key"] == "old.txt"


def test_partition_follows_region() -> None:
    bucket = record(generate("s3", "put", {"region": "cn-north-1"}))["s3"]["bucket"]
    assert bucket["arn"] == "arn:aws-cn:s3:::example-bucket"
    sns = record(generate("sns", None, {"region": "cn-north-1"}))["Sns"]
    assert sns["TopicArn"].startswith("arn:aws-cn:sns:cn-north-1:")
    assert urlparse(sns["SigningCertUrl"]).hostname == "sns.cn-north-1.amazonaws.com.cn"
    queue = record(generate("sqs", None, {"region": "us-gov-west-1"}))["eventSourceARN"]
    assert queue.startswith("arn:aws-us-gov:sqs:us-gov-west-1:")


def test_sqs() -> None:
    values = {"region": "eu-west-1", "account": "210987654321", "queue": "orders", "body": "héllo"}
    r = record(generate("sqs", None, values))
    assert r["body"] == "héllo"
    assert r["md5OfBody"] == hashlib.md5("héllo".encode()).hexdigest()
    assert r["eventSourceARN"] == "arn:aws:sqs:eu-west-1:210987654321:orders"
    assert r["awsRegion"] == "eu-west-1" and r["eventSource"] == "aws:sqs"
    assert uuid.UUID(r["messageId"]) and r["receiptHandle"].startswith("AQEB")
    attrs = r["attributes"]
    assert all(isinstance(v, str) for v in attrs.values())
    assert re.fullmatch(r"\d{13}", attrs["SentTimestamp"])
    assert near_now(from_ms(attrs["SentTimestamp"]))
    assert int(attrs["ApproximateFirstReceiveTimestamp"]) >= int(attrs["SentTimestamp"])
    assert attrs["ApproximateReceiveCount"] == "1" and r["messageAttributes"] == {}
    assert "MessageGroupId" not in attrs


def test_sqs_fifo_queue_adds_fifo_attributes() -> None:
    attrs = record(generate("sqs", None, {"queue": "orders.fifo", "body": "x"}))["attributes"]
    assert re.fullmatch(r"\d{20}", attrs["SequenceNumber"]) and attrs["MessageGroupId"]
    assert attrs["MessageDeduplicationId"] == hashlib.sha256(b"x").hexdigest()


def test_sns() -> None:
    values = {"region": "eu-west-1", "topic": "alerts", "subject": "Hi", "message": "body!"}
    r = record(generate("sns", None, values))
    sns = r["Sns"]
    assert sns["Message"] == "body!" and sns["Subject"] == "Hi" and sns["Type"] == "Notification"
    assert sns["TopicArn"] == "arn:aws:sns:eu-west-1:123456789012:alerts"
    assert r["EventSubscriptionArn"].startswith(sns["TopicArn"] + ":")
    assert uuid.UUID(r["EventSubscriptionArn"].rsplit(":", 1)[1])
    assert ISO_MS.fullmatch(sns["Timestamp"]) and near_now(datetime.fromisoformat(sns["Timestamp"]))
    assert sns["SignatureVersion"] == "1"
    assert len(base64.b64decode(sns["Signature"], validate=True)) == 256
    for url in (sns["SigningCertUrl"], sns["UnsubscribeUrl"]):
        assert urlparse(url).scheme == "https"
        assert urlparse(url).hostname == "sns.eu-west-1.amazonaws.com"
    assert re.search(r"/SimpleNotificationService-[0-9a-f]{32}\.pem$", sns["SigningCertUrl"])
    assert sns["UnsubscribeUrl"].endswith(
        "?Action=Unsubscribe&SubscriptionArn=" + r["EventSubscriptionArn"]
    )
    assert sns["MessageAttributes"] == {}


def test_sns_without_subject_is_null() -> None:
    assert record(generate("sns", None, {"subject": ""}))["Sns"]["Subject"] is None


def test_dynamodb_insert_modify_remove() -> None:
    values = {"region": "eu-west-1", "account": "210987654321", "table": "Orders"}
    event = generate("dynamodb", None, values)
    records = event["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert [sorted(set(r["dynamodb"]) & {"NewImage", "OldImage"}) for r in records] == [
        ["NewImage"], ["NewImage", "OldImage"], ["OldImage"]
    ]  # fmt: skip
    assert [r["dynamodb"]["SizeBytes"] for r in records] == [26, 59, 38]  # as SAM's sample
    arn = re.compile(
        r"arn:aws:dynamodb:eu-west-1:210987654321:table/Orders/stream/"
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})"
    )
    label = arn.fullmatch(records[0]["eventSourceARN"])
    assert label and datetime.fromisoformat(label[1] + "+00:00") < datetime.now(UTC)
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequences == sorted(set(sequences))
    for r in records:
        change = r["dynamodb"]
        assert isinstance(change["SequenceNumber"], str)
        assert isinstance(change["ApproximateCreationDateTime"], int)
        assert near_now(datetime.fromtimestamp(change["ApproximateCreationDateTime"], UTC))
        assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert change["Keys"] == {"Id": {"N": "101"}}  # DynamoDB JSON
        assert r["awsRegion"] == "eu-west-1" and r["eventSourceARN"] == records[0]["eventSourceARN"]
        assert re.fullmatch(r"[0-9a-f]{32}", r["eventID"]) and r["eventVersion"] == "1.1"
    parsed = DynamoDBStreamModel.model_validate(event).Records[1].dynamodb
    assert parsed.NewImage == {"Message": "This item has changed", "Id": Decimal(101)}


def check_request_time(text: str, epoch_ms: int) -> None:
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", text)
    at = datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z")
    assert at == from_ms(epoch_ms).replace(microsecond=0) and near_now(at)


def test_apigateway_rest_proxy() -> None:
    values = {"region": "eu-west-1", "account": "210987654321", "path": "/orders/7",
              "method": "put", "stage": "dev", "body": "plain", "query": "a=1&a=2&b="}  # fmt: skip
    e = generate("apigateway", None, values)
    assert "version" not in e  # REST APIs send payload 1.0 without a version
    assert (e["resource"], e["path"], e["httpMethod"]) == ("/{proxy+}", "/orders/7", "PUT")
    assert e["pathParameters"] == {"proxy": "orders/7"}
    assert e["body"] == "plain" and e["isBase64Encoded"] is False
    assert e["headers"]["Content-Type"].startswith("text/plain")
    assert e["queryStringParameters"] == {"a": "2", "b": ""}
    assert e["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert e["multiValueHeaders"] == {k: [v] for k, v in e["headers"].items()}
    ctx = e["requestContext"]
    assert set(ctx) == {
        "accountId", "apiId", "domainName", "domainPrefix", "extendedRequestId", "httpMethod",
        "identity", "path", "protocol", "requestId", "requestTime", "requestTimeEpoch",
        "resourceId", "resourcePath", "stage",
    }  # fmt: skip
    assert ctx["accountId"] == "210987654321" and ctx["stage"] == "dev"
    assert ctx["path"] == "/dev/orders/7" and ctx["resourcePath"] == "/{proxy+}"
    assert ctx["domainName"] == f"{ctx['apiId']}.execute-api.eu-west-1.amazonaws.com"
    assert e["headers"]["Host"] == ctx["domainName"] and ctx["httpMethod"] == "PUT"
    assert ctx["identity"]["sourceIp"] == e["headers"]["X-Forwarded-For"]
    assert uuid.UUID(ctx["requestId"])
    check_request_time(ctx["requestTime"], ctx["requestTimeEpoch"])
    APIGatewayProxyEventModel.model_validate(e)


def test_apigateway_rest_root_without_body_or_query() -> None:
    e = generate("apigateway", None, {"path": "/", "method": "GET", "body": "", "query": ""})
    assert e["resource"] == "/" and e["pathParameters"] is None
    assert e["body"] is None and "Content-Type" not in e["headers"]
    assert e["queryStringParameters"] is None and e["multiValueQueryStringParameters"] is None
    APIGatewayProxyEventModel.model_validate(e)


def test_apigatewayv2_http_api() -> None:
    values = {"region": "eu-west-1", "path": "/orders/7", "method": "GET", "body": '{"a": 1}',
              "query": "a=1&a=2", "cookies": "s=1; t=2"}  # fmt: skip
    e = generate("apigatewayv2", None, values)
    assert e["version"] == "2.0" and e["routeKey"] == "ANY /{proxy+}"
    assert e["rawPath"] == "/orders/7" and e["rawQueryString"] == "a=1&a=2"
    assert e["queryStringParameters"] == {"a": "1,2"} and e["cookies"] == ["s=1", "t=2"]
    assert e["pathParameters"] == {"proxy": "orders/7"} and e["body"] == '{"a": 1}'
    assert all(name == name.lower() for name in e["headers"])
    assert e["headers"]["content-type"] == "application/json"
    assert e["headers"]["content-length"] == "8" and "cookie" not in e["headers"]
    ctx = e["requestContext"]
    assert ctx["http"] == {"method": "GET", "path": "/orders/7", "protocol": "HTTP/1.1",
                           "sourceIp": e["headers"]["x-forwarded-for"], "userAgent":
                           e["headers"]["user-agent"]}  # fmt: skip
    assert ctx["stage"] == "$default" and ctx["routeKey"] == e["routeKey"]
    assert ctx["domainName"] == f"{ctx['apiId']}.execute-api.eu-west-1.amazonaws.com"
    check_request_time(ctx["time"], ctx["timeEpoch"])
    APIGatewayProxyEventV2Model.model_validate(e)


def test_apigatewayv2_named_stage_root_and_absent_parts() -> None:
    e = generate("apigatewayv2", None, {"stage": "dev", "path": "/", "body": "", "query": "",
                                         "cookies": ""})  # fmt: skip
    assert e["rawPath"] == "/dev/" == e["requestContext"]["http"]["path"]
    assert e["routeKey"] == "$default" and e["requestContext"]["stage"] == "dev"
    for absent in ("cookies", "queryStringParameters", "body", "pathParameters"):
        assert absent not in e
    assert e["rawQueryString"] == "" and e["headers"]["content-length"] == "0"
    APIGatewayProxyEventV2Model.model_validate(e)


def test_cloudwatch_scheduled_event() -> None:
    e = generate("cloudwatch", None, {"region": "eu-west-1", "rule": "nightly"})
    assert e["resources"] == ["arn:aws:events:eu-west-1:123456789012:rule/nightly"]
    assert (e["detail-type"], e["source"], e["detail"]) == ("Scheduled Event", "aws.events", {})
    assert e["version"] == "0" and ISO_S.fullmatch(e["time"]) and e["time"].endswith(":00Z")
    assert near_now(datetime.fromisoformat(e["time"])) and uuid.UUID(e["id"])


def test_eventbridge_event() -> None:
    default = generate("eventbridge", None, {})
    instance = default["detail"]["instance-id"]
    assert re.fullmatch(r"i-[0-9a-f]{17}", instance) and default["source"] == "aws.ec2"
    assert default["resources"] == [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"]
    assert ISO_S.fullmatch(default["time"]) and near_now(datetime.fromisoformat(default["time"]))
    values = {"source": "com.example.orders", "detail-type": "Order Placed",
              "detail": '{"orderId": "o-1", "total": 9.5}', "account": "210987654321"}  # fmt: skip
    e = generate("eventbridge", "event", values)
    assert (e["source"], e["detail-type"]) == ("com.example.orders", "Order Placed")
    assert e["detail"] == {"orderId": "o-1", "total": 9.5} and e["resources"] == []
    assert e["account"] == "210987654321"
    assert EventBridgeModel.model_validate(e).detail_type == "Order Placed"


# -- mistakes --------------------------------------------------------------------------


def message(exc: pytest.ExceptionInfo[KeyError]) -> str:
    text = exc.value.args[0]
    assert isinstance(text, str) and "\n" not in text and str(exc.value) == text
    return text


def test_unknown_source_names_the_sources() -> None:
    with pytest.raises(KeyError) as exc:
        generate("kinesis", None, {})
    text = message(exc)
    assert "'kinesis'" in text and all(source in text for source in SOURCES)


def test_unknown_variant_names_the_variants() -> None:
    with pytest.raises(KeyError) as exc:
        generate("s3", "putt", {})
    text = message(exc)
    assert "put, delete" in text and "did you mean 'put'" in text


def test_unknown_placeholder_names_the_valid_ones() -> None:
    with pytest.raises(KeyError) as exc:
        generate("s3", "put", {"bukcet": "x"})
    assert "did you mean 'bucket'" in message(exc)
    assert "bucket, key, region, size" in message(exc)
    with pytest.raises(KeyError, match="'size' for s3 delete"):  # valid for put only
        generate("s3", "delete", {"size": "1"})
    with pytest.raises(KeyError, match="'a', 'b'"):
        generate("sqs", None, {"a": "1", "b": "2"})


@pytest.mark.parametrize(
    ("source", "name", "value"),
    [("s3", "size", "big"), ("s3", "size", "-1"), ("s3", "bucket", "My_Bucket"),
     ("s3", "region", "mars"), ("sqs", "account", "12345"), ("sqs", "queue", "a b"),
     ("apigateway", "method", "FETCH"), ("apigateway", "path", "no-slash"),
     ("apigatewayv2", "path", "/a?b=1"), ("eventbridge", "detail", "[1]"),
     ("eventbridge", "detail", "{nope"), ("dynamodb", "table", "ab")],
)  # fmt: skip
def test_invalid_values_are_key_and_value_errors(source: str, name: str, value: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        generate(source, None, {name: value})
    assert isinstance(exc.value, KeyError) and isinstance(exc.value, ValueError)
    assert f"{name}={value!r}" in message(exc)


def test_cli_prints_the_event_and_reports_mistakes_in_one_line() -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "adapters.cli", "generate-event", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    ok = cli("s3", "put", "--set", "bucket=photos", "key=a b.jpg")
    assert ok.returncode == 0, ok.stderr
    assert record(json.loads(ok.stdout))["s3"]["object"]["key"] == "a+b.jpg"
    bad = cli("s3", "--set", "bukcet=photos")
    assert bad.returncode == 2 and "did you mean 'bucket'" in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stderr.strip().count("\n") == 0


# -- the canonical samples in ../shared ------------------------------------------------

# (source, event, sample, keys only that sample has, keys only real deliveries have)
CANONICAL = [
    ("s3", "put", "s3/powertools__s3Event.json", set(), set()),
    ("s3", "put", "s3/sam-cli__S3Put.json", set(), set()),
    ("s3", "delete", "s3/powertools__s3EventDeleteObject.json", set(), set()),
    ("s3", "delete", "s3/sam-cli__S3Delete.json", set(), set()),
    ("sqs", "receive-message", "sqs/powertools__sqsEvent.json", set(), set()),
    ("sqs", "receive-message", "sqs/sam-cli__Sqs.json", set(), set()),
    ("sns", "notification", "sns/powertools__snsEvent.json", set(), set()),
    ("dynamodb", "update", "dynamodb/powertools__dynamoStreamEvent.json", set(), set()),
    ("dynamodb", "update", "dynamodb/sam-cli__DynamoDBUpdate.json", set(), set()),
    # powertools' sample is the HTTP API payload-1.0 example: REST APIs send no "version"
    ("apigateway", "aws-proxy", "apigw-v1/powertools__apiGatewayProxyEvent.json", {"version"},
     set()),
    ("apigateway", "aws-proxy", "apigw-v1/sam-cli__AwsProxy.json", set(), set()),
    ("apigatewayv2", "http-api-proxy", "apigw-v2/powertools__apiGatewayProxyV2Event.json",
     set(), set()),
    ("apigatewayv2", "http-api-proxy", "apigw-v2/sam-cli__HttpApi.json", set(), set()),
    # "replay-name" is only on events replayed from an archive
    ("eventbridge", "event", "eventbridge/powertools__eventBridgeEvent.json", {"replay-name"},
     set()),
    # SAM's template omits "version" (MANIFEST.json: powertools rejects it); AWS sends "0"
    ("cloudwatch", "scheduled-event", "schedule/sam-cli__ScheduledEvent.json", set(),
     {"version"}),
    ("cloudwatch", "scheduled-event", "schedule/rust-runtime__example-eventbridge-schedule.json",
     set(), set()),
]  # fmt: skip


@requires_shared
@pytest.mark.parametrize(("source", "event", "sample", "extra", "missing"), CANONICAL)
def test_same_keys_as_canonical_sample(
    source: str, event: str, sample: str, extra: set[str], missing: set[str]
) -> None:
    canonical = json.loads((SHARED / "aws-events" / sample).read_text())
    generated = generate(source, event, {})
    assert set(generated) == (set(canonical) - extra) | missing
    if "Records" in canonical:
        assert set(record(generated)) == set(record(canonical))


@requires_shared
def test_same_nested_keys_as_canonical_samples() -> None:
    def load(sample: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((SHARED / "aws-events" / sample).read_text())
        return loaded

    s3, s3_sample = record(generate("s3", "put", {})), record(load("s3/powertools__s3Event.json"))
    for part in ("userIdentity", "requestParameters", "responseElements"):
        assert set(s3[part]) == set(s3_sample[part])
    for part in ("bucket", "object"):
        assert set(s3["s3"][part]) == set(s3_sample["s3"][part])
    sqs = record(generate("sqs", None, {}))
    assert set(sqs["attributes"]) == set(record(load("sqs/sam-cli__Sqs.json"))["attributes"])
    sns = record(generate("sns", None, {}))["Sns"]
    assert set(sns) == set(record(load("sns/powertools__snsEvent.json"))["Sns"])
    ddb, ddb_sample = generate("dynamodb", None, {}), load("dynamodb/sam-cli__DynamoDBUpdate.json")
    for i in range(3):
        assert set(record(ddb, i)) == set(record(ddb_sample, i))
        assert set(record(ddb, i)["dynamodb"]) == set(record(ddb_sample, i)["dynamodb"])
    rest = generate("apigateway", None, {})["requestContext"]
    rest_sample = load("apigw-v1/sam-cli__AwsProxy.json")["requestContext"]
    assert set(rest) >= set(rest_sample) and set(rest["identity"]) >= set(rest_sample["identity"])
    http = generate("apigatewayv2", None, {})["requestContext"]
    http_sample = load("apigw-v2/powertools__apiGatewayProxyV2Event.json")["requestContext"]
    # "authentication" is for mutual TLS and "authorizer" for routes with one
    assert set(http) == set(http_sample) - {"authentication", "authorizer"}
    assert set(http["http"]) == set(http_sample["http"])
