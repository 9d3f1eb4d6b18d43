"""Event patterns: EventBridge content filtering, Lambda FilterCriteria, SNS filter policies.

The cases are AWS's documented examples (EventBridge "Content filtering" and "Comparison
operators", the Event Ruler README, Lambda "Event filtering" with its SQS and stream
format tables, SNS "String/Numeric value matching", "Key matching", "AND/OR logic"),
plus edge cases; every bad pattern must raise PatternError with a one-line message
that names where in the pattern the problem is.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from adapters.patterns import (
    Pattern,
    PatternError,
    compile_pattern,
    lambda_filter_matches,
    sns_filter_matches,
)

EC2: dict[str, Any] = {  # the Event Ruler README's sample event
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}


def ec2(**detail: Any) -> dict[str, Any]:
    """The sample event with ``detail`` fields replaced (``_del`` lists fields to drop)."""
    event = copy.deepcopy(EC2)
    for name in detail.pop("_del", ()):
        del event["detail"][name]
    event["detail"].update({k.replace("_", "-"): v for k, v in detail.items()})
    return event


def on(field: str, value: Any) -> dict[str, Any]:
    return {"detail": {field: value}}


def d(**fields: Any) -> dict[str, Any]:
    return {"detail": {k.replace("_", "-"): v for k, v in fields.items()}}


EVENTBRIDGE: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # Ruler by example: fields AND, leaf arrays OR, event arrays intersect.
    (
        "readme simple",
        {
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
            "detail": {"state": ["initializing", "running"]},
        },
        EC2,
        True,
    ),
    ("leaf OR misses", on("state", ["initializing", "stopped"]), EC2, False),
    ("missing field", on("nope", ["x"]), EC2, False),
    ("missing parent", {"nope": {"x": ["y"]}}, EC2, False),
    ("leaf pattern on object", {"detail": ["running"]}, EC2, False),
    ("object pattern on string", {"source": {"x": ["aws.ec2"]}}, EC2, False),
    ("array intersect", {"resources": ["a", EC2["resources"][0]]}, EC2, True),
    (
        "docs array example",
        {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "x"]},
        {
            "resources": [
                "arn:aws:autoscaling:x",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
            ]
        },
        True,
    ),
    ("array no intersect", {"resources": ["a"]}, {"resources": ["b", "c"]}, False),
    ("nested arrays flatten", {"a": ["x"]}, {"a": [["y"], [["x"]]]}, True),
    # Exact values: strings by character, numbers numerically, null and "" distinct.
    ("case sensitive", {"source": ["AWS.EC2"]}, EC2, False),
    ("number equals", on("x-limit", [301.8]), EC2, True),
    ("300 == 300.0", {"n": [300]}, {"n": 300.0}, True),
    ("300 == 3.0e2", {"n": [3.0e2]}, {"n": 300}, True),
    ("number vs string", {"n": [300]}, {"n": "300"}, False),
    ("string vs number", {"n": ["300"]}, {"n": 300}, False),
    ("true", {"b": [True]}, {"b": True}, True),
    ("true is not 1", {"b": [True]}, {"b": 1}, False),
    ("1 is not true", {"b": [1]}, {"b": True}, False),
    ("false", {"b": [False]}, {"b": False}, True),
    ("docs empty string", d(eventVersion=[""]), d(eventVersion=""), True),
    ("docs null", d(responseElements=[None]), d(responseElements=None), True),
    ("empty is not null", d(eventVersion=[""]), d(eventVersion=None), False),
    ("null is not empty", d(eventVersion=[None]), d(eventVersion=""), False),
    ("null is not missing", d(eventVersion=[None]), d(other=1), False),
    ("mixed OR", on("state", [{"prefix": "stop"}, "running"]), EC2, True),
    # Prefix, suffix, equals-ignore-case: strings only.
    ("prefix", {"time": [{"prefix": "2017-10-02"}]}, EC2, True),
    ("prefix miss", {"time": [{"prefix": "2017-10-03"}]}, EC2, False),
    ("prefix on number", on("c-count", [{"prefix": "5"}]), EC2, False),
    ("empty prefix", {"time": [{"prefix": ""}]}, EC2, True),
    (
        "prefix ignore case",
        {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}},
        d(service="eventbridge.amazonaws.com"),
        True,
    ),
    ("prefix case sensitive", {"source": [{"prefix": "AWS"}]}, EC2, False),
    ("suffix", {"source": [{"suffix": "ec2"}]}, EC2, True),
    ("docs suffix png", {"FileName": [{"suffix": ".png"}]}, {"FileName": "a.png"}, True),
    ("suffix miss", {"FileName": [{"suffix": ".png"}]}, {"FileName": "a.PNG"}, False),
    (
        "suffix ignore case",
        d(FileName=[{"suffix": {"equals-ignore-case": ".png"}}]),
        d(FileName="IMAGE.PNG"),
        True,
    ),
    ("equals-ignore-case", {"source": [{"equals-ignore-case": "AWS.EC2"}]}, EC2, True),
    (
        "docs ignore case alice",
        {"Name": [{"equals-ignore-case": "alice"}]},
        {"Name": "Alice"},
        True,
    ),
    ("ignore case miss", {"source": [{"equals-ignore-case": "aws.ec"}]}, EC2, False),
    # Anything-but: any present value outside the set.
    ("anything-but", on("state", [{"anything-but": "initializing"}]), EC2, True),
    ("anything-but hit", on("state", [{"anything-but": "running"}]), EC2, False),
    ("anything-but number", on("x-limit", [{"anything-but": 123}]), EC2, True),
    ("anything-but number hit", on("x-limit", [{"anything-but": 123}]), ec2(x_limit=123.0), False),
    ("anything-but list", on("state", [{"anything-but": ["stopped", "overloaded"]}]), EC2, True),
    ("anything-but list hit", on("state", [{"anything-but": ["stopped", "running"]}]), EC2, False),
    ("anything-but numbers", on("x-limit", [{"anything-but": [100, 200, 300]}]), EC2, True),
    (
        "anything-but numbers hit",
        on("x-limit", [{"anything-but": [100, 200, 300]}]),
        ec2(x_limit=200),
        False,
    ),
    ("anything-but other type", on("x-limit", [{"anything-but": [200]}]), ec2(x_limit="200"), True),
    ("anything-but null value", on("x", [{"anything-but": "a"}]), d(x=None), True),
    ("anything-but missing", on("x", [{"anything-but": "a"}]), EC2, False),
    ("anything-but array", {"a": [{"anything-but": ["x"]}]}, {"a": ["x", "y"]}, True),
    ("anything-but array all hit", {"a": [{"anything-but": ["x"]}]}, {"a": ["x", "x"]}, False),
    ("anything-but prefix", on("state", [{"anything-but": {"prefix": "init"}}]), EC2, True),
    (
        "anything-but prefix hit",
        on("state", [{"anything-but": {"prefix": "init"}}]),
        ec2(state="initializing"),
        False,
    ),
    (
        "anything-but prefix list",
        on("state", [{"anything-but": {"prefix": ["init", "stop"]}}]),
        ec2(state="stopped"),
        False,
    ),
    ("anything-but prefix number", on("c-count", [{"anything-but": {"prefix": "5"}}]), EC2, True),
    (
        "docs not us",
        {"Region": [{"anything-but": {"prefix": "us-"}}]},
        {"Region": "eu-west-1"},
        True,
    ),
    ("anything-but suffix", {"F": [{"anything-but": {"suffix": ".png"}}]}, {"F": "a.png"}, False),
    (
        "anything-but suffix miss",
        {"F": [{"anything-but": {"suffix": ".png"}}]},
        {"F": "a.gif"},
        True,
    ),
    (
        "anything-but ignore case",
        on("state", [{"anything-but": {"equals-ignore-case": "initializing"}}]),
        ec2(state="INITIALIZING"),
        False,
    ),
    (
        "anything-but ignore case list",
        on("state", [{"anything-but": {"equals-ignore-case": ["Stopped", "Running"]}}]),
        EC2,
        False,
    ),
    (
        "docs anything-but wildcard",
        {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"FilePath": "/usr/lib/tool"},
        False,
    ),
    (
        "anything-but wildcard miss",
        {"FilePath": [{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}]},
        {"FilePath": "/etc/tool"},
        True,
    ),
    # Numeric: JSON numbers only, ranges open or closed at either end.
    (
        "docs numeric",
        {
            "detail": {
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        },
        EC2,
        True,
    ),
    ("numeric upper bound in", on("c-count", [{"numeric": [">", 0, "<=", 5]}]), EC2, True),
    ("numeric upper bound out", on("c-count", [{"numeric": [">", 0, "<", 5]}]), EC2, False),
    ("numeric lower bound", on("c-count", [{"numeric": [">", 5]}]), EC2, False),
    ("numeric >=", on("c-count", [{"numeric": [">=", 5]}]), EC2, True),
    ("numeric float", on("c-count", [{"numeric": [">", 4.999999, "<", 5.000001]}]), EC2, True),
    ("numeric negative", {"n": [{"numeric": ["<", 0]}]}, {"n": -0.5}, True),
    ("numeric on string", on("c-count", [{"numeric": ["=", 5]}]), ec2(c_count="5"), False),
    ("numeric on bool", {"n": [{"numeric": ["=", 1]}]}, {"n": True}, False),
    ("numeric array", {"n": [{"numeric": [">", 10]}]}, {"n": [1, 20]}, True),
    (
        "docs lambda range",
        {"Price": [{"numeric": [">", 10, "<=", 20]}]},
        {"Price": 20},
        True,
    ),
    # IP addresses.
    ("docs cidr", on("source-ip", [{"cidr": "10.0.0.0/24"}]), EC2, True),
    ("cidr miss", on("source-ip", [{"cidr": "10.0.0.0/24"}]), ec2(source_ip="10.0.1.1"), False),
    ("cidr not an ip", on("source-ip", [{"cidr": "10.0.0.0/24"}]), ec2(source_ip="host"), False),
    ("cidr ipv6", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"}, True),
    ("cidr family", {"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "::1"}, False),
    # Exists: leaves only.
    ("exists", on("c-count", [{"exists": True}]), EC2, True),
    ("exists missing", on("e-count", [{"exists": True}]), EC2, False),
    ("not exists", on("e-count", [{"exists": False}]), EC2, True),
    ("not exists present", on("c-count", [{"exists": False}]), EC2, False),
    ("not exists no parent", {"nope": {"x": [{"exists": False}]}}, EC2, True),
    (
        "docs not exists non-leaf",
        on("c-count", [{"exists": False}]),
        ec2(c_count={"c1": 100}),
        True,
    ),
    ("exists non-leaf", on("c-count", [{"exists": True}]), ec2(c_count={"c1": 100}), False),
    ("exists null", on("c-count", [{"exists": True}]), ec2(c_count=None), True),
    ("not exists null", on("c-count", [{"exists": False}]), ec2(c_count=None), False),
    ("exists empty array", {"a": [{"exists": True}]}, {"a": []}, False),
    ("not exists empty array", {"a": [{"exists": False}]}, {"a": []}, True),
    ("exists or value", {"a": [{"exists": False}, "x"]}, {"a": "x"}, True),
    # Wildcards: * is any run of characters; \* and \\ are literal.
    ("wildcard suffix", {"f": [{"wildcard": "*.png"}]}, {"f": "dir/a.png"}, True),
    ("wildcard miss", {"f": [{"wildcard": "*.png"}]}, {"f": "a.png.gz"}, False),
    (
        "wildcard middle",
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "SimpleQueueService"},
        True,
    ),
    (
        "wildcard empty run",
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "SimpleService"},
        True,
    ),
    (
        "docs wildcard arn",
        {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
        {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"},
        True,
    ),
    ("wildcard anchored", {"f": [{"wildcard": "a*"}]}, {"f": "ba"}, False),
    ("wildcard escaped star", {"f": [{"wildcard": "a\\*b"}]}, {"f": "a*b"}, True),
    ("wildcard escaped star literal", {"f": [{"wildcard": "a\\*b"}]}, {"f": "axb"}, False),
    ("wildcard backslash", {"f": [{"wildcard": "a\\\\*"}]}, {"f": "a\\bc"}, True),
    ("wildcard regex chars", {"f": [{"wildcard": "a.c*"}]}, {"f": "abcd"}, False),
    ("wildcard newline", {"f": [{"wildcard": "a*z"}]}, {"f": "a\nz"}, True),
    ("wildcard on number", {"f": [{"wildcard": "*"}]}, {"f": 5}, False),
    # $or, from the Event Ruler README and EventBridge docs.
    (
        "or first branch",
        {
            "source": ["aws.cloudwatch"],
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
        },
        {"source": "aws.cloudwatch", "metricName": "CPUUtilization"},
        True,
    ),
    (
        "or second branch",
        {
            "source": ["aws.cloudwatch"],
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
        },
        {"source": "aws.cloudwatch", "namespace": "AWS/EC2"},
        True,
    ),
    (
        "or neither",
        {
            "source": ["aws.cloudwatch"],
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
        },
        {"source": "aws.cloudwatch", "namespace": "AWS/ES"},
        False,
    ),
    (
        "or and the rest",
        {"source": ["aws.cloudwatch"], "$or": [{"a": ["1"]}, {"b": ["2"]}]},
        {"source": "aws.s3", "a": "1"},
        False,
    ),
    (
        "parallel or",
        {
            "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}],
            "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["Alarm"]}]},
        },
        {"namespace": "AWS/EC2", "detail": {"detail-type": "Alarm"}},
        True,
    ),
    (
        "parallel or half",
        {
            "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}],
            "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["Alarm"]}]},
        },
        {"namespace": "AWS/EC2", "detail": {"detail-type": "OK"}},
        False,
    ),
    (
        "nested or and",
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization"]},
                {
                    "metricType": ["MetricType"],
                    "namespace": ["AWS/EC2"],
                    "$or": [{"metricId": [1234]}, {"spaceId": [1000]}],
                },
            ],
        },
        {
            "source": "aws.cloudwatch",
            "metricType": "MetricType",
            "namespace": "AWS/EC2",
            "spaceId": 1000,
        },
        True,
    ),
    (
        "nested or and misses",
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization"]},
                {"metricType": ["MetricType"], "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]},
            ],
        },
        {"source": "aws.cloudwatch", "metricType": "MetricType", "spaceId": 1},
        False,
    ),
    (
        "or with numeric",
        {
            "detail": {
                "$or": [{"c-count": [{"numeric": [">", 10]}]}, {"d-count": [{"numeric": ["<", 4]}]}]
            }
        },
        EC2,
        True,
    ),
    # Arrays of objects: the sub-pattern must hold within one element.
    (
        "array of objects",
        {"employees": {"firstName": ["Anna"]}},
        {"employees": [{"firstName": "John"}, {"firstName": "Anna"}]},
        True,
    ),
    (
        "array consistency",
        {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}},
        {
            "employees": [
                [
                    {"firstName": "John", "lastName": "Doe"},
                    {"firstName": "Anna", "lastName": "Smith"},
                ],
                [{"firstName": "Peter", "lastName": "Jones"}],
            ]
        },
        False,
    ),
    (
        "array consistency same element",
        {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}},
        {"employees": [[{"firstName": "Anna", "lastName": "Smith"}], []]},
        True,
    ),
    ("empty array of objects", {"a": {"b": [{"exists": False}]}}, {"a": []}, True),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [case[1:] for case in EVENTBRIDGE],
    ids=[case[0] for case in EVENTBRIDGE],
)
def test_eventbridge(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    before = copy.deepcopy(event)
    compiled = compile_pattern(pattern)
    assert compiled.matches(event) is expected
    assert compile_pattern(json.dumps(pattern)).matches(event) is expected
    assert event == before  # matching never mutates the event


def sqs_record(body: str, receive_count: str = "1") -> dict[str, Any]:
    """An SQS record shaped as in Lambda's "Amazon SQS event filtering basics"."""
    return {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": receive_count,
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-west-2:123456789012:my-queue",
        "awsRegion": "us-west-2",
    }


