"""The answers API Gateway itself gives, per API kind, when no function answers.

REST APIs and HTTP APIs word their refusals differently (a REST API answers an
unknown route with 403 "Missing Authentication Token", an HTTP API with 404
"Not Found"; a failed function is a 502 on one and a 500 on the other), and
clients, tests and monitoring match on those exact bodies. Keeping every
refusal in one table keeps the two dialects from drifting apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

ApiKind = Literal["rest", "http"]

Refusal = Literal[
    "bad_request",
    "not_found",
    "api_key",
    "unauthorized",
    "forbidden",
    "authorizer_failed",
    "integration_failed",
    "integration_timeout",
    "too_large",
    "uri_too_long",
    "headers_too_large",
    "request_timeout",
]


@dataclass(slots=True)
class Answer:
    """A complete HTTP answer: status, headers in order (repeats allowed), body bytes.

    Not frozen, though nothing changes one: one or two are made per request, see
    :class:`~.request.RequestData`."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


_ANSWERS: dict[ApiKind, dict[Refusal, tuple[int, str | None, str | None]]] = {
    # refusal -> (status, message, x-amzn-ErrorType); REST APIs name the error type.
    "rest": {
        "bad_request": (400, "Bad Request", "BadRequestException"),
        "not_found": (403, "Missing Authentication Token", "MissingAuthenticationTokenException"),
        "api_key": (403, "Forbidden", "ForbiddenException"),
        "unauthorized": (401, "Unauthorized", "UnauthorizedException"),
        "forbidden": (
            403,
            "User is not authorized to access this resource with an explicit deny",
            "AccessDeniedException",
        ),
        "authorizer_failed": (500, None, "AuthorizerConfigurationException"),
        "integration_failed": (502, "Internal server error", None),
        "integration_timeout": (504, "Endpoint request timed out", None),
        "too_large": (413, "Request Too Long", None),
        "uri_too_long": (414, "Request-URI Too Long", None),
        "headers_too_large": (431, "Request Header Fields Too Large", None),
        "request_timeout": (408, "Request Timeout", None),
    },
    "http": {
        "bad_request": (400, "Bad Request", None),
        "not_found": (404, "Not Found", None),
        "api_key": (403, "Forbidden", None),
        "unauthorized": (401, "Unauthorized", None),
        "forbidden": (403, "Forbidden", None),
        "authorizer_failed": (500, "Internal Server Error", None),
        "integration_failed": (500, "Internal Server Error", None),
        "integration_timeout": (503, "Service Unavailable", None),
        "too_large": (413, "Request Entity Too Large", None),
        "uri_too_long": (414, "Request-URI Too Long", None),
        "headers_too_large": (431, "Request Header Fields Too Large", None),
        "request_timeout": (408, "Request Timeout", None),
    },
}


def refusal(kind: ApiKind, what: Refusal, *, extra: list[tuple[str, str]] | None = None) -> Answer:
    """API Gateway's own answer of ``kind`` for ``what``.

    A REST API's explicit-deny body really is spelled ``{"Message": ...}`` with a
    capital M, and an authorizer failure really answers ``{"message": null}``.
    """
    status, _, error_type = _ANSWERS[kind][what]
    headers = [("Content-Type", "application/json")]
    if error_type is not None:
        headers.append(("x-amzn-ErrorType", error_type))
    headers.extend(extra or ())
    return Answer(status, headers, _BODIES[kind][what])


def _body(kind: ApiKind, what: Refusal, message: str | None) -> bytes:
    key = "Message" if (kind, what) == ("rest", "forbidden") else "message"
    return json.dumps({key: message}).encode()


_BODIES = {
    kind: {what: _body(kind, what, message) for what, (_, message, _) in answers.items()}
    for kind, answers in _ANSWERS.items()
}
"""The refusals' bodies, encoded once: an unknown path is answered as often as asked."""


class Denied(Exception):
    """A request API Gateway refuses before any function runs (auth, limits, routing)."""

    def __init__(
        self, what: Refusal, reason: str = "", headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(reason or what)
        self.what: Refusal = what
        self.reason = reason
        """For the log line only: clients get API Gateway's fixed wording."""
        self.headers = headers or []
