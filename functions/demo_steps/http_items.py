"""API Gateway: a REST API over DynamoDB (functions/items_api), called as any web client
would, through the API port ``lambdabus dev`` prints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from . import DemoContext

TITLE = "API Gateway REST API -> function -> DynamoDB (items_api)"
ORDER = 40


async def run(ctx: DemoContext) -> None:
    api = ctx.endpoints.get("api")
    if api is None:
        ctx.row("ItemsApi", "no api endpoint printed by lambdabus dev", "not run")
        return
    async with aiohttp.ClientSession(base_url=api) as http:

        async def call(
            method: str, path: str, body: Any = None, describe: Callable[[Any], str] | None = None
        ) -> Any:
            """One request, one row: status, what came back, latency."""
            started = time.perf_counter()
            async with http.request(method, path, json=body) as resp:
                text = await resp.text()
            ms = f"{(time.perf_counter() - started) * 1000:.1f} ms"
            data = json.loads(text) if text else None
            shown = describe(data) if describe else text
            ctx.row("ItemsApi", f"{method} {path}", f"{resp.status} {shown}", ms)
            return data

        created = await call("POST", "/items", {"name": "lamp", "price": 19.5})
        path = f"/items/{created['id']}"
        await call("GET", path)
        await call("POST", "/items", {"name": "desk", "price": 120})
        await call("GET", "/items", describe=lambda d: f"{len(d['items'])} items")
        await call("PUT", path, {"name": "lamp", "price": 17})
        await call("DELETE", path)
        await call("GET", path)  # gone: 404
        await call("PUT", "/items/nope", {"name": "ghost"})  # 404: updates never create
        await call("POST", "/items", [1, 2])  # 400: not a JSON object
