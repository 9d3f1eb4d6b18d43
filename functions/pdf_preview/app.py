"""S3 ObjectCreated (``.pdf`` suffix filter) -> a PNG of the PDF's first page.

The preview goes to the previews bucket under the source key with ``.pdf``
replaced by ``.png``. Rendering uses pypdfium2 (PDFium, Chrome's PDF engine).
PDFium is not thread-safe and plain handlers run in a thread pool, so renders
in one process take turns behind a lock.

Refused before rendering: objects over ``MAX_SOURCE_BYTES``, documents that
don't open (not a PDF, encrypted, damaged), documents with no pages, and pages
whose declared size would make a bitmap over ``MAX_PIXELS``.
"""

from __future__ import annotations

import io
import os
import threading
import time
import urllib.parse
from functools import cache
from typing import Any

import boto3
import pypdfium2 as pdfium

PREVIEW_SIDE = int(os.environ.get("PREVIEW_MAX_SIDE", "800"))
MAX_SOURCE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 25_000_000
POINTS_PER_INCH = 72
_pdfium = threading.Lock()


class RejectedPdf(ValueError):
    """The upload is not a PDF we preview; the message names the object and why."""


def preview_key(key: str) -> str:
    """``docs/a.pdf`` -> ``docs/a.png`` (any case of the suffix; other names get ``.png``)."""
    stem = key[:-4] if key.lower().endswith(".pdf") else key
    return stem + ".png"


def render_scale(width_pt: float, height_pt: float, max_side: int = PREVIEW_SIDE) -> float:
    """The PDFium scale (pixels per point) that fits the page's longer side to ``max_side``."""
    if not (width_pt > 0 and height_pt > 0):
        raise RejectedPdf(f"page has no area ({width_pt}x{height_pt} pt)")
    scale = max_side / max(width_pt, height_pt)
    if width_pt * scale * height_pt * scale > MAX_PIXELS:  # absurd aspect ratios
        raise RejectedPdf(f"page of {width_pt:.0f}x{height_pt:.0f} pt is too large to render")
    return scale


def render_first_page(data: bytes, max_side: int = PREVIEW_SIDE) -> tuple[bytes, tuple[int, int]]:
    """PNG bytes of page 1 and its pixel size."""
    with _pdfium:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise RejectedPdf(f"cannot open the PDF: {exc}") from None
        try:
            if len(pdf) == 0:
                raise RejectedPdf("the PDF has no pages")
            page = pdf[0]
            width, height = page.get_size()
            scale = render_scale(width, height, max_side)
            image = page.render(scale=scale).to_pil()  # may share the bitmap's memory:
            out = io.BytesIO()  # encode before the document (and so the bitmap) closes
            image.save(out, format="PNG", optimize=True)
        except pdfium.PdfiumError as exc:
            raise RejectedPdf(f"cannot render page 1: {exc}") from None
        finally:
            pdf.close()
    return out.getvalue(), image.size


def preview_object(s3: Any, record: dict[str, Any], target_bucket: str) -> str:
    try:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        size = int(record["s3"]["object"].get("size", 0))
    except (KeyError, TypeError, ValueError):
        raise RejectedPdf("not an S3 event record (no s3.bucket.name / s3.object.key)") from None
    where = f"s3://{bucket}/{key}"
    if size > MAX_SOURCE_BYTES:
        raise RejectedPdf(f"{where}: {size} bytes is over the {MAX_SOURCE_BYTES} byte limit")
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:  # deleted since the event was sent: nothing to do, ever
        return f"skipped: {where} no longer exists"
    if obj["ContentLength"] > MAX_SOURCE_BYTES:
        raise RejectedPdf(f"{where}: {obj['ContentLength']} bytes is over the limit")
    try:
        png, (w, h) = render_first_page(obj["Body"].read())
    except RejectedPdf as exc:
        raise RejectedPdf(f"{where}: {exc}") from None
    target_key = preview_key(key)
    s3.put_object(
        Bucket=target_bucket,
        Key=target_key,
        Body=png,
        ContentType="image/png",
        Metadata={"source": where},
    )
    return f"{w}x{h} PNG of page 1 in s3://{target_bucket}/{target_key}"


@cache
def _s3() -> Any:
    return boto3.client("s3")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    target = os.environ["PREVIEW_BUCKET"]
    done, refused = [], []
    for record in event.get("Records") or []:
        try:
            outcome = preview_object(_s3(), record, target)
            done.append(outcome)
        except RejectedPdf as exc:
            refused.append(str(exc))
            outcome = f"refused: {exc}"
        _report(context, record, outcome)
    if refused:
        raise RejectedPdf("; ".join(refused))
    return {"previews": done}


STORE_URL = os.environ.get("DEMO_STORE_URL", "")


@cache
def _store() -> Any:
    import redis

    return redis.Redis.from_url(STORE_URL)


def _report(context: Any, record: dict[str, Any], outcome: str) -> None:
    """Tell the demo (``demo:results`` of DEMO_STORE_URL) what happened, when it listens."""
    if not STORE_URL:
        return
    try:
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
    except (KeyError, TypeError):
        key = "?"
    _store().xadd(
        "demo:results",
        {
            "function": context.function_name,
            "key": f"upload {key}",
            "outcome": outcome,
            "at": repr(time.time()),
        },
    )
