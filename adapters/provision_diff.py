"""What differs between a plan and what AWS reports: pure comparisons, so reruns stay quiet.

Idempotence rests on these. Services echo values back in their own spelling
(``3`` for ``"3"``, ``SQS:SendMessage`` for ``sqs:SendMessage``, a one-item list
for a string, JSON with other spacing), so values are compared in a canonical
form, never as raw strings.

Only what the template sets is compared: a property the template leaves out
is not reset to a default, because defaults differ between AWS and emulators
(SQS's MaximumMessageSize became 1 MiB in 2025) and a rerun must not fight
the server over values nobody asked for. Attributes a server may not report
at all (moto never returns a queue's ``RedriveAllowPolicy`` nor a topic's
``SignatureVersion``) are set on creation and compared only when reported.
"""

from __future__ import annotations

import json
from typing import Any

from .provision_model import SID_PREFIX, QueuePlan, SubscriptionPlan, TopicPlan, attribute

JSON_ATTRIBUTES = frozenset({"RedrivePolicy", "RedriveAllowPolicy", "ArchivePolicy", "Policy"})
REPORTED_WHEN_SET = frozenset({"RedrivePolicy", "Policy", "DisplayName"})
"""Attributes absent from a response because they are unset (so absence is a difference)."""
IMMUTABLE = frozenset({"FifoQueue", "FifoTopic"})


def canonical(value: Any, key: str = "") -> Any:
    """A form in which two spellings of the same JSON value compare equal."""
    if isinstance(value, str) and key in JSON_ATTRIBUTES:
        try:
            return canonical(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: canonical(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [canonical(v, key) for v in value]
        return items[0] if len(items) == 1 else sorted(items, key=json.dumps)
    if key == "Action" and isinstance(value, str):
        return value.lower()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _statements(policy: str | None) -> tuple[dict[str, Any], list[Any]]:
    try:
        doc = json.loads(policy) if policy else {}
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    statements = doc.get("Statement", [])
    return doc, statements if isinstance(statements, list) else [statements]


def _ours(statement: Any) -> bool:
    return isinstance(statement, dict) and str(statement.get("Sid", "")).startswith(SID_PREFIX)


def merge_policy(current: str | None, grants: list[dict[str, Any]]) -> str | None:
    """The policy to set so that lambdabus's statements are exactly ``grants`` (everyone
    else's kept as they are), or None when ``current`` already is that."""
    doc, statements = _statements(current)
    mine = [s for s in statements if _ours(s)]
    if canonical(sorted(mine, key=lambda s: s["Sid"])) == canonical(
        sorted(grants, key=lambda s: s["Sid"])
    ):
        return None
    kept = [s for s in statements if not _ours(s)]
    if not kept and not grants:
        return ""
    new: dict[str, Any] = {"Version": doc.get("Version", "2012-10-17")}
    if "Id" in doc:
        new["Id"] = doc["Id"]
    new["Statement"] = kept + grants
    return json.dumps(new, separators=(",", ":"))


def _same(key: str, want: str, have: str) -> bool:
    return canonical(want, key) == canonical(have, key)


def attribute_changes(
    wanted: dict[str, str], current: dict[str, str], grants: list[dict[str, Any]]
) -> tuple[dict[str, str], list[str]]:
    """Attributes to set on an existing queue or topic, and a note for each (for the report).

    Raises ValueError naming an immutable attribute (FIFO-ness) that differs.
    """
    changes: dict[str, str] = {}
    notes: list[str] = []
    for key, want in wanted.items():
        have = current.get(key)
        if key in IMMUTABLE:
            if (have or "false") != want:
                raise ValueError(f"exists with {key} {have or 'false'}; it can't change")
            continue
        if have is None and key not in REPORTED_WHEN_SET:
            continue
        if have is not None and _same(key, want, have):
            continue
        changes[key] = want
        long = key in JSON_ATTRIBUTES or len(want) > 40
        notes.append(key if long else f"{key} {have if have is not None else '-'} -> {want}")
    policy = merge_policy(current.get("Policy"), grants)
    if policy is not None:
        changes["Policy"] = policy
        notes.append("Policy")
    return changes, notes


def queue_changes(plan: QueuePlan, current: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    return attribute_changes(plan.attributes, current, plan.grants)


def topic_changes(plan: TopicPlan, current: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    return attribute_changes(plan.attributes, current, plan.grants)


def subscription_attributes(plan: SubscriptionPlan) -> dict[str, str]:
    """Subscribe's ``Attributes``: the scope before the policy, which is validated by it."""
    attrs: dict[str, str] = {}
    if plan.filter_policy:
        attrs["FilterPolicyScope"] = plan.filter_scope or "MessageAttributes"
        attrs["FilterPolicy"] = attribute(plan.filter_policy)
    if plan.raw is not None:
        attrs["RawMessageDelivery"] = attribute(plan.raw)
    if plan.redrive:
        attrs["RedrivePolicy"] = attribute(plan.redrive)
    return attrs


def _filter_policy(text: str | None) -> Any:
    """A reported FilterPolicy; empty, ``{}`` and absent all mean none."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return text
    return value or None


def subscription_changes(plan: SubscriptionPlan, current: dict[str, str]) -> list[tuple[str, str]]:
    """(attribute, value) pairs to set, in an order SNS accepts. A subscription lambdabus
    manages has exactly the template's filter: one removed from the template is removed
    (set to ``{}``, SNS's way of deleting it)."""
    changes: list[tuple[str, str]] = []
    have_policy = _filter_policy(current.get("FilterPolicy"))
    if plan.filter_policy:
        scope = plan.filter_scope or "MessageAttributes"
        if current.get("FilterPolicyScope", "MessageAttributes") != scope:
            changes.append(("FilterPolicyScope", scope))
        if canonical(have_policy) != canonical(plan.filter_policy):
            changes.append(("FilterPolicy", attribute(plan.filter_policy)))
    elif have_policy is not None:
        changes.append(("FilterPolicy", "{}"))
    if plan.raw is not None and current.get("RawMessageDelivery", "false") != attribute(plan.raw):
        changes.append(("RawMessageDelivery", attribute(plan.raw)))
    if plan.redrive and canonical(current.get("RedrivePolicy"), "RedrivePolicy") != canonical(
        plan.redrive
    ):
        changes.append(("RedrivePolicy", attribute(plan.redrive)))
    return changes


def _notification_entries(doc: dict[str, Any]) -> list[Any]:
    entries = []
    for kind, target in (("QueueConfigurations", "QueueArn"), ("TopicConfigurations", "TopicArn")):
        for c in doc.get(kind) or []:
            rules = ((c.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []
            entries.append(
                (
                    kind,
                    c.get("Id", ""),
                    c.get(target, ""),
                    sorted(c.get("Events") or []),
                    sorted((r["Name"].lower(), r["Value"]) for r in rules),
                )
            )
    return sorted(entries, key=repr)


def notifications_differ(wanted: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a bucket's notification document must be rewritten. Lambda configurations
    count (they would be dropped); EventBridge is not compared, as moto never reports it."""
    if current.get("LambdaFunctionConfigurations"):
        return True
    return _notification_entries(wanted) != _notification_entries(current)
