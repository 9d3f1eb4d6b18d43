"""EventBridge's ``PutEvents`` on the edge (AWS JSON 1.1, ``AWSEvents.PutEvents``).

Request-level refusals, as AWS answers them (the whole call fails, nothing is
published): ``Entries`` missing, empty or over :data:`MAX_ENTRIES`
(``ValidationException``); wrongly typed fields (``SerializationException``);
entries whose total size — computed as "Calculating PutEvents event entry
size" documents: 14 bytes for ``Time``, the UTF-8 bytes of ``Source``,
``DetailType``, ``Detail`` and each of ``Resources`` — is over
:data:`MAX_TOTAL_BYTES` (1 MB since January 2026), ``ValidationException``.

Per-entry errors (the others are still accepted; ``FailedEntryCount`` counts
them): a missing ``Source``/``DetailType``/``Detail`` is ``InvalidArgument``,
a ``Source`` starting with ``aws.`` is ``NotAuthorizedForSourceException``
(those belong to AWS services), a ``Detail`` that is not a JSON object is
``MalformedDetail``, a bad ``Time`` or a ``Detail`` the bus cannot carry (an
integer past 64 bits) is ``InvalidArgument``, and so is an entry a rule's
``InputTransformer`` renders past what the bus carries (``MAX_ENTRY_BYTES``);
entries whose publish failed (Redis unreachable) are ``InternalFailure``
(retryable: SDKs resend them). An ``EventBusName`` no rule of the template
names is accepted and matches nothing, as AWS accepts events for a bus that
does not exist (aws/aws-sdk#186); the edge logs a warning once per such name.

Accepted entries become EventBridge events (``version``, ``id``,
``detail-type``, ``source``, ``account``, ``time``, ``region``, ``resources``,
``detail``), are routed by :mod:`.routing`, and are published before the
answer is sent, so an ``EventId`` in the answer means the event is on the bus.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from bus.envelope import MAX_ENTRY_BYTES, Envelope, encode, packb
from bus.publish import EventTooLarge, Publisher, Target, checked
from bus.spec import Stack

from ..edge import EdgeServer, JsonApiError
from ..template.loaded import EventSource
from ..template.models import ACCOUNT_ID
from . import metrics
from .routing import DEFAULT_BUS, Router, bus_name, rules_from

log = logging.getLogger(__name__)

MAX_ENTRIES = 10
MAX_TOTAL_BYTES = 1024 * 1024
"""PutEvents' limit on the summed entry sizes (256 KB until January 2026)."""
TIME_BYTES = 14
MAX_BODY_BYTES = 4 * 1024 * 1024
"""What the edge reads of a request: JSON escaping can triple a 1 MB ``Detail``
(``\\ud83d\\ude00`` for a 4-byte character), so this admits every request the size
rule would accept; a larger body is refused with 413 before it is parsed."""
_STRING_FIELDS = ("Source", "DetailType", "Detail", "EventBusName", "TraceHeader")
Routed = list[tuple[Target, Envelope]]
"""One entry's envelopes, one per rule it matched."""


def _validation(message: str) -> JsonApiError:
    return JsonApiError("ValidationException", message)


def _serialization(message: str) -> JsonApiError:
    return JsonApiError("SerializationException", message)


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge computes it (fields already type-checked)."""
    size = TIME_BYTES if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name) or "").encode("utf-8", "surrogatepass"))
    for resource in entry.get("Resources") or ():
        size += len(resource.encode("utf-8", "surrogatepass"))
    return size


def checked_entries(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The request's ``Entries``, or the request-level refusal AWS would send."""
    entries = body.get("Entries")
    if entries is None:
        raise _validation(
            "1 validation error detected: Value null at 'entries' failed to satisfy "
            "constraint: Member must not be null"
        )
    if not isinstance(entries, list):
        raise _serialization("Entries must be a list of PutEventsRequestEntry structures.")
    if not entries:
        raise _validation(
            "1 validation error detected: Value '[]' at 'entries' failed to satisfy "
            "constraint: Member must have length greater than or equal to 1"
        )
    if len(entries) > MAX_ENTRIES:
        raise _validation(
            "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed "
            f"to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES}"
        )
    for i, entry in enumerate(entries):
        _check_types(entry, i)
    if sum(entry_size(e) for e in entries) > MAX_TOTAL_BYTES:
        raise _validation("Total size of the entries in the request is over the limit.")
    return entries


