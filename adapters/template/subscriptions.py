"""``lambda``-protocol SNS subscriptions written as resources become SNS events.

A template can subscribe a function to a topic two ways: an ``SNS`` event on
the function, or a subscription on the topic's side (an entry of
``AWS::SNS::Topic.Subscription`` or an ``AWS::SNS::Subscription`` resource)
whose endpoint is the function's ARN. Lambda treats both alike, so the loader
turns the second into the first: one general path (trigger, carrier queue,
adapter, filter policy) instead of a special case in each of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from . import schema as s
from .errors import Invalid


def subscription_event_name(owner: str, index: int | None = None) -> str:
    """The event name of a subscription written as a resource: the ``AWS::SNS::Subscription``'s
    logical id, or ``{Topic}Subscription{i}`` for the i-th entry of a topic's ``Subscription``
    list. Alphanumeric, like a logical id, so carrier queue names stay readable."""
    return owner if index is None else f"{owner}Subscription{index}"


def function_of(endpoint: str, functions: Mapping[str, Any]) -> str | None:
    """The stack function a Lambda ARN (``…:function:NAME`` with or without a qualifier)
    names, or None for anything else."""
    parts = endpoint.split(":")
    if len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
        return parts[6] if parts[6] in functions else None
    return None


def _lambda_entries(
    types: Mapping[str, str], resolved: Mapping[str, dict[str, Any]], topic_arns: Mapping[str, str]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(endpoint, event name, SNS event properties) of every lambda-protocol subscription."""
    for lid, props in resolved.items():
        if types[lid] == s.TOPIC:
            for i, sub in enumerate(props.get("Subscription") or []):
                if str(sub["Protocol"]).lower() == "lambda":
                    event = {"Topic": topic_arns[lid]}
                    yield str(sub["Endpoint"]), subscription_event_name(lid, i), event
        elif types[lid] == s.SUBSCRIPTION and str(props["Protocol"]).lower() == "lambda":
            event = {"Topic": props["TopicArn"]}
            for key in ("FilterPolicy", "FilterPolicyScope"):
                if key in props:
                    event[key] = props[key]
            yield str(props.get("Endpoint", "")), subscription_event_name(lid), event


def _own_topics(function: Mapping[str, Any]) -> set[str]:
    """Topics the function's own SNS events subscribe it to."""
    return {
        str((event.get("Properties") or {}).get("Topic"))
        for event in (function.get("Events") or {}).values()
        if isinstance(event, dict) and event.get("Type") == "SNS"
    }


def subscribed_events(
    types: Mapping[str, str], resolved: Mapping[str, dict[str, Any]], topic_arns: Mapping[str, str]
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """Function logical id → the SNS ``Events`` its lambda subscriptions add to it, and the
    (function, subscription) pairs left out because the function already subscribes to
    that topic: SNS keeps one subscription per topic and endpoint, so the function runs
    once per message, not once per declaration.

    Subscriptions of functions outside the stack are left to provisioning, which
    reports them as skipped. A name already used by one of the function's own
    events is an error naming both.
    """
    functions = {lid: props for lid, props in resolved.items() if types[lid] == s.FUNCTION}
    added: dict[str, dict[str, Any]] = {}
    repeated: list[tuple[str, str]] = []
    for endpoint, name, props in _lambda_entries(types, resolved, topic_arns):
        fn = function_of(endpoint, functions)
        if fn is None:
            continue
        known = _own_topics(functions[fn]) | {
            str(e["Properties"]["Topic"]) for e in added.get(fn, {}).values()
        }
        if str(props["Topic"]) in known:
            repeated.append((fn, name))
            continue
        if name in (functions[fn].get("Events") or {}):
            raise Invalid(
                f"Events.{name}",
                f"clashes with the SNS event lambdabus makes of the lambda subscription {name};"
                " rename the event",
                fn,
            )
        mine = added.setdefault(fn, {})
        if name in mine:
            raise Invalid(
                "Endpoint",
                f"two lambda subscriptions of {fn} are both named {name} (a topic's"
                f" Subscription entry and an AWS::SNS::Subscription); rename the resource",
                name,
            )
        mine[name] = {"Type": "SNS", "Properties": props}
    return added, repeated
