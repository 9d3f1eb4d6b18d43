"""The provisioning plan: what AWS must hold for a loaded template, computed without I/O.

Planning first and calling AWS second keeps the rules testable and lets
template-level problems (a DynamoDB event on a table without a stream) fail
before anything is created. The plan holds:

- the template's queues (dead-letter queues ordered before the queues that
  name them, as SQS checks the target exists) and one carrier queue per S3 or
  SNS event source (:mod:`adapters.carriers`);
- *grants*: queue- and topic-policy statements letting S3 and SNS deliver to
  them. Templates carry ``AWS::SQS::QueuePolicy``/``AWS::SNS::TopicPolicy`` for
  this, which the loader ignores (they only matter on AWS), so lambdabus writes
  the statements its wiring needs itself, marked by a ``lambdabus`` Sid;
- topics, subscriptions, buckets with their whole notification document (S3
  keeps one per bucket: the template's own configurations plus one per S3
  event source), tables;
- *checks*: queues, topics and streams the template uses but does not declare,
  which must already exist.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

from .carriers import (
    carrier_queue_for,
    carrier_queue_name,
    name_from_arn,
    notification_id,
)
from .provision_model import (
    BUCKET,
    DELIVERED_PROTOCOLS,
    QUEUE,
    QUEUE_KEYS,
    SIMPLE_TABLE,
    SUBSCRIPTION,
    TABLE,
    TOPIC,
    TOPIC_KEYS,
    BucketPlan,
    Check,
    Plan,
    QueuePlan,
    SubscriptionPlan,
    TopicPlan,
    attribute,
    grant,
    label_of,
    s3_filter,
    subscription_plan,
    table_plan,
)
from .provision_report import ProvisionError
from .template.loaded import EventSource, LoadedTemplate, Resource
from .template.models import ACCOUNT_ID
from .template.subscriptions import function_of


def make_plan(loaded: LoadedTemplate) -> Plan:
    """The plan for ``loaded``; :class:`ProvisionError` for what can't work at all."""
    planner = _Planner(loaded)
    planner.template_resources()
    for source in loaded.events:
        planner.event(source)
    for dest in loaded.destinations:
        where = f"{dest.function} {dest.source}"
        planner.require("queue" if dest.type == "SQS" else "topic", dest.arn, where)
    return planner.finish()


