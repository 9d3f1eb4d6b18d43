"""Unmodified aws-lambda-powertools apps behind the gateway (the issue's "real clients").

Written as Powertools' docs write them: one resolver per function, routes by
path, ``app.resolve(event, context)`` as the handler. ``RestApp`` sits behind a
REST API's ``ANY /{proxy+}``, ``HttpApp`` behind an HTTP API's ``$default``
route; the same routes on both check both payload formats end to end.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.shared.cookies import Cookie

LOGO = b"\x89PNG\r\n\x1a\n\x00binary\xff"


def _routes(app: ApiGatewayResolver) -> None:
    @app.get("/todos/<todo_id>")
    def get_todo(todo_id: str) -> dict[str, Any]:
        return {"id": todo_id, "verbose": app.current_event.get_query_string_value("verbose")}

    @app.post("/todos")
    def create_todo() -> Response[dict[str, Any]]:
        return Response(201, "application/json", {"created": app.current_event.json_body})

    @app.get("/login")
    def login() -> Response[str]:
        event = app.current_event  # REST: the Cookie header; HTTP APIs: the cookies list
        seen = event.headers.get("cookie") or ",".join(getattr(event, "cookies", None) or [])
        cookies = [Cookie("session", "s1", http_only=True), Cookie("theme", "dark")]
        return Response(200, "text/plain", f"saw {seen}", cookies=cookies)

    @app.get("/logo")
    def logo() -> Response[bytes]:
        return Response(200, "image/png", LOGO)


rest_app = APIGatewayRestResolver()
http_app = APIGatewayHttpResolver()
_routes(rest_app)
_routes(http_app)


def rest_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rest_app.resolve(event, context)


def http_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http_app.resolve(event, context)


TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: @ROOT@
Resources:
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      BinaryMediaTypes: ["*~1*"]
  RestApp:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http_powertools.rest_handler
      Events:
        Proxy: {Type: Api, Properties: {RestApiId: !Ref Rest, Path: "/{proxy+}", Method: any}}
  HttpApp:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http_powertools.http_handler
      Events:
        Default: {Type: HttpApi}
"""
