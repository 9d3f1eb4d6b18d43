"""An HTTP API's JWT authorizer: signature by the issuer's keys, then the claims.

Checks as API Gateway documents them: the token (``Bearer`` prefix optional)
must name a ``kid`` found in the issuer's JWKS and be signed with RS256/384/512
by that key; ``iss`` must equal the issuer; ``aud`` or ``client_id`` must be
one of the audiences; ``exp`` must be present and in the future, ``nbf`` and
``iat`` not in the future; and when the route lists scopes, the token's
``scope``/``scp`` must hold one of them (403, not 401). Verification uses
joserfc, a maintained JOSE implementation, never hand-rolled crypto.

Keys come from ``Metadata.lambdabus.jwks`` (a file, or a URL) or else from
the issuer's OpenID discovery document, as AWS fetches them. A token with an
unknown ``kid`` triggers one re-read (rate-limited for URLs), so rotated keys
are picked up without a restart and junk tokens can't hammer the issuer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .auth_config import JwtAuthorizer
from .errors import Denied
from .request import Grant, RequestData

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512")
REFRESH_MIN_S = 60.0
"""A URL's keys are re-fetched for an unknown kid at most this often."""
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1024 * 1024


def _unauthorized(description: str) -> Denied:
    challenge = f'Bearer scope="" error="invalid_token" error_description="{description}"'
    return Denied("unauthorized", description, [("www-authenticate", challenge)])


def claim_text(value: Any) -> str:
    """HTTP APIs hand claims over as strings; arrays as ``[a b]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(claim_text(v) for v in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


class JwksSource:
    """One authorizer's signing keys, loaded lazily and refreshed for unknown kids."""

    def __init__(self, authorizer: JwtAuthorizer, session: aiohttp.ClientSession) -> None:
        self.authorizer = authorizer
        self.session = session
        self.keys: KeySet | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def key_set(self, refresh: bool = False) -> KeySet:
        """Raises Denied("authorizer_failed") when the keys can't be had at all."""
        async with self._lock:
            stale = time.monotonic() - self._loaded_at >= REFRESH_MIN_S or self._is_file()
            if self.keys is None or (refresh and stale):
                try:
                    self.keys = KeySet.import_key_set(await self._fetch())
                except (OSError, ValueError, TypeError, JoseError, aiohttp.ClientError) as exc:
                    if self.keys is None:
                        raise Denied("authorizer_failed", f"JWKS unavailable: {exc}") from None
                    log.warning("%s: refreshing JWKS failed: %s", self.authorizer.name, exc)
                self._loaded_at = time.monotonic()
            return self.keys

    def _is_file(self) -> bool:
        where = self.authorizer.jwks
        return where is not None and not where.startswith(("http://", "https://"))

    async def _fetch(self) -> Any:
        where = self.authorizer.jwks
        if where is None:
            issuer = self.authorizer.issuer.rstrip("/")
            if not issuer.startswith("https://"):
                raise ValueError(f"no JWKS configured and issuer {issuer!r} is not an https URL")
            discovery = await self._get_json(f"{issuer}/.well-known/openid-configuration")
            where = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
            if not isinstance(where, str):
                raise ValueError("the issuer's discovery document has no jwks_uri")
        if where.startswith(("http://", "https://")):
            return await self._get_json(where)
        path = Path(where.removeprefix("file://"))
        return json.loads(await asyncio.to_thread(path.read_bytes))

    async def _get_json(self, url: str) -> Any:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with self.session.get(url, timeout=timeout) as resp:
            resp.raise_for_status()
            data = await resp.content.read(MAX_JWKS_BYTES + 1)
            if len(data) > MAX_JWKS_BYTES:
                raise ValueError(f"{url}: larger than {MAX_JWKS_BYTES} bytes")
            return json.loads(data)


def _token(req: RequestData, authorizer: JwtAuthorizer) -> str:
    where, name = authorizer.source
    if where == "header":
        value = req.header(name)
    else:
        values = req.query().get(name)
        value = values[-1] if values else None
    if not value:
        raise _unauthorized("the token is missing")
    scheme, _, rest = value.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest else value.strip()


def _kid(token: str) -> str:
    try:
        head = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise _unauthorized("the token is malformed") from None
    kid = header.get("kid") if isinstance(header, dict) else None
    if not isinstance(kid, str):
        raise _unauthorized("the token has no kid")
    return kid


def check_claims(claims: dict[str, Any], authorizer: JwtAuthorizer, now: float) -> None:
    if claims.get("iss") != authorizer.issuer:
        raise _unauthorized("the token does not have a valid issuer")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    audiences.append(claims.get("client_id"))
    if not any(a in authorizer.audience for a in audiences):
        raise _unauthorized("the token does not have a valid audience")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise _unauthorized("the token has no expiration")
    if exp <= now:
        raise _unauthorized("the token has expired")
    for key in ("nbf", "iat"):
        value = claims.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > now:
            raise _unauthorized(f"the token's {key} is in the future")


def token_scopes(claims: dict[str, Any]) -> list[str]:
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return raw.split()
    return [s for s in raw if isinstance(s, str)] if isinstance(raw, list) else []


class JwtVerifier:
    """Verifies tokens for every JWT authorizer of the gateway; one HTTP session for keys."""

    def __init__(self) -> None:
        self._sources: dict[str, JwksSource] = {}
        self._session: aiohttp.ClientSession | None = None

    def _source(self, authorizer: JwtAuthorizer) -> JwksSource:
        key = f"{authorizer.name}|{authorizer.issuer}|{authorizer.jwks}"
        source = self._sources.get(key)
        if source is None:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            source = self._sources[key] = JwksSource(authorizer, self._session)
        return source

    async def verify(
        self, req: RequestData, authorizer: JwtAuthorizer, scopes: tuple[str, ...]
    ) -> Grant:
        """The grant for a valid token; raises Denied (401, 403, or 500 without keys)."""
        token = _token(req, authorizer)
        kid = _kid(token)
        source = self._source(authorizer)
        keys = await source.key_set()
        if not any(k.kid == kid for k in keys.keys):
            keys = await source.key_set(refresh=True)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except JoseError as exc:
            raise _unauthorized(f"signature verification failed: {exc.error}") from None
        except ValueError:
            raise _unauthorized("the token is malformed") from None
        claims = dict(decoded.claims)
        check_claims(claims, authorizer, time.time())
        granted = token_scopes(claims)
        if scopes and not set(scopes) & set(granted):
            wanted = " ".join(scopes)
            challenge = (
                f'Bearer scope="{wanted}" error="insufficient_scope"'
                f' error_description="expected scopes: [{wanted}]"'
            )
            raise Denied("forbidden", "insufficient scope", [("www-authenticate", challenge)])
        return Grant(
            "jwt", {k: claim_text(v) for k, v in claims.items()}, granted if scopes else None
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
