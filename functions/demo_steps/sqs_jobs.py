"""SQS: a batch sent to a queue reaches its function as Lambda's SQS event."""

from __future__ import annotations

import json

from . import DemoContext

TITLE = "SQS (queue -> function, partial batch response)"
ORDER = 20


async def run(ctx: DemoContext) -> None:
    async with ctx.client("sqs") as sqs:
        url = (await sqs.get_queue_url(QueueName="demo-Jobs"))["QueueUrl"]
        entries = [{"Id": str(i), "MessageBody": json.dumps({"id": i})} for i in range(1, 4)]
        await sqs.send_message_batch(QueueUrl=url, Entries=entries)
    ctx.row("JobWorker", "SQS send_message_batch x3 to demo-Jobs", "sent")
    await ctx.reports({"JobWorker"}, expected=3)
