"""Issue 4's seed use cases: S3 thumbnail, PDF preview, SQS -> DynamoDB, SNS -> mail.

The handlers' pure parts are tested directly; their S3 and DynamoDB code runs
in-process against moto over HTTP on events from ``adapters.samples``
(validated with Powertools' models); and one ``lambdabus dev`` of
``tests/templates/seed_storage.yaml`` runs them end to end, with an aiosmtpd
sink for the mail and a private Redis the handlers report to.
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import boto3
import pytest
from aiosmtpd.controller import Controller
from aws_lambda_powertools.utilities.parser.models import S3Model, SnsModel, SqsModel
from PIL import Image
from redis import Redis

from adapters.samples import generate
from bus.embedded import EmbeddedRedis, free_port
from functions.mailer import app as mailer
from functions.pdf_preview import app as pdf_preview
from functions.store_messages import app as store_messages
from functions.thumbnail import app as thumbnail

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "tests" / "templates" / "seed_storage.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T = TypeVar("T")


def image_bytes(size: tuple[int, int], fmt: str = "PNG", color: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def pdf_bytes(pages: list[tuple[int, int]]) -> bytes:
    """A PDF whose pages have these sizes in points (Pillow writes 72 dpi: 1 px = 1 pt)."""
    images = [Image.new("RGB", size, "white") for size in pages]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:])
    return out.getvalue()


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 30) -> T:
    """Bounded polling of state another process writes (S3, DynamoDB, Redis)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# -- pure parts --------------------------------------------------------------------------


def test_thumbnail_size_keeps_the_aspect_ratio_and_never_upscales() -> None:
    assert thumbnail.thumbnail_size(300, 200, 128) == (128, 85)
    assert thumbnail.thumbnail_size(100, 400, 128) == (32, 128)
    assert thumbnail.thumbnail_size(64, 32, 128) == (64, 32)
    assert thumbnail.thumbnail_size(10_000, 1, 128) == (128, 1)  # never 0 pixels
    with pytest.raises(thumbnail.RejectedImage, match="no pixels"):
        thumbnail.thumbnail_size(0, 10)


def test_make_thumbnail_keeps_the_format_and_refuses_what_is_not_an_image() -> None:
    data, content_type, size = thumbnail.make_thumbnail(image_bytes((400, 300), "JPEG"), 128)
    assert (content_type, size) == ("image/jpeg", (128, 96))
    with Image.open(io.BytesIO(data)) as img:
        assert (img.format, img.size) == ("JPEG", (128, 96))
    with pytest.raises(thumbnail.RejectedImage, match="not an image"):
        thumbnail.make_thumbnail(b"<html>not a picture</html>")
    with pytest.raises(thumbnail.RejectedImage, match="unsupported image format BMP"):
        thumbnail.make_thumbnail(image_bytes((10, 10), "BMP"))
    truncated = image_bytes((200, 200), "JPEG", "red")
    with pytest.raises(thumbnail.RejectedImage, match="cannot decode"):
        thumbnail.make_thumbnail(truncated[: len(truncated) // 3])


def test_make_thumbnail_refuses_a_decompression_bomb_before_decoding_it() -> None:
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, format="PNG")  # 48 Mpx in a few KB
    assert len(out.getvalue()) < 100_000
    with pytest.raises(thumbnail.RejectedImage, match="8000x6000 pixels is over"):
        thumbnail.make_thumbnail(out.getvalue())


def test_preview_key_and_render_scale() -> None:
    assert pdf_preview.preview_key("docs/Report.PDF") == "docs/Report.png"
    assert pdf_preview.preview_key("odd-name") == "odd-name.png"
    assert pdf_preview.render_scale(612, 792, 800) == pytest.approx(800 / 792)
    with pytest.raises(pdf_preview.RejectedPdf, match="no area"):
        pdf_preview.render_scale(0, 792)
    with pytest.raises(pdf_preview.RejectedPdf, match="too large"):
        pdf_preview.render_scale(14_400, 14_400, 10_000)


def test_render_first_page_renders_page_one_only_and_refuses_non_pdfs() -> None:
    png, size = pdf_preview.render_first_page(pdf_bytes([(300, 600), (600, 300)]), 400)
    assert png.startswith(PNG_SIGNATURE)
    assert size == (200, 400)  # the first page's portrait shape, not the second's
    with Image.open(io.BytesIO(png)) as img:
        assert img.size == (200, 400) and img.convert("RGB").getpixel((100, 200)) == (255, 255, 255)
    with pytest.raises(pdf_preview.RejectedPdf, match="cannot open the PDF"):
        pdf_preview.render_first_page(b"%PDF-1.7 but then garbage")


def sqs_record(body: str) -> dict[str, Any]:
    event = generate("sqs", "receive-message", {"body": body})
    SqsModel.model_validate(event)
    record: dict[str, Any] = event["Records"][0]
    return record


def test_item_of_keys_by_the_bodys_id_or_the_message_id() -> None:
    record = sqs_record(json.dumps({"id": 42, "text": "hi"}))
    item = store_messages.item_of(record)
    assert item["id"] == {"S": "42"} and item["body"] == {"S": record["body"]}
    assert item["messageId"] == {"S": record["messageId"]}
    assert item["sentTimestamp"] == {"N": record["attributes"]["SentTimestamp"]}
    anonymous = sqs_record(json.dumps({"text": "no id"}))
    assert store_messages.item_of(anonymous)["id"] == {"S": anonymous["messageId"]}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON list, not an object"),
        (json.dumps({"id": True}), "id must be"),
        (json.dumps({"id": ""}), "id must be"),
        (json.dumps({"id": {"nested": 1}}), "id must be"),
        (json.dumps({"id": "x" * 300}), "over 256 characters"),
        (json.dumps({"id": 1, "blob": "x" * 400_000}), "bytes is over"),
    ],
)
def test_item_of_refuses_messages_that_can_never_be_stored(body: str, reason: str) -> None:
    with pytest.raises(store_messages.BadMessage, match=reason):
        store_messages.item_of(sqs_record(body))


