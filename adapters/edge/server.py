"""The edge endpoint's HTTP server: an aiohttp app whose lifecycle we drive.

``EdgeServer.start()``/``stop()`` run it inside the caller's loop (``lambdabus
dev`` runs it alongside adapters and the scheduler), so the runner never
installs signal handlers: the process owner decides when to stop. Requests are
bounded by ``client_max_size`` (Lambda's 6 MB plus headroom), so an oversized
body is refused with Lambda's own 413 instead of being buffered.

Every response carries ``x-amzn-RequestId``; every refusal is AWS-shaped (see
``errors.py``); with ``credentials`` set, every request but ``public_paths``
must carry a valid SigV4 signature. The access log shows paths only, never
query strings, which would hold presigned signatures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger, BaseRequest
from aiohttp.typedefs import Middleware
from aiohttp.web_response import StreamResponse

from bus.spec import Stack
from bus.sync import Invoker

from ..settings import seconds_from_env
from .errors import ApiError, aws_error, request_id
from .json_api import JsonTargets
from .lambda_api import SYNC_LIMIT, LambdaApi
from .sigv4 import SigV4Verifier

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = SYNC_LIMIT + 1024 * 1024
"""Largest body the server buffers: the 6 MB limit plus room to answer with Lambda's 413."""

BODY_TIMEOUT_S = 30.0
"""How long a request's whole body may take to arrive (``LAMBDABUS_EDGE_BODY_TIMEOUT_S``):
a client that sends headers and then trickles or stalls the body is answered 408 and
closed, instead of holding a connection and a handler for good."""
IDLE_TIMEOUT_S = 60.0
"""How long a connection may sit without a complete request head (aiohttp's default for
keep-alive is an hour)."""

LINGER_S = 2.0
"""How long to keep reading a refused request's unsent body so a client that is still
uploading can read the refusal; aiohttp's 10 s default holds shutdown as long when a
client hangs up instead (as botocore does after an early 413)."""

Handler = Callable[[web.Request], Awaitable[StreamResponse]]


