"""S3 ObjectCreated -> a thumbnail of the uploaded image in the thumbnails bucket.

Written as for AWS Lambda, unmodified: ``boto3.client("s3")`` with no endpoint
(under lambdabus the worker's ``AWS_ENDPOINT_URL`` points it at the stack's S3).
Keys arrive URL-encoded in S3 events (``my+photo.jpg``), so they are decoded
with ``unquote_plus`` before use, as every S3-triggered Lambda must.

Hostile uploads are refused before they cost memory: an object over
``MAX_SOURCE_BYTES`` is not downloaded, and an image whose header declares more
than ``MAX_PIXELS`` is not decoded (a "decompression bomb" is a few KB on disk).
A refused record raises after the batch's other records are done, so the
invocation fails and lands, after Lambda's retries, in the dead letters.
"""

from __future__ import annotations

import io
import os
import time
import urllib.parse
from functools import cache
from typing import Any

import boto3
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_SIDE = int(os.environ.get("THUMBNAIL_MAX_SIDE", "128"))
MAX_SOURCE_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


class RejectedImage(ValueError):
    """The upload is not an image we thumbnail; the message names the object and why."""


def thumbnail_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """Fit within ``max_side`` square keeping the aspect ratio; never upscale, never 0."""
    if width <= 0 or height <= 0:
        raise RejectedImage(f"image has no pixels ({width}x{height})")
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def make_thumbnail(data: bytes, max_side: int = MAX_SIDE) -> tuple[bytes, str, tuple[int, int]]:
    """The thumbnail's bytes, content type and size, in the source's own format."""
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise RejectedImage("not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise RejectedImage(str(exc)) from None
    except (OSError, SyntaxError) as exc:  # a header cut short or corrupt
        raise RejectedImage(f"cannot decode the image: {exc}") from None
    if image.format not in FORMATS:
        raise RejectedImage(f"unsupported image format {image.format}")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise RejectedImage(f"{width}x{height} pixels is over the {MAX_PIXELS} pixel limit")
    fmt = image.format
    try:
        upright = ImageOps.exif_transpose(image)  # phone photos: honour the orientation tag
        size = thumbnail_size(*upright.size, max_side=max_side)
        small = upright.resize(size, Image.Resampling.LANCZOS)
    except (OSError, SyntaxError) as exc:  # truncated or corrupt pixel data
        raise RejectedImage(f"cannot decode the image: {exc}") from None
    if fmt == "JPEG" and small.mode not in ("RGB", "L"):
        small = small.convert("RGB")
    out = io.BytesIO()
    small.save(out, format=fmt)
    return out.getvalue(), FORMATS[fmt], size


def object_of(record: dict[str, Any]) -> tuple[str, str, int]:
    """Bucket, decoded key and size of an S3 event record."""
    try:
        s3 = record["s3"]
        bucket, raw_key = s3["bucket"]["name"], s3["object"]["key"]
        size = int(s3["object"].get("size", 0))
    except (KeyError, TypeError, ValueError):
        raise RejectedImage("not an S3 event record (no s3.bucket.name / s3.object.key)") from None
    return bucket, urllib.parse.unquote_plus(raw_key), size


def thumbnail_object(s3: Any, record: dict[str, Any], target_bucket: str) -> str:
    """Read the record's object, write its thumbnail under the same key; returns a summary."""
    bucket, key, size = object_of(record)
    where = f"s3://{bucket}/{key}"
    if bucket == target_bucket:
        raise RejectedImage(f"{where}: source and thumbnails bucket are the same (a loop)")
    if size > MAX_SOURCE_BYTES:
        raise RejectedImage(f"{where}: {size} bytes is over the {MAX_SOURCE_BYTES} byte limit")
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:  # deleted since the event was sent: nothing to do, ever
        return f"skipped: {where} no longer exists"
    if obj["ContentLength"] > MAX_SOURCE_BYTES:  # replaced since the event was sent
        raise RejectedImage(f"{where}: {obj['ContentLength']} bytes is over the limit")
    try:
        body, content_type, (w, h) = make_thumbnail(obj["Body"].read())
    except RejectedImage as exc:
        raise RejectedImage(f"{where}: {exc}") from None
    s3.put_object(
        Bucket=target_bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        Metadata={"source": where, "source-etag": obj.get("ETag", "").strip('"')},
    )
    return f"{w}x{h} thumbnail in s3://{target_bucket}/{key}"


@cache
def _s3() -> Any:
    return boto3.client("s3")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    target = os.environ["THUMBNAIL_BUCKET"]
    done, refused = [], []
    for record in event.get("Records") or []:
        try:
            outcome = thumbnail_object(_s3(), record, target)
            done.append(outcome)
        except RejectedImage as exc:
            refused.append(str(exc))
            outcome = f"refused: {exc}"
        _report(context, record, outcome)
    if refused:
        raise RejectedImage("; ".join(refused))
    return {"thumbnails": done}


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
