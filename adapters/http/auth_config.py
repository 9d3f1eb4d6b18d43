"""SAM's ``Auth`` sections, checked and turned into data the gateway enforces.

The template loader keeps an API's ``Auth`` (and an event's) as a free-form
mapping, so this module is where a misspelt authorizer name or a Lambda
authorizer pointing at no function becomes one clear line at startup, not a
401 at the first request. What lambdabus can't enforce locally (Cognito user
pools, IAM signatures) is kept as :class:`Unsupported`: such routes refuse
every request with a logged reason rather than silently serving unprotected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ApiKind

DEFAULT_TTL_S = 300.0
"""``ReauthorizeEvery`` when the template doesn't say: SAM's default."""
NONE = "NONE"


class GatewayConfigError(ValueError):
    """The template asks for something the gateway can't serve; names where."""


@dataclass(frozen=True, slots=True)
class LambdaAuthorizer:
    name: str
    function: str
    api_kind: ApiKind
    payload_type: Literal["TOKEN", "REQUEST"] = "REQUEST"
    payload_version: Literal["1.0", "2.0"] = "1.0"
    simple_responses: bool = False
    token_header: str = "Authorization"
    headers: tuple[str, ...] = ()
    query_strings: tuple[str, ...] = ()
    stage_variables: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    validation: re.Pattern[str] | None = None
    ttl_s: float = DEFAULT_TTL_S


@dataclass(frozen=True, slots=True)
class JwtAuthorizer:
    name: str
    issuer: str
    audience: tuple[str, ...]
    source: tuple[Literal["header", "querystring"], str] = ("header", "Authorization")
    scopes: tuple[str, ...] = ()
    jwks: str | None = None
    """A JWKS file or URL from ``Metadata.lambdabus.jwks``; None: the issuer's discovery."""


@dataclass(frozen=True, slots=True)
class Unsupported:
    name: str
    reason: str


Authorizer = LambdaAuthorizer | JwtAuthorizer | Unsupported


@dataclass(frozen=True, slots=True)
class RouteAuth:
    api_key_required: bool = False
    authorizer: Authorizer | None = None
    scopes: tuple[str, ...] = ()
    """The route's ``AuthorizationScopes`` (else the JWT authorizer's own)."""


@dataclass(frozen=True, slots=True)
class ApiAuth:
    authorizers: Mapping[str, Authorizer] = field(default_factory=dict)
    default: str | None = None
    api_key_required: bool = False
    preflight_authorizer: bool = True
    """``AddDefaultAuthorizerToCorsPreflight`` (SAM's default is true)."""
    preflight_api_key: bool = True
    """``AddApiKeyRequiredToCorsPreflight`` (SAM's default is true)."""

    def preflight(self) -> RouteAuth:
        """What SAM's generated OPTIONS method of a REST API requires."""
        authorizer = self.authorizers.get(self.default or "") if self.preflight_authorizer else None
        return RouteAuth(self.api_key_required and self.preflight_api_key, authorizer)


