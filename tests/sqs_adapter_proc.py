"""An SQS adapter process for the SIGKILL test.

``python -m tests.sqs_adapter_proc --template T --stack-name S --redis-url U`` runs
the template's SQS mappings as ``adapters.sqs.services_for`` does, but after each
publish it prints ``published <event ids>`` on stdout and then hangs before the
delete — so the test can SIGKILL it at exactly the point where a naive adapter
would lose or duplicate the message. It prints ``ready`` once its pollers run.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from adapters.base import Handoff
from adapters.sqs import SqsAdapter, mappings_from_template
from adapters.template import load_template
from bus.redis_conn import connect


async def hang_after_publish(handoff: Handoff[Any]) -> None:
    print("published " + " ".join(e.id for e in handoff.envelopes), flush=True)
    await asyncio.Event().wait()


async def run(args: argparse.Namespace) -> None:
    loaded = load_template(args.template, {}, args.stack_name)
    redis = connect(args.redis_url)
    for mapping in mappings_from_template(loaded):
        adapter = SqsAdapter(redis, loaded.stack.name, mapping, wait_time_s=1,
                             after_publish=hang_after_publish)  # fmt: skip
        await adapter.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--template", required=True)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--redis-url", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
