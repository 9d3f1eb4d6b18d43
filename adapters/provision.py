"""Provisioning: the template's AWS resources and the wiring lambdabus's adapters need.

``provision(loaded)`` makes AWS (or the embedded moto server) hold what the
template declares — ``AWS::SQS::Queue``, ``AWS::SNS::Topic`` (with its
``Subscription`` list), ``AWS::SNS::Subscription``, ``AWS::S3::Bucket``,
``AWS::DynamoDB::Table``, ``AWS::Serverless::SimpleTable`` — plus what the
functions' event sources need to reach lambdabus:

- an **S3** event gets a carrier queue (:func:`adapters.carriers.carrier_queue_name`),
  a policy letting the bucket send to it, and a ``QueueConfiguration`` (the
  event's ``Events`` and prefix/suffix ``Filter``) in the bucket's notification
  document, merged with every other function's and the template's own;
- an **SNS** event gets a carrier queue subscribed to the topic with raw
  delivery off (so the SNS envelope arrives, which ``Records[0].Sns`` is made
  of) and the event's ``FilterPolicy``/``FilterPolicyScope``, plus a policy
  letting the topic send to it; ``SqsSubscription: {QueueArn: ...}`` subscribes
  that queue instead, as SAM does; a topic's ``lambda`` subscription of a
  function of the stack is realised the same way;
- an **SQS** event's queue, a **DynamoDB** event's stream, and every SQS/SNS
  failure destination (``DeadLetterQueue``, ``OnFailure``) must exist after
  the run: created when the template declares them, else checked — before
  anything is changed, so a typo fails fast.

It is idempotent: what exists is compared with the template (only what the
template sets, see :mod:`adapters.provision_diff`) and corrected in place, so
a second run reports nothing created or updated. It prints nothing: the
returned :class:`ProvisionReport` has one line per resource for the CLI, and
any failure is a :class:`ProvisionError` whose message is one line naming the
resource and the AWS error.

What is *not* done, by design: nothing is ever deleted (a resource removed
from the template stays, as with ``DeletionPolicy: Retain``); ``email``,
``sms`` and other undeliverable subscriptions, a bucket's
``LambdaConfigurations`` and EventBridge delivery are reported as skipped.
ARNs are the loader's (account ``123456789012``, moto's), the ones every
other part of lambdabus uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.session import get_session

from .provision_messaging import check_exists, ensure_queue, ensure_subscription, ensure_topic
from .provision_plan import Plan, make_plan
from .provision_report import SKIPPED, Ledger, ProvisionError, ProvisionReport
from .provision_storage import ensure_bucket, ensure_table
from .template.loaded import LoadedTemplate

__all__ = ["ProvisionError", "ProvisionReport", "make_plan", "provision"]


@dataclass(frozen=True)
class Clients:
    sqs: Any
    sns: Any
    s3: Any
    dynamodb: Any


@asynccontextmanager
async def _clients(endpoint_url: str | None, region: str) -> AsyncIterator[Clients]:
    """One aiobotocore client per service. With ``endpoint_url`` None, botocore itself reads
    ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` — no home-made AWS config."""
    session = get_session()
    async with AsyncExitStack() as stack:
        made = {}
        for service in ("sqs", "sns", "s3", "dynamodb"):
            try:
                client = session.create_client(
                    service, region_name=region, endpoint_url=endpoint_url
                )
                made[service] = await stack.enter_async_context(client)
            except ValueError as exc:  # a malformed endpoint URL
                raise ProvisionError(f"AWS endpoint for {service}", str(exc)) from None
        yield Clients(**made)


async def provision(
    loaded: LoadedTemplate, *, endpoint_url: str | None = None, region: str | None = None
) -> ProvisionReport:
    """Create or correct the template's resources and wiring; report what was done.

    ``region`` defaults to the one the template was loaded with (its ARNs name it).
    """
    plan = make_plan(loaded)
    ledger = Ledger()
    region = region or loaded.region
    with Ledger.blame("AWS clients"):
        async with _clients(endpoint_url, region) as clients:
            await _apply(plan, clients, region, ledger)
    for label, why in plan.skipped:
        ledger.note(SKIPPED, label, why)
    return ledger.report()


async def _apply(plan: Plan, clients: Clients, region: str, ledger: Ledger) -> None:
    """In dependency order: what must already exist, then queues (dead-letter queues
    first), topics, subscriptions (need both), buckets (their notifications need the
    queues and topics), tables."""
    for check in plan.checks:
        await check_exists(clients, check, ledger)
    for queue in plan.queues:
        await ensure_queue(clients.sqs, queue, ledger)
    for topic in plan.topics:
        await ensure_topic(clients.sns, topic, ledger)
    for subscription in plan.subscriptions:
        await ensure_subscription(clients.sns, subscription, ledger)
    for bucket in plan.buckets:
        await ensure_bucket(clients.s3, bucket, region, ledger)
    for table in plan.tables:
        await ensure_table(clients.dynamodb, table, ledger)
