"""The gateway's per-request shortcuts give exactly what the plain versions give: the
route cache what routing without it gives, the query parser what ``parse_qsl`` gives,
the one-pass event headers what ``forwarded`` and the header shapers give."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from itertools import product
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.http.events_v1 import headers_v1
from adapters.http.events_v2 import headers_v2
from adapters.http.request import (
    MAX_QUERY_FIELDS,
    RequestData,
    parse_query,
    rest_request_id,
)
from adapters.http.routes import Api, Match, Miss, Route, RouteTable, parse_path
from tests.http_reference import forwarded, joined_headers, multi_headers

REST = Api("Rest", "restid", "rest", "prod")
REST2 = Api("Rest2", "rest2id", "rest", "v2")
HTTP = Api("Http", "httpid", "http", "$default")
STAGED = Api("Staged", "stagedid", "http", "beta")


def route(api: Api, key: str) -> Route:
    method, path = key.split(" ", 1) if key != "$default" else ("ANY", "$default")
    return Route(api, method, path, "Fn", "Ev", segments=parse_path(path, key))


ROUTES = [
    route(REST, "GET /"),
    route(REST, "GET /items"),
    route(REST, "POST /items"),
    route(REST, "GET /items/{id}"),
    route(REST, "GET /items/special"),
    route(REST, "ANY /files/{proxy+}"),
    route(REST2, "GET /items"),
    route(REST2, "OPTIONS /opt"),
    route(HTTP, "GET /noop"),
    route(HTTP, "ANY /noop"),
    route(HTTP, "GET /users/me"),
    route(HTTP, "GET /users/{id}"),
    route(HTTP, "ANY /any/{proxy+}"),
    route(HTTP, "POST /items"),
    route(STAGED, "GET /s"),
    route(STAGED, "$default"),
]
TABLES = [
    [REST, HTTP],
    [HTTP, REST],
    [REST, REST2],
    [HTTP, STAGED],
    [REST, REST2, HTTP, STAGED],
]
PATHS = [
    "/", "//", "///", "/noop", "/noop/", "//noop", "/no%6Fp", "/NOOP", "/items", "/items/",
    "/items/1", "/items/special", "/items/special/", "/items/1/x", "/files", "/files/a/b/",
    "/users/me", "/users/me/", "/users/7", "/users/", "/users/%E2%82%AC", "/users/%ff",
    "/any", "/any/x/y", "/opt", "/s", "/s/", "/zzz", "/a+b", "/%", "/prod", "/prod/",
    "/prod/items", "/prod/items/1", "/v2/items", "/v2/opt", "/beta/s", "/beta/zzz", "/beta",
]  # fmt: skip
METHODS = ["GET", "POST", "PUT", "OPTIONS", "HEAD", "DELETE", "PATCH", "FOO"]


def outcome(table: RouteTable, method: str, path: str, cached: bool) -> Match | Miss | str:
    try:
        return table.match(method, path) if cached else table.match_uncached(method, path)
    except UnicodeDecodeError:
        return "UnicodeDecodeError"


@pytest.mark.parametrize(("apis", "mount"), list(product(TABLES, [False, True])))
def test_the_route_cache_answers_as_routing_does(apis: list[Api], mount: bool) -> None:
    table = RouteTable(apis, [r for r in ROUTES if r.api in apis], mount)
    reference = RouteTable(apis, [r for r in ROUTES if r.api in apis], mount)
    for _ in range(2):  # cold, then warm
        for method, path in product(METHODS, PATHS):
            expected = outcome(reference, method, path, cached=False)
            assert outcome(table, method, path, cached=True) == expected, (method, path)
    cached = table._exact
    assert cached, "static routes are remembered"
    assert all(
        m.path_parameters is None and "%" not in p and method != "FOO"
        for (method, p), m in cached.items()
    )


QUERY_TEXT = st.text(alphabet="ab=&+%2Fc3é;xZ0", max_size=30)


def reference_query(raw: str) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=MAX_QUERY_FIELDS)
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def parsed(parse: Callable[[str], dict[str, list[str]]], raw: str) -> object:
    try:
        return parse(raw)
    except ValueError as exc:  # UnicodeDecodeError too
        return type(exc)


@given(QUERY_TEXT)
def test_the_query_parser_is_parse_qsl(raw: str) -> None:
    assert parsed(parse_query, raw) == parsed(reference_query, raw)


@pytest.mark.parametrize(
    "raw",
    ["a=%ff", "a=%zz", "%", "a=1&a=2&b", "&&", "=", "a==b", "+=+", "x=%C3%A9+y"]
    + ["&".join(["k=v"] * n) + tail for n in (999, 1000, 1001) for tail in ("", "&")],
)
def test_the_query_parser_is_parse_qsl_at_the_edges(raw: str) -> None:
    assert parsed(parse_query, raw) == parsed(reference_query, raw)


HEADER_NAMES = st.sampled_from(
    ["Host", "host", "User-Agent", "Cookie", "cookie", "X-Forwarded-For", "x-forwarded-for",
     "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id", "x-amzn-trace-id", "Accept",
     "ACCEPT", "X-Dup"]
)  # fmt: skip
HEADER_VALUES = st.sampled_from(["", "1", "a=1; b=2", " ; c ;", "1.1.1.1", "Root=1-x", "v,w"])


@given(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8))
def test_one_pass_event_headers_are_the_plain_ones(headers: list[tuple[str, str]]) -> None:
    req = RequestData("GET", "/", "", tuple(headers), "9.9.9.9", 3000)
    random.seed(7)  # the same trace id for both, when one is added
    plain_v2 = joined_headers(forwarded(req, lower=True))
    random.seed(7)
    assert headers_v2(req) == plain_v2
    random.seed(7)
    plain_v1 = multi_headers(forwarded(req, lower=False))
    random.seed(7)
    last, multi = headers_v1(req)
    assert multi == plain_v1
    assert last == {k: v[-1] for k, v in plain_v1.items()}
    assert list(last) == list(multi)


def test_rest_request_ids_are_version_4_uuids() -> None:
    ids = {rest_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for rid in list(ids)[:200]:
        parsed_id = uuid.UUID(rid)
        assert str(parsed_id) == rid
        assert parsed_id.version == 4 and parsed_id.variant == uuid.RFC_4122
