"""Seed use case 3: a REST API whose function reads and writes a DynamoDB table.

An ordinary Lambda proxy handler behind API Gateway REST routes (payload 1.0),
written as it would be for AWS: boto3 with no endpoint (lambdabus's worker
environment points ``AWS_ENDPOINT_URL`` at the stack's AWS endpoint) and the
table's name from ``TABLE_NAME``.

    POST   /items        create (the server assigns ``id``)   201 + Location
    GET    /items        list (``?limit=`` 1..100, ``?next=`` to page on)
    GET    /items/{id}   read                                 404 if missing
    PUT    /items/{id}   replace (must exist)                 404 if missing
    DELETE /items/{id}   delete (must exist)                  204, 404 if missing

Bodies must be JSON objects (400 otherwise); numbers are kept exact as
DynamoDB numbers (Decimal), and a body DynamoDB refuses (too big, an
unsupported value) is a 400 with DynamoDB's reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from decimal import Decimal, DecimalException
from typing import Any

import boto3
from botocore.exceptions import ClientError

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
MAX_PAGE = 100


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def respond(status: int, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": "" if body is None else json.dumps(body, default=_default),
        "isBase64Encoded": False,
    }


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN; DynamoDB can't store it


def _json_object(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        data = json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, binascii.Error):  # JSONDecodeError and UnicodeDecodeError included
        raise HttpError(400, "the body must be JSON") from None
    if not isinstance(data, dict):
        raise HttpError(400, "the body must be a JSON object")
    return data


def _item_id(event: dict[str, Any]) -> str:
    return str((event.get("pathParameters") or {}).get("id", ""))


def create(event: dict[str, Any]) -> dict[str, Any]:
    item = _json_object(event)
    if "id" in item:
        raise HttpError(400, "id is assigned by the server")
    item["id"] = uuid.uuid4().hex
    TABLE.put_item(Item=item, ConditionExpression="attribute_not_exists(id)")
    return respond(201, item, {"Location": f"/items/{item['id']}"})


def read(event: dict[str, Any]) -> dict[str, Any]:
    item = TABLE.get_item(Key={"id": _item_id(event)}).get("Item")
    if item is None:
        raise HttpError(404, "no such item")
    return respond(200, item)


def list_items(event: dict[str, Any]) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    try:
        limit = int(query.get("limit", MAX_PAGE))
    except ValueError:
        raise HttpError(400, "limit must be a number") from None
    if not 1 <= limit <= MAX_PAGE:
        raise HttpError(400, f"limit must be between 1 and {MAX_PAGE}")
    scan: dict[str, Any] = {"Limit": limit}
    if query.get("next"):
        scan["ExclusiveStartKey"] = {"id": query["next"]}
    page = TABLE.scan(**scan)
    body: dict[str, Any] = {"items": page.get("Items", [])}
    if "LastEvaluatedKey" in page:
        body["next"] = page["LastEvaluatedKey"]["id"]
    return respond(200, body)


def update(event: dict[str, Any]) -> dict[str, Any]:
    item = _json_object(event)
    item_id = _item_id(event)
    if item.setdefault("id", item_id) != item_id:
        raise HttpError(400, "the body's id differs from the path's")
    try:
        TABLE.put_item(Item=item, ConditionExpression="attribute_exists(id)")
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise HttpError(404, "no such item") from None
        raise
    return respond(200, item)


def delete(event: dict[str, Any]) -> dict[str, Any]:
    try:
        TABLE.delete_item(Key={"id": _item_id(event)}, ConditionExpression="attribute_exists(id)")
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise HttpError(404, "no such item") from None
        raise
    return respond(204)


ROUTES = {
    ("POST", "/items"): create,
    ("GET", "/items"): list_items,
    ("GET", "/items/{id}"): read,
    ("PUT", "/items/{id}"): update,
    ("DELETE", "/items/{id}"): delete,
}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    route = ROUTES.get((event["httpMethod"], event["resource"]))
    try:
        if route is None:
            raise HttpError(404, "no such route")
        return route(event)
    except HttpError as exc:
        return respond(exc.status, {"message": exc.message})
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException":  # e.g. an item over 400 KB
            return respond(400, {"message": exc.response["Error"]["Message"]})
        raise
    except DecimalException:  # boto3 refuses numbers DynamoDB can't hold (over 38 digits)
        return respond(400, {"message": "a number has more precision than DynamoDB keeps"})
