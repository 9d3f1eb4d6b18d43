"""Enforcing a route's auth: API keys, Lambda authorizers (cached), JWT authorizers.

Order as on API Gateway: the authorizer first, then (REST) the API key. Every
refusal raises :class:`~.errors.Denied` before the route's function runs.

A Lambda authorizer is invoked through the bus like any function. Its answer
is cached per identity (the token, or the values of the identity sources) for
``ReauthorizeEvery`` seconds: a REST policy is cached whole and evaluated
against each request's method ARN, as API Gateway does, so one cached policy
can allow one path and deny another. Concurrent requests with the same
identity share one invocation, and the cache is bounded, so a flood of
distinct junk tokens costs invocations but never unbounded memory.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bus.sync import InvokeResult, InvokeTimeout

from .auth_config import JwtAuthorizer, LambdaAuthorizer, RouteAuth, Unsupported
from .authorizer_events import authorizer_event, identity_values, method_arn
from .errors import Denied
from .jwt_auth import JwtVerifier
from .request import Grant, RequestData, RequestIds
from .routes import Match

log = logging.getLogger(__name__)

MAX_CACHED = 10_000
Invoke = Callable[[str, Any, float], Awaitable[InvokeResult]]
"""(function, event, timeout_s) -> its result: the gateway's Invoker."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A Lambda authorizer's answer, before it is applied to one request."""

    allowed: bool | None
    """Simple responses: the verdict; None for a policy, judged per request."""
    statements: tuple[dict[str, Any], ...] = ()
    principal_id: str | None = None
    context: dict[str, Any] | None = None


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(".".join(map(re.escape, p.split("?"))) for p in pattern.split("*")))


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError("Action and Resource must be strings or lists of strings")


def policy_allows(statements: Iterable[dict[str, Any]], arn: str) -> bool:
    """IAM evaluation for ``execute-api:Invoke`` on ``arn``: an explicit Deny wins, and
    without a matching Allow the answer is no."""
    allowed = False
    for statement in statements:
        actions = _listed(statement.get("Action", []))
        resources = _listed(statement.get("Resource", []))
        if not any(_wildcard(a.lower()).fullmatch("execute-api:invoke") for a in actions):
            continue
        if not any(_wildcard(r).fullmatch(arn) for r in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed |= statement.get("Effect") == "Allow"
    return allowed


def parse_decision(authorizer: LambdaAuthorizer, payload: Any) -> Decision:
    """Raises ValueError for an answer API Gateway would call a configuration error."""
    if not isinstance(payload, dict):
        raise ValueError(f"expected an object, got {type(payload).__name__}")
    context = payload.get("context")
    if context is not None and not isinstance(context, dict):
        raise ValueError("context must be an object")
    if (
        authorizer.api_kind == "rest"
        and context
        and any(isinstance(v, dict | list) for v in context.values())
    ):
        raise ValueError("a REST authorizer's context values must be strings, numbers or bools")
    if authorizer.simple_responses:
        if not isinstance(payload.get("isAuthorized"), bool):
            raise ValueError("a simple response needs isAuthorized: true or false")
        return Decision(payload["isAuthorized"], context=context)
    document = payload.get("policyDocument")
    if not isinstance(document, dict):
        raise ValueError("policyDocument is missing")
    statements = document.get("Statement")
    statements = [statements] if isinstance(statements, dict) else statements
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise ValueError("policyDocument.Statement must be a list of statements")
    principal = payload.get("principalId")
    return Decision(None, tuple(statements), None if principal is None else str(principal), context)


class Authorizers:
    """Every route's auth, with one cache of Lambda authorizer answers."""

    def __init__(
        self, invoke: Invoke, api_keys: Iterable[str], region: str, timeout_s: float
    ) -> None:
        self.invoke = invoke
        self.api_keys = tuple(k.encode() for k in api_keys)
        self.region = region
        self.timeout_s = timeout_s
        self.jwt = JwtVerifier()
        self._cache: OrderedDict[tuple[Any, ...], tuple[float, Decision]] = OrderedDict()
        self._inflight: dict[tuple[Any, ...], asyncio.Future[Decision]] = {}

    async def check(
        self, req: RequestData, match: Match, auth: RouteAuth, ids: RequestIds
    ) -> tuple[Grant | None, str | None]:
        """(what the authorizer granted, the API key used); raises Denied."""
        grant: Grant | None = None
        authorizer = auth.authorizer
        if isinstance(authorizer, Unsupported):
            raise Denied("authorizer_failed", f"{authorizer.name}: {authorizer.reason}")
        if isinstance(authorizer, JwtAuthorizer):
            grant = await self.jwt.verify(req, authorizer, auth.scopes)
        elif isinstance(authorizer, LambdaAuthorizer):
            grant = await self._lambda(authorizer, req, match, ids)
        api_key = self._api_key(req) if auth.api_key_required else None
        return grant, api_key

    def _api_key(self, req: RequestData) -> str:
        given = req.header("x-api-key")
        if given is None:
            raise Denied("api_key", "no x-api-key header")
        encoded = given.encode()
        if not any(hmac.compare_digest(encoded, key) for key in self.api_keys):
            raise Denied("api_key", "unknown API key")
        return given

    async def _lambda(
        self, authorizer: LambdaAuthorizer, req: RequestData, match: Match, ids: RequestIds
    ) -> Grant:
        identity = identity_values(authorizer, req, match)
        if identity is None:
            raise Denied("unauthorized", "an identity source is missing")
        started = time.monotonic()
        key = (authorizer.name, match.route.api.id, *identity)
        cacheable = authorizer.ttl_s > 0 and bool(identity)
        decision = self._cached(key) if cacheable else None
        if decision is None:
            decision = await self._decide(authorizer, req, match, ids, key, cacheable)
        if decision.allowed is None:
            arn = method_arn(self.region, match, req.method)
            try:
                allowed = policy_allows(decision.statements, arn)
            except ValueError as exc:
                raise Denied("authorizer_failed", f"{authorizer.name}: {exc}") from None
        else:
            allowed = decision.allowed
        if not allowed:
            raise Denied("forbidden", f"{authorizer.name} denied")
        latency_ms = int((time.monotonic() - started) * 1000)
        return Grant(
            "lambda",
            principal_id=decision.principal_id,
            context=dict(decision.context or {}),
            latency_ms=latency_ms,
        )

    def _cached(self, key: tuple[Any, ...]) -> Decision | None:
        entry = self._cache.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        self._cache.move_to_end(key)
        return entry[1]

    async def _decide(
        self,
        authorizer: LambdaAuthorizer,
        req: RequestData,
        match: Match,
        ids: RequestIds,
        key: tuple[Any, ...],
        cacheable: bool,
    ) -> Decision:
        """One invocation per identity at a time; the others await its answer."""
        pending = self._inflight.get(key) if cacheable else None
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        if cacheable:
            self._inflight[key] = future
        try:
            decision = await self._invoke(authorizer, req, match, ids)
            if cacheable:
                self._cache[key] = (time.monotonic() + authorizer.ttl_s, decision)
                while len(self._cache) > MAX_CACHED:
                    self._cache.popitem(last=False)
            future.set_result(decision)
            return decision
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(key, None)

    async def _invoke(
        self, authorizer: LambdaAuthorizer, req: RequestData, match: Match, ids: RequestIds
    ) -> Decision:
        event = authorizer_event(authorizer, req, match, ids, self.region)
        try:
            result = await self.invoke(authorizer.function, event, self.timeout_s)
        except InvokeTimeout:
            raise Denied("authorizer_failed", f"{authorizer.name}: no answer in time") from None
        if result.status != "success":
            message = result.payload.get("errorMessage") if isinstance(result.payload, dict) else ""
            if message == "Unauthorized":
                raise Denied("unauthorized", f"{authorizer.name} said Unauthorized")
            raise Denied("authorizer_failed", f"{authorizer.name} failed: {message}")
        try:
            return parse_decision(authorizer, result.payload)
        except ValueError as exc:
            raise Denied("authorizer_failed", f"{authorizer.name}: {exc}") from None

    async def close(self) -> None:
        await self.jwt.close()