def _check_types(entry: Any, i: int) -> None:
    if not isinstance(entry, dict):
        raise _serialization(f"Entries[{i}] must be a PutEventsRequestEntry structure.")
    for name in _STRING_FIELDS:
        if entry.get(name) is not None and not isinstance(entry[name], str):
            raise _serialization(f"Entries[{i}].{name} must be a string.")
    resources = entry.get("Resources")
    if resources is not None and not (
        isinstance(resources, list) and all(isinstance(r, str) for r in resources)
    ):
        raise _serialization(f"Entries[{i}].Resources must be a list of strings.")
    stamp = entry.get("Time")
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | float | str)):
        raise _serialization(f"Entries[{i}].Time must be a timestamp.")


@dataclass(frozen=True)
class Refused:
    code: str
    message: str

    def result(self) -> dict[str, str]:
        return {"ErrorCode": self.code, "ErrorMessage": self.message}


def _required(name: str) -> Refused:
    return Refused(
        "InvalidArgument", f"Parameter {name} is not valid. Reason: {name} is a required argument."
    )


def _event_time(stamp: Any, now: float) -> str | None:
    """ISO 8601 to the second, as EventBridge writes ``time``; None if ``stamp`` is unusable."""
    try:
        if stamp is None:
            moment = datetime.fromtimestamp(now, UTC)
        elif isinstance(stamp, str):
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
        elif math.isfinite(stamp):
            moment = datetime.fromtimestamp(stamp, UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_json(name: str) -> Any:
    """``NaN`` and ``Infinity`` are Python's extensions, not JSON: AWS refuses them."""
    raise ValueError(f"{name} is not JSON")


def make_event(
    entry: Mapping[str, Any], event_id: str, now: float, region: str
) -> tuple[dict[str, Any], str] | Refused:
    """One entry → (EventBridge event, bus name), or its per-entry error."""
    for name in ("Source", "DetailType", "Detail"):
        if not entry.get(name):
            return _required(name)
    if entry["Source"].startswith("aws."):  # AWS services' sources are reserved to them
        return Refused("NotAuthorizedForSourceException", "Not authorized for the source.")
    try:
        detail = json.loads(entry["Detail"], parse_constant=_not_json)
    except (ValueError, RecursionError):
        return Refused("MalformedDetail", "Detail is malformed.")
    if not isinstance(detail, dict):
        return Refused("MalformedDetail", "Detail is malformed.")
    bus = bus_name(entry.get("EventBusName"))
    stamp = _event_time(entry.get("Time"), now)
    if stamp is None:
        return Refused("InvalidArgument", "Parameter Time is not valid.")
    event = {
        "version": "0",
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT_ID,
        "time": stamp,
        "region": region,
        "resources": list(entry.get("Resources") or []),
        "detail": detail,
    }
    try:
        packb(event)  # what the bus can't carry is refused here, not mid-publish
    except (TypeError, OverflowError, ValueError) as exc:
        return Refused("InvalidArgument", f"Parameter Detail is not valid. Reason: {exc}")
    return event, bus


class PutEvents:
    """The operation; one instance per edge, sharing one publisher."""

    def __init__(
        self,
        router: Router,
        publisher: Publisher,
        region: str,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.router = router
        self.publisher = publisher
        self.region = region
        self.clock = clock
        self.new_id = new_id
        self._warned: set[str] = set()

    def _warn_unknown(self, bus: str) -> None:
        if bus not in self.router.buses and bus not in self._warned and len(self._warned) < 100:
            self._warned.add(bus)
            log.warning("PutEvents: no rule uses event bus %r; its events match nothing", bus)

    async def __call__(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        entries = checked_entries(body)
        now = self.clock()
        ingested = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        ingested = ingested.replace("+00:00", "Z")
        results: list[dict[str, str]] = []
        pending: list[tuple[int, Routed]] = []
        for entry in entries:
            made = make_event(entry, self.new_id(), now, self.region)
            if isinstance(made, Refused):
                results.append(made.result())
                continue
            event, bus = made
            self._warn_unknown(bus)
            try:
                routed = self.router.route(event, bus, ingested)
            except (RecursionError, ValueError, TypeError) as exc:  # e.g. too deep to render
                results.append(
                    Refused("InvalidArgument", f"Detail cannot be routed: {exc}").result()
                )
                continue
            pending.append((len(results), routed))
            results.append({"EventId": event["id"]})
        accepted = await self._publish(pending, results)
        matched = sum(bool(routed) for _, routed in accepted)
        failed = len(results) - len(accepted)
        metrics.count(accepted=len(accepted), rejected=failed, matched=matched,
                      unmatched=len(accepted) - matched)  # fmt: skip
        return {"FailedEntryCount": failed, "Entries": results}

    async def _publish(
        self, pending: list[tuple[int, Routed]], results: list[dict[str, str]]
    ) -> list[tuple[int, Routed]]:
        """Publish the routed entries; those that failed get their error in ``results``.

        The bus refuses an envelope past ``MAX_ENTRY_BYTES`` (an ``InputTransformer`` can
        render an entry many times over) with EventTooLarge while the pipeline is still
        being built, so nothing is written yet: only then are envelopes sized one by one,
        the offending entries refused, and the rest published. Checking every envelope up
        front would encode each event twice on every call to catch a rare mistake.
        """
        try:
            try:
                await self.publisher.publish_batches(_batches(pending))
            except EventTooLarge:
                kept = []
                for i, routed in pending:
                    refusal = too_large(routed)
                    if refusal is None:
                        kept.append((i, routed))
                    else:
                        results[i] = refusal.result()
                pending = kept
                await self.publisher.publish_batches(_batches(pending))
        except Exception as exc:
            log.exception("PutEvents: publishing %d events failed", len(pending))
            failure = Refused("InternalFailure", f"The event could not be published: {exc}")
            for i, _ in pending:
                results[i] = failure.result()
            return []
        return pending


def _batches(pending: Iterable[tuple[int, Routed]]) -> dict[Target, list[Envelope]]:
    batches: dict[Target, list[Envelope]] = {}
    for _, routed in pending:
        for target, env in routed:
            batches.setdefault(target, []).append(env)
    return batches


def too_large(routed: Routed) -> Refused | None:
    """The entry's error if one of its envelopes is past what the bus carries, else None."""
    for target, env in routed:
        try:
            checked(encode(env), env)
        except EventTooLarge:
            return Refused(
                "InvalidArgument",
                f"Parameter InputTransformer is not valid. Reason: the transformed input for "
                f"rule {target.trigger.name} is too large (over {MAX_ENTRY_BYTES} bytes).",
            )
    return None


def mount(
    edge: EdgeServer, events: Iterable[EventSource], stack: Stack, redis: Redis, region: str
) -> PutEvents:
    """Serve ``AWSEvents.PutEvents`` on ``edge`` (before it starts) for ``stack``'s rules."""
    router = Router(rules_from(events, stack, region))
    operation = PutEvents(router, Publisher(redis, stack.name), region)
    edge.json_api.add("AWSEvents", {"PutEvents": operation}, version="1.1", max_body=MAX_BODY_BYTES)
    return operation


__all__ = ["DEFAULT_BUS", "MAX_ENTRIES", "MAX_TOTAL_BYTES", "PutEvents", "entry_size", "mount"]
