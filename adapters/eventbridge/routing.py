"""The template's EventBridge rules, and which functions an event goes to.

Every enabled ``EventBridgeRule`` / ``CloudWatchEvent`` event of a function is
one rule with one target (that function), on the bus its ``EventBusName``
names (``default`` when unset). An event published to a bus is matched against
that bus's rules; each matching rule delivers its own copy, shaped by the
rule's target input (:mod:`.transform`), as EventBridge does.

The envelope id is the event's id plus the rule, so two rules that send one
event to the same function deliver twice (as on AWS), while a republish of the
same event for the same rule is dropped by the bus's dedupe. A retried
PutEvents call is a new event with a new id, and is delivered again — AWS
does not deduplicate PutEvents either.

Rule names are ``RuleName`` when the template sets it, else SAM's logical id
for the rule (``{Function}{Event}``); ARNs are built with the loader's account
and region (``rule/{bus}/{name}`` on a custom bus).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bus.envelope import Envelope
from bus.publish import Target
from bus.spec import Stack, Trigger

from ..patterns import Pattern, PatternError, compile_pattern
from ..template.loaded import EventSource
from ..template.models import ACCOUNT_ID
from .transform import InputError, RuleContext, TargetInput, compile_input

RULE_TYPES = frozenset({"EventBridgeRule", "CloudWatchEvent"})
DEFAULT_BUS = "default"
SOURCE = "aws:events"
"""The envelope's ``source`` (and the published-events metric's label): bounded, unlike the
events' own ``source`` values, which go to the envelope's ``subject``."""


class RuleError(ValueError):
    """A rule the template must not load: ``prop`` is the property, then what is wrong."""

    def __init__(self, prop: str, message: str) -> None:
        super().__init__(f"{prop}: {message}")
        self.prop = prop
        self.message = message


def check_rule(props: Mapping[str, Any]) -> tuple[Pattern, TargetInput]:
    """Compile a rule's ``Pattern`` and target input as PutRule/PutTargets would."""
    try:
        pattern = compile_pattern(props.get("Pattern") or {})
    except PatternError as exc:
        raise RuleError("Pattern", str(exc)) from None
    try:
        target_input = compile_input(props)
    except InputError as exc:
        raise RuleError(exc.prop, exc.message) from None
    return pattern, target_input


def bus_name(value: Any) -> str:
    """``EventBusName`` as a name or an ARN (``arn:aws:events:…:event-bus/NAME``) → the name."""
    text = str(value or DEFAULT_BUS)
    if text.startswith("arn:") and ":event-bus/" in text:
        return text.rsplit("/", 1)[1]
    return text


@dataclass(frozen=True)
class Rule:
    function: str
    trigger: Trigger
    bus: str
    name: str
    arn: str
    pattern: Pattern
    input: TargetInput

    @property
    def target(self) -> Target:
        return Target(self.function, self.trigger)


def rules_from(events: Iterable[EventSource], stack: Stack, region: str) -> list[Rule]:
    """The enabled rules among ``events`` whose function runs in ``stack``."""
    rules = []
    for ev in events:
        spec = stack.functions.get(ev.function)
        trigger = spec.triggers.get(ev.name) if spec is not None else None
        if ev.type not in RULE_TYPES or trigger is None:
            continue
        pattern, target_input = check_rule(ev.properties)
        bus = bus_name(ev.properties.get("EventBusName"))
        name = str(ev.properties.get("RuleName") or f"{ev.function}{ev.name}")
        path = name if bus == DEFAULT_BUS else f"{bus}/{name}"
        arn = f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{path}"
        rules.append(Rule(ev.function, trigger, bus, name, arn, pattern, target_input))
    return rules


class Router:
    """Rules by bus; ``route`` gives each matching rule's envelope for an event."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: dict[str, list[Rule]] = {DEFAULT_BUS: []}
        for rule in rules:
            self.rules.setdefault(rule.bus, []).append(rule)

    @property
    def buses(self) -> frozenset[str]:
        """``default`` plus every bus a rule names: the buses PutEvents accepts."""
        return frozenset(self.rules)

    def route(
        self, event: Mapping[str, Any], bus: str, ingestion_time: str
    ) -> list[tuple[Target, Envelope]]:
        routed = []
        for rule in self.rules.get(bus, ()):
            if rule.pattern.matches(event):
                ctx = RuleContext(rule.name, rule.arn, ingestion_time)
                routed.append((rule.target, envelope(event, rule, ctx)))
        return routed


def envelope(event: Mapping[str, Any], rule: Rule, ctx: RuleContext) -> Envelope:
    return Envelope(
        id=f"{event['id']}:{rule.function}.{rule.trigger.name}",
        source=SOURCE,
        type=str(event["detail-type"]),
        trigger=rule.trigger.name,
        record=rule.input.apply(event, ctx),
        time=_epoch(event["time"]),
        subject=str(event["source"]),
        first_seen=time.time(),
    )


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()
