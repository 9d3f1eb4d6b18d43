"""Provisioning S3 buckets (with their notification document) and DynamoDB tables.

A table can only change one thing per UpdateTable call and only while
ACTIVE, so changes go one call at a time with a bounded wait for ACTIVE in
between (immediate on moto; minutes at most on AWS).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from botocore.exceptions import ClientError

from .provision_diff import notifications_differ
from .provision_model import BucketPlan, TablePlan
from .provision_report import CREATED, KEPT, UPDATED, Ledger, ProvisionError, aws_code

ACTIVE_WAIT_S = 600.0
"""Longest wait for a table to become ACTIVE after a change."""
ACTIVE_POLL_S = 2.0
MISSING_BUCKET = frozenset({"404", "NoSuchBucket", "NotFound"})


async def _bucket_exists(s3: Any, plan: BucketPlan) -> bool:
    try:
        await s3.head_bucket(Bucket=plan.name)
    except ClientError as exc:
        code = aws_code(exc)
        if code in MISSING_BUCKET:
            return False
        if code in ("403", "AccessDenied", "Forbidden"):
            raise ProvisionError(
                plan.label, "the bucket name is taken by another account (HeadBucket: 403)"
            ) from None
        raise
    return True


async def ensure_bucket(s3: Any, plan: BucketPlan, region: str, ledger: Ledger) -> None:
    with ledger.blame(plan.label):
        created = not await _bucket_exists(s3, plan)
        if created:
            where = {} if region == "us-east-1" else {"LocationConstraint": region}
            extra = {"CreateBucketConfiguration": where} if where else {}
            try:
                await s3.create_bucket(Bucket=plan.name, **extra)
            except s3.exceptions.BucketAlreadyOwnedByYou:
                created = False
        notes = []
        if plan.versioning:
            response = await s3.get_bucket_versioning(Bucket=plan.name)
            have = response.get("Status")
            if have != plan.versioning:
                await s3.put_bucket_versioning(
                    Bucket=plan.name, VersioningConfiguration={"Status": plan.versioning}
                )
                notes.append(f"versioning {have or 'off'} -> {plan.versioning}")
        if created:
            ledger.note(CREATED, plan.label)
        elif notes:
            ledger.note(UPDATED, plan.label, ", ".join(notes))
        else:
            ledger.note(KEPT, plan.label)
    await _ensure_notifications(s3, plan, ledger)


async def _ensure_notifications(s3: Any, plan: BucketPlan, ledger: Ledger) -> None:
    """One document per bucket: the template's configurations plus one per S3 event source.
    S3 (and moto) sends an ``s3:TestEvent`` to every queue when it is written, which
    adapters skip; a rerun that changes nothing writes nothing, so sends none."""
    label = f"{plan.label} NotificationConfiguration"
    with ledger.blame(label):
        current = await s3.get_bucket_notification_configuration(Bucket=plan.name)
        if not notifications_differ(plan.notifications, current):
            if plan.notifications:
                ledger.note(KEPT, label, _summary(plan.notifications))
            return
        await s3.put_bucket_notification_configuration(
            Bucket=plan.name, NotificationConfiguration=plan.notifications
        )
        had = any(current.get(k) for k in _KINDS)
        outcome = UPDATED if had else CREATED
        ledger.note(outcome, label, _summary(plan.notifications) or "none")


_KINDS = ("QueueConfigurations", "TopicConfigurations", "LambdaFunctionConfigurations")


def _summary(doc: dict[str, Any]) -> str:
    counts = [(len(doc.get(k) or []), k[: -len("Configurations")].lower()) for k in _KINDS]
    return ", ".join(f"{n} {kind}" for n, kind in counts if n)


async def _describe(dynamodb: Any, name: str) -> dict[str, Any] | None:
    try:
        response = await dynamodb.describe_table(TableName=name)
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    return dict(response["Table"])


async def _wait_active(dynamodb: Any, name: str) -> dict[str, Any]:
    """The table once it and its indexes are ACTIVE; changes made meanwhile would fail."""
    deadline = time.monotonic() + ACTIVE_WAIT_S
    while True:
        table = await _describe(dynamodb, name) or {}
        indexes = table.get("GlobalSecondaryIndexes") or []
        if table.get("TableStatus") == "ACTIVE" and all(
            i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes
        ):
            return table
        if time.monotonic() > deadline:
            raise ProvisionError(
                f"AWS::DynamoDB::Table {name}",
                f"not ACTIVE after {ACTIVE_WAIT_S:.0f}s (status {table.get('TableStatus')})",
            )
        await asyncio.sleep(ACTIVE_POLL_S)


async def ensure_table(dynamodb: Any, plan: TablePlan, ledger: Ledger) -> None:
    with ledger.blame(plan.label):
        table = await _describe(dynamodb, plan.name)
        if table is None:
            await dynamodb.create_table(**plan.create)
            await _wait_active(dynamodb, plan.name)
            await _ensure_ttl(dynamodb, plan)
            ledger.note(CREATED, plan.label)
            return
        keys = [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])]
        wanted = [(k["AttributeName"], k["KeyType"]) for k in plan.create["KeySchema"]]
        if keys != wanted:
            raise ProvisionError(
                plan.label,
                f"exists with key schema {keys}, the template asks for {wanted};"
                " a table's keys can't change: delete it to recreate it",
            )
        notes = []
        for update, note in _table_updates(plan, table):
            await dynamodb.update_table(TableName=plan.name, **update)
            await _wait_active(dynamodb, plan.name)
            notes += [note] if note else []
        if await _ensure_ttl(dynamodb, plan):
            notes.append("time to live")
        if notes:
            ledger.note(UPDATED, plan.label, ", ".join(notes))
        else:
            ledger.note(KEPT, plan.label)


def _table_updates(plan: TablePlan, table: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """UpdateTable calls (one change each) that bring ``table`` to the plan, with notes.
    Indexes the template no longer lists are left alone: dropping one loses its data."""
    want = plan.create
    updates: list[tuple[dict[str, Any], str]] = []
    billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    throughput = want.get("ProvisionedThroughput")
    have_throughput = {
        k: (table.get("ProvisionedThroughput") or {}).get(k)
        for k in ("ReadCapacityUnits", "WriteCapacityUnits")
    }
    if billing != want["BillingMode"] or (throughput and throughput != have_throughput):
        update: dict[str, Any] = {"BillingMode": want["BillingMode"]}
        if throughput:
            update["ProvisionedThroughput"] = throughput
        note = f"billing {billing} -> {want['BillingMode']}"
        updates.append((update, note if billing != want["BillingMode"] else "throughput"))
    stream = want.get("StreamSpecification")
    have = table.get("StreamSpecification") or {}
    if stream and not have.get("StreamEnabled"):
        updates.append(({"StreamSpecification": stream}, f"stream {stream['StreamViewType']} on"))
    elif stream and have.get("StreamViewType") != stream["StreamViewType"]:
        # A stream's view type can't change in place: turn it off, then on with the new one.
        updates.append(({"StreamSpecification": {"StreamEnabled": False}}, ""))
        note = f"stream {have.get('StreamViewType')} -> {stream['StreamViewType']}"
        updates.append(({"StreamSpecification": stream}, note))
    existing = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes") or []}
    for index in want.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] not in existing:
            update = {
                "AttributeDefinitions": want["AttributeDefinitions"],
                "GlobalSecondaryIndexUpdates": [{"Create": index}],
            }
            updates.append((update, f"index {index['IndexName']}"))
    return updates


async def _ensure_ttl(dynamodb: Any, plan: TablePlan) -> bool:
    """Bring the table's time to live to the template's; whether it had to change."""
    if not plan.ttl:
        return False
    response = await dynamodb.describe_time_to_live(TableName=plan.name)
    have = response.get("TimeToLiveDescription", {})
    enabled = have.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    want_enabled = bool(plan.ttl.get("Enabled"))
    name = plan.ttl.get("AttributeName") or have.get("AttributeName")
    if enabled == want_enabled and (not want_enabled or have.get("AttributeName") == name):
        return False
    if not name:
        return False
    await dynamodb.update_time_to_live(
        TableName=plan.name,
        TimeToLiveSpecification={"Enabled": want_enabled, "AttributeName": name},
    )
    return True
