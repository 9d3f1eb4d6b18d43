"""CORS as SAM declares it, answered the way each API kind answers it.

- A REST API's ``Cors`` makes SAM add an ``OPTIONS`` method with a mock
  integration to every path: it answers 200 with fixed ``Access-Control-*``
  headers, and actual responses carry only what the function returns.
- An HTTP API's ``CorsConfiguration`` is API Gateway's own: it answers every
  preflight itself (204, whether or not a route matches) and sets the CORS
  headers of every actual response, replacing any the function returned.

REST values are written as header-mapping expressions (``"'GET,POST'"``), so
their single quotes are stripped.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .auth_config import GatewayConfigError
from .errors import Answer

ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


@dataclass(frozen=True, slots=True)
class CorsConfig:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] | None
    """None (REST only): the methods the path serves, plus OPTIONS, as SAM fills them in."""
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_s: int | None = None
    allow_credentials: bool = False

    def allows(self, origin: str) -> bool:
        return any(_origin_pattern(o).fullmatch(origin) for o in self.allow_origins)


def _origin_pattern(origin: str) -> re.Pattern[str]:
    """``*`` alone is any origin; ``https://*.example.com`` any subdomain of it."""
    return re.compile(".*" if origin == "*" else ".+".join(map(re.escape, origin.split("*"))))


def _unquote(value: Any, where: str) -> str:
    if not isinstance(value, str | int):
        raise GatewayConfigError(f"{where}: expected a string, got {type(value).__name__}")
    text = str(value).strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_rest_cors(raw: Any, where: str) -> CorsConfig | None:
    """``Cors: "'https://example.com'"`` or ``Cors: {AllowOrigin: ..., AllowMethods: ...}``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return CorsConfig((_unquote(raw, where),), None)
    if "AllowOrigin" not in raw:
        raise GatewayConfigError(f"{where}.AllowOrigin: required, but missing")
    methods = raw.get("AllowMethods")
    max_age = raw.get("MaxAge")
    return CorsConfig(
        (_unquote(raw["AllowOrigin"], f"{where}.AllowOrigin"),),
        _split(_unquote(methods, f"{where}.AllowMethods")) if methods is not None else None,
        _split(_unquote(raw.get("AllowHeaders", ""), f"{where}.AllowHeaders")),
        (),
        int(_unquote(max_age, f"{where}.MaxAge")) if max_age is not None else None,
        raw.get("AllowCredentials") is True,
    )


def _list(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GatewayConfigError(f"{where}.{key}: expected a list of strings")
    return tuple(value)


def parse_http_cors(raw: Any, where: str) -> CorsConfig | None:
    """``CorsConfiguration: true`` (everything allowed) or its mapping form."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return CorsConfig(("*",), ("*",), ("*",))
    if not isinstance(raw, dict):
        raise GatewayConfigError(f"{where}: expected true or a mapping")
    max_age = raw.get("MaxAge")
    config = CorsConfig(
        _list(raw, "AllowOrigins", where),
        tuple(m.upper() for m in _list(raw, "AllowMethods", where)),
        tuple(h.lower() for h in _list(raw, "AllowHeaders", where)),
        tuple(h.lower() for h in _list(raw, "ExposeHeaders", where)),
        int(max_age) if max_age is not None else None,
        raw.get("AllowCredentials") is True,
    )
    if config.allow_credentials and "*" in config.allow_origins:
        raise GatewayConfigError(f"{where}: AllowCredentials can't be used with AllowOrigins '*'")
    return config


def rest_preflight(config: CorsConfig, path_methods: Collection[str]) -> Answer:
    """The answer of the OPTIONS mock SAM adds to each path of a REST API."""
    if config.allow_methods is not None:
        methods: Iterable[str] = config.allow_methods
    elif "ANY" in path_methods:
        methods = ALL_METHODS
    else:
        methods = sorted({*path_methods, "OPTIONS"})
    headers = [
        ("Content-Type", "application/json"),
        ("Access-Control-Allow-Origin", config.allow_origins[0]),
        ("Access-Control-Allow-Methods", ",".join(methods)),
    ]
    if config.allow_headers:
        headers.append(("Access-Control-Allow-Headers", ",".join(config.allow_headers)))
    if config.max_age_s is not None:
        headers.append(("Access-Control-Max-Age", str(config.max_age_s)))
    if config.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    return Answer(200, headers, b"{}\n")


def is_preflight(method: str, origin: str | None, requested_method: str | None) -> bool:
    return method == "OPTIONS" and origin is not None and requested_method is not None


def _allow_origin(config: CorsConfig, origin: str) -> list[tuple[str, str]]:
    if "*" in config.allow_origins and not config.allow_credentials:
        return [("access-control-allow-origin", "*")]
    return [("access-control-allow-origin", origin), ("vary", "Origin")]


def http_preflight(config: CorsConfig, origin: str, requested_method: str) -> Answer:
    """An HTTP API's own preflight answer: 204, with CORS headers only for an allowed
    origin asking for an allowed method."""
    methods = config.allow_methods or ("*",)
    if not config.allows(origin) or not ("*" in methods or requested_method.upper() in methods):
        return Answer(204)
    headers = _allow_origin(config, origin)
    headers.append(("access-control-allow-methods", ",".join(methods)))
    if config.allow_headers:
        headers.append(("access-control-allow-headers", ",".join(config.allow_headers)))
    if config.max_age_s is not None:
        headers.append(("access-control-max-age", str(config.max_age_s)))
    if config.allow_credentials:
        headers.append(("access-control-allow-credentials", "true"))
    return Answer(204, headers)


def http_actual(
    config: CorsConfig, origin: str | None, headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The function's headers with its ``Access-Control-*`` replaced by the API's."""
    kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
    if origin is None or not config.allows(origin):
        return kept
    kept.extend(_allow_origin(config, origin))
    if config.expose_headers:
        kept.append(("access-control-expose-headers", ",".join(config.expose_headers)))
    if config.allow_credentials:
        kept.append(("access-control-allow-credentials", "true"))
    return kept
