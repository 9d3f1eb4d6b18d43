"""The events a Lambda authorizer receives, and the identity its answer is cached by.

- REST ``TOKEN``: ``{type, authorizationToken, methodArn}``.
- REST ``REQUEST`` (and HTTP APIs with payload 1.0): the 1.0 proxy event
  without its body, plus ``type: REQUEST`` and ``methodArn``.
- HTTP APIs with payload 2.0: the 2.0 proxy event without its body, plus
  ``type: REQUEST``, ``routeArn`` and ``identitySource`` (the values).

Pure functions of the request, like the proxy events they derive from.
"""

from __future__ import annotations

from typing import Any

from adapters.template.models import ACCOUNT_ID

from .auth_config import LambdaAuthorizer
from .events_v1 import build_v1
from .events_v2 import build_v2
from .request import RequestData, RequestIds
from .routes import Match


def method_arn(region: str, match: Match, method: str) -> str:
    """``arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`` for the
    request's actual path (not the route's template), as authorizer policies see it."""
    api = match.route.api
    path = match.path.lstrip("/")
    return f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{api.id}/{api.stage}/{method}/{path}"


def identity_values(
    authorizer: LambdaAuthorizer, req: RequestData, match: Match
) -> list[str] | None:
    """The identity sources' values in order, or None when one is missing (a 401 without
    invoking the authorizer, as API Gateway does). TOKEN authorizers also check the
    token against ``ValidationExpression`` here."""
    if authorizer.payload_type == "TOKEN" and authorizer.api_kind == "rest":
        token = req.header(authorizer.token_header)
        if not token or (authorizer.validation and not authorizer.validation.fullmatch(token)):
            return None
        return [token]
    values: list[str | None] = [req.header(h) for h in authorizer.headers]
    if authorizer.query_strings:
        query = req.query()
        values += [query[q][-1] if q in query else None for q in authorizer.query_strings]
    variables = match.route.api.stage_variables or {}
    values += [variables.get(v) for v in authorizer.stage_variables]
    context = {
        "sourceIp": req.source_ip,
        "httpMethod": req.method,
        "stage": match.route.api.stage,
        "apiId": match.route.api.id,
        "path": req.raw_path,
        "protocol": req.protocol,
    }
    values += [context.get(c) for c in authorizer.context]
    if any(v is None or v == "" for v in values):
        return None
    return [v for v in values if v is not None]


def authorizer_event(
    authorizer: LambdaAuthorizer, req: RequestData, match: Match, ids: RequestIds, region: str
) -> dict[str, Any]:
    """The authorizer's event; ``req`` has no body yet (authorizers run before it is read)."""
    arn = method_arn(region, match, req.method)
    if authorizer.payload_type == "TOKEN" and authorizer.api_kind == "rest":
        token = req.header(authorizer.token_header) or ""
        return {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
    identity = identity_values(authorizer, req, match) or []
    if authorizer.payload_version == "2.0":
        event = build_v2(req, match, ids.request_id)
        event.pop("body", None)
        event.pop("isBase64Encoded", None)
        return {"version": "2.0", "type": "REQUEST", "routeArn": arn,
                "identitySource": identity, **event}  # fmt: skip
    event = build_v1(req, match, ids.request_id, ids.extended)
    event.pop("body", None)
    event.pop("isBase64Encoded", None)
    extra: dict[str, Any] = {"type": "REQUEST", "methodArn": arn}
    if authorizer.api_kind == "http":
        extra["identitySource"] = ",".join(identity)
    return {**extra, **event}
