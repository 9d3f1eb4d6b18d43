"""The ``lambdabus`` command's core: worker, dlq and status over any Stack.

``adapters/cli.py`` extends it with SAM templates (validate, build, dev, invoke,
generate-event). User mistakes print one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import logs, runtime_env
from .deadletter import DeadLetters
from .keys import FunctionKeys
from .redis_conn import connect, redis_url
from .spec import FunctionSpec, Stack, load_stack

Command = Callable[[argparse.Namespace], Awaitable[int]]


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class Cli:
    """The command line; subclasses add stack sources and commands."""

    prog = "lambdabus"

    def parser(self) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog=self.prog, description=__doc__)
        self.add_global_options(p)
        # The same options after the command (``lambdabus dev --template x``) too;
        # SUPPRESS keeps a subcommand from resetting what was given before it.
        common = argparse.ArgumentParser(add_help=False)
        self.add_global_options(common)
        for action in common._actions:
            action.default = argparse.SUPPRESS
        sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
        real_add = sub.add_parser

        def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
            return real_add(name, parents=[common], **kw)

        sub.add_parser = add_parser  # type: ignore[method-assign]
        self.add_commands(sub)
        return p

    def add_global_options(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--redis-url", help="default: $LAMBDABUS_REDIS_URL")
        self.add_stack_options(p)

    def add_stack_options(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--stack", help="module:attribute naming a Stack (or $LAMBDABUS_STACK)")

    def add_commands(self, sub: Any) -> None:
        w = sub.add_parser("worker", help="run worker(s) for functions of the stack")
        w.add_argument("--function", action="append", help="function to run (repeatable)")
        w.add_argument(
            "--admin-port", type=int, default=int(os.environ.get("LAMBDABUS_ADMIN_PORT", 0))
        )
        w.add_argument("--grace", type=float, default=30.0, help="seconds to drain on SIGTERM")
        w.set_defaults(run=self.worker)
        d = sub.add_parser("dlq", help="list, show or redrive dead letters")
        d.add_argument("action", choices=["list", "show", "redrive"])
        d.add_argument("function")
        d.add_argument("id", nargs="*", help="dead-letter id(s); redrive without ids takes all")
        d.add_argument("--count", type=int, default=100)
        d.set_defaults(run=self.dlq)
        s = sub.add_parser("status", help="backlog, pending, in flight, retrying, dead letters")
        s.set_defaults(run=self.status)

    def resolve_stack(self, args: argparse.Namespace) -> Stack:
        ref = args.stack or os.environ.get("LAMBDABUS_STACK")
        if not ref:
            raise UsageError("no stack given: pass --stack module:attribute or set LAMBDABUS_STACK")
        try:
            return load_stack(ref)
        except (ImportError, AttributeError, ValueError, TypeError) as exc:
            raise UsageError(f"cannot load stack {ref!r}: {exc}") from None

    def function(self, stack: Stack, name: str) -> FunctionSpec:
        if name not in stack.functions:
            known = ", ".join(sorted(stack.functions)) or "none"
            raise UsageError(f"no function {name!r} in stack {stack.name!r} (known: {known})")
        return stack.functions[name]

    # -- commands --------------------------------------------------------------

    async def worker(self, args: argparse.Namespace) -> int:
        from .lifecycle import serve
        from .worker import Worker, consumer_name

        stack = self.resolve_stack(args)
        fns = [self.function(stack, n) for n in (args.function or list(stack.functions))]
        consumer = consumer_name()
        runtime_env.apply(runtime_env.group_environment(fns, consumer))
        url = redis_url(args.redis_url)
        workers = [Worker(url, stack, fn.name, consumer=consumer) for fn in fns]

        async def startup() -> None:
            for w in workers:
                await w.start()

        async def shutdown(grace_s: float) -> bool:
            return all(await asyncio.gather(*(w.stop(grace_s) for w in workers)))

        return await serve(startup, shutdown, lambda: all(w.ready for w in workers),
                           admin_port=args.admin_port, grace_s=args.grace)  # fmt: skip

    async def dlq(self, args: argparse.Namespace) -> int:
        stack = self.resolve_stack(args)
        self.function(stack, args.function)
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
                extra = f", skipped {skipped} undecodable" if skipped else ""
                print(f"redrove {n} dead letters{extra}")
        finally:
            await redis.aclose()
        return 0

    async def status(self, args: argparse.Namespace) -> int:
        stack = self.resolve_stack(args)
        redis = connect(redis_url(args.redis_url))
        try:
            print(f"{'function':24} {'backlog':>8} {'pending':>8} {'inflight':>8} "
                  f"{'retrying':>8} {'dead':>6} {'workers':>7}")  # fmt: skip
            for name in stack.functions:
                row = await function_status(redis, FunctionKeys(stack.name, name))
                print(f"{name:24} {row['backlog']:>8} {row['pending']:>8} {row['inflight']:>8} "
                      f"{row['retrying']:>8} {row['dead']:>6} {row['workers']:>7}")  # fmt: skip
        finally:
            await redis.aclose()
        return 0

    # -- entry point -------------------------------------------------------------

    def main(self, argv: Sequence[str] | None = None) -> int:
        args = self.parser().parse_args(argv)
        logs.configure()
        if args.command in ("worker", "dev", "adapter"):  # the long-running services
            from .lifecycle import install_uvloop

            install_uvloop()
        try:
            code = asyncio.run(args.run(args))
        except UsageError as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return 2
        except (ConnectionError, OSError, RedisConnectionError, RedisTimeoutError) as exc:
            print(f"{self.prog}: cannot reach Redis: {exc}", file=sys.stderr)
            return 1
        except RedisError as exc:
            print(f"{self.prog}: Redis error: {exc}", file=sys.stderr)
            return 1
        sys.stdout.flush()
        sys.stderr.flush()
        if any(t.is_alive() and not t.daemon for t in threading.enumerate()[1:]):
            # Abandoned handler threads (past their Timeout) can't be joined; don't hang.
            os._exit(code)
        return code


async def function_status(redis: Any, keys: FunctionKeys) -> dict[str, int]:
    """One row of ``status``: what a Lambda user reads off CloudWatch, from Redis."""
    backlog = pending = 0
    for stream in (keys.stream, keys.sync):
        if await redis.exists(stream):
            for g in await redis.xinfo_groups(stream):
                backlog += int(g.get("lag") or 0)
                pending += int(g.get("pending") or 0)
    inflight = workers = 0
    now_ms = int(time.time() * 1000)
    for value in (await redis.hgetall(keys.workers)).values():
        count, _, seen_ms = value.decode().partition(":")
        if now_ms - int(seen_ms or 0) < 15_000:
            workers += 1
            inflight += int(count or 0)
    return {
        "backlog": backlog,
        "pending": pending,
        "inflight": inflight,
        "retrying": int(await redis.zcard(keys.delayed)),
        "dead": int(await redis.xlen(keys.dead_letters)),
        "workers": workers,
    }


def main(argv: Sequence[str] | None = None) -> int:
    return Cli().main(argv)


if __name__ == "__main__":
    sys.exit(main())
