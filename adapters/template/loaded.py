"""What loading a template produces: plain, immutable data for every other part.

``Stack`` (the functions and their triggers, :mod:`bus.spec`) is what the bus
and the workers read; the rest is for the provisioner, the adapters, the API
gateway and the workflow executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.spec import Stack


@dataclass(frozen=True)
class Resource:
    """A resource lambdabus provisions or serves (never a function: see ``Stack``)."""

    logical_id: str
    type: str
    """e.g. ``AWS::SQS::Queue``."""
    properties: dict[str, Any]
    """Supported properties with intrinsics resolved and types checked; ignored ones dropped.
    State machines carry their parsed ``Definition`` (from ``DefinitionString`` or a local
    ``DefinitionUri`` too) with ``DefinitionSubstitutions`` applied."""
    name: str
    """Physical name: ``QueueName``/``TopicName``/``BucketName``/``TableName``/… or
    ``{stack}-{LogicalId}`` (buckets lowercased, FIFO queues and topics ``.fifo``)."""
    arn: str | None
    ref: str
    """What ``!Ref`` returns: queue URL, topic ARN, bucket name, table name, API id, …"""


@dataclass(frozen=True)
class EventSource:
    """One ``Events`` entry of a function: what an adapter must watch, and for whom."""

    function: str
    """The function's logical id (its name in the Stack)."""
    name: str
    """The event's logical id (the ``Trigger.name``)."""
    type: str
    """``SQS``, ``SNS``, ``S3``, ``DynamoDB``, ``Api``, ``HttpApi``, ``Schedule``,
    ``ScheduleV2``, ``EventBridgeRule`` or ``CloudWatchEvent``."""
    properties: dict[str, Any]
    """Intrinsics resolved and checked. Normalised: S3 ``Events`` is always a list; Api
    events always carry ``RestApiId`` and HttpApi events ``ApiId``, ``Method`` and ``Path``
    (the implicit API's id, ``ANY`` and ``$default`` when the template leaves them out)."""


@dataclass(frozen=True)
class FailureDestination:
    """Where a function's failed asynchronous events (or stream records) go when it isn't
    another function of the stack (that one is ``FunctionSpec.on_failure``)."""

    function: str
    type: str
    """``SQS`` or ``SNS``."""
    arn: str
    source: str
    """``EventInvokeConfig``, ``DeadLetterQueue`` or ``Events.<name>`` (stream sources)."""


@dataclass(frozen=True)
class LoadedTemplate:
    path: Path
    """The template file, absolute."""
    stack: Stack
    """``stack.name``: ``stack_name``, else top-level ``Metadata.lambdabus.stack``, else the
    template folder's name."""
    resources: dict[str, Resource]
    """Every non-function resource lambdabus models (queues, topics, subscriptions, buckets,
    tables, APIs including SAM's implicit ``ServerlessRestApi``/``ServerlessHttpApi``, state
    machines), by logical id, in template order."""
    events: list[EventSource]
    warnings: list[str]
    """One line per ignored property or resource:
    ``<file>: <resource>: <property>: ignored (<why>)``."""
    groups: list[list[str]]
    """Worker process groups: each function alone unless ``Metadata.lambdabus.group`` puts
    several together (their Environment must then agree)."""
    settings: dict[str, Any]
    """The top-level ``Metadata.lambdabus`` mapping, as written."""
    destinations: list[FailureDestination] = field(default_factory=list)
    region: str = "us-east-1"
    async_routes: dict[str, list[str]] = field(default_factory=dict)
    """Per function, the Api/HttpApi events its ``Metadata.lambdabus.async_routes`` names."""
    """The region every ARN and URL of this load was built with."""
