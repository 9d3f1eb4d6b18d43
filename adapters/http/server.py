"""The API gateway's HTTP server: an aiohttp low-level server whose lifecycle we drive.

``ApiGateway.start()``/``stop()`` run it inside the caller's loop (``lambdabus
dev`` runs it beside the other adapters), so it never installs signal
handlers. It uses aiohttp's low-level ``web.Server`` rather than an
``Application``: every path is ours to route (API Gateway's rules, not
aiohttp's), and there is no router or middleware cost on the hot path.

Parser-level limits refuse what no API would accept before any of our code
runs: request lines and header fields over 16 KB, more than 200 headers.
Request bodies are never decompressed (API Gateway passes them as sent) and
never buffered beyond the 10 MB limit (see :mod:`.dispatch`).

Slow clients can't hold a connection forever. API Gateway documents no
client-side read timeout, so the choice is ours and follows what its front
end (and every load balancer) does with a stalled client:

- a request whose body hasn't all arrived ``body_timeout_s`` (default 30 s,
  ``LAMBDABUS_HTTP_BODY_TIMEOUT_S``) after the gateway started reading it is
  answered ``408 {"message": "Request Timeout"}`` and the connection closed;
  no function is invoked. The deadline is for the whole body, so a client
  trickling a byte at a time can't stretch it.
- a connection that hasn't sent a complete request head within
  ``idle_timeout_s`` (default 60 s, ``LAMBDABUS_HTTP_IDLE_TIMEOUT_S``) of
  opening or of its previous answer is closed without an answer, as an idle
  keep-alive connection is (aiohttp's keep-alive timer, which it arms at
  connect and which fires only while it waits for a request head; its default
  of an hour is far too long for a server facing clients).

One access-log line per request on the ``adapters.http.access`` logger:
peer, method, path (no query string: it may carry tokens), status, bytes,
seconds, and the route and function that served it (or why it was refused).
``LAMBDABUS_HTTP_ACCESS_LOG=0`` turns them off (API Gateway's access logging
is opt-in too): a line costs ~30 µs of CPU through :mod:`logging`, more than
the gateway's routing and event building together (``bench/http.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger, BaseRequest
from aiohttp.web_response import StreamResponse

from adapters.template.loaded import LoadedTemplate
from bus.sync import Invoker, InvokeResult

from .. import settings
from .auth import Authorizers
from .auth_config import GatewayConfigError
from .dispatch import ROUTE_KEY, Dispatcher
from .route_building import build_routes
from .routes import RouteTable

log = logging.getLogger("adapters.http")
access_log = logging.getLogger("adapters.http.access")

LINGER_S = 2.0
"""How long a refused upload is still read so the client can see the refusal."""
API_KEYS_ENV = "LAMBDABUS_API_KEYS"
BODY_TIMEOUT_ENV = "LAMBDABUS_HTTP_BODY_TIMEOUT_S"
IDLE_TIMEOUT_ENV = "LAMBDABUS_HTTP_IDLE_TIMEOUT_S"
ACCESS_LOG_ENV = "LAMBDABUS_HTTP_ACCESS_LOG"


class _AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %d %.3fs %s",
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
            request.get(ROUTE_KEY, "-"),
        )


def serves_http(loaded: LoadedTemplate) -> bool:
    """Does the template declare any Api or HttpApi event (anything to serve)?"""
    return any(ev.type in ("Api", "HttpApi") for ev in loaded.events)


def api_keys_from(loaded: LoadedTemplate) -> list[str]:
    """Valid ``x-api-key`` values: ``LAMBDABUS_API_KEYS`` (comma-separated) and the
    template's ``Metadata.lambdabus.api_keys`` (a list). SAM's usage plans create keys
    only on AWS, so locally they are declared here; with none, key-protected routes
    refuse every request, as API Gateway would without a valid key."""
    keys = [k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()]
    declared = loaded.settings.get("api_keys") or []
    if not isinstance(declared, list) or not all(isinstance(k, str) for k in declared):
        raise GatewayConfigError("Metadata.lambdabus.api_keys: expected a list of strings")
    return keys + declared


def seconds_from_env(name: str, default: float) -> float:
    """:func:`adapters.settings.seconds_from_env`, refused as a gateway setting (``dev``
    reports those in one line)."""
    try:
        return settings.seconds_from_env(name, default)
    except settings.SettingError as exc:
        raise GatewayConfigError(str(exc)) from None


class ApiGateway:
    """The template's Api and HttpApi routes on one port, invoking functions over the bus."""

    def __init__(
        self,
        redis_url: str,
        loaded: LoadedTemplate,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        mount_stage: bool = False,
        integration_timeout_s: float = 29.0,
        routes: RouteTable | None = None,
        api_keys: Iterable[str] | None = None,
        invoker: Invoker | None = None,
        shutdown_timeout_s: float = 10.0,
        body_timeout_s: float | None = None,
        idle_timeout_s: float | None = None,
        reuse_port: bool = False,
    ) -> None:
        """``routes`` overrides the table built from ``loaded`` (e.g. with asynchronous
        routes); ``api_keys`` overrides :func:`api_keys_from`; ``invoker`` shares the
        process's Invoker (it is then not closed by :meth:`stop`). Raises
        :class:`~.auth_config.GatewayConfigError` for auth or CORS settings it can't serve.
        ``body_timeout_s`` / ``idle_timeout_s``: see the module docstring (None: from the
        environment, else 30 s / 60 s). ``reuse_port``: bind with SO_REUSEPORT, so that
        several gateway processes share the port and the kernel spreads connections."""
        self.redis_url = redis_url
        self.loaded = loaded
        self.host = host
        self.port = port
        self.shutdown_timeout_s = shutdown_timeout_s
        self.reuse_port = reuse_port
        if body_timeout_s is None:
            body_timeout_s = seconds_from_env(BODY_TIMEOUT_ENV, 30.0)
        if idle_timeout_s is None:
            idle_timeout_s = seconds_from_env(IDLE_TIMEOUT_ENV, 60.0)
        if not (body_timeout_s > 0 and idle_timeout_s > 0):
            raise GatewayConfigError("the body and idle timeouts must be positive seconds")
        self.body_timeout_s = body_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.routes = routes or build_routes(
            loaded, mount_stage=mount_stage, asynchronous=loaded.async_routes
        )
        self._invoker = invoker
        self._owns_invoker = invoker is None
        keys = list(api_keys) if api_keys is not None else api_keys_from(loaded)
        self.authorizers = Authorizers(self._invoke, keys, loaded.region, integration_timeout_s)
        self.dispatcher = Dispatcher(
            self.routes,
            self.authorizers,
            self._get_invoker,
            integration_timeout_s,
            self.body_timeout_s,
        )
        self._runner: web.ServerRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _get_invoker(self) -> Invoker:
        if self._invoker is None:
            raise RuntimeError("the API gateway is not started")
        return self._invoker

    async def _invoke(self, function: str, event: Any, timeout_s: float) -> InvokeResult:
        return await self._get_invoker().invoke(function, event, timeout_s=timeout_s)

    async def start(self) -> int:
        """Bind and serve; returns the bound port (``port=0`` picks a free one)."""
        if self._runner is not None:
            raise RuntimeError("API gateway already started")
        for warning in self.routes.warnings:
            log.warning("%s", warning)
        if self._invoker is None:
            self._invoker = Invoker(self.redis_url, self.loaded.stack.name)
        server = web.Server(
            self.dispatcher.handle,
            access_log_class=_AccessLogger,
            access_log=access_log if os.environ.get(ACCESS_LOG_ENV, "1") != "0" else None,
            max_line_size=16384,
            max_field_size=16384,
            max_headers=200,
            auto_decompress=False,
            lingering_time=LINGER_S,
            keepalive_timeout=self.idle_timeout_s,
        )
        runner = web.ServerRunner(
            server, handle_signals=False, shutdown_timeout=self.shutdown_timeout_s
        )
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port, reuse_port=self.reuse_port or None)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._close_invoker()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        ports = {address[1] for address in runner.addresses}
        # One port for all (else, e.g. port 0 on both IPv4 and IPv6, each request asks its
        # connection which port it came in on).
        self.dispatcher.server_port = self.port if len(ports) == 1 else 0
        for route in self.routes.routes:
            log.info("%s %s -> %s", self.url, route.route_key, route.function)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish within the grace period, then
        close what we opened. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        try:
            await runner.cleanup()
        finally:
            await self.authorizers.close()
            await self._close_invoker()

    async def _close_invoker(self) -> None:
        invoker = self._invoker
        if invoker is not None and self._owns_invoker:
            self._invoker = None
            await invoker.close()

    async def __aenter__(self) -> ApiGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
