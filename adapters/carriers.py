"""Names of the AWS things lambdabus adds to a stack so event sources reach it.

S3 and SNS push their events; lambdabus's adapters pull. Between them sits a
*carrier*: an SQS queue per S3 or SNS event source of a function, which the
provisioner (:mod:`adapters.provision`) creates and wires (bucket notification,
SNS subscription, queue policy) and the adapter long-polls. Both sides compute
the names here, from the template alone, so they agree without talking — and
a restart finds the same queues, as ``{stack}-{LogicalId}`` does for the
template's own resources (:mod:`adapters.template.models`).

Everything here is pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .template.loaded import EventSource

SQS_NAME_MAX = 80
"""SQS's limit on a queue name, ``.fifo`` included."""
FIFO_SUFFIX = ".fifo"
HASH_CHARS = 16
"""Hex digits of SHA-256 kept in a shortened name (64 bits: collisions need ~4e9 names)."""

_STACK = re.compile(r"[A-Za-z][-A-Za-z0-9]*")
_LOGICAL_ID = re.compile(r"[A-Za-z0-9]+")
_NOT_SQS = re.compile(r"[^A-Za-z0-9_-]")


def carrier_queue_name(stack: str, function: str, event: str, fifo: bool = False) -> str:
    """The SQS queue that carries one S3 or SNS event source's notifications to lambdabus.

    ``{stack}_{function}_{event}`` while it fits and the parts look like a stack
    name and two logical ids (the underscore appears in neither, so distinct
    triples never meet); otherwise a readable prefix plus ``-`` and a hash of the
    exact triple, so long or odd names stay distinct and within SQS's 80
    characters. The two forms never meet either: after its last underscore a
    plain name has only letters and digits, a hashed one always a hyphen.
    FIFO carriers (for FIFO topics) end in ``.fifo``, as SQS requires.
    """
    suffix = FIFO_SUFFIX if fifo else ""
    room = SQS_NAME_MAX - len(suffix)
    plain = f"{stack}_{function}_{event}"
    readable = (
        _STACK.fullmatch(stack) is not None
        and _LOGICAL_ID.fullmatch(function) is not None
        and _LOGICAL_ID.fullmatch(event) is not None
    )
    if readable and len(plain) <= room:
        return plain + suffix
    digest = hashlib.sha256("\0".join((stack, function, event)).encode()).hexdigest()
    prefix = _NOT_SQS.sub("-", plain)[: room - HASH_CHARS - 1]
    return f"{prefix}-{digest[:HASH_CHARS]}{suffix}"


def notification_id(function: str, event: str) -> str:
    """The Id of the bucket notification configuration an S3 event source gets; S3 puts it
    in every record as ``s3.configurationId``."""
    return f"lambdabus-{function}-{event}"


def name_from_arn(arn: str) -> str:
    """The resource name at the end of an SQS or SNS ARN."""
    return arn.split(":")[-1]


def carrier_queue_for(stack: str, source: EventSource) -> str | None:
    """The queue an adapter polls for ``source``, or None for sources without one.

    S3 events and SNS events use their carrier; an SNS event whose ``SqsSubscription``
    names a queue (``QueueArn`` or ``QueueUrl``) uses that queue instead, as SAM does.
    A FIFO topic (its ARN ends in ``.fifo``) needs a FIFO carrier.
    """
    props: dict[str, Any] = source.properties
    if source.type == "S3":
        return carrier_queue_name(stack, source.function, source.name)
    if source.type != "SNS":
        return None
    own = props.get("SqsSubscription")
    if isinstance(own, dict) and own.get("QueueArn"):
        return name_from_arn(str(own["QueueArn"]))
    if isinstance(own, dict) and own.get("QueueUrl"):
        return str(own["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
    fifo = str(props.get("Topic", "")).endswith(FIFO_SUFFIX)
    return carrier_queue_name(stack, source.function, source.name, fifo=fifo)