FunctionOf = Callable[[Any, str], str]
"""(FunctionArn value, where) -> the function's name in the stack, or GatewayConfigError."""


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GatewayConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GatewayConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _flag(value: Any, default: bool, where: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise GatewayConfigError(f"{where}: expected true or false, got {value!r}")


def _ttl(identity: Mapping[str, Any], where: str) -> float:
    value = identity.get("ReauthorizeEvery", DEFAULT_TTL_S)
    try:
        ttl = float(value)
    except (TypeError, ValueError):
        raise GatewayConfigError(
            f"{where}.ReauthorizeEvery: expected seconds, got {value!r}"
        ) from None
    if not 0 <= ttl <= 3600:
        raise GatewayConfigError(f"{where}.ReauthorizeEvery: must be between 0 and 3600")
    return ttl


def _rest_authorizer(name: str, raw: dict[str, Any], fn_of: FunctionOf, where: str) -> Authorizer:
    if "UserPoolArn" in raw:
        return Unsupported(name, "Cognito user pool authorizers are not run by lambdabus")
    if "FunctionArn" not in raw:
        raise GatewayConfigError(f"{where}: needs FunctionArn (Lambda) or UserPoolArn (Cognito)")
    kind = raw.get("FunctionPayloadType", "TOKEN")
    if kind not in ("TOKEN", "REQUEST"):
        raise GatewayConfigError(f"{where}.FunctionPayloadType: must be TOKEN or REQUEST")
    identity = _mapping(raw.get("Identity"), f"{where}.Identity")
    expression = identity.get("ValidationExpression")
    try:
        validation = re.compile(expression) if isinstance(expression, str) else None
    except re.error as exc:
        raise GatewayConfigError(f"{where}.Identity.ValidationExpression: {exc}") from None
    return LambdaAuthorizer(
        name,
        fn_of(raw["FunctionArn"], f"{where}.FunctionArn"),
        "rest",
        payload_type=kind,
        token_header=str(identity.get("Header", "Authorization")),
        headers=_names(identity.get("Headers"), f"{where}.Identity.Headers"),
        query_strings=_names(identity.get("QueryStrings"), f"{where}.Identity.QueryStrings"),
        stage_variables=_names(identity.get("StageVariables"), f"{where}.Identity.StageVariables"),
        context=_names(identity.get("Context"), f"{where}.Identity.Context"),
        validation=validation,
        ttl_s=_ttl(identity, f"{where}.Identity"),
    )


_SOURCE = re.compile(r"\$request\.(header|querystring)\.([A-Za-z0-9_.~!#$%&'*+^`|-]+)")


def _http_authorizer(
    name: str, raw: dict[str, Any], fn_of: FunctionOf, jwks: Mapping[str, str], where: str
) -> Authorizer:
    if "JwtConfiguration" in raw:
        jwt = _mapping(raw["JwtConfiguration"], f"{where}.JwtConfiguration")
        issuer, audience = jwt.get("issuer"), _names(jwt.get("audience"), f"{where}.audience")
        if not isinstance(issuer, str) or not audience:
            raise GatewayConfigError(f"{where}.JwtConfiguration: needs issuer and audience")
        source = raw.get("IdentitySource", "$request.header.Authorization")
        found = _SOURCE.fullmatch(source) if isinstance(source, str) else None
        if found is None:
            raise GatewayConfigError(
                f"{where}.IdentitySource: expected $request.header.NAME or"
                f" $request.querystring.NAME, got {source!r}"
            )
        where_from: Literal["header", "querystring"] = (
            "header" if found.group(1) == "header" else "querystring"
        )
        return JwtAuthorizer(
            name,
            issuer,
            audience,
            (where_from, found.group(2)),
            _names(raw.get("AuthorizationScopes"), f"{where}.AuthorizationScopes"),
            jwks.get(name),
        )
    if "FunctionArn" not in raw:
        raise GatewayConfigError(f"{where}: needs JwtConfiguration or FunctionArn")
    version = str(raw.get("AuthorizerPayloadFormatVersion", "2.0"))
    if version not in ("1.0", "2.0"):
        raise GatewayConfigError(f"{where}.AuthorizerPayloadFormatVersion: must be 1.0 or 2.0")
    simple = _flag(raw.get("EnableSimpleResponses"), False, f"{where}.EnableSimpleResponses")
    if simple and version != "2.0":
        raise GatewayConfigError(f"{where}.EnableSimpleResponses: needs payload format 2.0")
    identity = _mapping(raw.get("Identity"), f"{where}.Identity")
    return LambdaAuthorizer(
        name,
        fn_of(raw["FunctionArn"], f"{where}.FunctionArn"),
        "http",
        payload_version="2.0" if version == "2.0" else "1.0",
        simple_responses=simple,
        headers=_names(identity.get("Headers"), f"{where}.Identity.Headers"),
        query_strings=_names(identity.get("QueryStrings"), f"{where}.Identity.QueryStrings"),
        stage_variables=_names(identity.get("StageVariables"), f"{where}.Identity.StageVariables"),
        context=_names(identity.get("Context"), f"{where}.Identity.Context"),
        ttl_s=_ttl(identity, f"{where}.Identity"),
    )


def parse_api_auth(
    kind: ApiKind, raw: Any, fn_of: FunctionOf, jwks: Mapping[str, str], where: str
) -> ApiAuth:
    """An API's ``Auth`` property; every authorizer checked, ``DefaultAuthorizer`` resolved."""
    auth = _mapping(raw, where)
    authorizers: dict[str, Authorizer] = {}
    for name, spec in _mapping(auth.get("Authorizers"), f"{where}.Authorizers").items():
        at = f"{where}.Authorizers.{name}"
        spec = _mapping(spec, at)
        authorizers[name] = (
            _rest_authorizer(name, spec, fn_of, at)
            if kind == "rest"
            else _http_authorizer(name, spec, fn_of, jwks, at)
        )
    default = auth.get("DefaultAuthorizer")
    if default == "AWS_IAM":
        authorizers[default] = Unsupported(default, "IAM (SigV4) authorization is not run locally")
    elif default is not None and default not in authorizers:
        raise GatewayConfigError(f"{where}.DefaultAuthorizer: no authorizer named {default!r}")
    if kind == "http" and "ApiKeyRequired" in auth:
        raise GatewayConfigError(f"{where}.ApiKeyRequired: HTTP APIs have no API keys")
    return ApiAuth(
        authorizers,
        default,
        _flag(auth.get("ApiKeyRequired"), False, f"{where}.ApiKeyRequired"),
        _flag(
            auth.get("AddDefaultAuthorizerToCorsPreflight"),
            True,
            f"{where}.AddDefaultAuthorizerToCorsPreflight",
        ),
        _flag(
            auth.get("AddApiKeyRequiredToCorsPreflight"),
            True,
            f"{where}.AddApiKeyRequiredToCorsPreflight",
        ),
    )


def route_auth(kind: ApiKind, api: ApiAuth, raw: Any, where: str) -> RouteAuth:
    """An event's ``Auth`` over its API's: ``Authorizer: NONE`` opts a route out."""
    auth = _mapping(raw, where)
    name = auth.get("Authorizer", api.default)
    if name == "AWS_IAM":
        authorizer: Authorizer | None = Unsupported(name, "IAM (SigV4) authorization")
    elif name is None or name == NONE:
        authorizer = None
    elif name in api.authorizers:
        authorizer = api.authorizers[name]
    else:
        raise GatewayConfigError(f"{where}.Authorizer: the API has no authorizer named {name!r}")
    if kind == "http" and "ApiKeyRequired" in auth:
        raise GatewayConfigError(f"{where}.ApiKeyRequired: HTTP APIs have no API keys")
    scopes = _names(auth.get("AuthorizationScopes"), f"{where}.AuthorizationScopes")
    if not scopes and isinstance(authorizer, JwtAuthorizer):
        scopes = authorizer.scopes
    required = _flag(auth.get("ApiKeyRequired"), api.api_key_required, f"{where}.ApiKeyRequired")
    return RouteAuth(required, authorizer, scopes)