class _Planner:
    def __init__(self, loaded: LoadedTemplate) -> None:
        self.loaded = loaded
        self.stack = loaded.stack.name
        self.plan = Plan()
        self.buckets = {r.name: r for r in loaded.resources.values() if r.type == BUCKET}
        self.tables = {
            r.name: r for r in loaded.resources.values() if r.type in (TABLE, SIMPLE_TABLE)
        }
        self.queues: dict[str, QueuePlan] = {}
        self.topics: dict[str, TopicPlan] = {}
        self.notifications: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def finish(self) -> Plan:
        self.plan.subscriptions = _one_per_endpoint(self.plan.subscriptions)
        self.plan.queues = _dead_letter_queues_first(list(self.queues.values()))
        self.plan.topics = list(self.topics.values())
        for plan in self.plan.buckets:
            plan.notifications = {k: v for k, v in self.notifications[plan.name].items() if v}
        return self.plan

    def template_resources(self) -> None:
        """Queues and topics first, so wiring that targets them finds them in any order."""
        for r in self.loaded.resources.values():
            props = r.properties
            if r.type == QUEUE:
                attrs = {k: attribute(props[k]) for k in QUEUE_KEYS if k in props}
                if attrs.get("FifoQueue") == "false":
                    del attrs["FifoQueue"]
                self.queues[str(r.arn)] = QueuePlan(label_of(r), r.name, str(r.arn), attrs)
            elif r.type == TOPIC:
                attrs = {k: attribute(props[k]) for k in TOPIC_KEYS if k in props}
                if attrs.get("FifoTopic") == "false":
                    del attrs["FifoTopic"]
                self.topics[str(r.arn)] = TopicPlan(label_of(r), r.name, str(r.arn), attrs)
        for r in self.loaded.resources.values():
            if r.type == BUCKET:
                self._bucket(r)
            elif r.type in (TABLE, SIMPLE_TABLE):
                self.plan.tables.append(table_plan(r))
            elif r.type == TOPIC:
                for i, sub in enumerate(r.properties.get("Subscription", [])):
                    where = f"{SUBSCRIPTION} {r.logical_id}.Subscription[{i}]"
                    self._subscription(where, str(r.arn), sub)
            elif r.type == SUBSCRIPTION:
                where = f"{SUBSCRIPTION} {r.logical_id}"
                self._subscription(where, r.properties["TopicArn"], r.properties)

    def _bucket(self, r: Resource) -> None:
        config = r.properties.get("NotificationConfiguration") or {}
        versioning = (r.properties.get("VersioningConfiguration") or {}).get("Status")
        doc: dict[str, list[dict[str, Any]]] = {
            "QueueConfigurations": [],
            "TopicConfigurations": [],
        }
        for kind, target, key in (("Queue", "QueueArn", QUEUE), ("Topic", "TopicArn", TOPIC)):
            for i, c in enumerate(config.get(f"{kind}Configurations", [])):
                doc[f"{kind}Configurations"].append(
                    {
                        "Id": f"{r.logical_id}-{kind}{i}",
                        target: c[kind],
                        "Events": [c["Event"]],
                        **s3_filter(c.get("Filter")),
                    }
                )
                self._grant(key, c[kind], "s3", str(r.arn), f"{r.logical_id} notifications")
        label = label_of(r)
        if config.get("LambdaConfigurations"):
            why = "lambdabus delivers S3 events to functions through their S3 events"
            self.plan.skipped.append((f"{label} LambdaConfigurations", why))
        if (config.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled"):
            why = "lambdabus does not deliver S3 events through EventBridge"
            self.plan.skipped.append((f"{label} EventBridgeConfiguration", why))
        self.notifications[r.name] = doc
        self.plan.buckets.append(BucketPlan(label, r.name, versioning, {}))

    def _grant(
        self, kind: str, arn: str, service: Literal["s3", "sns"], source: str, where: str
    ) -> None:
        """Let ``service`` deliver from ``source`` to a queue or topic of the template; one
        outside it must exist, and its policy is its owner's business."""
        plans: dict[str, Any] = self.queues if kind == QUEUE else self.topics
        target = plans.get(arn)
        if target is None:
            self.require("queue" if kind == QUEUE else "topic", arn, where)
            return
        statement = grant(service, arn, source)
        if statement not in target.grants:
            target.grants.append(statement)

    def _subscription(self, where: str, topic: str, props: dict[str, Any]) -> None:
        protocol = str(props["Protocol"]).lower()
        endpoint = str(props.get("Endpoint", ""))
        shown = name_from_arn(endpoint) if endpoint.startswith("arn:") else endpoint
        label = f"{where} ({protocol} {shown})"
        if protocol == "lambda":
            self._lambda_subscription(label, endpoint)
            return
        if protocol not in DELIVERED_PROTOCOLS or not endpoint:
            why = (
                f"lambdabus does not deliver {protocol} subscriptions"
                if endpoint
                else "no Endpoint"
            )
            self.plan.skipped.append((label, why))
            return
        if topic not in self.topics:
            self.require("topic", topic, where)
        if protocol == "sqs":
            self._grant(QUEUE, endpoint, "sns", topic, where)
        self.plan.subscriptions.append(subscription_plan(label, topic, protocol, endpoint, props))

    def _lambda_subscription(self, label: str, endpoint: str) -> None:
        """A subscription of a stack function is that function's SNS event (the loader made
        it one, see :mod:`adapters.template.subscriptions`), provisioned with its events."""
        if function_of(endpoint, self.loaded.stack.functions) is None:
            self.plan.skipped.append((label, "not a function of this stack"))

    def _sns_carrier(
        self, function: str, event: str, topic: str, props: dict[str, Any], queue: str
    ) -> None:
        """An SNS event (or lambda subscription) delivered through its carrier queue."""
        self._sns_to_queue(function, event, topic, props, self._carrier(function, event, queue))

    def _sns_to_queue(
        self, function: str, event: str, topic: str, props: dict[str, Any], queue_arn: str
    ) -> None:
        """Subscribe ``queue_arn`` to ``topic`` with raw delivery off (the SNS envelope is
        what ``Records[0].Sns`` is made of) and the event's filter policy."""
        where = f"{function}.{event}"
        self._grant(QUEUE, queue_arn, "sns", topic, where)
        if topic not in self.topics:
            self.require("topic", topic, where)
        label = f"{SUBSCRIPTION} {where} ({name_from_arn(topic)} -> {name_from_arn(queue_arn)})"
        plan = subscription_plan(label, topic, "sqs", queue_arn, props)
        plan.raw = False
        self.plan.subscriptions.append(plan)

    def _carrier(self, function: str, event: str, name: str) -> str:
        arn = f"arn:aws:sqs:{self.loaded.region}:{ACCOUNT_ID}:{name}"
        if arn not in self.queues:
            attrs = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
            label = f"{QUEUE} {function}.{event} carrier ({name})"
            self.queues[arn] = QueuePlan(label, name, arn, attrs)
        return arn

    def event(self, source: EventSource) -> None:
        props, where = source.properties, f"{source.function}.{source.name}"
        if source.type == "SQS":
            if props["Queue"] not in self.queues:
                self.require("queue", props["Queue"], f"SQS event {where}")
        elif source.type == "DynamoDB":
            self._stream(props["Stream"], where)
        elif source.type == "SNS":
            self._sns_event(source)
        elif source.type == "S3":
            self._s3_event(source, where)

    def _sns_event(self, source: EventSource) -> None:
        """A carrier, unless ``SqsSubscription`` names a queue: SAM subscribes that one."""
        props, fn, event = source.properties, source.function, source.name
        queue = carrier_queue_for(self.stack, source)
        assert queue is not None
        own = props.get("SqsSubscription")
        if isinstance(own, dict) and (own.get("QueueArn") or own.get("QueueUrl")):
            arn = own.get("QueueArn") or f"arn:aws:sqs:{self.loaded.region}:{ACCOUNT_ID}:{queue}"
            self._sns_to_queue(fn, event, props["Topic"], props, arn)
        else:
            self._sns_carrier(fn, event, props["Topic"], props, queue)

    def _s3_event(self, source: EventSource, where: str) -> None:
        props = source.properties
        bucket = self.buckets.get(props["Bucket"])
        if bucket is None:
            raise ProvisionError(where, f"bucket {props['Bucket']!r} is not in the template")
        queue = carrier_queue_name(self.stack, source.function, source.name)
        arn = self._carrier(source.function, source.name, queue)
        self._grant(QUEUE, arn, "s3", str(bucket.arn), where)
        self.notifications[bucket.name]["QueueConfigurations"].append(
            {
                "Id": notification_id(source.function, source.name),
                "QueueArn": arn,
                "Events": list(props["Events"]),
                **s3_filter(props.get("Filter")),
            }
        )

    def _stream(self, stream: str, where: str) -> None:
        """A DynamoDB event's table must have a stream: the template's says so, or AWS does."""
        table_name = stream.split(":", 5)[-1].split("/")[1]
        table = self.tables.get(table_name)
        if table is None:
            self.require("stream", stream, f"DynamoDB event {where}")
        elif "StreamSpecification" not in table.properties:
            raise ProvisionError(
                f"{where} (DynamoDB event)",
                f"table {table.logical_id} ({table.name}) has no StreamSpecification to read from",
            )

    def require(self, kind: Literal["queue", "topic", "stream"], arn: str, where: str) -> None:
        """Something outside the template that must exist (checked before anything changes)."""
        if arn in self.queues or arn in self.topics:
            return
        if any(c.kind == kind and c.arn == arn for c in self.plan.checks):
            return
        noun = {"queue": QUEUE, "topic": TOPIC, "stream": TABLE}[kind]
        shown = arn.split(":", 5)[-1].split("/")[1] if kind == "stream" else name_from_arn(arn)
        label = f"{noun} {shown} (used by {where}, not in the template)"
        self.plan.checks.append(Check(label, kind, arn))


def _dead_letter_queues_first(queues: list[QueuePlan]) -> list[QueuePlan]:
    """Template order, except that a queue's dead-letter queue comes before it."""
    by_arn = {q.arn: q for q in queues}
    ordered: dict[str, QueuePlan] = {}

    def visit(q: QueuePlan, seen: frozenset[str]) -> None:
        if q.arn in ordered or q.arn in seen:
            return
        redrive = q.attributes.get("RedrivePolicy")
        target = json.loads(redrive).get("deadLetterTargetArn") if redrive else None
        if target in by_arn:
            visit(by_arn[target], seen | {q.arn})
        ordered[q.arn] = q

    for q in queues:
        visit(q, frozenset())
    return list(ordered.values())


def _one_per_endpoint(plans: list[SubscriptionPlan]) -> list[SubscriptionPlan]:
    """SNS keeps one subscription per topic, protocol and endpoint: two wirings of the same
    endpoint with different attributes would undo each other on every run, so that's an error."""
    seen: dict[tuple[str, str, str], SubscriptionPlan] = {}
    for plan in plans:
        key = (plan.topic_arn, plan.protocol, plan.endpoint)
        first = seen.setdefault(key, plan)
        if first is not plan and replace(first, label="") != replace(plan, label=""):
            raise ProvisionError(
                plan.label, f"subscribes the same endpoint as {first.label}, with other attributes"
            )
    return list(seen.values())
