"""The replicator of the DynamoDB Streams acceptance test (runs in a worker subprocess).

It does what seed use case 2 does — keeps a second table in sync, deletes included
— with the replica in Redis, and records what the test asserts on: every record's
sequence number per key (in the order the handler saw them), how often each
eventID arrived, and any event that failed powertools' ``DynamoDBStreamModel``.
Keys live under :data:`PREFIX`; the test's Redis is flushed before every test.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from pydantic import ValidationError

from tests.streams_server import key_string

PREFIX = "streamstest:"
REPLICA = PREFIX + "replica"
"""Hash: key string -> NewImage (DynamoDB JSON, sorted keys)."""
SEEN = PREFIX + "seen:"
"""List per key string: sequence numbers in the order the handler got them."""
EVENTS = PREFIX + "events"
"""Hash: eventID -> times delivered."""
DONE = PREFIX + "done"
"""Records handled in total."""
INVALID = PREFIX + "invalid"
"""List of validation errors (should stay empty)."""

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
    return _client


def replicate(event: dict[str, Any], context: Any) -> None:
    """Apply a batch of one item's changes to the replica, atomically with the bookkeeping."""
    try:
        DynamoDBStreamModel.model_validate(event)
    except ValidationError as exc:
        _redis().rpush(INVALID, str(exc)[:1000])
        raise
    pipe = _redis().pipeline(transaction=True)
    for record in event["Records"]:
        change = record["dynamodb"]
        key = key_string(change["Keys"])
        if record["eventName"] == "REMOVE":
            pipe.hdel(REPLICA, key)
        else:
            pipe.hset(REPLICA, key, json.dumps(change["NewImage"], sort_keys=True))
        pipe.rpush(SEEN + key, change["SequenceNumber"])
        pipe.hincrby(EVENTS, record["eventID"], 1)
    pipe.incrby(DONE, len(event["Records"]))
    pipe.execute()
