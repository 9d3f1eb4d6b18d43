"""Sample Lambda events for ``lambdabus generate-event``, like ``sam local generate-event``.

``generate(source, event, values)`` returns one event in exactly the shape Lambda
delivers it for that source (the keys and casing AWS documents), with fresh ids
and timestamps of now in each service's own format. ``values`` fill placeholders
such as ``bucket`` or ``region``; ``placeholders(source, event)`` lists them with
their defaults. The builders live in ``samples_aws`` and ``samples_apigw``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from . import samples_apigw as apigw
from . import samples_aws as aws

__all__ = ["SOURCES", "InvalidValue", "SampleError", "generate", "placeholders"]


class SampleError(KeyError):
    """An unknown source, event or placeholder; the message names the valid choices."""

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidValue(SampleError, ValueError):
    """A placeholder value Lambda would never deliver, such as ``size=big``.

    Also a KeyError, so callers that report unknown names report this the same way."""


class _Variant(NamedTuple):
    build: Callable[[Mapping[str, str]], dict[str, Any]]
    defaults: Mapping[str, str]


_REGION = {"region": "us-east-1"}
_ACCOUNT = {**_REGION, "account": "123456789012"}
_HTTP = {
    **_ACCOUNT,
    "path": "/path/to/resource",
    "method": "POST",
    "query": "foo=bar",
    "body": '{"test":"body"}',
    "cookies": "session=3f9c2a7d; theme=light",
}
_S3 = {**_REGION, "bucket": "example-bucket", "key": "test/key"}

_CATALOG: dict[str, dict[str, _Variant]] = {
    "s3": {
        "put": _Variant(aws.s3_put, {**_S3, "size": "1024"}),
        "delete": _Variant(aws.s3_delete, _S3),
    },
    "sqs": {
        "receive-message": _Variant(
            aws.sqs_receive_message, {**_ACCOUNT, "queue": "MyQueue", "body": "Hello from SQS!"}
        ),
    },
    "sns": {
        "notification": _Variant(
            aws.sns_notification,
            {
                **_ACCOUNT,
                "topic": "ExampleTopic",
                "subject": "example subject",
                "message": "example message",
            },
        ),
    },
    "dynamodb": {
        "update": _Variant(aws.dynamodb_update, {**_ACCOUNT, "table": "ExampleTableWithStream"}),
    },
    "apigateway": {
        "aws-proxy": _Variant(apigw.apigateway_aws_proxy, {**_HTTP, "stage": "prod"}),
    },
    "apigatewayv2": {
        "http-api-proxy": _Variant(
            apigw.apigatewayv2_http_api_proxy, {**_HTTP, "stage": "$default"}
        ),
    },
    "cloudwatch": {
        "scheduled-event": _Variant(
            aws.cloudwatch_scheduled_event, {**_ACCOUNT, "rule": "ExampleRule"}
        ),
    },
    "eventbridge": {
        "event": _Variant(
            aws.eventbridge_event,
            {
                **_ACCOUNT,
                "source": "aws.ec2",
                "detail-type": "EC2 Instance State-change Notification",
                "detail": "",  # JSON object text; empty: an EC2 state change
            },
        ),
    },
}

#: source -> its event variants; the first is the default.
SOURCES: dict[str, tuple[str, ...]] = {source: tuple(v) for source, v in _CATALOG.items()}

# What AWS accepts for each placeholder, so no event carries what Lambda never would.
_RULES: dict[str, tuple[str, str]] = {
    "region": (r"[a-z]{2}(-[a-z]+)+-\d{1,2}", "a region such as us-east-1"),
    "account": (r"\d{12}", "a 12-digit account id"),
    "bucket": (r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "a bucket name: 3-63 of a-z 0-9 . -"),
    "key": (r"(?s).+", "a non-empty object key"),
    "size": (r"\d+", "a size in bytes"),
    "queue": (r"[\w-]{1,75}\.fifo|[\w-]{1,80}", "a queue name: 1-80 of A-Z a-z 0-9 _ -"),
    "topic": (r"[\w-]{1,251}\.fifo|[\w-]{1,256}", "a topic name: 1-256 of A-Z a-z 0-9 _ -"),
    "table": (r"[\w.-]{3,255}", "a table name: 3-255 of A-Z a-z 0-9 _ . -"),
    "rule": (r"[\w.-]{1,64}", "a rule name: 1-64 of A-Z a-z 0-9 _ . -"),
    "path": (r"/[^?#\s]*", "a path starting with / (the query goes in query=)"),
    "method": (r"DELETE|GET|HEAD|OPTIONS|PATCH|POST|PUT", "an HTTP method"),
    "stage": (r"\$default|[\w-]{1,128}", "a stage name"),
    "source": (r"\S.*", "a non-empty source"),
    "detail-type": (r"\S.*", "a non-empty detail-type"),
}


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _variant(source: str, event: str | None) -> tuple[str, _Variant]:
    variants = _CATALOG.get(source)
    if variants is None:
        raise SampleError(
            f"unknown event source {source!r}{_hint(source, _CATALOG)}; "
            f"choose one of: {', '.join(sorted(_CATALOG))}"
        )
    name = next(iter(variants)) if event is None else event
    if name not in variants:
        raise SampleError(
            f"unknown {source} event {name!r}{_hint(name, variants)}; "
            f"choose one of: {', '.join(variants)}"
        )
    return name, variants[name]


def _checked(name: str, value: str) -> str:
    if name == "method":
        value = value.upper()
    if name == "detail" and value:
        try:
            ok = isinstance(json.loads(value), dict)
        except ValueError:
            ok = False
        if not ok:
            raise InvalidValue(f"detail={value!r} is not a JSON object")
    rule = _RULES.get(name)
    if rule and not re.fullmatch(rule[0], value, re.ASCII):
        raise InvalidValue(f"{name}={value!r} is not {rule[1]}")
    return value


def placeholders(source: str, event: str | None = None) -> dict[str, str]:
    """The placeholders of one kind of event, with their defaults."""
    return dict(_variant(source, event)[1].defaults)


def generate(source: str, event: str | None, values: Mapping[str, str]) -> dict[str, Any]:
    """A fresh sample event of ``source`` (variant ``event``, default the first).

    Raises KeyError (``SampleError``) naming the valid choices for an unknown
    source, event or placeholder, and ``InvalidValue`` (a KeyError and a
    ValueError) for a value AWS would not accept."""
    name, variant = _variant(source, event)
    unknown = sorted(set(values) - set(variant.defaults))
    if unknown:
        hint = _hint(unknown[0], variant.defaults) if len(unknown) == 1 else ""
        raise SampleError(
            f"unknown placeholder{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} for {source} {name}{hint}; "
            f"valid: {', '.join(sorted(variant.defaults))}"
        )
    resolved = {**variant.defaults, **{k: _checked(k, v) for k, v in values.items()}}
    return variant.build(resolved)
