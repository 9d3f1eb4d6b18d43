"""The ``lambdabus`` command. User mistakes print one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import logs
from .deadletter import DeadLetters
from .keys import FunctionKeys
from .redis_conn import connect, redis_url
from .spec import Stack, load_stack


class UsageError(Exception):
    pass


def _stack(ref: str | None) -> Stack:
    ref = ref or os.environ.get("LAMBDABUS_STACK")
    if not ref:
        raise UsageError("no stack given: pass --stack module:attribute or set LAMBDABUS_STACK")
    try:
        return load_stack(ref)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise UsageError(f"cannot load stack {ref!r}: {exc}") from None


async def _worker(args: argparse.Namespace) -> int:
    from . import runtime_env
    from .lifecycle import serve
    from .worker import Worker, consumer_name

    stack = _stack(args.stack)
    names = args.function or list(stack.functions)
    for name in names:
        if name not in stack.functions:
            raise UsageError(f"no function {name!r} in stack {stack.name!r}")
    consumer = consumer_name()
    if len(names) == 1:
        fn = stack.function(names[0])
        runtime_env.apply(runtime_env.lambda_environment(
            fn, consumer, fn.code_path or os.getcwd()))  # fmt: skip
    workers = [Worker(redis_url(args.redis_url), stack, n, consumer=consumer) for n in names]

    async def startup() -> None:
        for w in workers:
            await w.start()

    async def shutdown(grace_s: float) -> bool:
        results = await asyncio.gather(*(w.stop(grace_s) for w in workers))
        return all(results)

    return await serve(startup, shutdown, lambda: all(w.ready for w in workers),
                       admin_port=args.admin_port, grace_s=args.grace)  # fmt: skip


async def _dlq(args: argparse.Namespace) -> int:
    stack = _stack(args.stack)
    if args.function not in stack.functions:
        raise UsageError(f"no function {args.function!r} in stack {stack.name!r}")
    redis = connect(redis_url(args.redis_url))
    try:
        dl = DeadLetters(redis, stack.name)
        if args.action == "list":
            for entry in await dl.list(args.function, count=args.count):
                print(json.dumps(entry.summary()))
        elif args.action == "show":
            if not args.id:
                raise UsageError("dlq show needs a dead-letter id")
            letter = await dl.show(args.function, args.id[0])
            if letter is None:
                raise UsageError(f"no dead letter {args.id[0]} for {args.function}")
            doc: dict[str, Any] = letter.summary()
            doc["traceback"] = letter.traceback
            doc["event"] = letter.envelope.record if letter.envelope else repr(letter.raw)
            print(json.dumps(doc, indent=2, default=repr))
        else:
            n, skipped = await dl.redrive(args.function, args.id or None)
            print(
                f"redrove {n} dead letters"
                + (f", skipped {skipped} undecodable" if skipped else "")
            )
    finally:
        await redis.aclose()
    return 0


async def _status(args: argparse.Namespace) -> int:
    stack = _stack(args.stack)
    redis = connect(redis_url(args.redis_url))
    try:
        print(f"{'function':24} {'backlog':>8} {'pending':>8} {'retrying':>8} {'dead':>6}")
        for name in stack.functions:
            k = FunctionKeys(stack.name, name)
            backlog = pending = 0
            for stream in (k.stream, k.sync):
                if await redis.exists(stream):
                    for g in await redis.xinfo_groups(stream):
                        backlog += int(g.get("lag") or 0)
                        pending += int(g.get("pending") or 0)
            delayed = await redis.zcard(k.delayed)
            dead = await redis.xlen(k.dead_letters)
            print(f"{name:24} {backlog:>8} {pending:>8} {delayed:>8} {dead:>6}")
    finally:
        await redis.aclose()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lambdabus", description=__doc__)
    p.add_argument("--redis-url", help="default: $LAMBDABUS_REDIS_URL")
    p.add_argument("--stack", help="module:attribute naming a Stack (default: $LAMBDABUS_STACK)")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run worker(s) for functions of the stack")
    w.add_argument("--function", action="append", help="function to run (repeatable; default all)")
    w.add_argument("--admin-port", type=int, default=int(os.environ.get("LAMBDABUS_ADMIN_PORT", 0)))
    w.add_argument("--grace", type=float, default=30.0, help="seconds to drain on SIGTERM")
    d = sub.add_parser("dlq", help="list, show or redrive dead letters")
    d.add_argument("action", choices=["list", "show", "redrive"])
    d.add_argument("function")
    d.add_argument("id", nargs="*", help="dead-letter id(s); redrive without ids takes all")
    d.add_argument("--count", type=int, default=100)
    sub.add_parser("status", help="backlog, pending, retrying and dead letters per function")
    return p


COMMANDS = {"worker": _worker, "dlq": _dlq, "status": _status}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure()
    if args.command == "worker":
        from .lifecycle import install_uvloop

        install_uvloop()
    try:
        code = asyncio.run(COMMANDS[args.command](args))
    except UsageError as exc:
        print(f"lambdabus: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"lambdabus: {exc.args[0]}", file=sys.stderr)
        return 2
    except (ConnectionError, OSError, RedisConnectionError, RedisTimeoutError) as exc:
        print(f"lambdabus: cannot reach Redis: {exc}", file=sys.stderr)
        return 1
    except RedisError as exc:
        print(f"lambdabus: Redis error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()[1:]):
        # Abandoned handler threads (past their Timeout) can't be joined; don't hang on them.
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
