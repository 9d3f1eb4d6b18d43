"""SNS signature verification: AWS's own signed messages, and messages we sign ourselves.

The three AWS-signed fixtures in ``../shared/aws-events/sns-signed/`` are checked
with the clock pinned to their signing day (their certificate expired in 2022);
everything else uses a self-signed certificate and key made here, so the suite
covers both signature versions and every refusal even without ``../shared``.
Certificates come from an injected fetcher that records what it was asked for:
nothing here touches the network.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from adapters.sns_verify import (
    SnsMessageError,
    SnsVerificationError,
    SnsVerifier,
    check_sns_url,
    string_to_sign,
)
from tests.conftest import SHARED, requires_shared

SIGNED = SHARED / "aws-events" / "sns-signed"
AWS_CERT_URL = "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
AWS_SIGNING_DAY = datetime(2022, 7, 29, tzinfo=UTC)
AWS_FILES = (
    "aws-sdk-ruby__message_SHA1.json",
    "aws-sdk-ruby__message_SHA256.json",
    "aws-sdk-ruby__lambda_message.json",
)

REGION = "us-east-1"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:orders"
SNS = f"https://sns.{REGION}.amazonaws.com"
CERT_URL = f"{SNS}/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
SUBSCRIPTION = f"{TOPIC}:8e1c5c3d-4f7a-4a53-9d0e-2f1b8f0c1a2b"
SUBSCRIBE_URL = f"{SNS}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb"
HASHES = {"1": hashes.SHA1(), "2": hashes.SHA256()}


def make_certificate(
    key: rsa.RSAPrivateKey, *, valid_from: datetime | None = None, days: int = 2
) -> bytes:
    """A self-signed certificate for ``key``, CN sns.amazonaws.com, as PEM."""
    start = valid_from or datetime.now(UTC) - timedelta(days=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CERT_PEM = make_certificate(KEY)


def sign(
    message: Mapping[str, Any],
    version: str = "1",
    *,
    key: rsa.RSAPrivateKey = KEY,
    cert_url: str = CERT_URL,
) -> dict[str, Any]:
    """``message`` signed as SNS signs it, with ``SignatureVersion`` and ``SigningCertURL``."""
    signed = {**message, "SignatureVersion": version, "SigningCertURL": cert_url}
    signature = key.sign(string_to_sign(signed), padding.PKCS1v15(), HASHES[version])
    signed["Signature"] = base64.b64encode(signature).decode()
    return signed


def notification(**fields: Any) -> dict[str, Any]:
    """An SNS Notification as HTTP subscriptions receive it, before signing."""
    message: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Subject": "Order placed",
        "Message": '{"order": 17, "note": "grüße\\nzwei Zeilen"}',
        "Timestamp": "2026-05-01T12:34:56.789Z",
        "UnsubscribeURL": f"{SNS}/?Action=Unsubscribe&SubscriptionArn={SUBSCRIPTION}",
    }
    message.update(fields)
    return {k: v for k, v in message.items() if v is not None}


def confirmation(kind: str = "SubscriptionConfirmation", **fields: Any) -> dict[str, Any]:
    message = {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2026-05-01T12:00:00.000Z",
    }
    message.update(fields)
    return message


class Certificates:
    """The injected fetcher: serves PEMs by URL and records every URL it was asked for."""

    def __init__(self, pems: Mapping[str, bytes] | None = None) -> None:
        self.pems = dict(pems if pems is not None else {CERT_URL: CERT_PEM})
        self.fetched: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.pems[url]


def aws_message(name: str) -> dict[str, Any]:
    return json.loads((SIGNED / name).read_text())


def aws_certificates() -> Certificates:
    pem = (SIGNED / "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem").read_bytes()
    return Certificates({AWS_CERT_URL: pem})


# -- the string to sign ------------------------------------------------------------------


def test_string_to_sign_lists_fields_in_aws_order_subject_only_when_present() -> None:
    with_subject = notification(Message="m", MessageId="i", Subject="s", Timestamp="t")
    assert (
        string_to_sign(with_subject)
        == (
            f"Message\nm\nMessageId\ni\nSubject\ns\nTimestamp\nt\nTopicArn\n{TOPIC}\n"
            "Type\nNotification\n"
        ).encode()
    )
    without = notification(Message="m", MessageId="i", Subject=None, Timestamp="t")
    assert b"Subject" not in string_to_sign(without)
    assert string_to_sign({**without, "Subject": None}) == string_to_sign(without)
    for kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        text = string_to_sign(confirmation(kind)).decode()
        names = text.split("\n")[0::2][:-1]
        assert names == [
            "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
        ]  # fmt: skip
        assert text.endswith(f"Type\n{kind}\n")


@pytest.mark.parametrize(
    "message",
    [
        {**notification(), "Type": "Surprise"},
        {k: v for k, v in notification().items() if k != "Type"},
        {k: v for k, v in notification().items() if k != "MessageId"},
        {**notification(), "Message": 17},
        {**notification(), "Subject": ["not", "text"]},
        {k: v for k, v in confirmation().items() if k != "Token"},
    ],
    ids=["unknown-type", "no-type", "no-id", "number-message", "list-subject", "no-token"],
)
def test_string_to_sign_refuses_missing_or_mistyped_fields(message: dict[str, Any]) -> None:
    with pytest.raises(SnsMessageError):
        string_to_sign(message)


# -- AWS's own signatures ----------------------------------------------------------------


@requires_shared
async def test_aws_signed_messages_verify_with_the_clock_pinned() -> None:
    certs = aws_certificates()
    verifier = SnsVerifier(certs, clock=lambda: AWS_SIGNING_DAY)
    versions = set()
    for name in AWS_FILES:
        message = aws_message(name)
        versions.add(message["SignatureVersion"])
        await verifier.verify(message)
    assert versions == {"1", "2"}
    assert certs.fetched == [AWS_CERT_URL]  # cached after the first message


@requires_shared
async def test_aws_certificate_is_refused_at_todays_date() -> None:
    verifier = SnsVerifier(aws_certificates())
    with pytest.raises(SnsVerificationError, match="not valid at"):
        await verifier.verify(aws_message(AWS_FILES[1]))


@requires_shared
@pytest.mark.parametrize(
    "change",
    [
        {"Message": "Hello world!"},
        {"Subject": "added after signing"},
        {"Timestamp": "2022-07-28T21:23:58.318Z"},
        {"TopicArn": "arn:aws:sns:us-east-2:295079676684:someone-elses-topic"},
        {"MessageId": "792cda85-518f-5dd3-9163-81d851212f3b"},
        {"SignatureVersion": "2"},  # a SHA1 signature relabelled as SHA256
    ],
    ids=lambda change: next(iter(change)),
)
async def test_aws_signed_message_tampered_after_signing_is_refused(change: dict[str, str]) -> None:
    certs = aws_certificates()
    verifier = SnsVerifier(certs, clock=lambda: AWS_SIGNING_DAY)
    message = {**aws_message(AWS_FILES[0]), **change}
    with pytest.raises(SnsVerificationError, match="does not match"):
        await verifier.verify(message)


# -- our own certificate -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    "message",
    [
        notification(),
        notification(Subject=None),
        confirmation(),
        confirmation("UnsubscribeConfirmation"),
    ],
    ids=["notification", "no-subject", "subscribe", "unsubscribe"],
)
async def test_messages_signed_with_either_version_verify(
    message: dict[str, Any], version: str
) -> None:
    await SnsVerifier(Certificates()).verify(sign(message, version))


async def test_lambda_spelling_of_the_certificate_url_verifies() -> None:
    signed = sign(notification(), "2")
    signed["SigningCertUrl"] = signed.pop("SigningCertURL")
    await SnsVerifier(Certificates()).verify(signed)
    signed["SigningCertURL"] = CERT_URL.replace("0123", "9999")
    with pytest.raises(SnsVerificationError, match="disagree"):
        await SnsVerifier(Certificates()).verify(signed)


@pytest.mark.parametrize("version", ["1", "2"])
async def test_signature_by_another_key_is_refused(version: str) -> None:
    forged = sign(notification(), version, key=OTHER_KEY)
    with pytest.raises(SnsVerificationError, match="does not match"):
        await SnsVerifier(Certificates()).verify(forged)


@pytest.mark.parametrize(
    "change",
    [
        {"Message": "something else"},
        {"Subject": None},
        {"Type": "SubscriptionConfirmation", "SubscribeURL": SUBSCRIBE_URL, "Token": "t"},
        {"SignatureVersion": "2"},
    ],
    ids=["message", "subject-removed", "type", "version"],
)
async def test_message_changed_after_signing_is_refused(change: dict[str, Any]) -> None:
    message = {**sign(notification(), "1"), **change}
    message = {k: v for k, v in message.items() if v is not None}
    with pytest.raises(SnsVerificationError, match="does not match"):
        await SnsVerifier(Certificates()).verify(message)


@pytest.mark.parametrize(
    ("signature", "version", "error"),
    [
        ("not*base64", "1", "not base64"),
        ("A" * 5000, "1", "longer than"),
        (None, "1", "Signature is missing"),
        ("AAAA", "3", "unsupported SignatureVersion"),
        ("AAAA", None, "unsupported SignatureVersion"),
    ],
)
async def test_unusable_signature_fields_are_refused_without_a_fetch(
    signature: str | None, version: str | None, error: str
) -> None:
    certs = Certificates()
    message = {**sign(notification()), "Signature": signature, "SignatureVersion": version}
    with pytest.raises((SnsVerificationError, SnsMessageError), match=error):
        await SnsVerifier(certs).verify({k: v for k, v in message.items() if v is not None})
    assert certs.fetched == []


# -- where certificates may come from ----------------------------------------------------


HOSTILE_CERT_URLS = [
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem",
    "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-ab.pem",  # other region
    "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-ab.pem",
    "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem",
    "https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-ab.pem",
    "https://evil.example@sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem",
    "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-ab.pem",
    "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-ab.pem",
    "https://sns.us-east-1.amazonaws.com./SimpleNotificationService-ab.pem",
    "https://SNS.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem",
    "https://sns.us-east-1.amazonaws.com\\@evil.example/x.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.txt",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem?x=1",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem#frag",
    "https://sns.us-east-1.amazonaws.com/a/../SimpleNotificationService-ab.pem",
    "https://sns.us-east-1.amazonaws.com/dir/SimpleNotificationService-ab.pem",
    "https://sns.us-east-1.amazonaws.com/%2e%2e/x.pem",
    "https://sns.us-east-1.amazonaws.com/..pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService ab.pem",
    "https://sns.us-east-1.amazonaws.com.cn/SimpleNotificationService-ab.pem",  # not China
    "file:///etc/ssl/SimpleNotificationService-ab.pem",
    "//sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem",
    "https://127.0.0.1/SimpleNotificationService-ab.pem",
]


@pytest.mark.parametrize("url", HOSTILE_CERT_URLS)
async def test_certificate_urls_off_sns_hosts_are_refused_before_any_fetch(url: str) -> None:
    certs = Certificates({url: CERT_PEM})  # would verify, if it were ever fetched
    message = sign(notification(), "2", cert_url=url)
    with pytest.raises(SnsVerificationError):
        await SnsVerifier(certs).verify(message)
    assert certs.fetched == []


@pytest.mark.parametrize(
    ("url", "topic", "endpoint"),
    [
        (CERT_URL, TOPIC, None),
        (
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-ab.pem",
            "arn:aws-cn:sns:cn-north-1:123456789012:orders",
            None,
        ),
        (
            "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-ab.pem",
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:orders.fifo",
            None,
        ),
        ("http://127.0.0.1:4566/SimpleNotificationService-ab.pem", TOPIC, "http://127.0.0.1:4566"),
        (CERT_URL, TOPIC, "http://127.0.0.1:4566"),  # AWS's hosts stay allowed
    ],
)
def test_sns_hosts_and_the_configured_endpoint_are_allowed(
    url: str, topic: str, endpoint: str | None
) -> None:
    assert check_sns_url(url, topic, "certificate", endpoint_url=endpoint) == url


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://127.0.0.1:4566/SimpleNotificationService-ab.pem", "http://127.0.0.1:4566"),
        ("http://127.0.0.1:4567/SimpleNotificationService-ab.pem", "http://127.0.0.1:4566"),
        ("http://user@127.0.0.1:4566/SimpleNotificationService-ab.pem", "http://127.0.0.1:4566"),
        ("http://localhost:4566/SimpleNotificationService-ab.pem", "http://127.0.0.1:4566"),
    ],
)
def test_the_configured_endpoint_is_matched_exactly(url: str, endpoint: str) -> None:
    with pytest.raises(SnsVerificationError):
        check_sns_url(url, TOPIC, "certificate", endpoint_url=endpoint)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/?Action=ConfirmSubscription&Token=t",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
        "https://sns.us-east-1.amazonaws.com@evil.example/?Action=ConfirmSubscription",
        "https://sns.us-east-1.amazonaws.com/?Action=Publish&Message=x",
        "https://sns.us-east-1.amazonaws.com/redirect?Action=ConfirmSubscription",
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
    ],
)
def test_subscribe_urls_off_sns_or_not_confirmations_are_refused(url: str) -> None:
    with pytest.raises(SnsVerificationError):
        check_sns_url(url, TOPIC, "subscribe")


def test_a_topic_arn_that_is_not_one_gives_no_hosts() -> None:
    with pytest.raises(SnsMessageError):
        check_sns_url(CERT_URL, "arn:aws:sns:us-east-1:123:short-account", "certificate")
    with pytest.raises(SnsMessageError):
        check_sns_url(CERT_URL, None, "certificate")
    with pytest.raises(ValueError):
        SnsVerifier(Certificates(), endpoint_url="ftp://somewhere")


# -- the certificate itself --------------------------------------------------------------


async def test_concurrent_verifications_share_one_fetch_and_failures_are_not_cached() -> None:
    certs = Certificates({})
    verifier = SnsVerifier(certs)
    message = sign(notification(), "2")
    with pytest.raises(SnsVerificationError, match="could not fetch"):
        await verifier.verify(message)
    certs.pems[CERT_URL] = CERT_PEM
    await asyncio.gather(*(verifier.verify(message) for _ in range(5)))
    await verifier.verify(message)
    assert certs.fetched == [CERT_URL, CERT_URL]


async def test_cache_is_bounded() -> None:
    urls = [CERT_URL.replace("0123", f"{i:04d}") for i in range(3)]
    certs = Certificates(dict.fromkeys(urls, CERT_PEM))
    verifier = SnsVerifier(certs, cache_size=2)
    for url in [*urls, urls[0]]:
        await verifier.verify(sign(notification(), cert_url=url))
    assert certs.fetched == [*urls, urls[0]]  # the first one was evicted


@pytest.mark.parametrize(
    ("pem", "error"),
    [
        (make_certificate(KEY, valid_from=datetime(2020, 1, 1, tzinfo=UTC)), "not valid at"),
        (make_certificate(KEY, valid_from=datetime.now(UTC) + timedelta(hours=1)), "not valid at"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a PEM"),
        (b"<html>not found</html>", "not a PEM"),
    ],
    ids=["expired", "not-yet-valid", "bad-der", "html"],
)
async def test_unusable_certificates_are_refused(pem: bytes, error: str) -> None:
    with pytest.raises(SnsVerificationError, match=error):
        await SnsVerifier(Certificates({CERT_URL: pem})).verify(sign(notification()))


async def test_a_short_rsa_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    certs = Certificates({CERT_URL: make_certificate(small)})
    with pytest.raises(SnsVerificationError, match="no usable RSA key"):
        await SnsVerifier(certs).verify(sign(notification(), key=small))


async def test_the_clock_decides_validity() -> None:
    pem = make_certificate(KEY, valid_from=datetime(2020, 1, 1, tzinfo=UTC), days=30)
    verifier = SnsVerifier(
        Certificates({CERT_URL: pem}), clock=lambda: datetime(2020, 1, 15, tzinfo=UTC)
    )
    await verifier.verify(sign(notification()))
