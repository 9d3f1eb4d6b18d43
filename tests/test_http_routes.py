"""Routing as API Gateway routes: the pure route table, and building it from templates.

Given routes of a REST or an HTTP API, when a method and raw path come in,
then the route API Gateway would pick is chosen (or the refusal it would give).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.http import GatewayConfigError, build_routes
from adapters.http.auth_config import JwtAuthorizer, LambdaAuthorizer, RouteAuth, Unsupported
from adapters.http.cors import CorsConfig
from adapters.http.routes import Api, Match, Miss, Route, RouteTable, parse_path
from adapters.template import load_template
from adapters.template.loaded import LoadedTemplate

REST = Api("Rest", "restid", "rest", "prod")
HTTP = Api("Http", "httpid", "http", "$default")
HTTP_STAGED = Api("Staged", "stagedid", "http", "v1")


def route(api: Api, key: str, fn: str = "") -> Route:
    method, _, path = key.partition(" ")
    path = path or method  # "$default"
    method = "ANY" if path == "$default" else method
    return Route(api, method, path, fn or key, "Ev", segments=parse_path(path, key))


def table(*routes: Route, mount: bool = False) -> RouteTable:
    apis = list({r.api.id: r.api for r in routes}.values())
    return RouteTable(apis, list(routes), mount)


def picked(t: RouteTable, method: str, path: str) -> str | Miss:
    found = t.match(method, path)
    return found.route.function if isinstance(found, Match) else found


def test_rest_prefers_literal_then_variable_then_greedy() -> None:
    t = table(
        route(REST, "GET /pets/dog"),
        route(REST, "GET /pets/{id}"),
        route(REST, "GET /pets/{proxy+}"),
        route(REST, "ANY /{proxy+}"),
    )
    assert picked(t, "GET", "/pets/dog") == "GET /pets/dog"
    assert picked(t, "GET", "/pets/cat") == "GET /pets/{id}"
    assert picked(t, "GET", "/pets/cat/1") == "GET /pets/{proxy+}"
    assert picked(t, "PUT", "/toys/1") == "ANY /{proxy+}"


def test_rest_chooses_the_resource_by_path_then_needs_the_method() -> None:
    t = table(route(REST, "GET /pets/{id}"), route(REST, "ANY /{proxy+}"), route(REST, "ANY /a"))
    # /pets/{id} is the resource; it has no POST (nor ANY): REST's 403, not the greedy route.
    assert picked(t, "POST", "/pets/1") == Miss("rest")
    assert picked(t, "POST", "/a") == "ANY /a"
    # The root is a resource API Gateway creates: it serves nothing ({proxy+} needs a
    # segment). An intermediate resource like /pets only refuses when nothing else fits.
    assert picked(t, "GET", "/") == Miss("rest")
    assert picked(t, "GET", "/pets") == "ANY /{proxy+}"
    assert picked(table(route(REST, "GET /pets/{id}")), "GET", "/pets") == Miss("rest")


def test_http_full_matches_beat_greedy_and_methods_beat_any() -> None:
    # The example of API Gateway's "Routing API requests" page.
    t = table(
        route(HTTP, "GET /pets/dog/1"),
        route(HTTP, "GET /pets/dog/{id}"),
        route(HTTP, "GET /pets/{proxy+}"),
        route(HTTP, "ANY /{proxy+}"),
        route(HTTP, "$default"),
    )
    assert picked(t, "GET", "/pets/dog/1") == "GET /pets/dog/1"
    assert picked(t, "GET", "/pets/dog/2") == "GET /pets/dog/{id}"
    assert picked(t, "GET", "/pets/cat/1") == "GET /pets/{proxy+}"
    assert picked(t, "POST", "/pets/dog/1") == "ANY /{proxy+}"
    assert picked(t, "GET", "/") == "$default"  # /{proxy+} needs a segment


def test_http_longest_greedy_prefix_and_exact_method_over_any() -> None:
    t = table(
        route(HTTP, "ANY /a/{proxy+}"),
        route(HTTP, "ANY /a/b/{proxy+}"),
        route(HTTP, "ANY /items/{id}"),
        route(HTTP, "GET /items/{id}", "get-item"),
    )
    assert picked(t, "GET", "/a/b/c/d") == "ANY /a/b/{proxy+}"
    assert picked(t, "GET", "/a/x/c") == "ANY /a/{proxy+}"
    assert picked(t, "GET", "/items/1") == "get-item"
    assert picked(t, "DELETE", "/items/1") == "ANY /items/{id}"
    assert picked(t, "DELETE", "/nothing") == Miss("http")  # 404, never 405


def test_parameters_are_decoded_per_segment() -> None:
    t = table(route(HTTP, "GET /users/{id}"), route(HTTP, "GET /files/{path+}"))
    found = t.match("GET", "/users/a%2Fb%20c")
    assert isinstance(found, Match) and found.path_parameters == {"id": "a/b c"}
    found = t.match("GET", "/files/x/y%C3%A9/")
    assert isinstance(found, Match) and found.path_parameters == {"path": "x/yé/"}
    assert found.path == "/files/x/y%C3%A9/"
    assert picked(t, "GET", "/users/") == Miss("http")  # a variable needs a value
    assert picked(t, "GET", "/users//x") == Miss("http")
    with pytest.raises(UnicodeDecodeError):
        t.match("GET", "/users/%FF")


def test_trailing_slash_matches_the_same_route() -> None:
    t = table(route(HTTP, "GET /users"), route(HTTP, "GET /"))
    assert picked(t, "GET", "/users/") == "GET /users"
    assert picked(t, "GET", "/") == "GET /"


def test_mounted_stages() -> None:
    t = table(
        route(REST, "GET /items/{id}"), route(HTTP_STAGED, "GET /x"), route(HTTP, "GET /y"),
        mount=True,
    )  # fmt: skip
    found = t.match("GET", "/prod/items/7")
    assert isinstance(found, Match) and found.path == "/items/7"
    assert found.path_parameters == {"id": "7"}
    assert picked(t, "GET", "/v1/x") == "GET /x"
    assert picked(t, "GET", "/y") == "GET /y"  # the $default stage sits at the root
    assert picked(t, "GET", "/items/7") == Miss("http")
    assert picked(t, "GET", "/x") == Miss("http")
    # With an HTTP API at the root, an unknown path gets its 404 (on AWS each API has its
    # own host; served together, the root's API answers).
    assert picked(t, "GET", "/prod/nothing") == Miss("http")
    assert picked(table(route(REST, "GET /a"), mount=True), "GET", "/prod/b") == Miss("rest")


def test_refusals_speak_the_dialect_of_the_apis_served() -> None:
    assert picked(table(route(REST, "GET /a")), "GET", "/b") == Miss("rest")
    assert picked(table(route(HTTP, "GET /a")), "GET", "/b") == Miss("http")
    assert RouteTable([], []).match("GET", "/") == Miss("rest")


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/a/{proxy+}/b", "must be the last segment"),
        ("/a/x{id}", "whole-segment"),
        ("/a/{id", "whole-segment"),
    ],
)
def test_bad_route_paths_are_config_errors(path: str, error: str) -> None:
    with pytest.raises(GatewayConfigError, match=error):
        parse_path(path, "Fn.Events.E.Path")


def test_preflight_targets() -> None:
    cors_rest = Api("R", "r", "rest", "prod", cors=_cors())
    t = table(
        route(cors_rest, "GET /a"), route(cors_rest, "OPTIONS /b"), route(cors_rest, "PUT /b")
    )
    found = t.preflight("/a", cors_request=True)
    assert found is not None and found.methods == {"GET"} and found.match is not None
    assert t.preflight("/b", cors_request=True) is None  # the path has its own OPTIONS
    assert t.preflight("/nothing", cors_request=True) is None
    cors_http = Api("H", "h", "http", "$default", cors=_cors())
    t = table(route(cors_http, "GET /a"))
    assert t.preflight("/anything", cors_request=True) is not None
    assert t.preflight("/a", cors_request=False) is None


def _cors() -> CorsConfig:
    return CorsConfig(("*",), None)


# -- building the table from a template ------------------------------------------------------


def load(tmp_path: Path, resources: str, settings: str = "") -> LoadedTemplate:
    (tmp_path / "src").mkdir(exist_ok=True)
    text = (
        "Transform: AWS::Serverless-2016-10-31\n"
        + (f"Metadata:\n  lambdabus:\n{settings}" if settings else "")
        + "Globals:\n  Function:\n    CodeUri: src/\n    Handler: app.handler\n"
        + "Resources:\n"
        + resources
    )
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return load_template(path, stack_name="routes")


IMPLICIT = """\
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Rest: {Type: Api, Properties: {Path: "/r/{id}", Method: get, TimeoutInMillis: 1500}}
        Http: {Type: HttpApi, Properties: {Path: /h, Method: post}}
        Legacy: {Type: HttpApi, Properties: {Path: /l, PayloadFormatVersion: "1.0"}}
        Catch: {Type: HttpApi}
