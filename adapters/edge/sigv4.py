"""Verifying AWS Signature Version 4 on incoming requests.

The signature is recomputed with botocore's own signer (``SigV4Auth``), fed
with what the client signed: the method, the path as it was sent, the query,
only the headers named in ``SignedHeaders`` and the body. Reusing the SDK's
canonicalisation instead of a home-made one means a request botocore signed
verifies byte for byte, including its double URI-encoding of paths.

Both forms are accepted: the ``Authorization`` header and the query-string
("presigned") form. In both, the body is covered by its SHA-256 (as SigV4
defines it for every service but S3), so a presigned URL cannot carry another
payload. Checks, in AWS's order: the header parses, the access key is known,
the credential scope names our region and the request's date, the date is
within 15 minutes of now (or, presigned, not past ``X-Amz-Expires``), then the
signature. Messages follow AWS's; secrets and signatures are never logged or
echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from calendar import timegm
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from .errors import ApiError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_S = 15 * 60
"""How far X-Amz-Date may be from our clock, as AWS allows."""
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600


class AuthError(ApiError):
    """A refused request (403): the AWS error code and a message safe to return."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(403, code, message)


def _incomplete(message: str) -> AuthError:
    return AuthError("IncompleteSignatureException", message)


def _invalid(message: str) -> AuthError:
    return AuthError("InvalidSignatureException", message)


@dataclass(frozen=True)
class SignedRequest:
    """The signature's claims, from the Authorization header or the query string."""

    access_key: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    expires_s: int | None
    """Presigned form only: how long the URL is valid after ``amz_date``."""
    query: list[tuple[str, str]]
    """The decoded query pairs that are signed (all but ``X-Amz-Signature``)."""


def _split_query(raw_query: str) -> list[tuple[str, str]]:
    """Decoded pairs, ``+`` left as is: SigV4 encodes what the client meant, not form data."""
    pairs = []
    for part in raw_query.split("&") if raw_query else ():
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def _parse_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise _incomplete(
            "Credential should be of the form "
            "'<access key>/<date>/<region>/<service>/aws4_request'."
        )
    return parts[0], parts[1], parts[2], parts[3]


