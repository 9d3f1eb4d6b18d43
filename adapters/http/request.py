"""What the gateway knows about a request, independent of aiohttp, and helpers on it.

The event builders (:mod:`.events_v1`, :mod:`.events_v2`) and the authorizers
read only :class:`RequestData`, so they are pure functions tested without a
server. Header names keep the client's spelling (REST events show them so);
values were checked to be UTF-8 before they got here.
"""

from __future__ import annotations

import base64
import functools
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from adapters.samples_aws import clf

MAX_QUERY_FIELDS = 1000
"""More parameters than any URL within the 8 KB limit can sensibly hold."""

_TEXT_TYPES = re.compile(
    r"text/[^;]*|application/(?:json|javascript|xml|[^;]*\+json|[^;]*\+xml)", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class RequestData:
    method: str
    raw_path: str
    """As received: percent-encoded, without the query string."""
    raw_query: str
    headers: tuple[tuple[str, str], ...]
    """As received, in order, repeats kept."""
    source_ip: str
    """The peer's address; never taken from X-Forwarded-For, which the client controls."""
    server_port: int
    protocol: str = "HTTP/1.1"
    body: bytes = b""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def header(self, name: str) -> str | None:
        """The last value of a header (case-insensitive), as REST's ``headers`` keeps it."""
        lowered = name.lower()
        value = None
        for key, item in self.headers:
            if key.lower() == lowered:
                value = item
        return value

    def host(self) -> str:
        return self.header("Host") or f"localhost:{self.server_port}"

    def query(self) -> dict[str, list[str]]:
        """Decoded parameters in order; raises UnicodeDecodeError or ValueError on junk."""
        params: dict[str, list[str]] = {}
        if not self.raw_query:
            return params
        pairs = parse_qsl(
            self.raw_query,
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_QUERY_FIELDS,
        )
        for name, value in pairs:
            params.setdefault(name, []).append(value)
        return params


def rest_request_id() -> str:
    """REST APIs use a UUID (``x-amzn-RequestId``)."""
    return str(uuid.uuid4())


def http_request_id() -> str:
    """HTTP APIs use a short base64 id (``apigw-requestid``), e.g. ``JKJaXmPLvHcESHA=``.

    Ids (and trace ids) must be unique, not unguessable: Python's PRNG makes them
    without a system call per request."""
    return base64.b64encode(random.getrandbits(88).to_bytes(11, "big")).decode()


def request_times(at: datetime) -> tuple[str, int]:
    """(``requestTime`` as API Gateway writes it, epoch milliseconds) of ``at``."""
    return _clf_of_second(int(at.timestamp())), int(at.timestamp()) * 1000 + at.microsecond // 1000


@functools.lru_cache(maxsize=4)
def _clf_of_second(epoch_s: int) -> str:
    """Formatting a date is slow and a busy gateway stamps thousands a second with one."""
    return clf(datetime.fromtimestamp(epoch_s, UTC))


@functools.lru_cache(maxsize=1024)
def domain_prefix(host: str) -> str:
    """The first label of the host name (an IP address stays whole)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if re.fullmatch(r"[\d.]+|\[.*\]", name):
        return name
    return name.split(".", 1)[0]


def trace_id(at: datetime) -> str:
    """An X-Ray trace header, as API Gateway adds when the client sent none."""
    return f"Root=1-{int(at.timestamp()):08x}-{random.getrandbits(96):024x}"


def _matches(content_type: str, pattern: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    want = pattern.strip().lower()
    if want in ("*/*", kind):
        return True
    return want.endswith("/*") and kind.startswith(want[:-1])


def encode_body(
    body: bytes, content_type: str | None, rest_binary_types: tuple[str, ...] | None
) -> tuple[str | None, bool]:
    """(event body, isBase64Encoded).

    A REST API base64-encodes bodies whose type is in its ``BinaryMediaTypes``;
    an HTTP API every body whose type isn't text (or is missing). Bodies that
    aren't UTF-8 are base64-encoded in either case: a text event can't carry
    them losslessly, and AWS's mangling of them helps nobody.
    """
    if not body:
        return None, False
    if rest_binary_types is not None:
        binary = content_type is not None and any(
            _matches(content_type, t) for t in rest_binary_types
        )
    else:
        binary = (
            content_type is None
            or _TEXT_TYPES.fullmatch(content_type.split(";", 1)[0].strip()) is None
        )
    if not binary:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


@dataclass(frozen=True, slots=True)
class Grant:
    """What an authorizer let through, for the event's ``requestContext.authorizer``."""

    kind: str
    """``jwt`` or ``lambda``."""
    claims: dict[str, str] = field(default_factory=dict)
    scopes: list[str] | None = None
    principal_id: str | None = None
    context: dict[str, object] = field(default_factory=dict)
    latency_ms: int = 0


def forwarded(req: RequestData, lower: bool) -> list[tuple[str, str]]:
    """The request's headers plus those API Gateway adds: the peer appended to
    X-Forwarded-For, X-Forwarded-Port/-Proto, and a trace id unless one came in."""
    forwarded_for, port, proto, trace = _LOWER_NAMES if lower else _NAMES
    headers: list[tuple[str, str]] = []
    previous: str | None = None
    traced = False
    for key, value in req.headers:
        name = key.lower()
        if name == "x-forwarded-for":
            previous = value  # the last one, as header() would find it
        elif name == "x-amzn-trace-id":
            traced = True
        if name not in _OVERRIDDEN:
            headers.append((key, value))
    chain = f"{previous}, {req.source_ip}" if previous else req.source_ip
    headers.append((forwarded_for, chain))
    headers.append((port, str(req.server_port)))
    headers.append((proto, "http"))
    if not traced:
        headers.append((trace, trace_id(req.time)))
    return headers


_NAMES = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id")
_LOWER_NAMES = tuple(n.lower() for n in _NAMES)
_OVERRIDDEN = frozenset(_LOWER_NAMES[:3])
