"""DestinationConfig.OnFailure of a stream mapping: Lambda's invocation record.

When the bus gives up on a batch of a stream mapping (MaximumRetryAttempts or
MaximumRecordAgeInSeconds, see :mod:`bus.ordered`), the records go to the
function's dead-letter stream. For a stream source Lambda sends the OnFailure
queue or topic not the records but a description of the batch
(``DDBStreamBatchInfo``: shard, first and last sequence number, size, arrival
times), for the consumer to fetch the records from the stream while it still
holds them. This forwarder tails the dead-letter stream from a cursor of its own
and sends exactly that, one message per given-up batch (the letters one give-up
wrote together: same trigger, partition and time). A give-up writes its letters
in one script call, so a group is complete once a letter of another group
follows it or a read returns less than it asked for; a group touching the end
of a full read is kept in memory and joined with the next read (up to
:data:`MAX_GROUP` letters, Lambda's largest BatchSize), so one batch never
becomes several records. The ``condition`` (RetryAttemptsExhausted or
RecordAgeExceeded) is judged at the give-up: from the letter's ``reason``
where it says EventAgeExceeded, else from its ``failed_at_ms``. One forwarder per mapping is
active (a lease); delivery is at-least-once, as the cursor is stored after the
send.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from redis.asyncio import Redis

from bus.envelope import Envelope, UndecodableEntry, decode
from bus.keys import FunctionKeys, StreamSourceKeys
from bus.runtime_env import DEFAULT_ACCOUNT

from ..letter_tail import LEASE_S, Entry, LetterTail
from ..sqs_records import arn_parts
from . import metrics
from .adapter import StreamMapping

log = logging.getLogger(__name__)


Letter = tuple[bytes, Envelope, dict[bytes, bytes]]
MAX_GROUP = 10_000
"""Letters one give-up can write (Lambda's largest stream BatchSize)."""


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def batches(letters: list[Letter], trigger: str) -> list[list[Letter]]:
    """Consecutive letters of ``trigger`` written by one give-up, grouped (pure)."""
    out: list[list[Letter]] = []
    for letter in letters:
        _, env, fields = letter
        if env.trigger != trigger:
            out.append([])  # a boundary; empty groups are skipped (cursor still moves)
            continue
        key = (env.partition, fields.get(b"failed_at_ms"), fields.get(b"reason"))
        if out and out[-1]:
            _, prev, pf = out[-1][-1]
            if (prev.partition, pf.get(b"failed_at_ms"), pf.get(b"reason")) == key:
                out[-1].append(letter)
                continue
        out.append([letter])
    return out


def gave_up_for_age(first: Envelope, fields: dict[bytes, bytes], max_age: float | None,
                    now: float) -> bool:  # fmt: skip
    """Was the batch given up because its first record passed MaximumRecordAgeInSeconds?
    Judged when it was given up (the letter's reason, else its ``failed_at_ms``), not when
    the OnFailure record is sent (pure)."""
    if fields.get(b"reason") == b"EventAgeExceeded":
        return True
    if not max_age or max_age <= 0:
        return False
    try:
        at = int(fields[b"failed_at_ms"]) / 1000
    except (KeyError, ValueError):
        at = now
    return at - first.time >= max_age


def failure_record(batch: list[Letter], mapping: StreamMapping, stream_arn: str,
                   now: float) -> dict[str, Any]:  # fmt: skip
    """Lambda's OnFailure invocation record for a stream batch (pure)."""
    envs = [env for _, env, _ in batch]
    first, last = envs[0], envs[-1]
    fields = batch[-1][2]
    too_old = gave_up_for_age(first, fields, mapping.trigger.max_record_age_s, now)
    attempts = int(fields.get(b"attempts", b"1") or 1)
    letter_id = batch[0][0].decode()
    region = stream_arn.split(":")[3]
    return {
        "requestContext": {
            "requestId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stream_arn}\0{letter_id}")),
            "functionArn": f"arn:aws:lambda:{region}:{DEFAULT_ACCOUNT}:function:{mapping.function}",
            "condition": "RecordAgeExceeded" if too_old else "RetryAttemptsExhausted",
            "approximateInvokeCount": max(1, attempts),
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": iso(now),
        "DDBStreamBatchInfo": {
            "shardId": first.subject or "",
            "startSequenceNumber": first.record["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": last.record["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": iso(first.time),
            "approximateArrivalOfLastRecord": iso(last.time),
            "batchSize": len(envs),
            "streamArn": stream_arn,
        },
    }


class StreamFailureForwarder(LetterTail):
    """Sends OnFailure records of one stream mapping; see the module docstring."""

    def __init__(self, redis: Redis, stack: str, mapping: StreamMapping, *,
                 poll_s: float = 1.0, lease_s: float = LEASE_S) -> None:  # fmt: skip
        assert mapping.on_failure is not None
        keys = StreamSourceKeys(stack, mapping.name)
        super().__init__(
            redis, stream=FunctionKeys(stack, mapping.function).dead_letters,
            cursor=keys.failures_cursor, lease=keys.failures_lease,
            label=f"onfailure:{mapping.name}", poll_s=poll_s, lease_s=lease_s,
        )  # fmt: skip
        self.mapping = mapping
        self.destination = mapping.on_failure
        self.sent = 0
        self._queue_url: str | None = None
        self._carry: list[Letter] = []
        """A group cut off by the end of a full read, waiting for the rest of it."""
        self.client: Any = None

    async def open(self, exit_stack: AsyncExitStack) -> None:
        service = "sns" if ":sns:" in self.destination else "sqs"
        self.client = await exit_stack.enter_async_context(get_session().create_client(service))

    def rewind(self) -> None:
        self._carry = []
        super().rewind()

    async def handle(self, entries: list[Entry]) -> None:
        """One message per given-up batch; the cursor moves past each batch once sent."""
        letters = list(self._carry)
        ids = [letter[0] for letter in self._carry] + [entry_id for entry_id, _ in entries]
        for entry_id, fields in entries:
            try:
                letters.append((entry_id, decode(fields.get(b"d", b"")), fields))
            except UndecodableEntry:
                continue
        groups = [g for g in batches(letters, self.mapping.trigger.name) if g]
        tail: list[Letter] = []
        if (self.read_full and groups and groups[-1][-1][0] == ids[-1]
                and len(groups[-1]) < MAX_GROUP):  # fmt: skip
            tail = groups.pop()  # may go on in the next read
        for batch in groups:
            if self.stopping:
                return
            await self.hold()
            await self._send(failure_record(batch, self.mapping,
                                            self._stream_arn(batch), time.time()))  # fmt: skip
            await self.advance(batch[-1][0])
        if self.stopping:
            return
        self._carry = tail
        if tail:
            before = ids.index(tail[0][0])
            if before > 0:
                await self.advance(ids[before - 1])
            self.read_on_after(ids[-1])
        else:
            if ids:
                await self.advance(ids[-1])
            self.read_on_after(None)

    def _stream_arn(self, batch: list[Letter]) -> str:
        record = batch[0][1].record
        arn = record.get("eventSourceARN") if isinstance(record, dict) else None
        return str(arn or self.mapping.stream_arn)

    async def _send(self, record: dict[str, Any]) -> None:
        body = json.dumps(record)
        if ":sns:" in self.destination:
            await self.client.publish(TopicArn=self.destination, Message=body)
        else:
            if self._queue_url is None:
                _, account, name = arn_parts(self.destination)
                found = await self.client.get_queue_url(QueueName=name,
                                                        QueueOwnerAWSAccountId=account)  # fmt: skip
                self._queue_url = str(found["QueueUrl"])
            extra: dict[str, str] = {}
            if self.destination.endswith(".fifo"):
                info = record["DDBStreamBatchInfo"]
                extra = {
                    "MessageGroupId": info["shardId"] or "stream",
                    "MessageDeduplicationId": record["requestContext"]["requestId"],
                }
            await self.client.send_message(QueueUrl=self._queue_url, MessageBody=body, **extra)
        self.sent += 1
        metrics.FAILURES_SENT.labels(self.label).inc()
