"""A plain ``def`` handler whose downstream fails twice: the bus retries it."""

import collections
import os
import time
from typing import Any

import redis

STORE_URL = os.environ.get("DEMO_STORE_URL", "")
_store = redis.Redis.from_url(STORE_URL) if STORE_URL else None
_attempts: collections.Counter[str] = collections.Counter()  # one process per function


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = str(event["job"])
    _attempts[job] += 1
    attempt = _attempts[job]
    if attempt <= 2:
        raise ConnectionError(f"downstream unavailable (attempt {attempt})")
    outcome = f"done after {attempt} attempts"
    if _store is not None:
        _store.xadd("demo:results", {"function": context.function_name, "key": job,
                                     "outcome": outcome, "at": repr(time.time())})  # fmt: skip
    return {"job": job, "outcome": outcome}