class _AccessLogger(AbstractAccessLogger):
    """One line per request without the query string (presigned URLs carry signatures)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.3fs", request.remote, request.method, request.path, response.status, time
        )


@web.middleware
async def _aws_errors(request: web.Request, handler: Handler) -> StreamResponse:
    """Render refusals as AWS does and tag every response with its request id.

    A declared Content-Length past what the server buffers is refused before
    authentication reads the body; a chunked one is refused while it is read.
    """
    try:
        if (request.content_length or 0) > MAX_REQUEST_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_REQUEST_BYTES, request.content_length or 0)
        response = await handler(request)
    except ApiError as exc:
        response = aws_error(exc.status, exc.code, exc.message)
    except web.HTTPRequestEntityTooLarge:
        response = aws_error(
            413,
            "RequestEntityTooLargeException",
            f"Request must be smaller than {MAX_REQUEST_BYTES} bytes",
        )
    except web.HTTPException:
        raise
    except ConnectionResetError:  # the client hung up mid-request: its business, not a fault
        log.info("%s %s: client %s went away", request.method, request.path, request.remote)
        response = aws_error(400, "RequestAbortedException", "The client closed the connection.")
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        response = aws_error(500, "ServiceException", "Internal error; see the edge's log.")
    if not response.prepared:
        response.headers.setdefault("x-amzn-RequestId", request_id(request))
        if request.body_exists and not request.content.is_eof():
            # Refused before the body arrived: clients (botocore too) stop uploading
            # once they see the answer, so waiting for the rest would only hold the
            # connection, and reusing it would misread the leftover body.
            response.force_close()
    return response


def _body_deadline(timeout_s: float, streamed: set[str]) -> Middleware:
    @web.middleware
    async def body_deadline(request: web.Request, handler: Handler) -> StreamResponse:
        """Read (and cache) the whole body under one deadline before anything else does:
        SigV4 hashes it before any handler runs. Paths in ``streamed`` read their own."""
        if request.body_exists and request.path not in streamed:
            try:
                async with asyncio.timeout(timeout_s):
                    await request.read()
            except TimeoutError:
                message = f"Request body incomplete after {timeout_s:g} s"
                log.info("refused %s %s from %s: %s", request.method, request.path,
                         request.remote, message)  # fmt: skip
                raise ApiError(408, "RequestTimeoutException", message) from None
        return await handler(request)

    return body_deadline


def _authenticate(verifier: SigV4Verifier, public_paths: set[str]) -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> StreamResponse:
        """Refuse before any handler runs; the log names the key id, never secret or signature."""
        if request.path not in public_paths:
            try:
                await verifier.verify(request)
            except ApiError as exc:
                log.info(
                    "refused %s %s from %s: %s: %s",
                    request.method,
                    request.path,
                    request.remote,
                    exc.code,
                    exc.message,
                )
                raise
        return await handler(request)

    return authenticate


class EdgeServer:
    """lambdabus's AWS-compatible APIs on one port; ``app`` takes more routes before start."""

    def __init__(
        self,
        redis_url: str,
        stack: Stack,
        *,
        host: str = "127.0.0.1",
        port: int = 4566,
        credentials: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        reply_margin_s: float = 30.0,
        shutdown_timeout_s: float = 10.0,
        body_timeout_s: float | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        """``credentials`` maps access key ids to secrets; ``None`` accepts any request
        (signed or not), an empty mapping refuses all. ``reply_margin_s`` is how long
        past a function's Timeout a synchronous call waits for any reply."""
        self.redis_url = redis_url
        self.stack = stack
        self.host = host
        self.port = port
        self.region = region
        self.shutdown_timeout_s = shutdown_timeout_s
        self.public_paths: set[str] = {"/healthz"}
        """Paths served without a signature (probes; later, SNS's HTTP deliveries)."""
        self.streamed_paths: set[str] = set()
        """Paths whose handler reads the body itself, within ``body_timeout_s``."""
        self.body_timeout_s = body_timeout_s or seconds_from_env(
            "LAMBDABUS_EDGE_BODY_TIMEOUT_S", BODY_TIMEOUT_S
        )
        self.idle_timeout_s = idle_timeout_s
        self.lambda_api = LambdaApi(stack, region, reply_margin_s=reply_margin_s)
        middlewares: list[Middleware] = [
            _aws_errors,
            _body_deadline(self.body_timeout_s, self.streamed_paths),
        ]
        if credentials is not None:
            verifier = SigV4Verifier(credentials, region)
            middlewares.append(_authenticate(verifier, self.public_paths))
        self.app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=middlewares)
        self.app.router.add_get("/healthz", self._healthz)
        self.lambda_api.register(self.app.router)
        self.json_api = JsonTargets()
        """``POST /`` by ``X-Amz-Target``: services add their operations before start."""
        self.json_api.register(self.app.router)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> int:
        """Bind and serve; returns the bound port (``port=0`` picks a free one)."""
        if self._runner is not None:
            raise RuntimeError("edge server already started")
        invoker = Invoker(self.redis_url, self.stack.name)
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log_class=_AccessLogger,
            lingering_time=LINGER_S,
            shutdown_timeout=self.shutdown_timeout_s,
            keepalive_timeout=self.idle_timeout_s,
        )
        self.lambda_api.invoker = invoker  # before the first request can arrive
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            self.lambda_api.invoker = None
            await runner.cleanup()
            await invoker.close()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("edge endpoint serving on %s", self.url)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish within the grace period, then close
        the Invoker (its reply stream goes with it). Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        try:
            await runner.cleanup()
        finally:
            invoker, self.lambda_api.invoker = self.lambda_api.invoker, None
            if invoker is not None:
                await invoker.close()

    async def __aenter__(self) -> EdgeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")
