"""The DynamoDB Streams test server, driven through aiobotocore's ``dynamodbstreams`` client.

If this server disagreed with AWS's wire protocol or semantics, the streams adapter's
tests would prove nothing; so every behaviour the adapter relies on is checked here
through the same client the adapter uses (paging, iterator types, lineage, closed
shard ends, expiry, trimming, throttling, errors), and the records are checked
against powertools' Lambda event models.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import boto3
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from botocore.exceptions import ClientError
from pydantic import ValidationError

from tests.streams_server import TARGET_PREFIX, StreamsServer, key_hash, key_string

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"
Client = Any
Served = tuple[StreamsServer, str]


@pytest.fixture
async def server() -> AsyncIterator[tuple[StreamsServer, str]]:
    srv = StreamsServer(REGION, page_size=3)
    url = await srv.start()
    try:
        yield srv, url
    finally:
        await srv.stop()


def _client(url: str, retries: int = 0) -> Any:
    config = AioConfig(retries={"max_attempts": retries, "mode": "standard"})
    return get_session().create_client(
        "dynamodbstreams", region_name=REGION, endpoint_url=url, config=config, **CREDS
    )


@pytest.fixture
async def client(server: tuple[StreamsServer, str]) -> AsyncIterator[Client]:
    async with _client(server[1]) as c:
        yield c


def item(pk: str, **attrs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"pk": {"S": pk}}
    out.update({k: {"N": str(v)} for k, v in attrs.items()})
    return out


async def iterator(client: Client, arn: str, shard: str, kind: str, seq: str | None = None) -> str:
    kwargs: dict[str, Any] = {"StreamArn": arn, "ShardId": shard, "ShardIteratorType": kind}
    if seq is not None:
        kwargs["SequenceNumber"] = seq
    resp = await client.get_shard_iterator(**kwargs)
    return str(resp["ShardIterator"])


async def drain(client: Client, it: str, limit: int = 1000) -> tuple[list[dict[str, Any]], bool]:
    """Every record from ``it`` on; True if the shard ended (no NextShardIterator)."""
    records: list[dict[str, Any]] = []
    while True:
        resp = await client.get_records(ShardIterator=it, Limit=limit)
        records.extend(resp["Records"])
        if "NextShardIterator" not in resp:
            return records, True
        if not resp["Records"]:
            return records, False
        it = resp["NextShardIterator"]


def seqs(records: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in records]


async def describe_all(client: Client, arn: str, **kwargs: Any) -> tuple[list[dict], int]:
    shards: list[dict[str, Any]] = []
    pages = 0
    while True:
        resp = (await client.describe_stream(StreamArn=arn, **kwargs))["StreamDescription"]
        pages += 1
        shards.extend(resp["Shards"])
        if "LastEvaluatedShardId" not in resp:
            return shards, pages
        kwargs["ExclusiveStartShardId"] = resp["LastEvaluatedShardId"]


# -- listing and paging -----------------------------------------------------------------


async def test_describe_stream_pages_shards_and_list_streams(
    server: Served, client: Client
) -> None:
    srv, _ = server
    arn = srv.create_stream("orders", keys=("pk", "sk"), shards=7)
    first = (await client.describe_stream(StreamArn=arn))["StreamDescription"]
    assert first["StreamStatus"] == "ENABLED" and first["TableName"] == "orders"
    assert first["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(first["CreationRequestDateTime"], datetime)
    assert first["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert (
        len(first["Shards"]) == 3
        and first["LastEvaluatedShardId"] == first["Shards"][-1]["ShardId"]
    )
    shards, pages = await describe_all(client, arn)
    assert pages == 3 and [s["ShardId"] for s in shards] == srv.open_shards("orders")
    assert len({s["ShardId"] for s in shards}) == 7
    for s in shards:
        assert 28 <= len(s["ShardId"]) <= 65 and "ParentShardId" not in s
        assert "EndingSequenceNumber" not in s["SequenceNumberRange"]
    _, pages = await describe_all(client, arn, Limit=2)
    assert pages == 4  # Limit below the page size wins

    for name in ("a-table", "b-table"):
        srv.create_stream(name)
    page = await client.list_streams(Limit=2)
    assert len(page["Streams"]) == 2 and "LastEvaluatedStreamArn" in page
    rest = await client.list_streams(ExclusiveStartStreamArn=page["LastEvaluatedStreamArn"])
    assert len(rest["Streams"]) == 1 and "LastEvaluatedStreamArn" not in rest
    only = await client.list_streams(TableName="orders")
    assert only["Streams"] == [
        {"StreamArn": arn, "TableName": "orders", "StreamLabel": first["StreamLabel"]}
    ]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        await client.list_streams(TableName="missing")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        await client.describe_stream(StreamArn=arn.replace("orders", "nothere"))


# -- iterators and records ------------------------------------------------------------------


async def test_each_iterator_type(server: Served, client: Client) -> None:
    srv, _ = server
    arn = srv.create_stream("t1")
    shard = srv.open_shards("t1")[0]
    a, b, c = (srv.put("t1", item(k)) for k in "abc")
    assert int(a) < int(b) < int(c) and len(a) >= 21

    records, ended = await drain(client, await iterator(client, arn, shard, "TRIM_HORIZON"))
    assert seqs(records) == [a, b, c] and not ended
    latest = await iterator(client, arn, shard, "LATEST")
    at_b = await iterator(client, arn, shard, "AT_SEQUENCE_NUMBER", b)
    after_b = await iterator(client, arn, shard, "AFTER_SEQUENCE_NUMBER", b)
    d = srv.put("t1", item("d"))
    assert seqs((await drain(client, latest))[0]) == [d]
    assert seqs((await drain(client, at_b))[0]) == [b, c, d]
    assert seqs((await drain(client, after_b))[0]) == [c, d]
    # Limit pages through NextShardIterator, which keeps coming on an open shard
    resp = await client.get_records(ShardIterator=at_b, Limit=2)
    assert seqs(resp["Records"]) == [b, c]
    resp = await client.get_records(ShardIterator=resp["NextShardIterator"], Limit=2)
    assert seqs(resp["Records"]) == [d]
    resp = await client.get_records(ShardIterator=resp["NextShardIterator"])
    assert resp["Records"] == [] and "NextShardIterator" in resp


async def test_records_are_lambdas_dynamodb_records(server: Served, client: Client) -> None:
    srv, _ = server
    arn = srv.create_stream("t2", keys=("pk",), view_type="NEW_AND_OLD_IMAGES")
    srv.put("t2", item("k", v=1))
    srv.put("t2", item("k", v=2))
    srv.delete("t2", {"pk": {"S": "k"}})
    assert srv.delete("t2", {"pk": {"S": "k"}}) is None  # absent: no record
    srv.put("t2", item("gone", v=3))
    srv.delete("t2", {"pk": {"S": "gone"}}, ttl=True)  # expired by Time to Live
    shard = srv.open_shards("t2")[0]
    records, _ = await drain(client, await iterator(client, arn, shard, "TRIM_HORIZON"))
    names = [r["eventName"] for r in records]
    assert names == ["INSERT", "MODIFY", "REMOVE", "INSERT", "REMOVE"]
    insert, modify, remove = (r["dynamodb"] for r in records[:3])
    assert "OldImage" not in insert and insert["NewImage"]["v"] == {"N": "1"}
    assert modify["OldImage"]["v"] == {"N": "1"} and modify["NewImage"]["v"] == {"N": "2"}
    assert "NewImage" not in remove and remove["OldImage"]["v"] == {"N": "2"}
    assert len({r["eventID"] for r in records}) == 5
    assert [r.get("userIdentity") for r in records[2:]] == [
        None, None, {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"},
    ]  # fmt: skip

    # As Lambda delivers them: eventSourceARN added, epoch-seconds timestamps, in Records.
    lambda_records = []
    for r in records:
        body = dict(
            r["dynamodb"],
            ApproximateCreationDateTime=r["dynamodb"]["ApproximateCreationDateTime"].timestamp(),
        )
        lambda_records.append(dict(r, dynamodb=body, eventSourceARN=arn))
        if "userIdentity" in r:  # Lambda's spelling of the API's Identity shape
            who = r["userIdentity"]
            lambda_records[-1]["userIdentity"] = {
                "type": who["Type"],
                "principalId": who["PrincipalId"],
            }
    event = json.loads(json.dumps({"Records": lambda_records}))
    parsed = DynamoDBStreamModel.model_validate(event)
    assert [p.dynamodb.NewImage for p in parsed.Records] == [
        {"pk": "k", "v": 1},
        {"pk": "k", "v": 2},
        None,
        {"pk": "gone", "v": 3},
        None,
    ]
    assert parsed.Records[2].dynamodb.OldImage == {"pk": "k", "v": 2}
    assert parsed.Records[2].userIdentity is None
    ttl = parsed.Records[4].userIdentity
    assert ttl is not None and ttl.principalId == "dynamodb.amazonaws.com"

    # the raw wire form validates too (no botocore parsing in between)
    async with aiohttp.ClientSession() as http:
        raw = await _post(
            http,
            srv,
            "GetRecords",
            {"ShardIterator": await iterator(client, arn, shard, "TRIM_HORIZON")},
        )
    assert isinstance(raw[1]["Records"][0]["dynamodb"]["ApproximateCreationDateTime"], int)
    wire = [dict(r, eventSourceARN=arn) for r in raw[1]["Records"]]
    assert len(DynamoDBStreamModel.model_validate({"Records": wire[:4]}).Records) == 4
    # ... except userIdentity: the API spells it as its Identity shape, Lambda's event not,
    # so an adapter passing it through unchanged gives handlers the wrong keys
    assert wire[4]["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    with pytest.raises(ValidationError):
        DynamoDBStreamModel.model_validate({"Records": wire[4:]})


@pytest.mark.parametrize(
    ("view", "present"),
    [("KEYS_ONLY", set()), ("NEW_IMAGE", {"NewImage"}), ("OLD_IMAGE", {"OldImage"})],
)
async def test_view_types(server: Served, client: Client, view: str, present: set[str]) -> None:
    srv, _ = server
    arn = srv.create_stream("views", view_type=view)
    srv.put("views", item("k", v=1))
    srv.put("views", item("k", v=2))
    records, _ = await drain(
        client, await iterator(client, arn, srv.open_shards("views")[0], "TRIM_HORIZON")
    )
    modify = records[1]["dynamodb"]
    assert modify["StreamViewType"] == view and modify["Keys"] == {"pk": {"S": "k"}}
    assert {"NewImage", "OldImage"} & set(modify) == present


# -- lineage: splits and closes -----------------------------------------------------------


async def test_split_and_close_build_lineage_and_closed_shards_end(
    server: Served, client: Client
) -> None:
    srv, _ = server
    arn = srv.create_stream("gen")
    keys = [f"k{i}" for i in range(40)]
    [root] = srv.open_shards("gen")
    for k in keys:
        srv.put("gen", item(k, v=0))
    left, right = srv.split_shard("gen", root)
    for k in keys:
        srv.put("gen", item(k, v=1))
    grandchild = srv.close_shard("gen", left)
    for k in keys:
        srv.put("gen", item(k, v=2))
    assert srv.open_shards("gen") == [right, grandchild]

    shards, _ = await describe_all(client, arn)
    by_id = {s["ShardId"]: s for s in shards}
    assert [s["ShardId"] for s in shards] == [root, left, right, grandchild]
    assert by_id[left]["ParentShardId"] == root == by_id[right]["ParentShardId"]
    assert by_id[grandchild]["ParentShardId"] == left
    for closed in (root, left):
        rng = by_id[closed]["SequenceNumberRange"]
        assert int(rng["StartingSequenceNumber"]) < int(rng["EndingSequenceNumber"])
    assert int(by_id[root]["SequenceNumberRange"]["EndingSequenceNumber"]) < int(
        by_id[left]["SequenceNumberRange"]["StartingSequenceNumber"]
    )
    children = await client.describe_stream(
        StreamArn=arn, ShardFilter={"Type": "CHILD_SHARDS", "ShardId": root}
    )
    assert [s["ShardId"] for s in children["StreamDescription"]["Shards"]] == [left, right]

    # a closed shard read to its end: the last page has records and no NextShardIterator
    resp = await client.get_records(
        ShardIterator=await iterator(client, arn, root, "TRIM_HORIZON"), Limit=39
    )
    assert len(resp["Records"]) == 39 and "NextShardIterator" in resp
    last = await client.get_records(ShardIterator=resp["NextShardIterator"], Limit=39)
    assert len(last["Records"]) == 1 and "NextShardIterator" not in last
    latest = await client.get_records(ShardIterator=await iterator(client, arn, root, "LATEST"))
    assert latest["Records"] == [] and "NextShardIterator" not in latest

    # AT/AFTER_SEQUENCE_NUMBER take a number of that shard (or its StartingSequenceNumber)
    start = by_id[root]["SequenceNumberRange"]["StartingSequenceNumber"]
    from_start, _ = await drain(
        client, await iterator(client, arn, root, "AT_SEQUENCE_NUMBER", start)
    )
    assert len(from_start) == 40
    with pytest.raises(ClientError) as err:  # the parent's checkpoint used on a child
        await iterator(client, arn, left, "AFTER_SEQUENCE_NUMBER", seqs(from_start)[-1])
    assert err.value.response["Error"]["Code"] == "ValidationException"

    # Read parents before children: every key's changes arrive in order, and a key only
    # ever moves from a shard to one of its children.
    seen: dict[str, list[int]] = {}
    home: dict[str, str] = {}
    for shard in (root, left, right, grandchild):
        records, ended = await drain(client, await iterator(client, arn, shard, "TRIM_HORIZON"))
        assert ended == (shard in (root, left))
        for r in records:
            k = r["dynamodb"]["Keys"]["pk"]["S"]
            seen.setdefault(k, []).append(int(r["dynamodb"]["SequenceNumber"]))
            if k in home and home[k] != shard:
                assert by_id[shard]["ParentShardId"] == home[k], (k, home[k], shard)
            home[k] = shard
    assert set(seen) == set(keys)
    assert all(len(s) == 3 and s == sorted(s) for s in seen.values())
    assert {home[k] for k in keys} == {right, grandchild}  # both halves receive keys


def test_routing_is_a_pure_function_of_the_key() -> None:
    srv = StreamsServer()
    srv.create_stream("r", shards=4)
    first = {}
    for i in range(100):
        srv.put("r", item(f"k{i}"))
    for shard_info in srv.shards("r"):
        shard = srv._streams["r"].shards[shard_info["ShardId"]]
        for _, record in shard.records:
            keys = record["dynamodb"]["Keys"]
            assert shard.lo <= key_hash(keys) < shard.hi
            first[key_string(keys)] = shard.shard_id
    assert len(set(first.values())) == 4
    assert key_string({"b": {"S": "1"}, "a": {"N": "2"}}) == key_string(
        {"a": {"N": "2"}, "b": {"S": "1"}}
    )


# -- expiry, trimming, throttling --------------------------------------------------------


async def test_expired_iterators(server: Served, client: Client) -> None:
    srv, _ = server
    arn = srv.create_stream("exp")
    shard = srv.open_shards("exp")[0]
    srv.put("exp", item("a"))
    old = await iterator(client, arn, shard, "TRIM_HORIZON")
    resp = await client.get_records(ShardIterator=old, Limit=1)
    next_it = resp["NextShardIterator"]
    srv.expire_iterators()
    for stale in (old, next_it):
        with pytest.raises(client.exceptions.ExpiredIteratorException):
            await client.get_records(ShardIterator=stale)
    fresh = await iterator(client, arn, shard, "AFTER_SEQUENCE_NUMBER", seqs(resp["Records"])[0])
    srv.put("exp", item("b"))
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in (await drain(client, fresh))[0]] == ["b"]


async def test_trim_drops_oldest_across_shards(server: Served, client: Client) -> None:
    srv, _ = server
    arn = srv.create_stream("trim", shards=2)
    written = [srv.put("trim", item(f"k{i}")) for i in range(20)]
    shard_ids = srv.open_shards("trim")
    before = {s: await iterator(client, arn, s, "TRIM_HORIZON") for s in shard_ids}
    owner = {}
    for s in shard_ids:
        owner.update({n: s for n in seqs((await drain(client, before[s]))[0])})
    assert set(owner.values()) == set(shard_ids)

    dropped = srv.trim("trim", 5)
    assert dropped == written[:5]  # the oldest, whichever shard held them
    held: list[str] = []
    for s in shard_ids:
        held += seqs((await drain(client, await iterator(client, arn, s, "TRIM_HORIZON")))[0])
        if any(owner[n] == s for n in dropped):
            with pytest.raises(client.exceptions.TrimmedDataAccessException):
                await client.get_records(ShardIterator=before[s])
        else:
            assert len((await client.get_records(ShardIterator=before[s]))["Records"]) > 0
    assert sorted(held, key=int) == written[5:]

    last = dropped[-1]
    shard = owner[last]
    for gone in (last, dropped[0]) if owner[dropped[0]] == shard else (last,):
        with pytest.raises(client.exceptions.TrimmedDataAccessException):
            await iterator(client, arn, shard, "AT_SEQUENCE_NUMBER", gone)
    rest = await drain(client, await iterator(client, arn, shard, "AFTER_SEQUENCE_NUMBER", last))
    assert seqs(rest[0]) == [n for n in written[5:] if owner[n] == shard]
    assert srv.trim("trim", 100) == written[5:] and srv.trim("trim", 1) == []


async def test_throttling_answers_limit_exceeded(server: Served, client: Client) -> None:
    srv, url = server
    srv.create_stream("thr")
    srv.throttle(2)
    for _ in range(2):
        with pytest.raises(client.exceptions.LimitExceededException):
            await client.list_streams()
    assert len((await client.list_streams())["Streams"]) == 1
    # botocore retries throttling by itself: the caller sees success, the server 3 calls
    srv.throttle(2)
    before = srv.calls["ListStreams"]
    async with _client(url, retries=5) as retrying:
        assert len((await retrying.list_streams())["Streams"]) == 1
    assert srv.calls["ListStreams"] - before == 3


async def test_stall_holds_readers_in_place(server: Served, client: Client) -> None:
    srv, _ = server
    arn = srv.create_stream("stall")
    [shard] = srv.open_shards("stall")
    it = await iterator(client, arn, shard, "TRIM_HORIZON")
    srv.stall()
    a = srv.put("stall", item("a"))
    for _ in range(3):
        resp = await client.get_records(ShardIterator=it)
        assert resp["Records"] == []
        it = resp["NextShardIterator"]
    srv.stall(False)
    assert seqs((await drain(client, it))[0]) == [a]
    srv.expire_iterators()
    with pytest.raises(client.exceptions.ExpiredIteratorException):
        await client.get_records(ShardIterator=it)
    assert srv.errors == {"ExpiredIteratorException": 1}


# -- bad input ---------------------------------------------------------------------------


async def test_bad_requests_get_aws_errors(server: Served, client: Client) -> None:
    srv, _ = server
    arn = srv.create_stream("bad")
    shard = srv.open_shards("bad")[0]
    seq = srv.put("bad", item("a"))
    good = await iterator(client, arn, shard, "TRIM_HORIZON")
    body, _, mac = good.partition(".")
    tampered = body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB") + "." + mac
    for it in ("garbage", tampered, "x" * 2048, good + "x"):
        with pytest.raises(ClientError) as err:
            await client.get_records(ShardIterator=it)
        assert err.value.response["Error"]["Code"] == "ValidationException"
    cases: list[dict[str, Any]] = [
        {"ShardIteratorType": "AT_TIMESTAMP"},
        {"ShardIteratorType": "AT_SEQUENCE_NUMBER"},  # no SequenceNumber
        {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": "9" * 40},
        {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": "1" * 20 + "x"},
    ]
    for case in cases:
        with pytest.raises(ClientError) as err:
            await client.get_shard_iterator(StreamArn=arn, ShardId=shard, **case)
        assert err.value.response["Error"]["Code"] == "ValidationException", case
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        await client.get_shard_iterator(
            StreamArn=arn, ShardId="shardId-" + "0" * 29, ShardIteratorType="LATEST"
        )
    with pytest.raises(ClientError) as err:
        await client.get_records(ShardIterator=good, Limit=1001)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert len((await client.get_records(ShardIterator=good, Limit=1000))["Records"]) == 1

    async with aiohttp.ClientSession() as http:
        assert await _post(http, srv, "Nope", {}) == (400, "UnknownOperationException")
        assert await _post(http, srv, "GetRecords", b"{not json") == (400, "SerializationException")
        assert await _post(http, srv, "GetRecords", b"[1, 2]") == (400, "SerializationException")
        huge = {"ShardIterator": "x" * (2 << 20)}
        assert await _post(http, srv, "GetRecords", huge) == (413, "ValidationException")
        for params in (
            {"ShardIterator": 7},
            {"ShardIterator": good, "Limit": "5"},
            {"ShardIterator": good, "Limit": True},
            {"StreamArn": ["x"]},
        ):
            status, code = await _post(http, srv, "GetRecords", params)
            assert (status, code) == (400, "ValidationException"), params
    # nothing accepted was lost: the record is still there
    assert seqs(
        (await drain(client, await iterator(client, arn, shard, "AT_SEQUENCE_NUMBER", seq)))[0]
    ) == [seq]


def test_control_api_rejects_misuse() -> None:
    srv = StreamsServer()
    srv.create_stream("ctl")
    with pytest.raises(ValueError, match="already has a stream"):
        srv.create_stream("ctl")
    with pytest.raises(ValueError, match="key attribute"):
        srv.put("ctl", {"other": {"S": "x"}})
    with pytest.raises(KeyError):
        srv.put("nosuch", item("a"))
    with pytest.raises(ValueError, match="view_type"):
        srv.create_stream("v", view_type="EVERYTHING")
    [shard] = srv.open_shards("ctl")
    srv.close_shard("ctl", shard)
    with pytest.raises(ValueError, match="not an open shard"):
        srv.split_shard("ctl", shard)
    with pytest.raises(ValueError):
        StreamsServer(page_size=0)


def test_sequence_numbers_compare_as_numbers_across_digit_counts() -> None:
    """A consumer must compare sequence numbers as integers: their length varies."""
    srv = StreamsServer(first_sequence=10**21 - 3)
    srv.create_stream("len")
    numbers = [srv.put("len", item(f"k{i}")) for i in range(5)]
    assert len(numbers[0]) == 21 and len(numbers[-1]) == 22
    assert numbers != sorted(numbers) and [int(n) for n in numbers] == sorted(
        int(n) for n in numbers
    )


def test_threaded_server_serves_sync_clients() -> None:
    with StreamsServer.threaded(REGION) as (srv, url):
        arn = srv.create_stream("sync")
        srv.put("sync", item("a", v=1))
        client = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=url, **CREDS)
        shard = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        it = client.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )
        records = client.get_records(ShardIterator=it["ShardIterator"])["Records"]
        assert records[0]["dynamodb"]["NewImage"]["v"] == {"N": "1"}
        assert srv.calls["GetRecords"] == 1 and srv.calls["DescribeStream"] == 1


async def _post(http: aiohttp.ClientSession, srv: StreamsServer, op: str, body: Any) -> Any:
    """A raw request (no botocore): (status, error code) on errors, (200, body) otherwise."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "X-Amz-Target": f"{TARGET_PREFIX}.{op}",
        "Content-Type": "application/x-amz-json-1.0",
    }
    async with http.post(f"{srv.url}/", data=data, headers=headers) as resp:
        payload = await resp.json(content_type=None)
        if resp.status != 200:
            return resp.status, payload["__type"].rpartition("#")[2]
        return resp.status, payload