def sns_record(subject: str, message: str) -> dict[str, Any]:
    event = generate("sns", "notification", {"subject": subject, "message": message})
    SnsModel.model_validate(event)
    record: dict[str, Any] = event["Records"][0]
    return record


def test_mail_of_uses_the_sns_subject_and_refuses_header_injection() -> None:
    record = sns_record("Disk almost full", "92% used on /data")
    mail = mailer.mail_of(record, "from@example.com", "to@example.com")
    assert mail["Subject"] == "Disk almost full" and mail["To"] == "to@example.com"
    assert mail["X-SNS-MessageId"] == record["Sns"]["MessageId"]
    assert mail.get_content().strip() == "92% used on /data"
    untitled = mailer.mail_of(sns_record("", "body"), "f@x", "t@x")
    assert untitled["Subject"] == mailer.DEFAULT_SUBJECT
    hostile = sns_record("hi", "body")
    hostile["Sns"]["Subject"] = "hi\r\nBcc: everyone@example.com"
    with pytest.raises(mailer.BadNotification, match="printable ASCII"):
        mailer.mail_of(hostile, "f@x", "t@x")
    with pytest.raises(mailer.BadNotification, match="over 262144 bytes"):
        mailer.mail_of(sns_record("big", "x" * 300_000), "f@x", "t@x")
    with pytest.raises(mailer.BadNotification, match="not an SNS record"):
        mailer.mail_of({"body": "an SQS record"}, "f@x", "t@x")


def test_smtp_address_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    assert mailer.smtp_address() is None
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", "2525")
    assert mailer.smtp_address() == ("127.0.0.1", 2525)
    monkeypatch.setenv("SMTP_PORT", "25; rm -rf /")
    with pytest.raises(mailer.BadNotification, match="not a port number"):
        mailer.smtp_address()


# -- handlers against moto (in-process, over HTTP) ---------------------------------------


def s3_event(bucket: str, encoded_key: str, size: int) -> dict[str, Any]:
    event = generate("s3", "put", {"bucket": bucket, "key": encoded_key, "size": str(size)})
    S3Model.model_validate(event)
    return event


