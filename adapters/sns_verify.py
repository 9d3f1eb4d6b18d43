"""Proving that an SNS HTTP(S) delivery comes from Amazon SNS, as AWS documents it.

Anyone can POST to the edge's ``/sns/`` paths; only SNS's signature makes a body
trustworthy. The check follows "Verifying the signatures of Amazon SNS messages":

1. The canonical string: for the message's ``Type``, each signed field in AWS's
   order as ``Name\\nValue\\n`` (``Subject`` only when the message has one).
2. ``SignatureVersion`` 1 is SHA1withRSA, 2 is SHA256withRSA (PKCS#1 v1.5).
3. The signing certificate is fetched only from ``https://sns.<region>.amazonaws.com``
   (``.amazonaws.com.cn`` in China), with the region taken from the message's
   ``TopicArn``, or from the one SNS endpoint the operator configured (moto in
   development). Userinfo, explicit ports, odd characters and any path but one
   ``*.pem`` segment are refused *before* any request, because a lenient parser
   here is how verifiers get tricked into fetching an attacker's key.
4. Certificates are fetched through an injected function (tests never touch the
   network; the default one lives in :mod:`adapters.sns_http`), cached by URL,
   and must be RSA (2048 bits or more) and within their validity dates at the
   injected clock's time (the shared AWS-signed fixtures' certificate expired in
   2022, so tests pin the clock, never skip the signature).

What a signature does *not* prove: which topic the message belongs to (anyone
can make AWS sign messages of their own topic, so callers compare ``TopicArn``
with the one they subscribed to) and ``MessageAttributes`` (SNS does not sign
them). Error messages are safe to log: they never quote signatures or keys.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
"""Per message type, the fields SNS signs, in the order it concatenates them."""
OPTIONAL_SIGNED = frozenset({"Subject"})
"""Signed when present; a Notification published without a subject has none."""

SIGNATURE_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}
MAX_SIGNATURE_CHARS = 1400
"""Base64 of an RSA-8192 signature fits; anything longer is not worth decoding."""
MAX_URL_CHARS = 2048
MIN_RSA_BITS = 2048
DEFAULT_CACHE_SIZE = 64

_TOPIC_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):sns:"
    r"(?P<region>[a-z]{2}(-[a-z]+)+-\d{1,2}):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?"
)
_PEM_PATH = re.compile(r"/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,200}\.pem")
"""One segment, no escapes, no dot-segments; AWS sends ``/SimpleNotificationService-<hex>.pem``."""

CertificateFetcher = Callable[[str], Awaitable[bytes]]
"""``await fetch(url) -> PEM bytes``; raises on any failure. Only called with URLs
that passed :func:`check_sns_url`."""
Clock = Callable[[], datetime]
UrlKind = Literal["certificate", "subscribe"]


class SnsMessageError(ValueError):
    """The body is not a well-formed SNS message (missing or mistyped fields): HTTP 400."""


class SnsVerificationError(Exception):
    """The message is not proven to come from SNS: HTTP 403, nothing published."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed: ``Name\\nValue\\n`` per signed field of the message's Type."""
    kind = message.get("Type")
    fields = SIGNED_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise SnsMessageError(f"unsupported message Type {str(kind)[:40]!r}")
    parts: list[str] = []
    for name in fields:
        value = message.get(name)
        if value is None and name in OPTIONAL_SIGNED:
            continue
        if not isinstance(value, str):
            problem = "missing" if value is None else "not a string"
            raise SnsMessageError(f"{kind}: field {name} is {problem}")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


def topic_region(topic_arn: Any) -> tuple[str, str]:
    """``(partition, region)`` of an SNS topic ARN; the region picks the allowed hosts."""
    match = _TOPIC_ARN.fullmatch(topic_arn) if isinstance(topic_arn, str) else None
    if match is None:
        raise SnsMessageError("TopicArn is not an SNS topic ARN")
    return match["partition"], match["region"]


def sns_host(partition: str, region: str) -> str:
    """SNS's public host for the region: ``sns.<region>.amazonaws.com`` (``.com.cn`` in China)."""
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"sns.{region}.{suffix}"


def _origin(endpoint_url: str) -> tuple[str, str]:
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise ValueError(f"SNS endpoint must be http(s)://host[:port], got {endpoint_url!r}")
    return parts.scheme, parts.netloc.lower()


def check_sns_url(
    url: Any, topic_arn: Any, kind: UrlKind, *, endpoint_url: str | None = None
) -> str:
    """Return ``url`` if SNS could have sent it for this topic, else raise; never fetches.

    Allowed origins: ``https://`` + the topic region's SNS host, exactly (so no
    userinfo, port, trailing dot or case games), or exactly the configured
    endpoint's scheme, host and port. Certificates: one ``*.pem`` path segment and
    no query. Subscribe URLs: path ``/`` with ``Action=ConfirmSubscription``.
    """
    what = "SigningCertURL" if kind == "certificate" else "SubscribeURL"
    if not isinstance(url, str) or not url:
        raise SnsMessageError(f"{what} is missing")
    if len(url) > MAX_URL_CHARS or any(c <= " " or c in "\\\x7f" for c in url):
        raise SnsVerificationError(f"{what} has characters or a length SNS never sends")
    parts = urlsplit(url)
    origins = {("https", sns_host(*topic_region(topic_arn)))}
    if endpoint_url:
        origins.add(_origin(endpoint_url))
    if (parts.scheme, parts.netloc) not in origins or parts.fragment:
        raise SnsVerificationError(f"{what} is not on an SNS host of the topic's region")
    if kind == "certificate":
        if parts.query or not _PEM_PATH.fullmatch(parts.path):
            raise SnsVerificationError(f"{what} is not a .pem file at the host's root")
    else:
        query = parse_qs(parts.query, keep_blank_values=True)
        if parts.path != "/" or query.get("Action") != ["ConfirmSubscription"]:
            raise SnsVerificationError(f"{what} is not an SNS ConfirmSubscription URL")
    return url