"""


def test_implicit_apis_and_event_properties(tmp_path: Path) -> None:
    loaded = load(tmp_path, IMPLICIT)
    t = build_routes(loaded, asynchronous={"Fn": ["Http"]})
    by_event = {r.event: r for r in t.routes}
    rest, http = by_event["Rest"], by_event["Http"]
    assert (rest.api.logical_id, rest.api.stage, rest.payload_version) == (
        "ServerlessRestApi", "Prod", "1.0",
    )  # fmt: skip
    assert rest.timeout_s == 1.5 and not rest.asynchronous
    assert (http.api.logical_id, http.payload_version, http.asynchronous) == (
        "ServerlessHttpApi", "2.0", True,
    )  # fmt: skip
    assert by_event["Legacy"].payload_version == "1.0" and by_event["Legacy"].method == "ANY"
    assert by_event["Catch"].route_key == "$default"
    assert picked(t, "GET", "/anything/else") == "Fn" and t.match("GET", "/r/1") != Miss("rest")


AUTH = """\
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Auth:
        DefaultAuthorizer: Tok
        ApiKeyRequired: true
        Authorizers:
          Tok: {FunctionArn: !GetAtt AuthFn.Arn, Identity: {ValidationExpression: "^Bearer .+$"}}
          Pool: {UserPoolArn: arn:aws:cognito-idp:us-east-1:123456789012:userpool/x}
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        Authorizers:
          J: {JwtConfiguration: {issuer: "https://i", audience: [a]}, AuthorizationScopes: [s]}
  AuthFn:
    Type: AWS::Serverless::Function
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Default: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /d, Method: get}}
        Open:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /o, Method: get, Auth: {Authorizer: NONE}}
        Pool:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /p, Method: get, Auth: {Authorizer: Pool}}
        Jwt:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /j, Method: get, Auth: {Authorizer: J}}
