"""The provisioning plan's records, and the small pure builders that fill them.

A plan (:mod:`adapters.provision_plan`) is a list of these per kind of
resource; the ``ensure_*`` functions (:mod:`adapters.provision_messaging`,
:mod:`adapters.provision_storage`) bring AWS to each. Values are already in
the shape the AWS APIs take, so applying a plan is a plain call.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .carriers import name_from_arn
from .template.loaded import Resource

QUEUE, TOPIC, SUBSCRIPTION = "AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::SNS::Subscription"
BUCKET, TABLE, SIMPLE_TABLE = (
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::Serverless::SimpleTable",
)
SID_PREFIX = "lambdabus"
"""Policy statements whose Sid starts with this are lambdabus's; others are left alone."""
RAW_PROTOCOLS = frozenset({"sqs", "http", "https", "firehose"})
"""Protocols with a RawMessageDelivery attribute."""
DELIVERED_PROTOCOLS = frozenset({"sqs", "http", "https"})
_SID_SAFE = re.compile(r"[A-Za-z0-9_-]+")

QUEUE_KEYS = (
    "FifoQueue ContentBasedDeduplication DeduplicationScope FifoThroughputLimit "
    "VisibilityTimeout MessageRetentionPeriod DelaySeconds MaximumMessageSize "
    "ReceiveMessageWaitTimeSeconds RedrivePolicy RedriveAllowPolicy"
).split()
TOPIC_KEYS = (
    "DisplayName FifoTopic ContentBasedDeduplication FifoThroughputScope SignatureVersion "
    "ArchivePolicy"
).split()


@dataclass
class QueuePlan:
    label: str
    name: str
    arn: str
    attributes: dict[str, str]
    """What the template sets, as SQS wants it (strings; JSON for policies)."""
    grants: list[dict[str, Any]] = field(default_factory=list)
    """Policy statements letting S3 or SNS deliver here, merged into the queue's Policy."""


@dataclass
class TopicPlan:
    label: str
    name: str
    arn: str
    attributes: dict[str, str]
    grants: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SubscriptionPlan:
    """One subscription lambdabus owns: its attributes are the template's, or the defaults."""

    label: str
    topic_arn: str
    protocol: str
    endpoint: str
    filter_policy: dict[str, Any] | None = None
    filter_scope: str | None = None
    raw: bool | None = None
    """None for protocols without RawMessageDelivery."""
    redrive: dict[str, Any] | None = None


@dataclass
class BucketPlan:
    label: str
    name: str
    versioning: str | None
    notifications: dict[str, list[dict[str, Any]]]
    """The bucket's whole notification document, in the API's shape; may be empty."""


@dataclass
class TablePlan:
    label: str
    name: str
    create: dict[str, Any]
    """CreateTable's parameters; also what an existing table is compared with."""
    ttl: dict[str, Any] | None


@dataclass(frozen=True)
class Check:
    label: str
    kind: Literal["queue", "topic", "stream"]
    arn: str


@dataclass
class Plan:
    queues: list[QueuePlan] = field(default_factory=list)
    topics: list[TopicPlan] = field(default_factory=list)
    subscriptions: list[SubscriptionPlan] = field(default_factory=list)
    buckets: list[BucketPlan] = field(default_factory=list)
    tables: list[TablePlan] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(label, why) for what the template asks and lambdabus does not realise."""


def attribute(value: Any) -> str:
    """A template value as the string SQS and SNS attributes take (JSON for mappings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def label_of(resource: Resource) -> str:
    return f"{resource.type} {resource.logical_id} ({resource.name})"


def grant(service: Literal["s3", "sns"], resource_arn: str, source_arn: str) -> dict[str, Any]:
    """A policy statement letting ``service`` deliver to ``resource_arn`` from ``source_arn``
    only (the confused-deputy guard AWS's own examples use)."""
    action = "sqs:SendMessage" if ":sqs:" in resource_arn else "sns:Publish"
    name = name_from_arn(source_arn)
    if not _SID_SAFE.fullmatch(name):
        # Sids take letters, digits, hyphens and underscores; keep distinct sources distinct.
        digest = hashlib.sha256(source_arn.encode()).hexdigest()[:8]
        name = f"{re.sub(r'[^A-Za-z0-9_-]', '-', name)}-{digest}"
    sid = f"{SID_PREFIX}-{service}-{name}"
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": f"{service}.amazonaws.com"},
        "Action": action,
        "Resource": resource_arn,
        "Condition": {"ArnLike" if service == "s3" else "ArnEquals": {"aws:SourceArn": source_arn}},
    }


def s3_filter(filter_: dict[str, Any] | None) -> dict[str, Any]:
    """CloudFormation's ``Filter: {S3Key: {Rules}}`` as the API's ``Filter: {Key: {FilterRules}}``
    (rule names lowercased: S3 documents ``prefix``/``suffix``, and moto matches only those)."""
    rules = ((filter_ or {}).get("S3Key") or {}).get("Rules") or []
    if not rules:
        return {}
    converted = [{"Name": r["Name"].lower(), "Value": r["Value"]} for r in rules]
    return {"Filter": {"Key": {"FilterRules": converted}}}


def subscription_plan(
    label: str, topic: str, protocol: str, endpoint: str, props: dict[str, Any]
) -> SubscriptionPlan:
    policy = props.get("FilterPolicy") or None
    return SubscriptionPlan(
        label,
        topic,
        protocol,
        endpoint,
        filter_policy=policy,
        filter_scope=props.get("FilterPolicyScope") or ("MessageAttributes" if policy else None),
        raw=bool(props.get("RawMessageDelivery", False)) if protocol in RAW_PROTOCOLS else None,
        redrive=props.get("RedrivePolicy") or None,
    )


def table_plan(r: Resource) -> TablePlan:
    props = r.properties
    if r.type == SIMPLE_TABLE:
        key = props["PrimaryKey"]
        kind = {"String": "S", "Number": "N", "Binary": "B"}[key["Type"]]
        props = {
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": kind}],
            "BillingMode": "PROVISIONED" if "ProvisionedThroughput" in props else "PAY_PER_REQUEST",
            **(
                {"ProvisionedThroughput": props["ProvisionedThroughput"]}
                if "ProvisionedThroughput" in props
                else {}
            ),
        }
    billing = props.get("BillingMode", "PROVISIONED")
    create: dict[str, Any] = {
        "TableName": r.name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        create["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    if "StreamSpecification" in props:
        view = props["StreamSpecification"]["StreamViewType"]
        create["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(kind):
            create[kind] = [
                {
                    k: v
                    for k, v in index.items()
                    if k != "ProvisionedThroughput" or billing == "PROVISIONED"
                }
                for index in props[kind]
            ]
    return TablePlan(label_of(r), r.name, create, props.get("TimeToLiveSpecification"))
