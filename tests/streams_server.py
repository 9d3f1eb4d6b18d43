"""A DynamoDB Streams test server: the real JSON 1.0 protocol over HTTP, scripted by tests.

moto gives every table one shard that never closes and never expires an iterator,
so it cannot exercise what a streams consumer must get right. This server can: tests
feed it item changes (``put``/``delete``) and, on command, split and close shards,
expire iterators, trim records, throttle requests and stall reads (empty pages, as
AWS may answer at any time). Production code talks to it through aiobotocore
unchanged (``X-Amz-Target: DynamoDBStreams_20120810.<Operation>``). ``calls`` counts
every request by operation (refused ones included), ``errors`` every error answered.

The model, kept in memory and guarded by one lock (control calls may come from
another thread, see :meth:`StreamsServer.threaded`):

- a **stream** per table: its items (the source table), key schema, view type and
  shards in creation order;
- a **shard** owns a hash range of the key space. A key hashes into exactly one
  open shard; a split gives each child half the parent's range, a close hands the
  whole range to one child. So a key only ever moves from a parent to its child,
  and per-key order holds across generations only if parents are read first — as
  on AWS;
- a shard holds its records as a suffix of everything it ever received: ``base``
  is the absolute index of the first record still held (its trim horizon);
- **sequence numbers** come from one counter (increasing per stream, numeric
  strings of 21+ digits); opening and closing a shard consume one too, so numbers
  have gaps as on AWS;
- an **iterator** is an opaque, MAC-protected token naming stream, shard, absolute
  position and the expiry epoch it was issued in. ``expire_iterators`` bumps the
  epoch; a position below the shard's ``base`` answers TrimmedDataAccessException.

Deviations from AWS, on purpose: shards are never deleted (a fully trimmed closed
shard stays listed, empty); a put that changes nothing still writes a MODIFY
record; AT_TIMESTAMP is refused (DynamoDB Streams does not support it); requests
are not signature-checked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TARGET_PREFIX = "DynamoDBStreams_20120810"
ERROR_NS = "com.amazonaws.dynamodb.v20120810#"
CONTENT_TYPE = "application/x-amz-json-1.0"
ACCOUNT = "123456789012"
MAX_BODY = 1 << 20
HASH_SPACE = 1 << 32
FIRST_SEQUENCE = 300_000_000_000_000_000_000
VIEW_TYPES = ("NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY")
ITERATOR_TYPES = ("TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER")


class ApiError(Exception):
    """An AWS error: botocore maps ``code`` to ``client.exceptions.<code>``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def key_string(keys: dict[str, Any]) -> str:
    """Canonical text of an item's key attributes (DynamoDB JSON): the ``items()`` key."""
    return json.dumps(keys, sort_keys=True, separators=(",", ":"))


def key_hash(keys: dict[str, Any]) -> int:
    """Where a key falls in the hash space; stable across processes and runs."""
    return int.from_bytes(hashlib.sha256(key_string(keys).encode()).digest()[:4], "big")


@dataclass
class Shard:
    shard_id: str
    lo: int
    hi: int
    """The hash range [lo, hi) this shard receives while open."""
    start_seq: int
    parent: str | None = None
    end_seq: int | None = None
    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    base: int = 0
    """Absolute index of ``records[0]``: everything below was trimmed."""
    trimmed_through: int | None = None
    """Sequence number of the last trimmed record."""
    written: set[int] = field(default_factory=set)
    """Every sequence number this shard ever held (AT/AFTER_SEQUENCE_NUMBER must name one)."""

    @property
    def end(self) -> int:
        return self.base + len(self.records)

    @property
    def closed(self) -> bool:
        return self.end_seq is not None

    def describe(self) -> dict[str, Any]:
        rng: dict[str, str] = {"StartingSequenceNumber": str(self.start_seq)}
        if self.end_seq is not None:
            rng["EndingSequenceNumber"] = str(self.end_seq)
        out: dict[str, Any] = {"ShardId": self.shard_id, "SequenceNumberRange": rng}
        if self.parent is not None:
            out["ParentShardId"] = self.parent
        return out


