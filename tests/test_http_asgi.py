"""FastAPI + Mangum, unmodified, behind the gateway for both payload formats.

Given ``tests/handlers_http_asgi.py`` (a FastAPI app, ``handler = Mangum(app)``)
behind a REST API (payload 1.0, mounted under its stage) and an HTTP API
(payload 2.0), when a real client calls it, then routes, path parameters,
repeated query keys, JSON bodies, validation errors, cookies both ways, a
binary response and the app's own 404 behave as FastAPI's docs say.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)

from adapters.http import build_routes
from tests import handlers_http_asgi as asgi
from tests.handlers_http import call, gateway, workers, write_template


@pytest.mark.timeout(120)
async def test_fastapi_with_mangum_runs_unmodified(
    redis_url: str, tmp_path: Path, stack_name: str
) -> None:
    loaded = write_template(tmp_path, {"keys": []}, stack_name, asgi.TEMPLATE)
    table = build_routes(loaded, mount_stage=True)
    async with workers(redis_url, loaded), gateway(redis_url, loaded, routes=table) as gw:
        apis = (
            (f"{gw.url}/prod", APIGatewayProxyEventModel),
            (gw.url, APIGatewayProxyEventV2Model),
        )
        for base, model in apis:  # the REST API (payload 1.0), then the HTTP API (2.0)
            status, _, body = await call("GET", f"{base}/event?x=1")
            assert status == 200, base
            model.model_validate(json.loads(body))  # what Mangum got is API Gateway's event

            status, _, body = await call("GET", f"{base}/todos/7?tag=a&tag=b&q=caf%C3%A9")
            assert (status, json.loads(body)) == (
                200,
                {"id": 7, "tags": ["a", "b"], "q": "café"},
            ), base

            status, _, body = await call("GET", f"{base}/todos/seven")
            assert status == 422, base  # FastAPI validated the path parameter
            assert json.loads(body)["detail"][0]["loc"] == ["path", "todo_id"], base

            status, _, body = await call("POST", f"{base}/todos", json={"title": "t"})
            assert (status, json.loads(body)) == (
                201,
                {"created": {"title": "t", "done": False}},
            ), base

            status, _, body = await call(
                "POST",
                f"{base}/todos",
                data=b'{"title": ',
                headers={"Content-Type": "application/json"},
            )
            assert status == 422, base
            assert json.loads(body)["detail"][0]["type"] == "json_invalid", base

            status, headers, body = await call("GET", f"{base}/login", cookies={"a": "1"})
            assert (status, json.loads(body)) == (200, {"saw": "1"}), base
            cookies = [c.split(";")[0] for c in headers.getall("Set-Cookie")]
            assert cookies == ["session=s1", "theme=dark"], base
            assert "httponly" in headers.getall("Set-Cookie")[0].lower(), base

            status, headers, body = await call("GET", f"{base}/logo")
            assert (status, headers["Content-Type"], body) == (200, "image/png", asgi.PNG), base

            status, _, body = await call("GET", f"{base}/todos/404")
            assert (status, json.loads(body)) == (404, {"detail": "Todo not found"}), base
            status, _, body = await call("GET", f"{base}/nothing")
            assert (status, json.loads(body)) == (404, {"detail": "Not Found"}), base
