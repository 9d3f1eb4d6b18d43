"""Schedules: the daily 12:00 backup (DynamoDB table -> S3 JSON lines), run now.

Nobody waits for noon: ``lambdabus adapter schedule --fire DailyBackup.Noon`` fires the
schedule's next tick ahead of time, through the same claim the scheduler uses, so the
scheduler in ``lambdabus dev`` will not fire that tick again at noon. The function gets
EventBridge's scheduled event with ``time`` = the coming 12:00.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from . import DemoContext

TITLE = "Schedule (cron(0 12 * * ? *) backup, fired ahead of time)"
ORDER = 50
ROOT = Path(__file__).resolve().parents[2]
TABLE, BUCKET = "demo-BackupSource", "demo-backups"


async def run(ctx: DemoContext) -> None:
    async with ctx.client("dynamodb") as ddb:
        for i, name in enumerate(["ada", "grace", "edsger"], start=1):
            await ddb.put_item(
                TableName=TABLE,
                Item={"id": {"S": f"user-{i}"}, "name": {"S": name}, "n": {"N": str(i)}},
            )
    ctx.row("DailyBackup", f"put_item x3 into {TABLE}", "stored")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "--redis-url", ctx.endpoints["redis"],
        "--template", str(ROOT / "template.yaml"), "adapter", "schedule",
        "--fire", "DailyBackup.Noon",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    try:
        fired = "fired tick " + json.loads(out.decode().strip().splitlines()[-1])["tick"]
    except (ValueError, IndexError, KeyError):
        fired = (err or out).decode().strip()[-120:] or f"exit code {proc.returncode}"
    ctx.row("DailyBackup", "lambdabus adapter schedule --fire", fired)
    reports = await ctx.reports({"DailyBackup"}, expected=1)
    if not reports:
        ctx.row("DailyBackup", "backup", "no report within 60 s")
        return
    key = reports[0]["key"]
    async with ctx.client("s3") as s3:
        obj = await s3.get_object(Bucket=BUCKET, Key=key)
        lines = (await obj["Body"].read()).decode().splitlines()
    for i, line in enumerate(lines, start=1):
        ctx.row("DailyBackup", f"s3 object line {i}", json.dumps(json.loads(line)))
