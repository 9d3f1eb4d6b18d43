"""AWS's JSON protocols (1.0 and 1.1) on the edge: ``POST /`` dispatched by ``X-Amz-Target``.

EventBridge (``AWSEvents.PutEvents``) and Step Functions
(``AWSStepFunctions.StartExecution``) share the path ``/`` and differ only in
the target header's prefix, so one dispatcher owns the route and each service
registers its operations under its prefix. Errors are rendered as botocore's
JSON parser reads them: ``{"__type": code, "message": ...}`` plus the
``x-amzn-ErrorType`` header, so ``client.exceptions.ValidationException`` & co.
are raised on the caller's side.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

Operation = Callable[[dict[str, Any], web.Request], Awaitable[dict[str, Any]]]
"""One API operation: the parsed request body (and the request) in, the response body out."""


class JsonApiError(Exception):
    """A refusal as the service sends it: status, error code (``__type``), message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class _Service:
    def __init__(
        self, operations: Mapping[str, Operation], content_type: str, max_body: int
    ) -> None:
        self.operations = dict(operations)
        self.content_type = content_type
        self.max_body = max_body


class JsonTargets:
    """The ``POST /`` route of the edge, shared by every JSON-protocol service."""

    def __init__(self) -> None:
        self._services: dict[str, _Service] = {}

    def add(
        self,
        prefix: str,
        operations: Mapping[str, Operation],
        *,
        version: str = "1.1",
        max_body: int = 1024 * 1024 + 64 * 1024,
    ) -> None:
        """Serve ``{prefix}.{operation}``; ``max_body`` bounds what is read of a request."""
        if prefix in self._services:
            raise ValueError(f"JSON service {prefix!r} registered twice")
        self._services[prefix] = _Service(operations, f"application/x-amz-json-{version}", max_body)

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post("/", self._dispatch)

    async def _dispatch(self, request: web.Request) -> web.Response:
        prefix, _, name = request.headers.get("X-Amz-Target", "").partition(".")
        service = self._services.get(prefix)
        if service is None:
            return _error("application/x-amz-json-1.1", JsonApiError(
                "UnknownOperationException", "No service serves this X-Amz-Target."
            ))  # fmt: skip
        try:
            operation = service.operations.get(name)
            if operation is None:
                raise JsonApiError("UnknownOperationException", f"Unknown operation {name!r}.")
            body = await _read_body(request, service.max_body)
            result = await operation(body, request)
        except JsonApiError as exc:
            return _error(service.content_type, exc)
        return web.Response(
            body=json.dumps(result, separators=(",", ":")).encode(),
            content_type=service.content_type,
        )


async def _read_body(request: web.Request, limit: int) -> dict[str, Any]:
    if (request.content_length or 0) > limit:
        raise JsonApiError(
            "RequestEntityTooLargeException", f"Request must be smaller than {limit} bytes", 413
        )
    # request.read(): whole and cached (SigV4 verification has read it when signed), and
    # bounded by the server's client_max_size; content.read(n) returns only what arrived.
    raw = await request.read()
    if len(raw) > limit:
        raise JsonApiError(
            "RequestEntityTooLargeException", f"Request must be smaller than {limit} bytes", 413
        )
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise JsonApiError("SerializationException", "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise JsonApiError("SerializationException", "Request body must be a JSON object.")
    return body


def _error(content_type: str, exc: JsonApiError) -> web.Response:
    return web.Response(
        status=exc.status,
        body=json.dumps({"__type": exc.code, "message": exc.message}).encode(),
        content_type=content_type,
        headers={"x-amzn-ErrorType": exc.code},
    )
