"""A function's return value → the HTTP response, per payload format.

Format 1.0 (REST, and HTTP APIs set to 1.0) requires the proxy shape:
``statusCode``, ``headers``, ``multiValueHeaders`` (which win over
``headers`` for a name in both), ``body`` (a string), ``isBase64Encoded``.
Format 2.0 takes that shape (with ``cookies`` instead of multi-value
headers) when ``statusCode`` is present, and otherwise treats the whole
value as a JSON answer: 200, ``application/json``, a string returned as is,
anything else JSON-encoded as Lambda's runtime encodes it.

Anything else — a non-string body, bad base64, a status outside 100 to 599, a
header value with a line break — is a malformed response, which API Gateway
answers as an integration failure. Framing headers (Content-Length,
Transfer-Encoding, Connection, …) are the server's business and dropped.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import Answer

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HOP_BY_HOP = frozenset(
    {"connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer",
     "transfer-encoding", "upgrade"}
)  # fmt: skip
JSON = "application/json"


class MalformedResponse(ValueError):
    """The function answered something API Gateway can't turn into an HTTP response."""


def _status(value: Any) -> int:
    if type(value) is int and 100 <= value <= 599:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise MalformedResponse(f"statusCode must be an integer from 100 to 599, got {value!r}")
    return value


def _value(name: Any, value: Any) -> tuple[str, str]:
    if not (isinstance(name, str) and _valid_name(name)):
        raise MalformedResponse(f"not a valid header name: {name!r}")
    if type(value) is str:
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise MalformedResponse(f"header {name}: expected a string, got {type(value).__name__}")
    if "\n" in text or "\r" in text or "\x00" in text:
        raise MalformedResponse(f"header {name}: a value can't hold line breaks")
    return name, text


@functools.lru_cache(maxsize=1024)
def _valid_name(name: str) -> bool:
    """Cached: a function answers with the same few header names every time."""
    return _TOKEN.fullmatch(name) is not None


def _mapping(result: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = result.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedResponse(f"{key} must be an object, got {type(value).__name__}")
    return value


def _body(result: Mapping[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, got {type(body).__name__}")
    is_b64 = result.get("isBase64Encoded", False)
    if not isinstance(is_b64, bool):
        raise MalformedResponse("isBase64Encoded must be true or false")
    if not is_b64:
        return body.encode("utf-8", errors="surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse("isBase64Encoded is true but body is not base64") from None


def _finish(status: int, headers: list[tuple[str, str]], body: bytes) -> Answer:
    kept: list[tuple[str, str]] = []
    typed = False
    for pair in headers:
        name = pair[0].lower()
        if name not in HOP_BY_HOP:
            kept.append(pair)
            typed = typed or name == "content-type"
    if not typed:
        kept.insert(0, ("Content-Type", JSON))
    if status < 200 or status in (204, 304):
        body = b""
    return Answer(status, kept, body)


def response_v1(result: Any) -> Answer:
    """Payload format 1.0's response; raises :class:`MalformedResponse`."""
    if not isinstance(result, dict):
        raise MalformedResponse(f"expected an object with statusCode, got {type(result).__name__}")
    if "statusCode" not in result:
        raise MalformedResponse("statusCode is missing")
    status = _status(result["statusCode"])
    multi = _mapping(result, "multiValueHeaders")
    multi_names = {str(k).lower() for k in multi} if multi else frozenset()
    headers = [
        _value(k, v) for k, v in _mapping(result, "headers").items() if k.lower() not in multi_names
    ]
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders.{name} must be a list")
        headers.extend(_value(name, v) for v in values)
    return _finish(status, headers, _body(result))


def response_v2(result: Any) -> Answer:
    """Payload format 2.0's response, structured or simplified; raises MalformedResponse."""
    if not (isinstance(result, dict) and "statusCode" in result):
        try:
            body = result if isinstance(result, str) else json.dumps(result)
        except (TypeError, ValueError) as exc:
            raise MalformedResponse(f"not JSON-serializable: {exc}") from None
        return Answer(200, [("Content-Type", JSON)], body.encode("utf-8", errors="surrogatepass"))
    status = _status(result["statusCode"])
    headers: list[tuple[str, str]] = []
    for name, value in _mapping(result, "headers").items():
        if isinstance(value, list):
            value = ",".join(_value(name, v)[1] for v in value)
        headers.append(_value(name, value))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedResponse("cookies must be a list of strings")
    for cookie in cookies:
        if not isinstance(cookie, str):
            raise MalformedResponse("cookies must be a list of strings")
        headers.append(_value("Set-Cookie", cookie))
    return _finish(status, headers, _body(result))