JSON_BODY = json.dumps(
    {
        "RecordNumber": 1234,
        "TimeStamp": "yyyy-mm-ddThh:mm:ss",
        "RequestCode": "AAAA",
        "UserID": None,
        "LastName": "",
        "Name": "Alice",
        "Location": "New York",
        "Day": "Monday",
        "PaymentType": "Credit",
        "Weather": "Sunny",
        "Price": 15,
        "ProductName": "Widget",
        "Region": "us-east-1",
    },
    indent=1,
)

SQS: list[tuple[str, list[Any], str, bool]] = [
    ("docs BBBB", [{"body": {"RequestCode": ["BBBB"]}}], JSON_BODY, False),
    ("docs AAAA", [{"body": {"RequestCode": ["AAAA"]}}], JSON_BODY, True),
    ("docs metadata", [{"attributes": {"ApproximateReceiveCount": ["1"]}}], JSON_BODY, True),
    ("metadata miss", [{"attributes": {"ApproximateReceiveCount": ["2"]}}], JSON_BODY, False),
    (
        "metadata numbers are strings",
        [{"attributes": {"ApproximateReceiveCount": [1]}}],
        JSON_BODY,
        False,
    ),
    # Lambda's comparison-operator table, on body properties.
    ("null", [{"body": {"UserID": [None]}}], JSON_BODY, True),
    ("empty", [{"body": {"LastName": [""]}}], JSON_BODY, True),
    ("equals", [{"body": {"Name": ["Alice"]}}], JSON_BODY, True),
    ("and", [{"body": {"Location": ["New York"], "Day": ["Monday"]}}], JSON_BODY, True),
    ("and miss", [{"body": {"Location": ["New York"], "Day": ["Friday"]}}], JSON_BODY, False),
    ("or", [{"body": {"PaymentType": ["Credit", "Debit"]}}], JSON_BODY, True),
    ("not", [{"body": {"Weather": [{"anything-but": ["Raining"]}]}}], JSON_BODY, True),
    ("numeric equals", [{"body": {"Price": [{"numeric": ["=", 100]}]}}], JSON_BODY, False),
    ("numeric range", [{"body": {"Price": [{"numeric": [">", 10, "<=", 20]}]}}], JSON_BODY, True),
    ("exists", [{"body": {"ProductName": [{"exists": True}]}}], JSON_BODY, True),
    ("does not exist", [{"body": {"ProductName": [{"exists": False}]}}], JSON_BODY, False),
    ("begins with", [{"body": {"Region": [{"prefix": "us-"}]}}], JSON_BODY, True),
    # FilterCriteria ORs its filters.
    (
        "any filter",
        [{"body": {"RequestCode": ["BBBB"]}}, {"body": {"RequestCode": ["AAAA"]}}],
        JSON_BODY,
        True,
    ),
    (
        "no filter matches",
        [{"body": {"RequestCode": ["B"]}}, {"body": {"Name": ["Bob"]}}],
        JSON_BODY,
        False,
    ),
    ("no filters", [], JSON_BODY, True),
    # "Properly filtering Amazon SQS messages": body format against pattern format.
    ("plain body, plain pattern", [{"body": [{"prefix": "hello"}]}], "hello world", True),
    ("plain body, plain pattern miss", [{"body": ["hello"]}], "hello world", False),
    (
        "plain body, no body pattern",
        [{"attributes": {"ApproximateReceiveCount": ["1"]}}],
        "hi",
        True,
    ),
    ("plain body, JSON pattern", [{"body": {"a": [{"exists": False}]}}], "hello world", False),
    ("JSON body, plain pattern", [{"body": [{"prefix": "{"}]}], JSON_BODY, False),
    ("JSON body, plain exists", [{"body": [{"exists": True}]}], JSON_BODY, False),
    (
        "JSON body, no body pattern",
        [{"attributes": {"SenderId": [{"exists": True}]}}],
        JSON_BODY,
        True,
    ),
    ("JSON body, JSON pattern", [{"body": {"RecordNumber": [1234]}}], JSON_BODY, True),
    ("JSON scalar body is text", [{"body": ["123"]}], "123", True),
    ("JSON array body", [{"body": {"a": ["x"]}}], '[{"a": "y"}, {"a": "x"}]', True),
    (
        "mismatch drops only that filter",
        [{"body": ["hello"]}, {"body": {"RequestCode": ["AAAA"]}}],
        JSON_BODY,
        True,
    ),
]


