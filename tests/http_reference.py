"""The plain versions of the gateway's header shaping: the oracles the event builders'
one-pass versions (``headers_v1``, ``headers_v2``) are tested against."""

from __future__ import annotations

from adapters.http.request import OVERRIDDEN, RequestData, gateway_headers


def forwarded(req: RequestData, lower: bool) -> list[tuple[str, str]]:
    """The request's headers plus those API Gateway adds: the peer appended to
    X-Forwarded-For, X-Forwarded-Port/-Proto, and a trace id unless one came in."""
    headers: list[tuple[str, str]] = []
    previous: str | None = None
    traced = False
    for key, value in req.headers:
        name = key.lower()
        if name == "x-forwarded-for":
            previous = value  # the last one, as header() would find it
        elif name == "x-amzn-trace-id":
            traced = True
        if name not in OVERRIDDEN:
            headers.append((key, value))
    headers.extend(gateway_headers(req, previous, traced, lower))
    return headers


def multi_headers(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Names as the client spelt them; a repeat spelt differently joins the first spelling."""
    spelled: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for name, value in headers:
        key = spelled.setdefault(name.lower(), name)
        out.setdefault(key, []).append(value)
    return out


def joined_headers(headers: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """(lower-cased headers with repeats comma-joined, cookies split out of ``cookie``)."""
    out: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend([c.strip() for c in value.split(";") if c.strip()])
        elif key in out:
            out[key] = f"{out[key]},{value}"
        else:
            out[key] = value
    return out, cookies
