"""Stores SQS messages (a batch of Records) and reports each one."""

import json
import os
import time
from typing import Any

import redis

STORE_URL = os.environ.get("DEMO_STORE_URL", "")
_store = redis.Redis.from_url(STORE_URL) if STORE_URL else None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event["Records"]:
        job = json.loads(record["body"])
        if job.get("bad"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        if _store is not None:
            _store.hset("demo:jobs", str(job["id"]), record["body"])
            _store.xadd("demo:results", {
                "function": context.function_name, "key": f"job {job['id']}",
                "outcome": f"stored (batch of {len(event['Records'])}, "
                           f"receive count {record['attributes']['ApproximateReceiveCount']})",
                "at": repr(time.time()),
            })  # fmt: skip
    return {"batchItemFailures": failures}
