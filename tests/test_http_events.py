"""Events, responses, CORS and authorizer logic as pure functions, checked against AWS.

Given request data, the built events validate under aws-lambda-powertools'
models and carry API Gateway's quirks (last value wins in REST's single-valued
maps, commas in 2.0's, cookies split out, nulls versus missing keys); given a
function's answer, the response is what API Gateway would send or refuse.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    ApiGatewayAuthorizerRequest,
    ApiGatewayAuthorizerRequestV2,
    ApiGatewayAuthorizerToken,
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)

from adapters.http.auth import parse_decision, policy_allows
from adapters.http.auth_config import GatewayConfigError, JwtAuthorizer, LambdaAuthorizer
from adapters.http.authorizer_events import authorizer_event, identity_values, method_arn
from adapters.http.cors import (
    CorsConfig,
    http_actual,
    http_preflight,
    parse_http_cors,
    parse_rest_cors,
    rest_preflight,
)
from adapters.http.errors import refusal
from adapters.http.events_v1 import build_v1
from adapters.http.events_v2 import build_v2
from adapters.http.jwt_auth import check_claims, claim_text, token_scopes
from adapters.http.request import Grant, RequestData, RequestIds, encode_body
from adapters.http.responses import MalformedResponse, response_v1, response_v2
from adapters.http.routes import Api, Match, Route, parse_path

AT = datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=UTC)
REST = Api("Shop", "abc123defg", "rest", "prod", {"env": "test"}, ("image/png",))
HTTP = Api("Web", "hij456klmn", "http", "$default", {"color": "blue"})


def request(method: str = "GET", path: str = "/items/a%20b", query: str = "", body: bytes = b"",
            headers: tuple[tuple[str, str], ...] = ()) -> RequestData:  # fmt: skip
    base = (("Host", "127.0.0.1:3000"), ("User-Agent", "curl/8.5.0"))
    return RequestData(
        method, path, query, base + headers, "10.0.0.9", 3000, body=body, time=AT.timestamp()
    )


def match(api: Api, key: str, path: str, params: dict[str, str] | None,
          version: Literal["1.0", "2.0", ""] = "") -> Match:  # fmt: skip
    method, _, template = key.partition(" ")
    payload: Literal["1.0", "2.0"] = version or ("1.0" if api.kind == "rest" else "2.0")
    route = Route(api, method, template, "Fn", "Ev", payload, segments=parse_path(template, key))
    return Match(route, params, path)


def v1(req: RequestData, **kwargs: Any) -> dict[str, Any]:
    event = build_v1(req, match(REST, "GET /items/{id}", req.raw_path, {"id": "a b"}),
                     "rid-1", "ext-1", **kwargs)  # fmt: skip
    APIGatewayProxyEventModel.model_validate(event)
    return event


def v2(req: RequestData, **kwargs: Any) -> dict[str, Any]:
    event = build_v2(req, match(HTTP, "GET /items/{id}", req.raw_path, {"id": "a b"}),
                     "rid-2", **kwargs)  # fmt: skip
    APIGatewayProxyEventV2Model.model_validate(event)
    return event


# -- events ------------------------------------------------------------------------------------


def test_v1_event_multi_values_and_nulls() -> None:
    req = request(
        query="a=1&a=2&b=&c=x%20y+z",
        headers=(("Accept", "a/b"), ("accept", "c/d"), ("X-Amzn-Trace-Id", "Root=1")),
    )
    event = v1(req)  # fmt: skip
    assert event["path"] == "/items/a%20b" and event["resource"] == "/items/{id}"
    assert event["queryStringParameters"] == {"a": "2", "b": "", "c": "x y z"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""], "c": ["x y z"]}
    assert event["multiValueHeaders"]["Accept"] == ["a/b", "c/d"]  # the first spelling names it
    assert event["headers"]["Accept"] == "c/d"
    assert event["headers"]["X-Amzn-Trace-Id"] == "Root=1"  # the client's trace id is kept
    assert event["headers"]["X-Forwarded-Port"] == "3000"
    assert "version" not in event and event["stageVariables"] == {"env": "test"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestTime"] == "01/May/2024:12:34:56 +0000"
    assert context["requestTimeEpoch"] == 1714566896789
    assert context["identity"]["sourceIp"] == "10.0.0.9" and context["identity"]["apiKey"] is None
    assert context["resourcePath"] == "/items/{id}" and context["path"] == "/items/a%20b"
    assert (context["domainName"], context["domainPrefix"]) == ("127.0.0.1:3000", "127.0.0.1")
    assert v1(request())["queryStringParameters"] is None


def test_v1_bodies_binary_by_media_type_and_never_lossy() -> None:
    png = b"\x89PNG\r\n"
    event = v1(request("POST", body=png, headers=(("Content-Type", "image/png"),)))
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == png
    event = v1(request("POST", body=b'{"a":1}', headers=(("Content-Type", "application/json"),)))
    assert (event["body"], event["isBase64Encoded"]) == ('{"a":1}', False)
    event = v1(request("POST", body=b"\xff\xfe", headers=(("Content-Type", "text/plain"),)))
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == b"\xff\xfe"


def test_v1_authorizer_and_api_key_context() -> None:
    grant = Grant("lambda", principal_id="u1", context={"tier": "gold"}, latency_ms=3)
    event = v1(request(), grant=grant, api_key="k-1")
    assert event["requestContext"]["authorizer"] == {
        "tier": "gold", "principalId": "u1", "integrationLatency": 3,
    }  # fmt: skip
    assert event["requestContext"]["identity"]["apiKey"] == "k-1"


def test_v1_event_for_an_http_api() -> None:
    req = request(path="/items/a%20b")
    event = build_v1(req, match(HTTP, "GET /items/{id}", "/items/a%20b", {"id": "a b"}, "1.0"),
                     "rid", "ext", grant=Grant("jwt", {"sub": "x"}, ["read"]))  # fmt: skip
    APIGatewayProxyEventModel.model_validate(event)
    assert event["version"] == "1.0" and event["path"] == "/items/a b"
    assert event["requestContext"]["authorizer"] == {"claims": {"sub": "x"}, "scopes": ["read"]}


def test_v2_event_joins_and_leaves_out() -> None:
    req = request(query="a=1&a=2&q=%C3%A9", headers=(
        ("Cookie", "c1=v1; c2=v2"), ("cookie", "c3=v3"), ("X-Dup", "1"), ("x-dup", "2"),
    ))  # fmt: skip
    event = v2(req)
    assert event["rawPath"] == "/items/a b" and event["rawQueryString"] == "a=1&a=2&q=%C3%A9"
    assert event["queryStringParameters"] == {"a": "1,2", "q": "é"}
    assert event["cookies"] == ["c1=v1", "c2=v2", "c3=v3"]
    assert event["headers"]["x-dup"] == "1,2" and "cookie" not in event["headers"]
    assert all(k == k.lower() for k in event["headers"])
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.9"
    assert event["requestContext"]["timeEpoch"] == 1714566896789
    bare = v2(request())
    for absent in ("cookies", "queryStringParameters", "body"):
        assert absent not in bare
    assert bare["rawQueryString"] == ""


def test_v2_bodies_base64_unless_text() -> None:
    for content_type, text in [
        ("application/json", True), ("text/csv; charset=utf-8", True),
        ("application/vnd.api+json", True), ("application/x-www-form-urlencoded", False),
        ("application/octet-stream", False), (None, False),
    ]:  # fmt: skip
        headers = (("Content-Type", content_type),) if content_type else ()
        event = v2(request("POST", body=b"a=1", headers=headers))
        assert event["isBase64Encoded"] is not text, content_type
    assert encode_body(b"", "text/plain", None) == (None, False)


def test_v2_authorizer_contexts() -> None:
    event = v2(request(), grant=Grant("jwt", {"exp": "1"}, None))
    assert event["requestContext"]["authorizer"] == {
        "jwt": {"claims": {"exp": "1"}, "scopes": None}
    }
    event = v2(request(), grant=Grant("lambda", context={"user": "u"}))
    assert event["requestContext"]["authorizer"] == {"lambda": {"user": "u"}}


def test_bad_query_strings_raise() -> None:
    with pytest.raises(UnicodeDecodeError):
        request(query="a=%FF").query()
    with pytest.raises(ValueError):
        request(query="&".join(f"k{i}=v" for i in range(1001))).query()


# -- authorizer events -----------------------------------------------------------------------


TOKEN = LambdaAuthorizer("Tok", "AuthFn", "rest", payload_type="TOKEN")
REQUEST_V1 = LambdaAuthorizer("Req", "AuthFn", "rest", headers=("X-Id",), query_strings=("k",))
SIMPLE_V2 = LambdaAuthorizer("S", "AuthFn", "http", payload_version="2.0", simple_responses=True,
                             headers=("x-id",), stage_variables=("color",))  # fmt: skip


def test_authorizer_events_validate() -> None:
    req = request(query="k=1", headers=(("Authorization", "tok"), ("X-Id", "7")))
    rest = match(REST, "GET /items/{id}", "/items/a%20b", {"id": "a b"})
    ids = RequestIds("rid", "ext", [])
    event = authorizer_event(TOKEN, req, rest, ids, "us-east-1")
    ApiGatewayAuthorizerToken.model_validate(event)
    assert event["methodArn"] == (
        "arn:aws:execute-api:us-east-1:123456789012:abc123defg/prod/GET/items/a%20b"
    )
    event = authorizer_event(REQUEST_V1, req, rest, ids, "us-east-1")
    ApiGatewayAuthorizerRequest.model_validate(event)
    assert event["requestContext"]["extendedRequestId"] == "ext"  # the request's own
    http = match(HTTP, "GET /items/{id}", "/items/a%20b", {"id": "a b"})
    event = authorizer_event(SIMPLE_V2, req, http, ids, "us-east-1")
    ApiGatewayAuthorizerRequestV2.model_validate(event)
    assert event["identitySource"] == ["7", "blue"] and "body" not in event
    assert method_arn("eu-west-1", http, "POST").endswith("hij456klmn/$default/POST/items/a%20b")


def test_identity_sources_missing_or_invalid() -> None:
    rest = match(REST, "GET /x", "/x", None)
    assert identity_values(TOKEN, request(), rest) is None
    assert identity_values(REQUEST_V1, request(headers=(("X-Id", "7"),)), rest) is None
    strict = LambdaAuthorizer("T", "F", "rest", payload_type="TOKEN",
                              validation=re.compile(r"Bearer \w+"))  # fmt: skip
    assert identity_values(strict, request(headers=(("Authorization", "junk!"),)), rest) is None
    ok = request(headers=(("Authorization", "Bearer abc"),))
    assert identity_values(strict, ok, rest) == ["Bearer abc"]


# -- responses ---------------------------------------------------------------------------------


def test_v1_response_merges_headers_and_decodes_base64() -> None:
    answer = response_v1({
        "statusCode": "201",
        "headers": {"X-A": "single", "X-B": 5, "Content-Length": "999", "x-flag": True},
        "multiValueHeaders": {"x-a": ["m1", "m2"], "Set-Cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    })  # fmt: skip
    assert answer.status == 201 and answer.body == b"\x00\x01"
    assert answer.headers == [("Content-Type", "application/json"), ("X-B", "5"),
                              ("x-flag", "true"), ("x-a", "m1"), ("x-a", "m2"),
                              ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]  # fmt: skip
    assert response_v1({"statusCode": 204, "body": "dropped"}).body == b""


@pytest.mark.parametrize(
    "result",
    [
        None, "text", {"body": "no status"}, {"statusCode": 99}, {"statusCode": True},
        {"statusCode": 200, "body": {"a": 1}}, {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "headers": {"X": "a\r\nInjected: 1"}},
        {"statusCode": 200, "headers": {"Bad Name": "x"}},
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
        {"statusCode": 200, "multiValueHeaders": {"X": "not-a-list"}},
    ],
)  # fmt: skip
def test_malformed_v1_responses(result: Any) -> None:
    with pytest.raises(MalformedResponse):
        response_v1(result)


def test_v2_simplified_and_structured_responses() -> None:
    assert response_v2({"message": "hi"}).body == b'{"message": "hi"}'
    answer = response_v2("Hello from Lambda!")
    assert (answer.status, answer.body) == (200, b"Hello from Lambda!")
    assert answer.headers == [("Content-Type", "application/json")]
    assert response_v2([1, 2]).body == b"[1, 2]"
    answer = response_v2({"statusCode": 302, "headers": {"Location": "/x", "x-l": ["a", "b"]},
                          "cookies": ["a=1", "b=2; Secure"]})  # fmt: skip
    assert answer.status == 302 and ("x-l", "a,b") in answer.headers
    assert [v for k, v in answer.headers if k == "Set-Cookie"] == ["a=1", "b=2; Secure"]
    for bad in ({"statusCode": 200, "cookies": "a=1"}, {"statusCode": 200, "cookies": [1]}):
        with pytest.raises(MalformedResponse):
            response_v2(bad)


def test_refusal_bodies_are_api_gateways() -> None:
    deny = refusal("rest", "forbidden")
    assert json.loads(deny.body) == {
        "Message": "User is not authorized to access this resource with an explicit deny"
    }
    assert json.loads(refusal("rest", "authorizer_failed").body) == {"message": None}
    assert refusal("http", "integration_timeout").status == 503
    assert refusal("rest", "integration_timeout").status == 504


# -- CORS ----------------------------------------------------------------------------------------


def test_rest_cors_from_sam() -> None:
    config = parse_rest_cors("'*'", "Cors")
    assert config == CorsConfig(("*",), None)
    answer = rest_preflight(config, {"GET", "POST"})
    assert ("Access-Control-Allow-Methods", "GET,OPTIONS,POST") in answer.headers
    assert ("Access-Control-Allow-Methods", "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT") in (
        rest_preflight(config, {"ANY"}).headers
    )
    full = parse_rest_cors({"AllowOrigin": "'https://a'", "AllowMethods": "'GET'",
                            "MaxAge": "'60'", "AllowCredentials": True}, "Cors")  # fmt: skip
    assert full is not None
    headers = dict(rest_preflight(full, {"PUT"}).headers)
    assert headers["Access-Control-Allow-Methods"] == "GET"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    with pytest.raises(GatewayConfigError, match="AllowOrigin"):
        parse_rest_cors({"AllowMethods": "'GET'"}, "Cors")


def test_http_cors_configuration() -> None:
    config = parse_http_cors({"AllowOrigins": ["https://*.example.com"], "AllowMethods": ["get"],
                              "AllowCredentials": True}, "CorsConfiguration")  # fmt: skip
    assert config is not None
    ok = dict(http_preflight(config, "https://app.example.com", "GET").headers)
    assert ok["access-control-allow-origin"] == "https://app.example.com"
    assert ok["access-control-allow-credentials"] == "true"
    assert http_preflight(config, "https://example.com.evil", "GET").headers == []
    assert http_preflight(config, "https://app.example.com", "DELETE").headers == []
    actual = http_actual(config, "https://a.example.com",
                         [("Access-Control-Allow-Origin", "*"), ("X", "1")])  # fmt: skip
    assert actual[0] == ("X", "1")
    assert ("access-control-allow-origin", "https://a.example.com") in actual
    assert parse_http_cors(True, "C") == CorsConfig(("*",), ("*",), ("*",))
    with pytest.raises(GatewayConfigError, match="AllowCredentials"):
        parse_http_cors({"AllowOrigins": ["*"], "AllowCredentials": True}, "C")


# -- authorizer answers and JWT claims ---------------------------------------------------------


ARN = "arn:aws:execute-api:us-east-1:123456789012:api/prod/GET/items/1"


def statement(effect: str, resource: str | list[str], action: str = "execute-api:Invoke"
              ) -> dict[str, Any]:  # fmt: skip
    return {"Effect": effect, "Action": action, "Resource": resource}


def test_policies_are_evaluated_like_iam() -> None:
    assert policy_allows([statement("Allow", "arn:aws:execute-api:*:*:api/prod/GET/*")], ARN)
    assert policy_allows([statement("Allow", "*", "execute-api:*")], ARN)
    assert not policy_allows([statement("Allow", "arn:aws:execute-api:*:*:api/prod/POST/*")], ARN)
    assert not policy_allows(
        [statement("Allow", "*"), statement("Deny", ["arn:aws:execute-api:*:*:api/*/GET/items/?"])],
        ARN,
    )
    assert not policy_allows([], ARN)
    assert not policy_allows([statement("Allow", "*", "s3:GetObject")], ARN)


def test_authorizer_answers_are_checked() -> None:
    decision = parse_decision(SIMPLE_V2, {"isAuthorized": True, "context": {"a": {"b": 1}}})
    assert decision.allowed is True and decision.context == {"a": {"b": 1}}
    policy = {"principalId": 7, "policyDocument": {"Statement": statement("Allow", "*")}}
    assert parse_decision(TOKEN, policy).principal_id == "7"
    for bad in (
        None, {"isAuthorized": "yes"}, {"policyDocument": {"Statement": "x"}},
        {**policy, "context": {"nested": {"no": 1}}},
    ):  # fmt: skip
        authorizer = SIMPLE_V2 if bad and "isAuthorized" in bad else TOKEN
        with pytest.raises(ValueError):
            parse_decision(authorizer, bad)


JWT = JwtAuthorizer("J", "https://issuer", ("aud1", "aud2"))


def test_jwt_claims_checks() -> None:
    good = {"iss": "https://issuer", "aud": ["x", "aud2"], "exp": 2000, "iat": 900}
    check_claims(good, JWT, now=1000)
    check_claims({**good, "aud": None, "client_id": "aud1"}, JWT, now=1000)
    for bad, why in [
        ({**good, "iss": "https://other"}, "issuer"), ({**good, "aud": "x"}, "audience"),
        ({**good, "exp": 1000}, "expired"), ({**good, "exp": None}, "expiration"),
        ({**good, "nbf": 1001}, "nbf"), ({**good, "iat": 1001}, "iat"),
    ]:  # fmt: skip
        with pytest.raises(Exception, match=why):
            check_claims(bad, JWT, now=1000)
    assert token_scopes({"scope": "a b"}) == ["a", "b"] and token_scopes({"scp": ["c"]}) == ["c"]
    assert claim_text(["a", 1, True]) == "[a 1 true]" and claim_text(12) == "12"
