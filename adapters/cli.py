"""``lambdabus``: the bus's commands plus SAM templates — validate, build, dev,
invoke, generate-event. The template is ``--template`` (default ``template.yaml``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bus.cli import Cli, UsageError
from bus.redis_conn import redis_url
from bus.spec import Stack

from . import samples
from .build import BuildError, build_function, is_built


def _api_args(parser: argparse.ArgumentParser) -> None:
    """The API gateway's port and stage mounting, as ``dev`` and ``adapter http`` take them."""
    parser.add_argument(
        "--api-port", type=int, default=int(os.environ.get("LAMBDABUS_API_PORT", 3000))
    )
    parser.add_argument("--mount-stage", action="store_true", help="serve routes under /STAGE")


class TemplateCli(Cli):
    def add_stack_options(self, p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--template",
            "-t",
            default=os.environ.get("LAMBDABUS_TEMPLATE"),
            help="SAM template (default: template.yaml)",
        )
        p.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
        p.add_argument("--stack-name", help="default: Metadata lambdabus stack, or the folder name")
        p.add_argument("--stack", help="module:attribute naming a Python Stack instead")

    def add_commands(self, sub: Any) -> None:
        super().add_commands(sub)
        v = sub.add_parser("validate", help="load the template and report problems")
        v.add_argument("template_path", nargs="?", metavar="TEMPLATE")
        v.set_defaults(run=self.validate)
        b = sub.add_parser("build", help="install each CodeUri's requirements.txt for it alone")
        b.add_argument("template_path", nargs="?", metavar="TEMPLATE")
        b.add_argument("--function", action="append")
        b.set_defaults(run=self.build)
        d = sub.add_parser("dev", help="run the whole stack on this machine until stopped")
        d.add_argument("template_path", nargs="?", metavar="TEMPLATE")
        d.add_argument(
            "--edge-port", type=int, default=int(os.environ.get("LAMBDABUS_EDGE_PORT", 4566))
        )
        d.add_argument(
            "--edge-credentials",
            default=os.environ.get("LAMBDABUS_EDGE_CREDENTIALS"),
            metavar="KEY:SECRET[,KEY:SECRET]",
            help="require SigV4 signatures made with these (default: $LAMBDABUS_EDGE_CREDENTIALS)",
        )
        _api_args(d)
        d.add_argument(
            "--api-processes",
            type=int,
            default=int(os.environ.get("LAMBDABUS_API_PROCESSES", 1)),
            metavar="N",
            help="API gateway processes sharing the API port (SO_REUSEPORT; default 1)",
        )
        d.add_argument("--admin-port", type=int, default=0)
        d.add_argument("--grace", type=float, default=10.0)
        d.set_defaults(run=self.dev)
        ad = sub.add_parser("adapter", help="run event-source adapters (what dev runs inside)")
        ad.add_argument(
            "source",
            choices=["sqs", "dynamodb", "schedule", "http"],
            help="sqs: SQS mappings, S3/SNS carriers, DLQs; dynamodb: DynamoDB streams; "
            "http: the API gateway",
        )
        _api_args(ad)
        ad.add_argument("--api-host", default=os.environ.get("LAMBDABUS_API_HOST", "127.0.0.1"))
        ad.add_argument(
            "--reuse-port",
            action="store_true",
            help="http: share the port with other gateway processes (SO_REUSEPORT)",
        )
        ad.add_argument(
            "--admin-port", type=int, default=int(os.environ.get("LAMBDABUS_ADMIN_PORT", 0))
        )
        ad.add_argument("--grace", type=float, default=30.0)
        ad.add_argument("--fire", metavar="FUNCTION.EVENT",
                        help="schedule: fire this schedule's next tick now, then exit")  # fmt: skip
        ad.set_defaults(run=self.adapter)
        dp = sub.add_parser("deploy", help="provision the template's AWS resources")
        dp.add_argument("action", choices=["provision"])
        dp.add_argument("template_path", nargs="?", metavar="TEMPLATE")
        dp.add_argument("--endpoint-url", help="default: the standard AWS_ENDPOINT_URL variables")
        dp.set_defaults(run=self.deploy)
        i = sub.add_parser("invoke", help="invoke a function, like `aws lambda invoke`")
        i.add_argument("function")
        i.add_argument("--event", "-e", help="event JSON file, or - for stdin (default: {})")
        i.add_argument(
            "--async",
            dest="is_async",
            action="store_true",
            help="invocation type Event: queue it and return",
        )
        i.add_argument("--timeout", type=float, help="seconds to wait (default: Timeout + 5)")
        i.set_defaults(run=self.invoke)
        g = sub.add_parser("generate-event", help="print a sample event, like sam local")
        g.add_argument("source", choices=sorted(samples.SOURCES))
        g.add_argument("event", nargs="?", help="variant (default: the first)")
        g.add_argument(
            "--set",
            nargs="*",
            default=[],
            metavar="KEY=VALUE",
            help="fill a placeholder, e.g. bucket=photos key=cat.jpg",
        )
        g.set_defaults(run=self.generate_event)
        from .sfn.cli import add_parser as add_sfn_parser

        add_sfn_parser(sub, self.sfn)

    # -- stacks from templates ---------------------------------------------------

    def template_path(self, args: argparse.Namespace) -> Path:
        path = Path(getattr(args, "template_path", None) or args.template or "template.yaml")
        if not path.is_file():
            raise UsageError(f"no template at {path} (pass --template or a path)")
        return path

    def load(self, args: argparse.Namespace) -> Any:
        from .template import TemplateError, load_template

        overrides = {}
        for item in args.parameter_overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"parameter override {item!r} is not KEY=VALUE")
            overrides[key] = value
        try:
            return load_template(self.template_path(args), overrides, args.stack_name)
        except TemplateError as exc:
            raise UsageError(str(exc)) from None

    def resolve_stack(self, args: argparse.Namespace) -> Stack:
        if args.stack or (os.environ.get("LAMBDABUS_STACK") and not args.template):
            return super().resolve_stack(args)
        stack: Stack = self.load(args).stack
        return stack

    # -- commands ----------------------------------------------------------------

    async def validate(self, args: argparse.Namespace) -> int:
        loaded = self.load(args)
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        stack = loaded.stack
        print(
            f"{loaded.path}: valid; stack {stack.name!r}, {len(stack.functions)} functions, "
            f"{len(loaded.resources)} resources, {len(loaded.events)} events"
        )
        return 0

    async def build(self, args: argparse.Namespace) -> int:
        stack = self.load(args).stack
        for name in args.function or list(stack.functions):
            fn = self.function(stack, name)
            try:
                built = build_function(fn)
            except BuildError as exc:
                raise UsageError(str(exc)) from None
            print(
                f"{name}: {'built into ' + str(fn.deps_path) if built else 'no requirements.txt'}"
            )
        return 0

    async def dev(self, args: argparse.Namespace) -> int:
        from bus.lifecycle import serve

        from .dev import DevStack

        loaded = self.load(args)
        for fn in loaded.stack.functions.values():
            if not is_built(fn):  # dev builds what is missing
                print(f"building {fn.name} ...", file=sys.stderr)
                try:
                    build_function(fn)
                except BuildError as exc:
                    raise UsageError(str(exc)) from None
        dev = DevStack(
            loaded,
            overrides=args.parameter_overrides,
            edge_port=args.edge_port,
            credentials=parse_credentials(args.edge_credentials),
            api_port=args.api_port,
            mount_stage=args.mount_stage,
            api_processes=args.api_processes,
            redis_url=args.redis_url or os.environ.get("LAMBDABUS_REDIS_URL"),
        )
        return await serve(
            dev.start, dev.stop, lambda: dev.ready, admin_port=args.admin_port, grace_s=args.grace
        )

    async def adapter(self, args: argparse.Namespace) -> int:
        from bus.lifecycle import serve
        from bus.redis_conn import connect

        from . import sqs, streams

        loaded = self.load(args)
        if args.source == "schedule":
            from .schedule.cli import run_schedule

            return await run_schedule(loaded, redis_url(args.redis_url), args)
        if args.source == "http":
            return await self._gateway(loaded, args)
        redis = connect(redis_url(args.redis_url))
        if args.source == "dynamodb":
            try:  # settings from the environment are checked here
                group = streams.services_for(redis, loaded)
            except ValueError as exc:
                await redis.aclose()
                raise UsageError(str(exc)) from None
            kinds = "DynamoDB"
        else:
            group, kinds = sqs.services_for(redis, loaded, carriers=True), "SQS, S3 or SNS"
        if not group.adapters:
            await redis.aclose()
            raise UsageError(f"{loaded.path}: no {kinds} event sources to run")
        try:
            return await serve(group.start, group.stop, lambda: group.ready,
                               admin_port=args.admin_port, grace_s=args.grace)  # fmt: skip
        finally:
            await redis.aclose()

    async def _gateway(self, loaded: Any, args: argparse.Namespace) -> int:
        """The API gateway alone, as a deployment of its own runs it (``dev`` runs it inside)."""
        from bus.lifecycle import serve

        from .http import ApiGateway, GatewayConfigError, serves_http

        if not serves_http(loaded):
            raise UsageError(f"{loaded.path}: no Api or HttpApi events to serve")
        try:
            gateway = ApiGateway(
                redis_url(args.redis_url), loaded, host=args.api_host, port=args.api_port,
                mount_stage=args.mount_stage, reuse_port=args.reuse_port,
            )  # fmt: skip
        except GatewayConfigError as exc:
            raise UsageError(str(exc)) from None

        async def start() -> None:
            await gateway.start()

        async def stop(grace_s: float) -> bool:
            await gateway.stop()
            return True

        return await serve(start, stop, lambda: gateway.running, admin_port=args.admin_port,
                           grace_s=args.grace)  # fmt: skip

    async def deploy(self, args: argparse.Namespace) -> int:
        from .provision import ProvisionError, provision

        loaded = self.load(args)
        try:
            report = await provision(loaded, endpoint_url=args.endpoint_url)
        except ProvisionError as exc:
            raise UsageError(str(exc)) from None
        for line in report.lines():
            print(line)
        print("no changes" if not report.changed() else "provisioned")
        return 0

    async def invoke(self, args: argparse.Namespace) -> int:
        from bus.sync import Invoker, InvokeTimeout

        stack = self.resolve_stack(args)
        fn = self.function(stack, args.function)
        payload = read_event(args.event)
        async with Invoker(redis_url(args.redis_url), stack.name) as invoker:
            if args.is_async:
                rid = await invoker.invoke_async(fn.name, payload)
                print(json.dumps({"StatusCode": 202, "RequestId": rid}))
                return 0
            try:
                result = await invoker.invoke(
                    fn.name, payload, timeout_s=args.timeout or fn.timeout_s + 5
                )
            except InvokeTimeout as exc:
                raise UsageError(f"{exc}: is a worker for {fn.name} running?") from None
        meta: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        if not result.ok:
            meta["FunctionError"] = "Unhandled"
        print(json.dumps(result.payload))
        print(json.dumps(meta), file=sys.stderr)
        return 0

    async def sfn(self, args: argparse.Namespace) -> int:
        from .sfn.cli import run

        return await run(self, args)

    async def generate_event(self, args: argparse.Namespace) -> int:
        values = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"{item!r} is not KEY=VALUE")
            values[key] = value
        try:
            event = samples.generate(args.source, args.event, values)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        print(json.dumps(event, indent=2))
        return 0


def parse_credentials(spec: str | None) -> dict[str, str] | None:
    """``KEY:SECRET[,KEY:SECRET]`` → {key: secret}; None when not configured."""
    if not spec:
        return None
    pairs = {}
    for item in spec.split(","):
        key, sep, secret = item.strip().partition(":")
        if not sep or not key or not secret:
            raise UsageError("edge credentials must look like KEY:SECRET[,KEY:SECRET]")
        pairs[key] = secret
    return pairs


def read_event(spec: str | None) -> Any:
    """The event for ``invoke``: a JSON file, ``-`` for stdin, or ``{}``."""
    if spec is None:
        return {}
    try:
        text = sys.stdin.read() if spec == "-" else Path(spec).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read event {spec}: {exc.strerror}") from None
    if len(text) > 6 * 1024 * 1024:
        raise UsageError("event is larger than Lambda's 6 MB synchronous payload limit")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"event {spec} is not JSON: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    return TemplateCli().main(argv)


if __name__ == "__main__":
    sys.exit(main())
