"""An unmodified FastAPI app wrapped with Mangum, as their docs write it (the issue's
"real clients, as functions").

One module-level ``app`` and ``handler = Mangum(app)``; the template puts the
same handler behind a REST API's ``ANY /{proxy+}`` (payload 1.0) and an HTTP
API's ``$default`` route (payload 2.0), so one set of routes checks both.

The functions run on the worker's default thread runner: Mangum drives the app
with ``asyncio.get_event_loop().run_until_complete``, which works because each
handler thread has an event loop of its own, as the Lambda runtime's thread does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Cookie, FastAPI, HTTPException, Query, Request, Response
from mangum import Mangum
from pydantic import BaseModel

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe\x80binary\r\n\x00"

app = FastAPI()


class Todo(BaseModel):
    title: str
    done: bool = False


@app.get("/todos/{todo_id}")
def read_todo(
    todo_id: int,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI's documented spelling
    q: str | None = None,
) -> dict[str, object]:
    if todo_id == 404:
        raise HTTPException(status_code=404, detail="Todo not found")
    return {"id": todo_id, "tags": tag, "q": q}


@app.post("/todos", status_code=201)
def create_todo(todo: Todo) -> dict[str, object]:
    return {"created": todo.model_dump()}


@app.get("/login")
def login(response: Response, a: Annotated[str | None, Cookie()] = None) -> dict[str, object]:
    response.set_cookie("session", "s1", httponly=True)
    response.set_cookie("theme", "dark")
    return {"saw": a}


@app.get("/event")
def lambda_event(request: Request) -> dict[str, Any]:
    """The API Gateway event Mangum received (its documented ``aws.event`` scope key)."""
    event: dict[str, Any] = request.scope["aws.event"]
    return event


@app.get("/logo")
def logo() -> Response:
    return Response(content=PNG, media_type="image/png")


handler = Mangum(app)


TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: @ROOT@
    Timeout: 10
Resources:
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      BinaryMediaTypes: ["*~1*"]
  RestApp:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http_asgi.handler
      Events:
        Proxy: {Type: Api, Properties: {RestApiId: !Ref Rest, Path: "/{proxy+}", Method: any}}
  HttpApp:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http_asgi.handler
      Events:
        Default: {Type: HttpApi}
"""
