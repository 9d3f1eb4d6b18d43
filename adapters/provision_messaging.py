"""Provisioning SQS queues, SNS topics and subscriptions, and checking what must exist.

Each ``ensure_*`` looks first, then creates or corrects, and notes one line:
looking first is what tells "created" from "kept" (SQS and SNS create calls
are themselves idempotent and would not say), and it lets an existing
resource be corrected in place instead of failing on "exists with different
attributes".
"""

from __future__ import annotations

from typing import Any

from .carriers import name_from_arn
from .provision_diff import (
    merge_policy,
    queue_changes,
    subscription_attributes,
    subscription_changes,
    topic_changes,
)
from .provision_model import Check, QueuePlan, SubscriptionPlan, TopicPlan
from .provision_report import CREATED, KEPT, UPDATED, Ledger, ProvisionError


async def queue_url(sqs: Any, name: str, owner: str | None = None) -> str | None:
    """The queue's URL, or None when it does not exist."""
    extra = {"QueueOwnerAWSAccountId": owner} if owner else {}
    try:
        response = await sqs.get_queue_url(QueueName=name, **extra)
    except sqs.exceptions.QueueDoesNotExist:
        return None
    return str(response["QueueUrl"])


async def ensure_queue(sqs: Any, plan: QueuePlan, ledger: Ledger) -> None:
    with ledger.blame(plan.label):
        url = await queue_url(sqs, plan.name)
        if url is None:
            attributes = dict(plan.attributes)
            policy = merge_policy(None, plan.grants)
            if policy:
                attributes["Policy"] = policy
            await sqs.create_queue(QueueName=plan.name, Attributes=attributes)
            ledger.note(CREATED, plan.label)
            return
        response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        try:
            changes, notes = queue_changes(plan, response.get("Attributes", {}))
        except ValueError as exc:
            raise ProvisionError(plan.label, f"{exc}: delete the queue to recreate it") from None
        if changes:
            await sqs.set_queue_attributes(QueueUrl=url, Attributes=changes)
            ledger.note(UPDATED, plan.label, ", ".join(notes))
        else:
            ledger.note(KEPT, plan.label)


async def _topic_attributes(sns: Any, arn: str) -> dict[str, str] | None:
    try:
        response = await sns.get_topic_attributes(TopicArn=arn)
    except sns.exceptions.NotFoundException:
        return None
    return dict(response.get("Attributes", {}))


async def ensure_topic(sns: Any, plan: TopicPlan, ledger: Ledger) -> None:
    with ledger.blame(plan.label):
        current = await _topic_attributes(sns, plan.arn)
        created = current is None
        if current is None:
            await sns.create_topic(Name=plan.name, Attributes=plan.attributes)
            if not plan.grants:
                ledger.note(CREATED, plan.label)
                return
            # A new topic has a default policy (its owner's statement); add to it.
            current = await _topic_attributes(sns, plan.arn) or {}
            current = {"Policy": current.get("Policy", ""), **plan.attributes}
        try:
            changes, notes = topic_changes(plan, current)
        except ValueError as exc:
            raise ProvisionError(plan.label, f"{exc}: delete the topic to recreate it") from None
        for key, value in changes.items():
            await sns.set_topic_attributes(
                TopicArn=plan.arn, AttributeName=key, AttributeValue=value
            )
        if created:
            ledger.note(CREATED, plan.label)
        elif changes:
            ledger.note(UPDATED, plan.label, ", ".join(notes))
        else:
            ledger.note(KEPT, plan.label)


async def _find_subscription(sns: Any, plan: SubscriptionPlan) -> str | None:
    """The ARN of the topic's subscription of this endpoint with this protocol, if any
    (``PendingConfirmation`` for an HTTP one not confirmed yet)."""
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    async for page in paginator.paginate(TopicArn=plan.topic_arn):
        for sub in page.get("Subscriptions", []):
            if sub.get("Protocol") == plan.protocol and sub.get("Endpoint") == plan.endpoint:
                return str(sub.get("SubscriptionArn", ""))
    return None


async def ensure_subscription(sns: Any, plan: SubscriptionPlan, ledger: Ledger) -> None:
    with ledger.blame(plan.label):
        arn = await _find_subscription(sns, plan)
        if arn is None:
            response = await sns.subscribe(
                TopicArn=plan.topic_arn,
                Protocol=plan.protocol,
                Endpoint=plan.endpoint,
                Attributes=subscription_attributes(plan),
                ReturnSubscriptionArn=True,
            )
            pending = not str(response.get("SubscriptionArn", "")).startswith("arn:")
            ledger.note(CREATED, plan.label, "pending confirmation" if pending else "")
            return
        if not arn.startswith("arn:"):
            ledger.note(KEPT, plan.label, "pending confirmation")
            return
        response = await sns.get_subscription_attributes(SubscriptionArn=arn)
        changes = subscription_changes(plan, response.get("Attributes", {}))
        for key, value in changes:
            await sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName=key, AttributeValue=value
            )
        if changes:
            ledger.note(UPDATED, plan.label, ", ".join(key for key, _ in changes))
        else:
            ledger.note(KEPT, plan.label)


async def check_exists(clients: Any, check: Check, ledger: Ledger) -> None:
    """Something the template uses but doesn't declare must already be there."""
    with ledger.blame(check.label):
        parts = check.arn.split(":")
        found: bool
        if check.kind == "queue":
            url = await queue_url(clients.sqs, name_from_arn(check.arn), parts[4] or None)
            found, missing = url is not None, f"{check.arn} does not exist"
        elif check.kind == "topic":
            found = await _topic_attributes(clients.sns, check.arn) is not None
            missing = f"{check.arn} does not exist"
        else:
            found, missing = await _stream_problem(clients.dynamodb, check.arn)
        if not found:
            raise ProvisionError(
                check.label, f"{missing}; create it, or declare it in the template"
            )
        ledger.note(KEPT, check.label, "exists")


async def _stream_problem(dynamodb: Any, stream_arn: str) -> tuple[bool, str]:
    table = stream_arn.split(":", 5)[-1].split("/")[1]
    try:
        response = await dynamodb.describe_table(TableName=table)
    except dynamodb.exceptions.ResourceNotFoundException:
        return False, f"table {table} does not exist"
    spec = response["Table"].get("StreamSpecification") or {}
    return bool(spec.get("StreamEnabled")), f"table {table} has no stream enabled"