"""


def test_auth_sections(tmp_path: Path) -> None:
    loaded = load(tmp_path, AUTH, "    jwks: {J: keys.json}\n")
    by_event = {r.event: r for r in build_routes(loaded).routes}
    default = by_event["Default"].auth
    assert isinstance(default.authorizer, LambdaAuthorizer)
    assert default.authorizer.function == "AuthFn" and default.api_key_required
    assert default.authorizer.validation is not None
    assert by_event["Open"].auth.authorizer is None and by_event["Open"].auth.api_key_required
    assert isinstance(by_event["Pool"].auth.authorizer, Unsupported)
    jwt = by_event["Jwt"].auth
    assert isinstance(jwt.authorizer, JwtAuthorizer) and jwt.scopes == ("s",)
    assert jwt.authorizer.jwks == str((tmp_path / "keys.json").resolve())


def test_sams_cors_preflight_carries_the_apis_default_auth(tmp_path: Path) -> None:
    api = next(r.api for r in build_routes(load(tmp_path, AUTH)).routes if r.event == "Default")
    preflight = api.auth.preflight()  # AddDefault...ToCorsPreflight default to true
    assert preflight.api_key_required and isinstance(preflight.authorizer, LambdaAuthorizer)
    opted_out = AUTH.replace(
        "ApiKeyRequired: true\n",
        "ApiKeyRequired: true\n        AddDefaultAuthorizerToCorsPreflight: false\n"
        "        AddApiKeyRequiredToCorsPreflight: false\n",
    )
    api = next(r.api for r in build_routes(load(tmp_path, opted_out)).routes)
    assert api.auth.preflight() == RouteAuth()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("Authorizer: NONE}}", "Authorizer: Nope}}"), "no authorizer named 'Nope'"),
        (("DefaultAuthorizer: Tok", "DefaultAuthorizer: Missing"), "DefaultAuthorizer"),
        (("FunctionArn: !GetAtt AuthFn.Arn", "FunctionArn: arn:aws:lambda:x"), "not a function"),
        (('issuer: "https://i", ', ""), "needs issuer and audience"),
    ],
)
def test_bad_auth_is_a_config_error(tmp_path: Path, change: tuple[str, str], error: str) -> None:
    loaded = load(tmp_path, AUTH.replace(*change))
    with pytest.raises(GatewayConfigError, match=error):
        build_routes(loaded)


def test_async_routes_must_name_route_events(tmp_path: Path) -> None:
    loaded = load(tmp_path, IMPLICIT)
    with pytest.raises(GatewayConfigError, match="async_routes: 'Nope'"):
        build_routes(loaded, asynchronous={"Fn": ["Nope"]})


def test_overlapping_routes_of_two_apis_are_warned_about(tmp_path: Path) -> None:
    both = IMPLICIT.replace("Path: /h, Method: post", 'Path: "/r/{id}", Method: get')
    t = build_routes(load(tmp_path, both))
    assert any("is also served by Fn.Rest" in w for w in t.warnings)
    assert build_routes(load(tmp_path, both), mount_stage=True).warnings == []