def _from_header(header: str, request: web.Request) -> SignedRequest:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported authorization algorithm; only {ALGORITHM} is accepted.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            fields[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise _incomplete(f"Authorization header requires {', '.join(missing)} parameter(s).")
    amz_date = request.headers.get("X-Amz-Date")
    if not amz_date:
        raise _incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
    key, date, region, service = _parse_credential(fields["Credential"])
    signed = tuple(fields["SignedHeaders"].split(";"))
    if "x-amz-date" not in signed:
        raise _invalid("'X-Amz-Date' must be a signed header.")
    query = _split_query(request.raw_path.partition("?")[2])
    return SignedRequest(
        key, date, region, service, signed, fields["Signature"], amz_date, None, query
    )


def _from_query(request: web.Request) -> SignedRequest:
    pairs = _split_query(request.raw_path.partition("?")[2])
    params = dict(pairs)
    needed = (
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    )
    missing = [k for k in needed if not params.get(k)]
    if missing:
        raise _incomplete(f"Presigned request requires {', '.join(missing)}.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _incomplete(f"Unsupported algorithm; only {ALGORITHM} is accepted.")
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        raise _incomplete("X-Amz-Expires must be a number of seconds.") from None
    if not 0 < expires <= MAX_PRESIGN_EXPIRES_S:
        raise _incomplete(f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES_S}.")
    key, date, region, service = _parse_credential(params["X-Amz-Credential"])
    signed = tuple(params["X-Amz-SignedHeaders"].split(";"))
    query = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    return SignedRequest(
        key,
        date,
        region,
        service,
        signed,
        params["X-Amz-Signature"],
        params["X-Amz-Date"],
        expires,
        query,
    )


class _Recompute(SigV4Auth):
    """botocore's signer restricted to exactly the headers the client signed.

    Its own ``headers_to_sign`` would drop some (``user-agent``, ``expect``...)
    that other SDKs do sign, and it would skip hashing the body over https.
    """

    def __init__(self, signed: SignedRequest, secret_key: str, headers: HTTPHeaders) -> None:
        super().__init__(Credentials(signed.access_key, secret_key), signed.service, signed.region)
        self._headers = headers

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._headers

    def _should_sha256_sign_payload(self, request: AWSRequest) -> bool:
        return True


class SigV4Verifier:
    """Checks requests against a fixed set of access keys for one region."""

    def __init__(
        self, credentials: Mapping[str, str], region: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._secrets = dict(credentials)
        self.region = region
        self._clock = clock

    async def verify(self, request: web.Request) -> None:
        """Raise ``AuthError`` unless the request carries a valid signature for a known key."""
        header = request.headers.get("Authorization")
        if header is not None:
            signed = _from_header(header, request)
        elif "X-Amz-Algorithm" in request.query:
            signed = _from_query(request)
        else:
            raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
        secret = self._secrets.get(signed.access_key)
        if secret is None:
            raise AuthError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        self._check_scope_and_time(signed)
        headers = self._signed_headers(signed, request)
        body = await request.read()
        declared = request.headers.get("X-Amz-Content-SHA256")
        if declared is not None and declared != hashlib.sha256(body).hexdigest():
            raise _invalid("The provided 'x-amz-content-sha256' header does not match the body.")
        expected = self._signature(signed, secret, headers, request, body)
        if not hmac.compare_digest(expected.encode(), signed.signature.encode()):
            raise _invalid(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method."
            )

    def _check_scope_and_time(self, signed: SignedRequest) -> None:
        if signed.region != self.region:
            raise _invalid(f"Credential should be scoped to a valid region, not '{signed.region}'.")
        try:
            when = timegm(time.strptime(signed.amz_date, SIGV4_TIMESTAMP))
        except ValueError:
            raise _incomplete(
                f"X-Amz-Date must look like YYYYMMDDTHHMMSSZ, not '{signed.amz_date[:32]}'."
            ) from None
        if signed.scope_date != signed.amz_date[:8]:
            raise _invalid(
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{signed.scope_date}' != '{signed.amz_date[:8]}'."
            )
        now = self._clock()
        now_s = time.strftime(SIGV4_TIMESTAMP, time.gmtime(now))
        if when > now + MAX_SKEW_S:
            raise _invalid(
                f"Signature not yet current: {signed.amz_date} is still later than "
                f"{now_s} + 15 min."
            )
        if signed.expires_s is None and now > when + MAX_SKEW_S:
            raise _invalid(
                f"Signature expired: {signed.amz_date} is now earlier than {now_s} - 15 min."
            )
        if signed.expires_s is not None and now > when + signed.expires_s:
            raise _invalid(
                f"Signature expired: {signed.amz_date} + {signed.expires_s} s "
                f"(X-Amz-Expires) is now earlier than {now_s}."
            )

    @staticmethod
    def _signed_headers(signed: SignedRequest, request: web.Request) -> HTTPHeaders:
        names = [n.lower() for n in signed.signed_headers]
        if "host" not in names:
            raise _invalid("'Host' must be a signed header.")
        headers = HTTPHeaders()
        for name in names:
            values = request.headers.getall(name, [])
            if not values:
                raise _invalid(f"Signed header '{name}' is missing from the request.")
            for value in values:
                headers[name] = value
        return headers

    @staticmethod
    def _signature(
        signed: SignedRequest, secret: str, headers: HTTPHeaders, request: web.Request, body: bytes
    ) -> str:
        """Recompute the signature the client should have sent."""
        path = request.raw_path.partition("?")[0]
        aws_request = AWSRequest(
            method=request.method,
            url=f"http://{request.headers.get('Host', 'localhost')}{path}",
            headers={name: ",".join(headers.get_all(name)) for name in set(headers)},
            params=signed.query,
            data=body,
        )
        aws_request.context["timestamp"] = signed.amz_date
        signer = _Recompute(signed, secret, headers)
        canonical = signer.canonical_request(aws_request)
        return signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