def certificate_url(message: Mapping[str, Any]) -> Any:
    """``SigningCertURL`` (HTTP deliveries) or ``SigningCertUrl`` (Lambda's spelling)."""
    upper, lower = message.get("SigningCertURL"), message.get("SigningCertUrl")
    if upper is not None and lower is not None and upper != lower:
        raise SnsVerificationError("SigningCertURL and SigningCertUrl disagree")
    return upper if upper is not None else lower


class CertificateCache:
    """Certificates by URL, LRU-bounded; concurrent misses share one fetch.

    A URL names one certificate for good (AWS publishes a new file when it
    rotates), so entries never go stale; failures are not cached, so a network
    blip costs one rejected delivery (which SNS retries), not an outage.
    """

    def __init__(self, fetch: CertificateFetcher, max_entries: int = DEFAULT_CACHE_SIZE) -> None:
        self.fetch = fetch
        self.max_entries = max_entries
        self._certs: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[x509.Certificate]] = {}

    async def get(self, url: str) -> x509.Certificate:
        cert = self._certs.get(url)
        if cert is not None:
            self._certs.move_to_end(url)
            return cert
        pending = self._inflight.get(url)
        if pending is None:
            pending = asyncio.ensure_future(self._load(url))
            self._inflight[url] = pending
            pending.add_done_callback(self._settled(url))
        return await asyncio.shield(pending)

    def _settled(self, url: str) -> Callable[[asyncio.Future[x509.Certificate]], None]:
        """Forget the fetch once done, and mark its error seen (every waiter may be gone)."""

        def done(future: asyncio.Future[x509.Certificate]) -> None:
            self._inflight.pop(url, None)
            if not future.cancelled():
                future.exception()

        return done

    async def _load(self, url: str) -> x509.Certificate:
        try:
            pem = await self.fetch(url)
        except Exception as exc:
            raise SnsVerificationError(
                f"could not fetch the signing certificate ({type(exc).__name__})"
            ) from None
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise SnsVerificationError("the signing certificate is not a PEM certificate") from None
        self._certs[url] = cert
        while len(self._certs) > self.max_entries:
            self._certs.popitem(last=False)
        return cert


class SnsVerifier:
    """Verifies SNS message signatures; one per process, so its certificate cache is shared."""

    def __init__(
        self,
        fetch_certificate: CertificateFetcher,
        *,
        endpoint_url: str | None = None,
        clock: Clock = utcnow,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        """``endpoint_url``: the SNS endpoint in use when it is not AWS (moto in ``dev``);
        its origin is trusted like SNS's own hosts. ``clock``: the time certificates
        must be valid at (tests pin it for AWS's expired fixture certificate)."""
        if endpoint_url:
            _origin(endpoint_url)  # refuse a malformed configuration at start-up
        self.endpoint_url = endpoint_url
        self.clock = clock
        self.certificates = CertificateCache(fetch_certificate, cache_size)

    def check_url(self, url: Any, topic_arn: Any, kind: UrlKind) -> str:
        return check_sns_url(url, topic_arn, kind, endpoint_url=self.endpoint_url)

    async def verify(self, message: Mapping[str, Any]) -> None:
        """Return if SNS signed ``message``; raise SnsMessageError (malformed) or
        SnsVerificationError (not proven). Nothing is fetched from a URL that failed
        :func:`check_sns_url`."""
        data = string_to_sign(message)
        version = message.get("SignatureVersion")
        algorithm = SIGNATURE_HASHES.get(version) if isinstance(version, str) else None
        if algorithm is None:
            raise SnsVerificationError(f"unsupported SignatureVersion {str(version)[:8]!r}")
        signature = _signature_bytes(message.get("Signature"))
        url = self.check_url(certificate_url(message), message.get("TopicArn"), "certificate")
        cert = await self.certificates.get(url)
        key = self._usable_key(cert)
        try:
            key.verify(signature, data, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise SnsVerificationError("the signature does not match the message") from None

    def _usable_key(self, cert: x509.Certificate) -> rsa.RSAPublicKey:
        """The certificate's RSA key, if the certificate is valid now (by ``clock``)."""
        now = self.clock()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SnsVerificationError(
                f"the signing certificate is not valid at {now:%Y-%m-%dT%H:%M:%SZ}"
            )
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            raise SnsVerificationError("the signing certificate has no usable RSA key")
        return key


def _signature_bytes(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise SnsMessageError("Signature is missing")
    if len(value) > MAX_SIGNATURE_CHARS:
        raise SnsVerificationError("the signature is longer than any RSA signature SNS makes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SnsVerificationError("the signature is not base64") from None
