"""S3, SQS and SNS seed use cases: thumbnail, PDF preview, messages table, mail.

An image and a PDF go to the uploads bucket (S3 notifies the Thumbnail and
PdfPreview functions through their suffix filters), four messages to the inbox
queue (one is not JSON: StoreMessages names it in its partial batch response
and, after the queue's ``maxReceiveCount``, it lands in the dead-letter queue),
and one message to the announcements topic, which the Mailer sends to the
aiosmtpd sink this step starts before the stack. Then the step reads the
results back where they landed: S3, DynamoDB, the dead-letter queue, the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import queue
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from PIL import Image, ImageDraw

from bus.embedded import free_port

from . import DemoContext

TITLE = "S3 / SQS / SNS seed use cases (thumbnail, PDF preview, DynamoDB, mail)"
ORDER = 30

UPLOADS = "demo-mediauploads"
THUMBNAILS = "demo-mediathumbnails"
PREVIEWS = "demo-mediapreviews"
PHOTO, PDF = "photos/sunset beach.jpg", "docs/brochure.pdf"
FUNCTIONS = {"Thumbnail", "PdfPreview", "StoreMessages", "Mailer"}
REPORTS = 1 + 1 + 3 + 2 + 1
"""One thumbnail, one preview, three stored messages, two receives of the bad one, one mail."""


class _Sink:
    """aiosmtpd handler: received mails go on a queue the step awaits."""

    def __init__(self) -> None:
        self.mails: queue.Queue[tuple[list[str], Message]] = queue.Queue()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.put((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


_sink = _Sink()
_smtp: dict[str, str] = {}


def services(stack: contextlib.ExitStack) -> dict[str, str]:
    """Start the SMTP sink on a free port; the Mailer is pointed at it."""
    controller = Controller(_sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    stack.callback(controller.stop)
    _smtp.update(SmtpHost="127.0.0.1", SmtpPort=str(controller.port))
    return dict(_smtp)


def _photo() -> bytes:
    image = Image.linear_gradient("L").resize((640, 427)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def _pdf() -> bytes:
    pages = [Image.new("RGB", (612, 792), "white"), Image.new("RGB", (792, 612), "white")]
    for n, page in enumerate(pages, 1):
        ImageDraw.Draw(page).text((72, 72), f"lambdabus brochure, page {n}", fill="black")
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:])
    return out.getvalue()


async def run(ctx: DemoContext) -> None:
    async with ctx.client("s3") as s3, ctx.client("sqs") as sqs, ctx.client("sns") as sns:
        await s3.put_object(Bucket=UPLOADS, Key=PHOTO, Body=_photo())
        await s3.put_object(Bucket=UPLOADS, Key=PDF, Body=_pdf())
        ctx.row("Thumbnail, PdfPreview", f"S3 put_object {PHOTO}, {PDF}", "uploaded")
        inbox = (await sqs.get_queue_url(QueueName="demo-InboxMessages"))["QueueUrl"]
        bodies = [json.dumps({"id": f"order-{i}", "total": i * 10}) for i in (1, 2, 3)]
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate([*bodies, "not json"])]
        await sqs.send_message_batch(QueueUrl=inbox, Entries=entries)
        ctx.row("StoreMessages", "SQS send_message_batch x4 (one not JSON)", "sent")
        topics = (await sns.list_topics())["Topics"]
        topic = next(t["TopicArn"] for t in topics if t["TopicArn"].endswith(":demo-Announcements"))
        await sns.publish(TopicArn=topic, Subject="Nightly backup done", Message="All 3 tables.")
        ctx.row("Mailer", "SNS publish 'Nightly backup done'", "published")

        await ctx.reports(FUNCTIONS, expected=REPORTS)

        head = await s3.get_object(Bucket=THUMBNAILS, Key=PHOTO)
        data = await head["Body"].read()
        with Image.open(io.BytesIO(data)) as img:
            shown = f"640x427 -> {img.width}x{img.height} {img.format}, {len(data)} bytes"
        ctx.row("Thumbnail", f"s3://{THUMBNAILS}/{PHOTO}", shown)
        key = PDF[: -len(".pdf")] + ".png"
        data = await (await s3.get_object(Bucket=PREVIEWS, Key=key))["Body"].read()
        with Image.open(io.BytesIO(data)) as img:
            signature = "PNG signature ok" if data.startswith(b"\x89PNG\r\n\x1a\n") else "NOT PNG"
            shown = f"{img.width}x{img.height}, {len(data)} bytes, {signature}"
        ctx.row("PdfPreview", f"s3://{PREVIEWS}/{key}", shown)

        async with ctx.client("dynamodb") as dynamodb:
            items = (await dynamodb.scan(TableName="demo-InboxTable"))["Items"]
        ids = ", ".join(sorted(i["id"]["S"] for i in items))
        ctx.row("StoreMessages", "DynamoDB scan demo-InboxTable", f"{len(items)} items: {ids}")
        dead = (await sqs.get_queue_url(QueueName="demo-InboxDeadLetters"))["QueueUrl"]
        got = await sqs.receive_message(QueueUrl=dead, WaitTimeSeconds=10)
        bodies = [m["Body"] for m in got.get("Messages", [])]
        ctx.row("StoreMessages", "SQS receive demo-InboxDeadLetters", f"dead letters: {bodies}")

    rcpt, mail = await asyncio.to_thread(_sink.mails.get, timeout=30)
    where = f"{_smtp['SmtpHost']}:{_smtp['SmtpPort']}"
    ctx.row(
        "Mailer",
        f"aiosmtpd sink {where}",
        f"mail to {', '.join(rcpt)}: Subject {mail['Subject']!r}",
    )
