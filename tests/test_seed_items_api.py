"""Seed use case 3 through a real ``lambdabus dev``: the items API (functions/items_api)
behind API Gateway REST routes, over a DynamoDB table the template provisions in moto.

Given the same block as the demo's template.yaml (a SimpleTable and the function with
five ``Api`` events), when a client drives the API port, then the CRUD cycle works,
what it writes is really in the table, and bad requests get 400/404 without writing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest

from adapters.http import build_routes
from adapters.template import load_template
from bus.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = f"""\
Transform: AWS::Serverless-2016-10-31
Metadata:
  lambdabus:
    stack: itemstest
Resources:
  Items:
    Type: AWS::Serverless::SimpleTable
    Properties:
      PrimaryKey: {{Name: id, Type: String}}
  ItemsApi:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {ROOT / "functions" / "items_api"}
      Handler: app.lambda_handler
      Environment:
        Variables:
          TABLE_NAME: !Ref Items
      Events:
        Create: {{Type: Api, Properties: {{Path: /items, Method: post}}}}
        List: {{Type: Api, Properties: {{Path: /items, Method: get}}}}
        Read: {{Type: Api, Properties: {{Path: "/items/{{id}}", Method: get}}}}
        Update: {{Type: Api, Properties: {{Path: "/items/{{id}}", Method: put}}}}
        Delete: {{Type: Api, Properties: {{Path: "/items/{{id}}", Method: delete}}}}
"""


class Stack:
    """A ``lambdabus dev`` process and the endpoints it printed."""

    def __init__(self, folder: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), LAMBDABUS_INVOCATION_LOGS="0")
        for var in ("LAMBDABUS_REDIS_URL", "AWS_ENDPOINT_URL"):
            env.pop(var, None)
        cmd = [sys.executable, "-m", "adapters.cli", "dev", str(folder / "template.yaml"),
               "--edge-port", str(free_port()), "--api-port", str(free_port()),
               "--grace", "5"]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        self.endpoints: dict[str, str] = {}
        for line in self.proc.stdout:
            found = re.match(r"\s+(aws|api)\s+(\S+)", line)
            if found:
                self.endpoints[found.group(1)] = found.group(2)
            if line.strip() == "ready":
                return
        raise AssertionError(f"lambdabus dev exited with {self.proc.wait()} before ready")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("items")
    (folder / "template.yaml").write_text(TEMPLATE)
    started = Stack(folder)
    try:
        yield started
    finally:
        assert started.stop() == 0


def table(stack: Stack) -> Any:
    """The provisioned table, straight from moto (not through the function)."""
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=stack.endpoints["aws"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    names = [t.name for t in dynamodb.tables.all() if "Items" in t.name]
    assert len(names) == 1, names
    return dynamodb.Table(names[0])


async def call(stack: Stack, method: str, path: str, **kw: Any) -> tuple[int, Any, Any]:
    """(status, JSON body or None, headers)."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, stack.endpoints["api"] + path, **kw) as resp,
    ):
        text = await resp.text()
        return resp.status, json.loads(text) if text else None, resp.headers


async def test_crud_cycle(stack: Stack) -> None:
    status, created, headers = await call(
        stack, "POST", "/items", json={"name": "lamp", "price": 19.5, "tags": ["a"]}
    )
    assert status == 201
    item_id = created["id"]
    assert headers["Location"] == f"/items/{item_id}"
    assert created == {"id": item_id, "name": "lamp", "price": 19.5, "tags": ["a"]}
    stored = table(stack).get_item(Key={"id": item_id})["Item"]
    assert stored["name"] == "lamp" and str(stored["price"]) == "19.5"  # a DynamoDB number

    assert (await call(stack, "GET", f"/items/{item_id}"))[:2] == (200, created)
    status, listed, _ = await call(stack, "GET", "/items")
    assert status == 200 and created in listed["items"]

    status, updated, _ = await call(stack, "PUT", f"/items/{item_id}", json={"name": "lamp 2"})
    assert (status, updated) == (200, {"id": item_id, "name": "lamp 2"})
    status, read, _ = await call(stack, "GET", f"/items/{item_id}")
    assert (status, read) == (200, {"id": item_id, "name": "lamp 2"})  # replaced, not merged

    status, body, _ = await call(stack, "DELETE", f"/items/{item_id}")
    assert (status, body) == (204, None)
    assert "Item" not in table(stack).get_item(Key={"id": item_id})
    assert (await call(stack, "GET", f"/items/{item_id}"))[:2] == (404, {"message": "no such item"})
    assert (await call(stack, "DELETE", f"/items/{item_id}"))[0] == 404


async def test_list_pages_through_the_table(stack: Stack) -> None:
    ids = set()
    for n in range(3):
        status, created, _ = await call(stack, "POST", "/items", json={"n": n})
        assert status == 201
        ids.add(created["id"])
    seen: list[str] = []
    path = "/items?limit=2"
    for _ in range(10):
        status, page, _ = await call(stack, "GET", path)
        assert status == 200 and len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if "next" not in page:
            break
        path = f"/items?limit=2&next={page['next']}"
    assert ids <= set(seen) and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/items", b'{"name": ', 400, "the body must be JSON"),
        ("POST", "/items", b"", 400, "the body must be JSON"),
        ("POST", "/items", b"[1, 2]", 400, "the body must be a JSON object"),
        ("POST", "/items", b'{"price": NaN}', 400, "the body must be JSON"),
        ("POST", "/items", b'{"id": "mine"}', 400, "id is assigned by the server"),
        ("POST", "/items", b'{"n": 1.' + b"1" * 40 + b"}", 400, "more precision"),
        ("PUT", "/items/nope", b'{"name": "ghost"}', 404, "no such item"),
        ("PUT", "/items/a", b'{"id": "b"}', 400, "the body's id differs from the path's"),
        ("PUT", "/items/a", b"\xff\xfe", 400, "the body must be JSON"),
        ("GET", "/items?limit=0", b"", 400, "limit must be between 1 and 100"),
        ("GET", "/items?limit=many", b"", 400, "limit must be a number"),
    ],
)
async def test_bad_requests_are_refused_and_write_nothing(
    stack: Stack, method: str, path: str, body: bytes, status: int, message: str
) -> None:
    before = table(stack).scan()["Count"]
    got, answer, _ = await call(
        stack, method, path, data=body, headers={"Content-Type": "application/json"}
    )
    assert got == status and message in answer["message"], answer
    assert table(stack).scan()["Count"] == before


async def test_the_gateway_refuses_undeclared_methods(stack: Stack) -> None:
    """PATCH has no route: the REST API answers it itself, as API Gateway does."""
    status, body, _ = await call(stack, "PATCH", "/items/x", json={})
    assert (status, body) == (403, {"message": "Missing Authentication Token"})


def test_the_demo_template_declares_the_same_routes() -> None:
    """The block this file runs is the one in template.yaml (the demo's stack)."""
    demo = load_template(ROOT / "template.yaml")
    ours = {r.route_key for r in build_routes(demo).routes if r.function == "ItemsApi"}
    assert ours == {
        "POST /items",
        "GET /items",
        "GET /items/{id}",
        "PUT /items/{id}",
        "DELETE /items/{id}",
    }
    assert demo.stack.functions["ItemsApi"].environment["TABLE_NAME"].endswith("Items")
