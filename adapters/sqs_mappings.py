"""SQS event source mappings, and how a template declares them.

One mapping per ``SQS`` event (as in Lambda, the mappings of one queue compete
for its messages: no fan-out across mappings), with its FilterCriteria and
ScalingConfig ``MaximumConcurrency`` (the number of pollers, default 2); plus,
for S3 and SNS events, one per carrier queue, read with that source's normalizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bus.spec import Trigger

from .sqs_envelopes import Normalizer, s3_envelopes, sns_envelopes, sqs_envelopes
from .template.loaded import EventSource, LoadedTemplate

DEFAULT_POLLERS = 2
"""Lambda's minimum (and SAM's default) ScalingConfig.MaximumConcurrency."""


@dataclass(frozen=True)
class SqsMapping:
    """One event source mapping: a queue, and the function (trigger) its messages go to."""

    function: str
    trigger: Trigger
    queue_arn: str
    filters: tuple[Mapping[str, Any] | str, ...] = ()
    """FilterCriteria patterns (``Filters[].Pattern``), as written in the template."""
    pollers: int = DEFAULT_POLLERS
    normalize: Normalizer = sqs_envelopes
    kind: str = "sqs"
    """``sqs``, or ``s3``/``sns`` for carrier queues; the first part of the metrics label."""

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.function}.{self.trigger.name}"


def mappings_from_template(loaded: LoadedTemplate) -> list[SqsMapping]:
    """Every enabled ``SQS`` event of the template, as Lambda would map it."""
    mappings = []
    for source in loaded.events:
        trigger = _trigger(loaded, source)
        if source.type != "SQS" or trigger is None:
            continue
        props = source.properties
        filters = props.get("FilterCriteria", {}).get("Filters", [])
        mappings.append(SqsMapping(
            function=source.function, trigger=trigger, queue_arn=str(props["Queue"]),
            filters=tuple(f["Pattern"] for f in filters if "Pattern" in f),
            pollers=int(props.get("ScalingConfig", {}).get("MaximumConcurrency", DEFAULT_POLLERS)),
        ))  # fmt: skip
    return mappings


def carrier_mappings(loaded: LoadedTemplate) -> list[SqsMapping]:
    """The S3 and SNS events of the template, read from their carrier queues
    (named by :func:`adapters.carriers.carrier_queue_for`, created by provisioning)."""
    from .carriers import carrier_queue_for
    from .template.models import ACCOUNT_ID

    mappings = []
    for source in loaded.events:
        trigger = _trigger(loaded, source)
        name = carrier_queue_for(loaded.stack.name, source) if trigger else None
        if trigger is None or name is None:
            continue
        own = source.properties.get("SqsSubscription")
        arn = own.get("QueueArn") if isinstance(own, dict) else None
        normalize = s3_envelopes if source.type == "S3" else sns_envelopes
        mappings.append(SqsMapping(
            function=source.function, trigger=trigger, normalize=normalize,
            queue_arn=str(arn or f"arn:aws:sqs:{loaded.region}:{ACCOUNT_ID}:{name}"),
            kind=source.type.lower(),
        ))  # fmt: skip
    return mappings


def _trigger(loaded: LoadedTemplate, source: EventSource) -> Trigger | None:
    fn = loaded.stack.functions.get(source.function)
    return fn.triggers.get(source.name) if fn is not None else None
