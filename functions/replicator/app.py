"""Keeps a replica table in sync with a source table's DynamoDB stream, deletes included.

INSERT and MODIFY write the new image as it is; REMOVE deletes the key. Changes
of one item arrive in order, so the last one wins as on the source. A write
that fails reports its record (ReportBatchItemFailures): the stream resumes
from it, and the records before it are not written twice.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import boto3
import redis

STORE_URL = os.environ.get("DEMO_STORE_URL", "")
_store = redis.Redis.from_url(STORE_URL) if STORE_URL else None
_dynamodb: Any = None


def client() -> Any:
    """Created on first use; AWS_ENDPOINT_URL (set by lambdabus dev) points it at the stack."""
    global _dynamodb
    if _dynamodb is None:
        _dynamodb = boto3.client("dynamodb")
    return _dynamodb


def from_event(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value as the event carries it (binary as base64) -> as boto3 takes it."""
    [(kind, inner)] = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": {k: from_event(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [from_event(v) for v in inner]}
    return {kind: inner}


def image(section: dict[str, Any]) -> dict[str, Any]:
    return {k: from_event(v) for k, v in section.items()}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table = os.environ["REPLICA_TABLE"]
    for record in event["Records"]:
        ddb = record["dynamodb"]
        try:
            if record["eventName"] == "REMOVE":
                client().delete_item(TableName=table, Key=image(ddb["Keys"]))
            else:
                client().put_item(TableName=table, Item=image(ddb["NewImage"]))
        except Exception as exc:  # resume from this record; the earlier ones are done
            print(f"replicating {ddb['SequenceNumber']} failed: {exc!r}")
            return {"batchItemFailures": [{"itemIdentifier": ddb["SequenceNumber"]}]}
        if _store is not None:
            key = ",".join(f"{v}" for attr in ddb["Keys"].values() for v in attr.values())
            _store.xadd("demo:results", {
                "function": context.function_name, "key": f"{record['eventName']} {key}",
                "outcome": f"replicated to {table}", "at": repr(time.time()),
            })  # fmt: skip
    return {"batchItemFailures": []}
