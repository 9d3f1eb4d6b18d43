"""What the gateway knows about a request, independent of aiohttp, and helpers on it.

The event builders (:mod:`.events_v1`, :mod:`.events_v2`) and the authorizers
read only :class:`RequestData`, so they are pure functions tested without a
server. Header names keep the client's spelling (REST events show them so);
values were checked to be UTF-8 before they got here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import unquote

from adapters.samples_aws import clf

from .errors import ApiKind

MAX_QUERY_FIELDS = 1000
"""More parameters than any URL within the 8 KB limit can sensibly hold."""

_TEXT_TYPES = re.compile(
    r"text/[^;]*|application/(?:json|javascript|xml|[^;]*\+json|[^;]*\+xml)", re.IGNORECASE
)


@dataclass(slots=True)
class RequestData:
    """What an event is built from. Not frozen, though nothing changes one: the gateway
    makes one or two per request, and a frozen dataclass pays an ``object.__setattr__``
    call per field to be made (about a microsecond here)."""

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
    time: float = field(default_factory=time.time)
    """When the request arrived, epoch seconds (a float: a datetime costs a few
    microseconds more per request to make and to read back)."""
    _last: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    """Lower-cased name -> last value, made when :meth:`header` is first asked (it is
    asked several times a request)."""

    def header(self, name: str) -> str | None:
        """The last value of a header (case-insensitive), as REST's ``headers`` keeps it."""
        if self._last is None:
            self._last = {k.lower(): v for k, v in self.headers}
        return self._last.get(name.lower())

    def host(self) -> str:
        return self.header("host") or f"localhost:{self.server_port}"

    def with_body(self, body: bytes) -> RequestData:
        copy = RequestData(
            self.method, self.raw_path, self.raw_query, self.headers, self.source_ip,
            self.server_port, self.protocol, body, self.time,
        )  # fmt: skip
        copy._last = self._last  # same headers: the lower-cased map carries over
        return copy

    def query(self) -> dict[str, list[str]]:
        """Decoded parameters in order; raises UnicodeDecodeError or ValueError on junk."""
        return parse_query(self.raw_query) if self.raw_query else {}


def parse_query(raw_query: str) -> dict[str, list[str]]:
    """``parse_qsl(keep_blank_values=True, errors="strict", max_num_fields=1000)``
    grouped by name, without its per-call argument coercion (tests compare the two)."""
    if raw_query.count("&") >= MAX_QUERY_FIELDS:
        raise ValueError("Max number of fields exceeded")
    params: dict[str, list[str]] = {}
    for field_ in raw_query.split("&"):
        if not field_:
            continue
        name, _, value = field_.partition("=")
        if "+" in field_:
            name, value = name.replace("+", " "), value.replace("+", " ")
        if "%" in field_:
            name, value = unquote(name, errors="strict"), unquote(value, errors="strict")
        if name in params:
            params[name].append(value)
        else:
            params[name] = [value]
    return params


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def rest_request_id() -> str:
    """REST APIs use a UUID (``x-amzn-RequestId``): a version 4 one, as ``uuid.uuid4()``
    writes it, from the PRNG (see :func:`http_request_id`)."""
    h = (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET).to_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def http_request_id() -> str:
    """HTTP APIs use a short base64 id (``apigw-requestid``), e.g. ``JKJaXmPLvHcESHA=``.

    Ids (and trace ids) must be unique, not unguessable: Python's PRNG makes them
    without a system call per request."""
    return binascii.b2a_base64(random.getrandbits(88).to_bytes(11), newline=False).decode()


class RequestIds(NamedTuple):
    """A request's ids, as its events (the authorizer's too) and its response headers
    all carry them."""

    request_id: str
    extended: str
    """``extendedRequestId`` (REST's ``x-amz-apigw-id``; an HTTP API's is its request id)."""
    headers: list[tuple[str, str]]


def request_ids(kind: ApiKind) -> RequestIds:
    if kind == "rest":
        rid, extended = rest_request_id(), http_request_id()
        return RequestIds(rid, extended, [("x-amzn-RequestId", rid), ("x-amz-apigw-id", extended)])
    rid = http_request_id()
    return RequestIds(rid, rid, [("apigw-requestid", rid)])


def request_times(at: float) -> tuple[str, int]:
    """(``requestTime`` as API Gateway writes it, epoch milliseconds) of ``at`` (epoch
    seconds), rounded to the microsecond first as ``datetime.fromtimestamp`` does."""
    second = math.floor(at)
    micros = round((at - second) * 1_000_000)  # exact difference; half to even
    if micros == 1_000_000:
        second, micros = second + 1, 0
    return _clf_of_second(second), second * 1000 + micros // 1000


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


def trace_id(at: float) -> str:
    """An X-Ray trace header, as API Gateway adds when the client sent none."""
    return _trace_root(int(at)) + random.getrandbits(96).to_bytes(12).hex()


@functools.lru_cache(maxsize=4)
def _trace_root(epoch_s: int) -> str:
    return f"Root=1-{epoch_s:08x}-"


def _matches(content_type: str, pattern: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    want = pattern.strip().lower()
    if want in ("*/*", kind):
        return True
    return want.endswith("/*") and kind.startswith(want[:-1])


@functools.lru_cache(maxsize=256)
def _is_rest_binary(content_type: str, binary_types: tuple[str, ...]) -> bool:
    """Cached: a client sends a handful of content types, and this runs per body."""
    return any(_matches(content_type, t) for t in binary_types)


@functools.lru_cache(maxsize=256)
def _is_text(content_type: str) -> bool:
    return _TEXT_TYPES.fullmatch(content_type.split(";", 1)[0].strip()) is not None


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
        binary = content_type is not None and _is_rest_binary(content_type, rest_binary_types)
    else:
        binary = content_type is None or not _is_text(content_type)
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


def gateway_headers(
    req: RequestData, previous: str | None, traced: bool, lower: bool
) -> list[tuple[str, str]]:
    """The headers API Gateway adds, given the client's last X-Forwarded-For (``previous``)
    and whether it sent a trace id; they replace any the client sent (:data:`OVERRIDDEN`)."""
    forwarded_for, port, proto, trace = _LOWER_NAMES if lower else _NAMES
    chain = f"{previous}, {req.source_ip}" if previous else req.source_ip
    added = [(forwarded_for, chain), (port, str(req.server_port)), (proto, "http")]
    if not traced:
        added.append((trace, trace_id(req.time)))
    return added


_NAMES = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id")
_LOWER_NAMES = tuple(n.lower() for n in _NAMES)
OVERRIDDEN = frozenset(_LOWER_NAMES[:3])
"""Lower-cased names of the client's headers API Gateway drops for its own."""
TRACE_HEADER = _LOWER_NAMES[3]
