"""Seed use case: the daily 12:00 backup. The scheduler fires the noon tick of the demo
template's schedule onto the bus; the event on the stream (EventBridge's scheduled event,
checked with powertools) runs the backup handler against moto over HTTP, which writes the
table to S3 as JSON lines under the tick's date."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiobotocore.session import get_session
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from redis.asyncio import Redis

from adapters.schedule.scheduler import scheduler_for
from adapters.template import load_template
from bus.envelope import decode
from bus.keys import FunctionKeys
from functions.backup import app

ROOT = Path(__file__).resolve().parents[1]
NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()


class FixedClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float, stop: asyncio.Event) -> None:
        raise AssertionError("not used: the test calls fire_next/run_due itself")


@pytest.fixture
async def aws(aws_env: str, stack_name: str) -> AsyncIterator[dict[str, Any]]:
    table, bucket = f"{stack_name}-src", f"{stack_name}-backups"
    session = get_session()
    async with (
        session.create_client("dynamodb") as ddb,
        session.create_client("s3") as s3,
    ):
        await ddb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        await s3.create_bucket(Bucket=bucket)
        yield {"ddb": ddb, "s3": s3, "table": table, "bucket": bucket}


async def test_noon_tick_backs_the_table_up_as_json_lines(
    aws: dict[str, Any], redis: Redis, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [
        {"id": {"S": "user-1"}, "name": {"S": "ada"}, "n": {"N": "1"}},
        {"id": {"S": "user-2"}, "score": {"N": "2.5"}, "tags": {"SS": ["b", "a"]},
         "raw": {"B": b"\x00\x01"}, "nested": {"M": {"k": {"L": [{"N": "7"}, {"NULL": True}]}}}},
    ]  # fmt: skip
    for item in items:
        await aws["ddb"].put_item(TableName=aws["table"], Item=item)

    loaded = load_template(ROOT / "template.yaml", stack_name=stack_name)
    scheduler = scheduler_for(redis, loaded, clock=FixedClock(NOON - 5 * 3600))
    assert await scheduler.fire_next("DailyBackup.Noon") == NOON  # the coming 12:00, now
    (_, fields), *rest = await redis.xrange(FunctionKeys(stack_name, "DailyBackup").stream)
    assert rest == []
    event = decode(fields[b"d"]).record
    model = EventBridgeModel.model_validate(event)
    assert (model.source, model.detail_type) == ("aws.events", "Scheduled Event")
    assert model.resources == [
        f"arn:aws:events:us-east-1:123456789012:rule/{stack_name}-DailyBackupNoon"
    ]

    monkeypatch.setenv("TABLE_NAME", aws["table"])
    monkeypatch.setenv("BUCKET_NAME", aws["bucket"])
    app._aws.cache_clear()
    context = SimpleNamespace(function_name="DailyBackup")
    result = await asyncio.to_thread(app.lambda_handler, event, context)
    key = f"backups/{aws['table']}/2026-11-27/120000Z.jsonl"
    assert result == {"bucket": aws["bucket"], "key": key, "items": 2}

    obj = await aws["s3"].get_object(Bucket=aws["bucket"], Key=key)
    lines = (await obj["Body"].read()).decode().splitlines()
    backed_up = sorted((json.loads(line) for line in lines), key=lambda i: i["id"])
    assert backed_up == [
        {"id": "user-1", "name": "ada", "n": 1},
        {"id": "user-2", "score": 2.5, "tags": ["a", "b"], "raw": "AAE=",
         "nested": {"k": [7, None]}},
    ]  # fmt: skip

    # A scheduler reaching noon later does not fire that tick again (its claim is done).
    later = scheduler_for(redis, loaded, clock=FixedClock(NOON - 30))
    assert await later.run_due() == 0
    later.clock = FixedClock(NOON + 1)
    assert await later.run_due() == 0
    assert (
        later.fired == [] and await redis.xlen(FunctionKeys(stack_name, "DailyBackup").stream) == 1
    )


async def test_empty_table_writes_an_empty_backup(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABLE_NAME", aws["table"])
    monkeypatch.setenv("BUCKET_NAME", aws["bucket"])
    app._aws.cache_clear()
    event = {"time": "2026-11-28T12:00:00Z"}
    result = await asyncio.to_thread(app.lambda_handler, event, SimpleNamespace(function_name="B"))
    assert result["items"] == 0
    obj = await aws["s3"].get_object(Bucket=aws["bucket"], Key=result["key"])
    assert await obj["Body"].read() == b""


def test_cli_fires_a_schedule_now_and_rejects_bad_names(
    redis_url: str, stack_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from redis import Redis as SyncRedis

    from adapters.cli import main

    base = ["--redis-url", redis_url, "--template", str(ROOT / "template.yaml"),
            "--stack-name", stack_name, "adapter", "schedule"]  # fmt: skip
    assert main([*base, "--fire", "DailyBackup.Noon"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["schedule"] == "DailyBackup.Noon" and out["tick"].endswith("T12:00:00Z")
    # the same tick is not fired twice
    assert main([*base, "--fire", "DailyBackup.Noon"]) == 2
    assert "already fired" in capsys.readouterr().err
    assert main([*base, "--fire", "DailyBackup.Nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("no schedule 'DailyBackup.Nope' (known: DailyBackup.Noon)")
    client = SyncRedis.from_url(redis_url)
    try:
        assert client.xlen(FunctionKeys(stack_name, "DailyBackup").stream) == 1
    finally:
        client.close()
