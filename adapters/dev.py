"""``lambdabus dev``: the whole stack on one machine until stopped.

Embedded defaults: with no Redis URL a private ``redis-server`` in a temp dir,
with no AWS endpoint moto's server in-process; the edge endpoint; and one worker
process per function (or per ``Metadata: lambdabus: group``), which a
:class:`~adapters.dev_processes.DevChildren` starts and stops with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bus.embedded import EmbeddedRedis, free_port

from .dev_processes import DevChildren
from .edge import EdgeServer

if TYPE_CHECKING:
    from .template import LoadedTemplate

log = logging.getLogger(__name__)

ADAPTERS: dict[str, str] = {
    "Api": "API gateway",
    "HttpApi": "API gateway",
    "SQS": "sqs",
    "S3": "sqs (carrier queue)",
    "SNS": "sqs (carrier queue) and /sns/ on the edge",
    "Schedule": "scheduler",
    "ScheduleV2": "scheduler",
    "DynamoDB": "dynamodb streams",
    "EventBridgeRule": "PutEvents on the edge",
    "CloudWatchEvent": "PutEvents on the edge",
}
"""Event type -> adapter that runs it; the source issues fill this in."""


class DevStack:
    def __init__(
        self,
        loaded: LoadedTemplate,
        *,
        edge_port: int = 4566,
        redis_url: str | None = None,
        aws_endpoint: str | None = None,
        overrides: Sequence[str] = (),
        credentials: Mapping[str, str] | None = None,
        api_port: int = 3000,
        mount_stage: bool = False,
        api_processes: int = 1,
    ) -> None:
        if api_processes < 1:
            raise ValueError("api_processes must be at least 1")
        self.api_processes = api_processes
        self.loaded = loaded
        self.credentials = dict(credentials) if credentials else None
        self.api_port = api_port
        self.mount_stage = mount_stage
        self.gateway: Any = None
        self.adapters: Any = None
        self.scheduler: Any = None
        self._redis_client: Any = None
        self.overrides = list(overrides)
        self.stack = loaded.stack
        self.edge_port = edge_port
        self.redis_url = redis_url
        self.aws_endpoint = aws_endpoint or os.environ.get("AWS_ENDPOINT_URL")
        self.ready = False
        self._redis: EmbeddedRedis | None = None
        self._moto: Any = None
        self.edge: EdgeServer | None = None
        self.sfn_executor: Any = None
        self.children: DevChildren | None = None
        """Workers and extra gateways; made once the services they connect to run."""

    async def start(self) -> None:
        """Start everything; on failure, stop what already runs and report one line."""
        from bus.cli import UsageError

        from .provision import ProvisionError

        try:
            await self._start()
        except BaseException as exc:
            await self.stop(0)
            if isinstance(exc, ProvisionError):
                raise UsageError(f"provisioning failed: {exc}") from None
            raise

    async def _start(self) -> None:
        for warning in self.loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for ev in self.loaded.events:
            if ev.type not in ADAPTERS:
                print(
                    f"warning: {ev.function}.{ev.name} ({ev.type}): no adapter yet; "
                    "its events will not arrive",
                    file=sys.stderr,
                )
        if not self.redis_url:
            # Everything dev starts runs on this machine: the socket is cheaper than TCP.
            self._redis = EmbeddedRedis(unix_socket=True)
            await asyncio.to_thread(self._redis.start)
            self.redis_url = self._redis.local_url
        if not self.aws_endpoint:
            self.aws_endpoint = await asyncio.to_thread(self._start_moto)
        await self._provision()
        self.edge = EdgeServer(
            self.redis_url, self.stack, port=self.edge_port, credentials=self.credentials
        )
        self._mount_sns(self.edge)
        self._mount_events(self.edge)
        self._mount_sfn(self.edge)
        await self.edge.start()
        await self._start_adapters()
        await self._start_scheduler()
        assert self.redis_url and self.aws_endpoint
        self.children = DevChildren(
            self.loaded.path, self.stack.name, overrides=self.overrides,
            redis_url=self.redis_url, aws_endpoint=self.aws_endpoint, edge_url=self.edge.url,
            credentials=self.credentials, embedded_moto=self._moto is not None,
            api_processes=self.api_processes,
        )  # fmt: skip
        await self._start_gateway(self.children)
        await self.children.start_workers(self.loaded.groups)
        await self._start_sfn_executor()
        self._print_endpoints()
        self.ready = True

    def _mount_sns(self, edge: EdgeServer) -> None:
        """SNS HTTP(S) subscriptions post to /sns/{function}/{event} on the edge port."""
        from bus.publish import Publisher
        from bus.redis_conn import connect

        from .sns_http import SnsHttpEndpoint

        if not any(ev.type == "SNS" for ev in self.loaded.events):
            return
        assert self.redis_url is not None
        self._redis_client = connect(self.redis_url)
        SnsHttpEndpoint(
            self.loaded.events,
            self.stack,
            Publisher(self._redis_client, self.stack.name),
            sns_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SNS") or self.aws_endpoint,
        ).mount(edge)

    def _mount_events(self, edge: EdgeServer) -> None:
        """EventBridge PutEvents on the edge, routed by the template's rules (always served:
        events for the default bus are accepted even when no rule matches them)."""
        from bus.redis_conn import connect

        from .eventbridge.put_events import mount

        assert self.redis_url is not None
        if self._redis_client is None:
            self._redis_client = connect(self.redis_url)
        mount(edge, self.loaded.events, self.stack, self._redis_client, self.loaded.region)

    def _mount_sfn(self, edge: EdgeServer) -> None:
        """The Step Functions API on the edge (AWSStepFunctions.*)."""
        from bus.redis_conn import connect

        from .sfn.api import mount

        assert self.redis_url is not None
        if self._redis_client is None:
            self._redis_client = connect(self.redis_url)
        mount(edge, self._redis_client, self.stack.name, self.loaded.region)

    async def _start_sfn_executor(self) -> None:
        """The workflow executor, with the template's state machines registered."""
        from .sfn.executor import Executor
        from .sfn.machines import register_template_machines

        assert self.redis_url is not None
        self.sfn_executor = Executor(
            self.redis_url, self.stack.name, functions=set(self.stack.functions)
        )
        await register_template_machines(self.sfn_executor.store, self.loaded)
        await self.sfn_executor.start()

    async def _start_adapters(self) -> None:
        """SQS mappings, S3/SNS carrier queues and dead-letter forwarders, in this process."""
        from bus.redis_conn import connect

        from . import streams
        from .sqs import services_for

        assert self.redis_url is not None
        if self._redis_client is None:
            self._redis_client = connect(self.redis_url)
        self.adapters = services_for(self._redis_client, self.loaded, carriers=True)
        self.adapters.adapters += streams.services_for(self._redis_client, self.loaded).adapters
        if self.adapters.adapters:
            await self.adapters.start()

    async def _start_scheduler(self) -> None:
        """Schedule/ScheduleV2 events (adapters/schedule), exactly once per tick."""
        from .schedule.scheduler import scheduler_for

        if any(ev.type in ("Schedule", "ScheduleV2") for ev in self.loaded.events):
            self.scheduler = scheduler_for(self._redis_client, self.loaded)
            await self.scheduler.start()

    async def _start_gateway(self, children: DevChildren) -> None:
        """Serve the template's Api/HttpApi routes, as ``sam local start-api`` does; with
        ``api_processes`` > 1, more gateway processes share the port (SO_REUSEPORT)."""
        from bus.cli import UsageError

        from .http import ApiGateway, GatewayConfigError, serves_http

        if not serves_http(self.loaded):
            return
        assert self.redis_url is not None
        try:
            self.gateway = ApiGateway(
                self.redis_url, self.loaded, port=self.api_port, mount_stage=self.mount_stage,
                reuse_port=self.api_processes > 1,
            )  # fmt: skip
        except GatewayConfigError as exc:
            raise UsageError(str(exc)) from None
        port = await self.gateway.start()
        await children.start_gateways(port, mount_stage=self.mount_stage)

    async def _provision(self) -> None:
        """Create the template's queues, topics, buckets, tables and their wiring."""
        from .provision import provision

        if self._moto is not None:  # moto accepts any credentials; don't reach for real ones
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        # The adapters in this process find AWS through the standard variables, like any SDK.
        assert self.aws_endpoint is not None
        os.environ["AWS_ENDPOINT_URL"] = self.aws_endpoint
        if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
            os.environ["AWS_DEFAULT_REGION"] = self.loaded.region  # the region ARNs were built in
        report = await provision(self.loaded, endpoint_url=self.aws_endpoint)
        for line in report.lines():
            print(f"provision: {line}", file=sys.stderr)

    def _start_moto(self) -> str:
        from moto.server import ThreadedMotoServer

        for noisy in ("werkzeug", "aiobotocore.credentials", "botocore.credentials"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        port = free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        return f"http://127.0.0.1:{port}"

    def _print_endpoints(self) -> None:
        assert self.edge is not None and self.children is not None
        lines = [
            f"stack {self.stack.name!r} from {self.loaded.path}",
            f"  redis        {self.redis_url}" + ("  (private)" if self._redis else ""),
            f"  aws          {self.aws_endpoint}" + ("  (embedded moto)" if self._moto else ""),
            f"  edge         {self.edge.url}  (Lambda, EventBridge, Step Functions APIs)",
        ]
        if self.gateway is not None:
            lines.append(f"  api          {self.gateway.url}  (API Gateway routes)")
        if self.scheduler is not None:
            lines.append(f"  scheduler    {self.scheduler.describe()}")
        lines += self.children.endpoint_lines()
        lines.append("ready")
        print("\n".join(lines), flush=True)

    async def stop(self, grace_s: float) -> bool:
        """Sources first (nothing new comes in), then workers drain, then the services."""
        self.ready = False
        clean = True
        if self.adapters is not None and self.adapters.adapters:
            clean = await self.adapters.stop(grace_s)
        if self.scheduler is not None:
            clean = await self.scheduler.stop(grace_s) and clean
        if self.children is not None:
            clean = await self.children.stop(grace_s) and clean
        if self.sfn_executor is not None:
            await self.sfn_executor.stop()
        if self.gateway is not None:
            await self.gateway.stop()
        if self.edge is not None:
            await self.edge.stop()
        if self._redis_client is not None:
            await self._redis_client.aclose()
        if self._moto is not None:
            await asyncio.to_thread(self._moto.stop)
        if self._redis is not None:
            await asyncio.to_thread(self._redis.stop)
        return clean