@pytest.mark.parametrize(
    ("patterns", "body", "expected"), [c[1:] for c in SQS], ids=[c[0] for c in SQS]
)
def test_lambda_sqs(patterns: list[Any], body: str, expected: bool) -> None:
    # FilterCriteria carries each Pattern as JSON text.
    criteria = {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]}
    filters = [compile_pattern(f["Pattern"]) for f in criteria["Filters"]]
    record = sqs_record(body)
    assert lambda_filter_matches(filters, record, body_field="body") is expected
    assert record["body"] == body


def kinesis(data: bytes | str, partition_key: str = "1") -> dict[str, Any]:
    raw = data.encode() if isinstance(data, str) else data
    return {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": partition_key,
        "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "data": base64.b64encode(raw).decode(),
        "approximateArrivalTimestamp": 1545084650.987,
    }


WEATHER = json.dumps({"City": "Seattle", "Location": "Los Angeles", "Temperature": 55})

KINESIS: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    (
        "docs partition key and data",
        {"partitionKey": ["1"], "data": {"Location": ["Los Angeles"]}},
        kinesis(WEATHER),
        True,
    ),
    (
        "docs partition key miss",
        {"partitionKey": ["1"], "data": {"Location": ["Los Angeles"]}},
        kinesis(WEATHER, "2"),
        False,
    ),
    (
        "docs temperature",
        {"data": {"Temperature": [{"numeric": [">", 50, "<=", 60]}]}},
        kinesis(WEATHER),
        True,
    ),
    (
        "temperature out of range",
        {"data": {"Temperature": [{"numeric": [">", 55, "<=", 60]}]}},
        kinesis(WEATHER),
        False,
    ),
    ("non-JSON data, JSON pattern", {"data": {"a": [{"exists": False}]}}, kinesis("plain"), False),
    ("non-JSON data, metadata only", {"partitionKey": ["1"]}, kinesis("plain"), True),
    ("binary data", {"data": {"a": [{"exists": False}]}}, kinesis(b"\xff\xfe"), False),
]


