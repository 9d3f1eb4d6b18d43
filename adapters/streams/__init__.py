"""DynamoDB Streams event source (``DynamoDB`` events of a SAM template).

- :mod:`.shards`: lineage and start positions (pure);
- :mod:`.records`: Lambda's DynamoDB record and the item-key partition (pure);
- :mod:`.leases`: per-shard leases and checkpoints in Redis;
- :mod:`.reader`: one shard, read, published, checkpointed, recovered;
- :mod:`.adapter`: the mapping's coordinator (shard walk, fair share of leases);
- :mod:`.failures`: DestinationConfig.OnFailure records.

``ParallelizationFactor`` is accepted and has no effect: the bus already runs
different items of a shard concurrently (each item's changes in order), bounded
by the function's concurrency, which is what the factor is for in Lambda.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ..base import DEFAULT_HIGH_WATER, AdapterGroup
from ..template.loaded import LoadedTemplate
from .adapter import StreamAdapter, StreamMapping, StreamSettings
from .failures import StreamFailureForwarder

__all__ = [
    "StreamAdapter",
    "StreamFailureForwarder",
    "StreamMapping",
    "StreamSettings",
    "mappings_from_template",
    "services_for",
]


def mappings_from_template(loaded: LoadedTemplate) -> list[StreamMapping]:
    """Every enabled ``DynamoDB`` event of the template, as Lambda would map it."""
    mappings = []
    for source in loaded.events:
        fn = loaded.stack.functions.get(source.function)
        trigger = fn.triggers.get(source.name) if fn is not None else None
        if source.type != "DynamoDB" or trigger is None:
            continue
        props = source.properties
        filters = props.get("FilterCriteria", {}).get("Filters", [])
        on_failure = next((d.arn for d in loaded.destinations
                           if d.function == source.function
                           and d.source == f"Events.{source.name}"), None)  # fmt: skip
        mappings.append(StreamMapping(
            function=source.function, trigger=trigger, stream_arn=str(props["Stream"]),
            starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
            filters=tuple(f["Pattern"] for f in filters if "Pattern" in f),
            on_failure=on_failure,
        ))  # fmt: skip
    return mappings


def services_for(redis: Redis, loaded: LoadedTemplate, *, settings: StreamSettings | None = None,
                 high_water: int = DEFAULT_HIGH_WATER) -> AdapterGroup:  # fmt: skip
    """What ``lambdabus adapter dynamodb`` (and ``dev``) runs: a reader per mapping and an
    OnFailure forwarder per mapping that has a destination."""
    group = AdapterGroup()
    for mapping in mappings_from_template(loaded):
        group.adapters.append(StreamAdapter(redis, loaded.stack.name, mapping,
                                            settings=settings, high_water=high_water))  # fmt: skip
        if mapping.on_failure:
            group.adapters.append(StreamFailureForwarder(redis, loaded.stack.name, mapping))
    return group