def test_thumbnail_handler_decodes_keys_and_finishes_the_batch_before_failing(
    aws_env: str, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto3.client("s3")
    source, target = f"{stack_name}-up", f"{stack_name}-thumbs"
    for bucket in (source, target):
        s3.create_bucket(Bucket=bucket)
    photo = image_bytes((300, 200))
    s3.put_object(Bucket=source, Key="my photos/cat+dog.png", Body=photo)
    s3.put_object(Bucket=source, Key="fake.png", Body=b"GIF89a... not really")
    event = {
        "Records": [
            s3_event(source, "fake.png", 20)["Records"][0],
            s3_event(source, "my photos/cat+dog.png", len(photo))["Records"][0],
        ]
    }
    monkeypatch.setenv("THUMBNAIL_BUCKET", target)
    thumbnail._s3.cache_clear()  # a client for moto, made from the environment as on Lambda
    try:
        with pytest.raises(thumbnail.RejectedImage, match=rf"s3://{source}/fake.png: not an"):
            thumbnail.lambda_handler(event, SimpleNamespace(function_name="Thumbnail"))
    finally:
        thumbnail._s3.cache_clear()
    made = s3.get_object(Bucket=target, Key="my photos/cat+dog.png")  # the good one was done
    with Image.open(io.BytesIO(made["Body"].read())) as img:
        assert img.size == (128, 85)
    assert made["Metadata"]["source"] == f"s3://{source}/my photos/cat+dog.png"
    huge = s3_event(source, "huge.png", thumbnail.MAX_SOURCE_BYTES + 1)["Records"][0]
    with pytest.raises(thumbnail.RejectedImage, match="byte limit"):  # refused unread
        thumbnail.thumbnail_object(s3, huge, target)
    same = s3_event(target, "x.png", 10)["Records"][0]
    with pytest.raises(thumbnail.RejectedImage, match="a loop"):
        thumbnail.thumbnail_object(s3, same, target)
    gone = s3_event(source, "deleted since.png", 10)["Records"][0]
    assert thumbnail.thumbnail_object(s3, gone, target).startswith("skipped:")


def test_pdf_preview_handler_writes_a_png_next_to_the_key(aws_env: str, stack_name: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=stack_name)
    data = pdf_bytes([(612, 792)])
    s3.put_object(Bucket=stack_name, Key="in/Q3 report.pdf", Body=data)
    record = s3_event(stack_name, "in/Q3 report.pdf", len(data))["Records"][0]
    outcome = pdf_preview.preview_object(s3, record, stack_name)
    assert re.match(r"61[89]x800 PNG", outcome), outcome  # 612 x 800/792 = 618.2, PDFium rounds up
    png = s3.get_object(Bucket=stack_name, Key="in/Q3 report.png")
    assert png["ContentType"] == "image/png" and png["Body"].read().startswith(PNG_SIGNATURE)


def test_store_messages_reports_only_the_bad_messages(aws_env: str, stack_name: str) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=stack_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    records = [
        sqs_record(json.dumps({"id": "a"})),
        sqs_record("oops"),
        sqs_record(json.dumps({"id": "b"})),
    ]
    failures = store_messages.store(dynamodb, stack_name, records)
    assert [m for m, _ in failures] == [records[1]["messageId"]]
    items = dynamodb.scan(TableName=stack_name)["Items"]
    assert sorted(i["id"]["S"] for i in items) == ["a", "b"]
    missing = store_messages.store(dynamodb, f"{stack_name}-gone", records[:1])
    assert "DynamoDB" in missing[0][1]  # a refused write fails that item, not the batch


# -- end to end through lambdabus dev ----------------------------------------------------


class Sink:
    """An aiosmtpd handler: every mail it receives goes on a queue the test can await."""

    def __init__(self) -> None:
        self.mails: queue.Queue[tuple[list[str], Message]] = queue.Queue()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.put((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


class Stack(SimpleNamespace):
    s3: Any
    sqs: Any
    dynamodb: Any
    sns: Any
    reports: Any  # redis.Redis with decode_responses=True
    sink: Sink


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``lambdabus dev`` of the seed template, its reports' Redis and the SMTP sink."""
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    store = EmbeddedRedis()
    store.start()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path_factory.mktemp("dev")))
    for var in ("LAMBDABUS_REDIS_URL", "AWS_ENDPOINT_URL"):
        env.pop(var, None)
    cmd = [
        sys.executable,
        "-m",
        "adapters.cli",
        "dev",
        str(TEMPLATE),
        "--edge-port",
        str(free_port()),
        "--grace",
        "5",
        "--parameter-overrides",
        f"StoreUrl={store.url}",
        "SmtpHost=127.0.0.1",
        f"SmtpPort={smtp.port}",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        aws = ""
        for line in proc.stdout:
            if m := re.match(r"\s+aws\s+(\S+)", line):
                aws = m.group(1)
            if line.strip() == "ready":
                break
        else:
            raise AssertionError(f"lambdabus dev exited with {proc.wait()} before it was ready")
        kw = {
            "endpoint_url": aws,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        reports = Redis.from_url(store.url, decode_responses=True)
        yield Stack(
            s3=boto3.client("s3", **kw),
            sqs=boto3.client("sqs", **kw),
            dynamodb=boto3.client("dynamodb", **kw),
            sns=boto3.client("sns", **kw),
            reports=reports,
            sink=sink,
        )
        reports.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            smtp.stop()
            store.stop()
    assert code == 0


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return None
    return found


def reports_of(stack: Stack, function: str, key: str) -> list[dict[str, str]]:
    return [
        f
        for _, f in stack.reports.xrange("demo:results")
        if f["function"] == function and f["key"] == f"upload {key}"
    ]


def test_an_uploaded_image_gets_its_thumbnail(stack: Stack) -> None:
    stack.s3.put_object(
        Bucket="seed-mediauploads", Key="cats/tabby cat.png", Body=image_bytes((300, 200))
    )
    stack.s3.put_object(
        Bucket="seed-mediauploads", Key="tall.jpg", Body=image_bytes((100, 400), "JPEG")
    )
    for key, want in (("cats/tabby cat.png", (128, 85)), ("tall.jpg", (32, 128))):
        wait_for(f"thumbnail {key}", lambda k=key: head(stack.s3, "seed-mediathumbnails", k))  # type: ignore[misc]
        body = stack.s3.get_object(Bucket="seed-mediathumbnails", Key=key)["Body"].read()
        with Image.open(io.BytesIO(body)) as img:
            assert img.size == want


def test_the_same_key_uploaded_twice_in_a_second_runs_the_function_twice(stack: Stack) -> None:
    started = time.monotonic()
    stack.s3.put_object(Bucket="seed-mediauploads", Key="twice.png", Body=image_bytes((50, 50)))
    stack.s3.put_object(Bucket="seed-mediauploads", Key="twice.png", Body=image_bytes((60, 60)))
    assert time.monotonic() - started < 1, "the uploads were meant to share a second"
    done = wait_for(
        "two thumbnails of twice.png",
        lambda: r if len(r := reports_of(stack, "Thumbnail", "twice.png")) >= 2 else None,
    )
    # Each run reads the key's current object, so both may see the second upload.
    assert len(done) == 2 and all(r["outcome"].startswith(("50x50", "60x60")) for r in done), done


def test_a_pdf_gets_a_png_preview_of_its_first_page(stack: Stack) -> None:
    stack.s3.put_object(
        Bucket="seed-mediauploads",
        Key="docs/annual report.pdf",
        Body=pdf_bytes([(612, 792), (792, 612)]),
    )
    wait_for("the preview", lambda: head(stack.s3, "seed-mediapreviews", "docs/annual report.png"))
    png = stack.s3.get_object(Bucket="seed-mediapreviews", Key="docs/annual report.png")
    data = png["Body"].read()
    assert data.startswith(PNG_SIGNATURE) and 200 < len(data) < 2_000_000
    with Image.open(io.BytesIO(data)) as img:
        assert img.height == 800 and img.width in (618, 619)  # page 1 is portrait, fitted to 800
    assert not reports_of(stack, "Thumbnail", "docs/annual report.pdf")  # suffix filters


def test_sqs_messages_are_stored_in_the_table_and_a_bad_one_is_dead_lettered(
    stack: Stack,
) -> None:
    url = stack.sqs.get_queue_url(QueueName="seed-InboxMessages")["QueueUrl"]
    dead = stack.sqs.get_queue_url(QueueName="seed-InboxDeadLetters")["QueueUrl"]
    entries = [
        {"Id": str(i), "MessageBody": json.dumps({"id": f"m{i}", "n": i})} for i in range(3)
    ] + [{"Id": "bad", "MessageBody": "not json"}]
    assert not stack.sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")

    def stored() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = stack.dynamodb.scan(TableName="seed-InboxTable")["Items"]
        return items if len(items) >= 3 else None

    items = sorted(wait_for("3 items", stored), key=lambda i: i["id"]["S"])
    assert [i["id"]["S"] for i in items] == ["m0", "m1", "m2"]
    assert json.loads(items[1]["body"]["S"]) == {"id": "m1", "n": 1}
    deadline = time.monotonic() + 30
    got: list[dict[str, Any]] = []
    while not got and time.monotonic() < deadline:  # long polls: SQS waits for us
        got = stack.sqs.receive_message(QueueUrl=dead, WaitTimeSeconds=2).get("Messages", [])
    assert [m["Body"] for m in got] == ["not json"]
    assert len(stack.dynamodb.scan(TableName="seed-InboxTable")["Items"]) == 3


def test_an_sns_message_is_mailed_to_the_smtp_sink(stack: Stack) -> None:
    arn = next(
        t["TopicArn"]
        for t in stack.sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(":seed-Announcements")
    )
    stack.sns.publish(TopicArn=arn, Subject="Disk almost full", Message="92% used on /data")
    rcpt, mail = stack.sink.mails.get(timeout=30)
    assert rcpt == ["ops@example.com"] and mail["Subject"] == "Disk almost full"
    assert mail.get_payload(decode=True).decode().strip() == "92% used on /data"  # type: ignore[union-attr]
    assert mail["X-SNS-TopicArn"] == arn