@pytest.mark.parametrize(
    ("pattern", "record", "expected"), [c[1:] for c in KINESIS], ids=[c[0] for c in KINESIS]
)
def test_lambda_kinesis(pattern: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    assert lambda_filter_matches([compile_pattern(pattern)], record, body_field="data") is expected


def test_lambda_dynamodb_multi_level() -> None:
    record = {
        "eventName": "INSERT",
        "dynamodb": {
            "Keys": {"Id": {"N": "101"}},
            "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
            "SequenceNumber": "111",
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    docs = compile_pattern('{ "dynamodb": { "Keys": { "Id": { "N": [ "101" ] } } } }')
    other = compile_pattern({"dynamodb": {"Keys": {"Id": {"N": ["102"]}}}})
    for body_field in (None, "dynamodb"):
        assert lambda_filter_matches([docs], record, body_field=body_field)
        assert not lambda_filter_matches([other], record, body_field=body_field)
    plain = compile_pattern({"dynamodb": [{"exists": True}]})
    assert not lambda_filter_matches([plain], record, body_field="dynamodb")


def test_lambda_body_options() -> None:
    record = sqs_record(JSON_BODY)
    body_pattern = compile_pattern({"body": {"RequestCode": ["AAAA"]}})
    # Without body decoding the body stays a string, which an object pattern cannot match.
    assert not lambda_filter_matches([body_pattern], record, body_field=None)
    assert lambda_filter_matches([body_pattern], record, body_field="body")
    # MQ's base64 "data" decodes by default; other fields decode only when asked.
    encoded = {"payload": base64.b64encode(JSON_BODY.encode()).decode()}
    payload = compile_pattern({"payload": {"RequestCode": ["AAAA"]}})
    assert not lambda_filter_matches([payload], encoded, body_field="payload")
    assert lambda_filter_matches([payload], encoded, body_field="payload", body_base64=True)
    assert lambda_filter_matches([body_pattern], {"messageId": "x"}, body_field="body") is False


def attr(kind: str, value: Any) -> dict[str, Any]:
    return {"Type": kind, "Value": value}


STORE = {
    "store": attr("String", "example_corp"),
    "customer_interests": attr("String.Array", '["soccer", "rugby", "hockey"]'),
    "price_usd": attr("Number", "210.75"),
    "event": attr("String", "order_placed"),
    "source_ip": attr("String", "10.0.0.255"),
}

SNS_ATTRIBUTES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    (
        "exact",
        {"customer_interests": ["rugby", "tennis"]},
        {"customer_interests": attr("String", "rugby")},
        True,
    ),
    (
        "exact array",
        {"customer_interests": ["rugby", "tennis"]},
        {"customer_interests": attr("String.Array", '["rugby", "tennis"]')},
        True,
    ),
    (
        "exact miss",
        {"customer_interests": ["rugby", "tennis"]},
        {"customer_interests": attr("String", "baseball")},
        False,
    ),
    (
        "exact array miss",
        {"customer_interests": ["rugby", "tennis"]},
        {"customer_interests": attr("String.Array", '["baseball"]')},
        False,
    ),
    ("case sensitive", {"store": ["Example_Corp"]}, STORE, False),
    (
        "prefix",
        {"customer_interests": [{"prefix": "bas"}]},
        {"customer_interests": attr("String", "basketball")},
        True,
    ),
    (
        "prefix miss",
        {"customer_interests": [{"prefix": "bas"}]},
        {"customer_interests": attr("String", "rugby")},
        False,
    ),
    (
        "anything-but",
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": attr("String", "football")},
        True,
    ),
    (
        "anything-but array",
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": attr("String.Array", '["rugby", "baseball"]')},
        True,
    ),
    (
        "anything-but hit",
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": attr("String", "rugby")},
        False,
    ),
    ("anything-but prefix", {"event": [{"anything-but": {"prefix": "order-"}}]}, STORE, True),
    (
        "anything-but prefix hit",
        {"event": [{"anything-but": {"prefix": "order-"}}]},
        {"event": attr("String", "order-cancelled")},
        False,
    ),
    ("cidr", {"source_ip": [{"cidr": "10.0.0.0/24"}]}, STORE, True),
    (
        "cidr miss",
        {"source_ip": [{"cidr": "10.0.0.0/24"}]},
        {"source_ip": attr("String", "10.1.1.0")},
        False,
    ),
    (
        "numeric =",
        {"price_usd": [{"numeric": ["=", 301.5]}]},
        {"price_usd": attr("Number", "301.5")},
        True,
    ),
    (
        "numeric = exponent",
        {"price_usd": [{"numeric": ["=", 301.5]}]},
        {"price_usd": attr("Number", "3.015e2")},
        True,
    ),
    (
        "numeric = json number",
        {"price_usd": [{"numeric": ["=", 301.5]}]},
        {"price_usd": attr("Number", 301.5)},
        True,
    ),
    (
        "numeric on String",
        {"price_usd": [{"numeric": ["=", 301.5]}]},
        {"price_usd": attr("String", "301.5")},
        False,
    ),
    (
        "anything-but numbers",
        {"price": [{"anything-but": [100, 500]}]},
        {"price": attr("Number", "101")},
        True,
    ),
    (
        "anything-but 100.1",
        {"price": [{"anything-but": [100, 500]}]},
        {"price": attr("Number", "100.1")},
        True,
    ),
    (
        "anything-but Number.Array",
        {"price": [{"anything-but": [100, 500]}]},
        {"price": attr("Number.Array", "[100, 50]")},
        True,
    ),
    (
        "anything-but 100",
        {"price": [{"anything-but": [100, 500]}]},
        {"price": attr("Number", "100")},
        False,
    ),
    ("range", {"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, STORE, False),
    ("range in", {"price_usd": [{"numeric": [">", 0, "<=", 300]}]}, STORE, True),
    ("negative", {"price_usd": [{"numeric": ["<", 0]}]}, {"price_usd": attr("Number", "-1")}, True),
    ("exists", {"store": [{"exists": True}]}, STORE, True),
    (
        "exists missing",
        {"store": [{"exists": True}]},
        {"customer_interests": STORE["customer_interests"]},
        False,
    ),
    (
        "not exists",
        {"store": [{"exists": False}]},
        {"customer_interests": STORE["customer_interests"]},
        True,
    ),
    ("not exists present", {"store": [{"exists": False}]}, STORE, False),
    ("and", {"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 100]}]}, STORE, True),
    (
        "and miss",
        {"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 300]}]},
        STORE,
        False,
    ),
    ("or values", {"customer_interests": ["rugby", "football", "baseball"]}, STORE, True),
    ("$or keys", {"$or": [{"store": ["nope"]}, {"event": ["order_placed"]}]}, STORE, True),
    (
        "binary ignored",
        {"blob": [{"exists": True}]},
        {"blob": {"Type": "Binary", "Value": "AAE="}},
        False,
    ),
    (
        "binary absent",
        {"blob": [{"exists": False}]},
        {"blob": {"Type": "Binary", "Value": "AAE="}},
        True,
    ),
    (
        "API shape",
        {"store": ["example_corp"], "n": [{"numeric": [">", 1]}]},
        {
            "store": {"DataType": "String", "StringValue": "example_corp"},
            "n": {"DataType": "Number", "StringValue": "2"},
        },
        True,
    ),
    (
        "custom number type",
        {"n": [{"numeric": [">", 1]}]},
        {"n": attr("Number.float", "1.5")},
        True,
    ),
]


@pytest.mark.parametrize(
    ("policy", "attributes", "expected"),
    [c[1:] for c in SNS_ATTRIBUTES],
    ids=[c[0] for c in SNS_ATTRIBUTES],
)
def test_sns_attributes(policy: dict[str, Any], attributes: dict[str, Any], expected: bool) -> None:
    assert sns_filter_matches(policy, attributes, "body text") is expected
    assert sns_filter_matches(json.dumps(policy), attributes, None) is expected


SNS_BODY: list[tuple[str, dict[str, Any], str | None, bool]] = [
    ("exact", {"customer_interests": ["rugby", "tennis"]}, '{"customer_interests": "rugby"}', True),
    (
        "exact miss",
        {"customer_interests": ["rugby", "tennis"]},
        '{"customer_interests": "baseball"}',
        False,
    ),
    (
        "numeric exponent",
        {"price_usd": [{"numeric": ["=", 301.5]}]},
        '{"price_usd": 3.015e2}',
        True,
    ),
    ("anything-but array", {"price": [{"anything-but": [100, 500]}]}, '{"price": [100, 50]}', True),
    ("anything-but", {"price": [{"anything-but": [100, 500]}]}, '{"price": 100}', False),
    (
        "exists",
        {"store": [{"exists": True}]},
        '{"store": "fans", "customer_interests": ["a"]}',
        True,
    ),
    ("not exists", {"store": [{"exists": False}]}, '{"customer_interests": ["a"]}', True),
    (
        "nested",
        {"store": {"name": [{"prefix": "ex"}]}},
        '{"store": {"name": "example_corp"}}',
        True,
    ),
    ("nested miss", {"store": {"name": [{"prefix": "ex"}]}}, '{"store": "example_corp"}', False),
    ("not JSON", {"store": [{"exists": False}]}, "plain text", False),
    ("JSON array", {"store": [{"exists": False}]}, "[1, 2]", False),
    ("no body", {"store": [{"exists": False}]}, None, False),
]


@pytest.mark.parametrize(
    ("policy", "body", "expected"), [c[1:] for c in SNS_BODY], ids=[c[0] for c in SNS_BODY]
)
def test_sns_body(policy: dict[str, Any], body: str | None, expected: bool) -> None:
    assert sns_filter_matches(policy, STORE, body, scope="MessageBody") is expected


def test_sns_policy_edges() -> None:
    assert sns_filter_matches({}, None, None)  # no policy: every message
    assert sns_filter_matches("", STORE, None)
    assert sns_filter_matches({"store": [{"exists": False}]}, None, None)
    assert not sns_filter_matches({"store": ["x"]}, None, None)
    with pytest.raises(PatternError, match=r"^<root>: nested filter policies need"):
        sns_filter_matches({"store": {"name": ["x"]}}, STORE, None)
    with pytest.raises(PatternError, match=r"nested filter policies"):
        sns_filter_matches({"$or": [{"a": ["x"]}, {"b": {"c": ["y"]}}]}, STORE, None)
    with pytest.raises(PatternError, match=r"unknown FilterPolicyScope 'Body'"):
        sns_filter_matches({"store": ["x"]}, STORE, None, scope="Body")
    with pytest.raises(PatternError, match=r"^store: must be an object or an array"):
        sns_filter_matches({"store": "example_corp"}, STORE, None)


BAD: list[tuple[Any, str]] = [
    ("not json", "<root>: not valid JSON"),
    ("[1, 2]", "<root>: a pattern must be a JSON object, got an array"),
    ("{}", "<root>: empty objects are not allowed"),
    ({"source": "aws.ec2"}, "source: must be an object or an array, got a string"),
    ({"source": None}, "source: must be an object or an array, got null"),
    ({"a": []}, "a: empty arrays are not allowed"),
    ({"detail": {}}, "detail: empty objects are not allowed"),
    ({1: ["x"]}, "<root>: field names must be strings"),
    ({"a": [["x"]]}, "a[0]: values must be strings, numbers, true, false, null or {}"),
    (
        {"detail": {"state": ["x", {"bogus": 1}]}},
        "detail.state[1]: unrecognized match type 'bogus'",
    ),
    ({"a": [{}]}, "a[0]: a match expression must have exactly one key, got 0"),
    (
        {"a": [{"prefix": "x", "suffix": "y"}]},
        "a[0]: a match expression must have exactly one key, got 2",
    ),
    ({"a": [{"prefix": 1}]}, "a[0].prefix: prefix takes a string, got a number"),
    ({"a": [{"suffix": ["x"]}]}, "a[0].suffix: suffix takes a string, got an array"),
    (
        {"a": [{"prefix": {"wildcard": "x"}}]},
        "a[0].prefix.wildcard: prefix supports only equals-ignore-case",
    ),
    (
        {"a": [{"suffix": {"equals-ignore-case": 5}}]},
        "a[0].suffix.equals-ignore-case: equals-ignore-case takes a string",
    ),
    (
        {"a": [{"equals-ignore-case": True}]},
        "a[0].equals-ignore-case: equals-ignore-case takes a string, got a boolean",
    ),
    ({"a": [{"exists": "yes"}]}, "a[0].exists: exists takes true or false, got a string"),
    ({"a": [{"numeric": 5}]}, "a[0].numeric: numeric takes one or two operator/number pairs"),
    ({"a": [{"numeric": []}]}, "a[0].numeric: numeric takes one or two operator/number pairs"),
    (
        {"a": [{"numeric": [">", 1, "<"]}]},
        "a[0].numeric: numeric takes one or two operator/number pairs",
    ),
    ({"a": [{"numeric": ["~", 5]}]}, "a[0].numeric[0]: unrecognized numeric operator '~'"),
    ({"a": [{"numeric": [5, ">"]}]}, "a[0].numeric[0]: unrecognized numeric operator 5"),
    (
        {"a": [{"numeric": [">", "5"]}]},
        "a[0].numeric[1]: value of > must be a number, got a string",
    ),
    (
        {"a": [{"numeric": ["=", True]}]},
        "a[0].numeric[1]: value of = must be a number, got a boolean",
    ),
    ({"a": [{"numeric": ["<", 5, ">", 1]}]}, "a[0].numeric: a range is a lower bound"),
    ({"a": [{"numeric": ["=", 5, "<", 6]}]}, "a[0].numeric: a range is a lower bound"),
    ({"a": [{"numeric": [">", 5, "<", 1]}]}, "a[0].numeric: bottom 5 must be less than top 1"),
    ({"a": [{"numeric": [">=", 5, "<=", 5]}]}, "a[0].numeric: bottom 5 must be less than top 5"),
    (
        {"a": [{"anything-but": [1, "x"]}]},
        "a[0].anything-but: anything-but takes a string, a number",
    ),
    ({"a": [{"anything-but": []}]}, "a[0].anything-but: anything-but takes a string, a number"),
    ({"a": [{"anything-but": True}]}, "a[0].anything-but: anything-but takes a string, a number"),
    ({"a": [{"anything-but": [None]}]}, "a[0].anything-but: anything-but takes a string, a number"),
    (
        {"a": [{"anything-but": {"numeric": [">", 1]}}]},
        "a[0].anything-but.numeric: anything-but supports prefix",
    ),
    (
        {"a": [{"anything-but": {"prefix": ""}}]},
        "a[0].anything-but.prefix: anything-but prefix must not be empty",
    ),
    (
        {"a": [{"anything-but": {"suffix": 5}}]},
        "a[0].anything-but.suffix: anything-but suffix takes a string",
    ),
    (
        {"a": [{"anything-but": {"prefix": []}}]},
        "a[0].anything-but.prefix: anything-but prefix takes a string",
    ),
    (
        {"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]},
        "a[0].anything-but: anything-but must have exactly one key",
    ),
    (
        {"a": [{"anything-but": {"wildcard": "a**"}}]},
        "a[0].anything-but.wildcard: wildcard: consecutive * at position 1",
    ),
    ({"a": [{"cidr": "10.0.0.1"}]}, "a[0].cidr: malformed CIDR '10.0.0.1': one '/' required"),
    ({"a": [{"cidr": "10.0.0.1/24"}]}, "a[0].cidr: malformed CIDR '10.0.0.1/24'"),
    ({"a": [{"cidr": "300.0.0.0/8"}]}, "a[0].cidr: malformed CIDR '300.0.0.0/8'"),
    ({"a": [{"cidr": 10}]}, "a[0].cidr: cidr takes a string, got a number"),
    ({"a": [{"wildcard": "a**b"}]}, "a[0].wildcard: wildcard: consecutive * at position 1"),
    (
        {"a": [{"wildcard": "a\\b"}]},
        "a[0].wildcard: wildcard: backslash escapes only * and \\ (position 1)",
    ),
    ({"a": [{"wildcard": "a\\"}]}, "a[0].wildcard: wildcard: backslash escapes only"),
    ({"a": [{"wildcard": 1}]}, "a[0].wildcard: wildcard takes a string, got a number"),
    ({"$or": [{"a": ["x"]}]}, "$or: $or must be an array of at least 2 objects"),
    ({"$or": {"a": ["x"]}}, "$or: $or must be an array of at least 2 objects"),
    ({"$or": [{"a": ["x"]}, "b"]}, "$or[1]: $or array elements must be objects, got a string"),
    ({"$or": [{"a": ["x"]}, {}]}, "$or[1]: empty objects are not allowed"),
    ({"$or": [{"a": ["x"]}, {"b": [{"x": 1}]}]}, "$or[1].b[0]: unrecognized match type 'x'"),
    ({"$or": [{"prefix": ["x"]}, {"b": ["y"]}]}, "$or[0].prefix: 'prefix' is an operator"),
    (
        {"d": {"$or": [{"a": ["x"]}, {"b": {"numeric": ["y"]}}]}},
        "d.$or[1].b.numeric: 'numeric' is an operator",
    ),
    ({"a\nb": 1}, '"a\\nb": must be an object or an array'),
    ({"a": ["x" * 5000]}, "<root>: pattern is 5010 characters, over the 4096 limit"),
    (
        json.dumps({"a": ["x"]}) + " " * 4096,
        "<root>: pattern is 4108 characters, over the 4096 limit",
    ),
]


@pytest.mark.parametrize(("pattern", "message"), BAD, ids=[str(c[1])[:60] for c in BAD])
def test_bad_patterns(pattern: Any, message: str) -> None:
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern)
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text
    assert isinstance(caught.value, ValueError)


def test_nesting_limit() -> None:
    pattern: dict[str, Any] = {"leaf": ["x"]}
    for _ in range(40):
        pattern = {"k": pattern}
    with pytest.raises(PatternError, match=r"^k\.k\.k.*: nested deeper than 32 levels$"):
        compile_pattern(pattern)
    with pytest.raises(PatternError, match=r"^a\.a\..*: nested deeper than 32 levels$"):
        compile_pattern('{"a":' * 600 + '["x"]' + "}" * 600, max_length=10_000)


def test_compiled_pattern_is_reusable() -> None:
    pattern = compile_pattern({"detail": {"state": [{"anything-but": "stopped"}], "c-count": [5]}})
    assert isinstance(pattern, Pattern)
    events = [ec2(state=s) for s in ("running", "stopped", "pending")] * 100
    assert [pattern.matches(e) for e in events[:3]] == [True, False, True]
    assert sum(pattern.matches(e) for e in events) == 200
    assert pattern.field_shapes("detail") == {"object"}
    assert pattern.field_shapes("source") == frozenset()
    either = compile_pattern({"$or": [{"body": ["x"]}, {"body": {"a": ["y"]}}]})
    assert either.field_shapes("body") == {"leaf", "object"}


@pytest.mark.timeout(60)
def test_wildcard_matching_of_hostile_values_finishes() -> None:
    """A client picks the value (a PutEvents detail, an SQS body): a backtracking regex
    took seconds for 4 KB and hours for 40 KB of these; a linear matcher takes
    milliseconds for 200 KB (a regression hangs until the timeout)."""
    pattern = compile_pattern({"key": [{"wildcard": "uploads/*/*/*.png"}]})
    slow = compile_pattern({"key": [{"wildcard": "*a*a*a*b"}]})
    assert not pattern.matches({"key": "uploads/" + "/" * 200_000})
    assert pattern.matches({"key": "uploads/" + "/" * 200_000 + ".png"})
    assert not slow.matches({"key": "a" * 200_000})
    assert slow.matches({"key": "a" * 200_000 + "b"})


@pytest.mark.parametrize(
    ("glob", "value", "matched"),
    [
        ("a*b*c", "abc", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "abcbc", True),
        ("a*b*c", "ab", False),
        ("a*a", "a", False),
        ("*", "", True),
        ("a*", "a", True),
        ("*a", "ba", True),
        ("*a*", "bab", True),
        ("ab*ba", "aba", False),
        ("x\\*y", "x*y", True),
        ("x\\*y", "xzy", False),
        ("", "", True),
        ("", "a", False),
    ],
)
def test_wildcard_globs(glob: str, value: str, matched: bool) -> None:
    assert compile_pattern({"k": [{"wildcard": glob}]}).matches({"k": value}) is matched
    anything_but = compile_pattern({"k": [{"anything-but": {"wildcard": glob}}]})
    assert anything_but.matches({"k": value}) is not matched