@dataclass
class Stream:
    arn: str
    label: str
    table: str
    keys: tuple[str, ...]
    view_type: str
    created: float
    shards: dict[str, Shard] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def shard(self, shard_id: str) -> Shard:
        found = self.shards.get(shard_id)
        if found is None:
            raise _not_found(f"Shard: {shard_id} in Stream: {self.arn}")
        return found

    def route(self, keys: dict[str, Any]) -> Shard:
        h = key_hash(keys)
        for shard in self.shards.values():
            if not shard.closed and shard.lo <= h < shard.hi:
                return shard
        raise AssertionError("hash space not covered by open shards")  # pragma: no cover


class StreamsServer:
    """Speaks DynamoDB Streams' real JSON 1.0 protocol over HTTP (X-Amz-Target
    DynamoDBStreams_20120810.{DescribeStream,GetShardIterator,GetRecords,ListStreams}),
    with AWS's error shapes (ResourceNotFoundException, ExpiredIteratorException,
    TrimmedDataAccessException, LimitExceededException, ValidationException)."""

    def __init__(self, region: str = "us-east-1", *, page_size: int = 100,
                 first_sequence: int = FIRST_SEQUENCE,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        if not 1 <= page_size <= 100:
            raise ValueError("page_size must be 1..100 (DescribeStream's Limit range)")
        if first_sequence < 10**20:
            raise ValueError("sequence numbers have at least 21 digits")
        self.region = region
        self.page_size = page_size
        self.clock = clock
        self.calls: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        """Error code -> how many responses carried it."""
        self._streams: dict[str, Stream] = {}  # by table
        self._by_arn: dict[str, Stream] = {}
        self._seq = first_sequence
        self._epoch = 0
        self._throttle = 0
        self._stalled = False
        self._secret = secrets.token_bytes(16)
        self._lock = threading.RLock()
        self._runner: web.AppRunner | None = None
        self.url: str | None = None
        """The endpoint URL once started."""

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> str:
        """Bind 127.0.0.1 on a free port; returns the endpoint URL."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.url = None

    @classmethod
    @contextmanager
    def threaded(
        cls, region: str = "us-east-1", **kwargs: Any
    ) -> Iterator[tuple[StreamsServer, str]]:
        """The server on its own loop in a thread, for sync tests and other processes."""
        server = cls(region, **kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True, name="streams-server")
        thread.start()
        try:
            url = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
            yield server, url
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    # -- control API: the source table --------------------------------------------------

    def create_stream(self, table: str, keys: tuple[str, ...] = ("pk",),
                      view_type: str = "NEW_AND_OLD_IMAGES", shards: int = 1) -> str:  # fmt: skip
        """Enable a stream on a new table; returns the stream ARN."""
        if view_type not in VIEW_TYPES:
            raise ValueError(f"view_type must be one of {VIEW_TYPES}")
        if not 1 <= len(keys) <= 2 or not 1 <= shards <= 64:
            raise ValueError("1 or 2 key attributes and 1..64 shards")
        with self._lock:
            if table in self._streams:
                raise ValueError(f"table {table!r} already has a stream")
            created = self.clock()
            label = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            label += f".{int(created * 1000) % 1000:03d}"
            arn = f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{table}/stream/{label}"
            stream = Stream(arn, label, table, tuple(keys), view_type, created)
            step = HASH_SPACE // shards
            for i in range(shards):
                hi = HASH_SPACE if i == shards - 1 else (i + 1) * step
                self._open_shard(stream, i * step, hi, None)
            self._streams[table] = stream
            self._by_arn[arn] = stream
            return arn

    def put(self, table: str, item: dict[str, Any]) -> str:
        """Write an item (DynamoDB JSON): INSERT, or MODIFY with its old image."""
        with self._lock:
            stream = self._table(table)
            keys = self._keys_of(stream, item)
            ks = key_string(keys)
            old = stream.items.get(ks)
            stream.items[ks] = item
            return self._record(stream, keys, "MODIFY" if old else "INSERT", item, old)

    def delete(self, table: str, key: dict[str, Any], *, ttl: bool = False) -> str | None:
        """Delete an item: REMOVE with its old image; None if it was absent. ``ttl``: as
        Time to Live does it, the record names the DynamoDB service in userIdentity."""
        with self._lock:
            stream = self._table(table)
            keys = self._keys_of(stream, key)
            old = stream.items.pop(key_string(keys), None)
            if old is None:
                return None
            return self._record(stream, keys, "REMOVE", None, old, by_service=ttl)

    def items(self, table: str) -> dict[str, dict[str, Any]]:
        """The source table now: key string (:func:`key_string`) -> item."""
        with self._lock:
            return dict(self._table(table).items)

    # -- control API: shards, iterators, trimming, throttling -----------------------------

    def open_shards(self, table: str) -> list[str]:
        with self._lock:
            return [s.shard_id for s in self._table(table).shards.values() if not s.closed]

    def shards(self, table: str) -> list[dict[str, Any]]:
        """Every shard as DescribeStream shows it (in creation order)."""
        with self._lock:
            return [s.describe() for s in self._table(table).shards.values()]

    def split_shard(self, table: str, shard_id: str) -> tuple[str, str]:
        """Close ``shard_id``; two children split its hash range."""
        with self._lock:
            stream, shard = self._open(table, shard_id)
            self._close(shard)
            mid = (shard.lo + shard.hi) // 2
            left = self._open_shard(stream, shard.lo, mid, shard_id)
            right = self._open_shard(stream, mid, shard.hi, shard_id)
            return left, right

    def close_shard(self, table: str, shard_id: str) -> str:
        """Close ``shard_id``; one child takes over its whole hash range."""
        with self._lock:
            stream, shard = self._open(table, shard_id)
            self._close(shard)
            return self._open_shard(stream, shard.lo, shard.hi, shard_id)

    def expire_iterators(self) -> None:
        """Every iterator issued so far answers ExpiredIteratorException."""
        with self._lock:
            self._epoch += 1

    def trim(self, table: str, count: int) -> list[str]:
        """Drop the ``count`` oldest records still held (across shards); their numbers."""
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            held = [(seq, shard) for shard in self._table(table).shards.values()
                    for seq, _ in shard.records]  # fmt: skip
            held.sort(key=lambda pair: pair[0])
            dropped = held[:count]
            for seq, shard in dropped:
                shard.records.pop(0)
                shard.base += 1
                shard.trimmed_through = seq
            return [str(seq) for seq, _ in dropped]

    def throttle(self, calls: int) -> None:
        """The next ``calls`` requests answer LimitExceededException (400)."""
        with self._lock:
            self._throttle = calls

    def stall(self, on: bool = True) -> None:
        """While on, GetRecords answers empty pages that stay in place (AWS may do this
        at any time); a test holds readers back with it, e.g. to trim unread records."""
        with self._lock:
            self._stalled = on

    # -- model helpers --------------------------------------------------------------------

    def _table(self, table: str) -> Stream:
        stream = self._streams.get(table)
        if stream is None:
            raise KeyError(f"no stream for table {table!r}")
        return stream

    def _open(self, table: str, shard_id: str) -> tuple[Stream, Shard]:
        stream = self._table(table)
        shard = stream.shards.get(shard_id)
        if shard is None or shard.closed:
            raise ValueError(f"{shard_id} is not an open shard of {table}")
        return stream, shard

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _open_shard(self, stream: Stream, lo: int, hi: int, parent: str | None) -> str:
        n = len(stream.shards)
        millis = int(stream.created * 1000) + n
        digest = hashlib.sha256(f"{stream.arn}/{n}".encode()).hexdigest()[:8]
        shard_id = f"shardId-{millis:020d}-{digest}"
        stream.shards[shard_id] = Shard(shard_id, lo, hi, self._next_seq(), parent)
        return shard_id

    def _close(self, shard: Shard) -> None:
        shard.end_seq = self._next_seq()

    @staticmethod
    def _keys_of(stream: Stream, item: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise TypeError("items are dicts in DynamoDB JSON")
        missing = [k for k in stream.keys if k not in item]
        if missing:
            raise ValueError(f"item lacks key attribute(s) {missing} of {stream.table}")
        return {k: item[k] for k in stream.keys}

    def _record(self, stream: Stream, keys: dict[str, Any], name: str, new: dict[str, Any] | None,
                old: dict[str, Any] | None, by_service: bool = False) -> str:  # fmt: skip
        seq = self._next_seq()
        body: dict[str, Any] = {"ApproximateCreationDateTime": int(self.clock()), "Keys": keys}
        view = stream.view_type
        if new is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["NewImage"] = new
        if old is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["OldImage"] = old
        body["SequenceNumber"] = str(seq)
        body["SizeBytes"] = len(json.dumps([keys, new, old]).encode())
        body["StreamViewType"] = view
        record = {
            "eventID": uuid.uuid4().hex,
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": body,
        }
        if by_service:
            # the API's member names (Lambda's event spells them type/principalId)
            record["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
        shard = stream.route(keys)
        shard.records.append((seq, record))
        shard.written.add(seq)
        return str(seq)

    # -- iterators ------------------------------------------------------------------------

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._secret, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(digest).decode()

    def _iterator(self, stream: Stream, shard: Shard, position: int) -> str:
        payload = json.dumps([stream.arn, shard.shard_id, position, self._epoch]).encode()
        return base64.urlsafe_b64encode(payload).decode() + "." + self._mac(payload)

    def _decode(self, token: str) -> tuple[Stream, Shard, int, int]:
        bad = _invalid("Invalid ShardIterator")
        body, _, mac = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(body.encode())
        except (binascii.Error, ValueError):
            raise bad from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise bad
        arn, shard_id, position, epoch = json.loads(payload)
        stream = self._by_arn[arn]
        return stream, stream.shard(shard_id), position, epoch

    # -- HTTP -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        prefix, _, op = target.partition(".")
        handler = _OPERATIONS.get(op) if prefix == TARGET_PREFIX else None
        self.calls[op if handler else "(unknown)"] += 1
        try:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise _invalid(f"request body over {MAX_BODY} bytes", 413) from None
            with self._lock:
                if self._throttle > 0:
                    self._throttle -= 1
                    raise ApiError("LimitExceededException", "Rate exceeded for shard")
            if handler is None:
                raise ApiError("UnknownOperationException", f"unknown operation {target[:100]!r}")
            try:
                params = json.loads(raw or b"{}")
            except ValueError:
                raise ApiError("SerializationException", "request body is not JSON") from None
            if not isinstance(params, dict):
                raise ApiError("SerializationException", "request body is not a JSON object")
            with self._lock:
                result = handler(self, params)
            return web.json_response(result, content_type=CONTENT_TYPE, headers=_request_id())
        except ApiError as err:
            self.errors[err.code] += 1
            return _error(err)
        except Exception as exc:  # a bug here must reach the client as AWS's 500, not a hang
            self.errors["InternalServerError"] += 1
            return _error(ApiError("InternalServerError", repr(exc)[:200], 500))

    def _describe_stream(self, p: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream_param(p)
        limit = min(_int(p, "Limit", self.page_size, 100), self.page_size)
        shards = list(stream.shards.values())
        flt = p.get("ShardFilter")
        if flt is not None:
            if not isinstance(flt, dict) or flt.get("Type") != "CHILD_SHARDS":
                raise _invalid("ShardFilter.Type must be CHILD_SHARDS")
            parent = _str(flt, "ShardId", 28, 65)
            shards = [s for s in shards if s.parent == parent]
        start = 0
        if "ExclusiveStartShardId" in p:
            after = _str(p, "ExclusiveStartShardId", 28, 65)
            ids = [s.shard_id for s in shards]
            if after not in ids:
                raise _not_found(f"Shard: {after} not found")
            start = ids.index(after) + 1
        page = shards[start : start + limit]
        desc: dict[str, Any] = {
            "StreamArn": stream.arn, "StreamLabel": stream.label, "StreamStatus": "ENABLED",
            "StreamViewType": stream.view_type, "CreationRequestDateTime": stream.created,
            "TableName": stream.table,
            "KeySchema": [{"AttributeName": k, "KeyType": t}
                          for k, t in zip(stream.keys, ("HASH", "RANGE"), strict=False)],
            "Shards": [s.describe() for s in page],
        }  # fmt: skip
        if start + limit < len(shards):
            desc["LastEvaluatedShardId"] = page[-1].shard_id
        return {"StreamDescription": desc}

    def _get_shard_iterator(self, p: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream_param(p)
        shard = stream.shard(_str(p, "ShardId", 28, 65))
        kind = _str(p, "ShardIteratorType", 1, 40)
        if kind not in ITERATOR_TYPES:
            raise _invalid(f"ShardIteratorType {kind!r} is not supported")
        if kind == "TRIM_HORIZON":
            return {"ShardIterator": self._iterator(stream, shard, shard.base)}
        if kind == "LATEST":
            return {"ShardIterator": self._iterator(stream, shard, shard.end)}
        seq_text = _str(p, "SequenceNumber", 21, 40)
        if not seq_text.isdigit():
            raise _invalid("SequenceNumber must be numeric")
        seq = int(seq_text)
        if seq != shard.start_seq and seq not in shard.written:  # e.g. another shard's
            raise _invalid(f"Invalid SequenceNumber {seq_text} for shard {shard.shard_id}")
        after = kind == "AFTER_SEQUENCE_NUMBER"
        if shard.trimmed_through is not None and (
            seq < shard.trimmed_through or (seq == shard.trimmed_through and not after)
        ):
            raise _trimmed(f"SequenceNumber {seq_text} is beyond the trim horizon")
        position = shard.end
        for i, (held, _) in enumerate(shard.records):
            if held > seq or (held == seq and not after):
                position = shard.base + i
                break
        return {"ShardIterator": self._iterator(stream, shard, position)}

    def _get_records(self, p: dict[str, Any]) -> dict[str, Any]:
        token = _str(p, "ShardIterator", 1, 2048)
        limit = _int(p, "Limit", 1000, 1000)
        try:
            stream, shard, position, epoch = self._decode(token)
        except (ValueError, TypeError, KeyError):
            raise _invalid("Invalid ShardIterator") from None
        if epoch < self._epoch:
            raise ApiError(
                "ExpiredIteratorException",
                "Iterator expired. The iterator was created over 15 minutes ago.",
            )
        if position < shard.base:
            raise _trimmed(f"Iterator points below the trim horizon of {shard.shard_id}")
        offset = position - shard.base
        if self._stalled:
            limit = 0
        page = shard.records[offset : offset + limit]
        position += len(page)
        out: dict[str, Any] = {"Records": [record for _, record in page]}
        if not (shard.closed and position >= shard.end):
            out["NextShardIterator"] = self._iterator(stream, shard, position)
        return out

    def _list_streams(self, p: dict[str, Any]) -> dict[str, Any]:
        limit = _int(p, "Limit", 100, 100)
        streams = list(self._by_arn.values())
        if "TableName" in p:
            table = _str(p, "TableName", 3, 255)
            if table not in self._streams:
                raise _not_found(f"Table: {table} not found")
            streams = [self._streams[table]]
        start = 0
        if "ExclusiveStartStreamArn" in p:
            after = _str(p, "ExclusiveStartStreamArn", 37, 1024)
            arns = [s.arn for s in streams]
            start = arns.index(after) + 1 if after in arns else len(arns)
        page = streams[start : start + limit]
        out: dict[str, Any] = {
            "Streams": [
                {"StreamArn": s.arn, "TableName": s.table, "StreamLabel": s.label} for s in page
            ]
        }
        if start + limit < len(streams):
            out["LastEvaluatedStreamArn"] = page[-1].arn
        return out

    def _stream_param(self, p: dict[str, Any]) -> Stream:
        arn = _str(p, "StreamArn", 37, 1024)
        stream = self._by_arn.get(arn)
        if stream is None:
            raise _not_found(f"Stream: {arn} not found")
        return stream


_OPERATIONS: dict[str, Callable[[StreamsServer, dict[str, Any]], dict[str, Any]]] = {
    "DescribeStream": StreamsServer._describe_stream,
    "GetShardIterator": StreamsServer._get_shard_iterator,
    "GetRecords": StreamsServer._get_records,
    "ListStreams": StreamsServer._list_streams,
}


def _request_id() -> dict[str, str]:
    return {"x-amzn-RequestId": uuid.uuid4().hex.upper()}


def _error(err: ApiError) -> web.Response:
    body = {"__type": ERROR_NS + err.code, "message": err.message}
    return web.json_response(body, status=err.status, content_type=CONTENT_TYPE,
                             headers=_request_id())  # fmt: skip


def _invalid(message: str, status: int = 400) -> ApiError:
    return ApiError("ValidationException", message[:300], status)


def _not_found(what: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"Requested resource not found: {what}"[:300])


def _trimmed(message: str) -> ApiError:
    return ApiError("TrimmedDataAccessException", message)


def _str(p: dict[str, Any], name: str, lo: int, hi: int) -> str:
    """A required string member within the service model's length bounds."""
    value = p.get(name)
    if not isinstance(value, str) or not lo <= len(value) <= hi:
        raise _invalid(f"Value at '{name}' failed to satisfy constraint: length {lo}..{hi}")
    return value


def _int(p: dict[str, Any], name: str, default: int, hi: int) -> int:
    """An optional integer member in 1..hi."""
    value = p.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise _invalid(f"Value at '{name}' failed to satisfy constraint: an integer in 1..{hi}")
    return value
