"""The whole path offline: emulator + resources + gateway + SQS poller, as one context manager.

    with Pipeline() as pipeline:  # ports the kernel chooses; base_url names the gateway's
        requests.post(pipeline.base_url + "/SQSManager", json={...})

The Chalice app is loaded the way `chalice local` loads it (stage `local`, its environment variables
set before app.py is imported), with TABLE_NAME / QUEUE_NAME / AWS_ENDPOINT_URL pointing at the
pipeline's own resources. With `store="dynamodb-local"` the table lives in DynamoDB Local and the
app's DynamoDB clients go there (AWS_ENDPOINT_URL_DYNAMODB); SQS stays on moto. An
AWS_ENDPOINT_URL_DYNAMODB already set (a fault proxy in front of the store) wins for the app's
clients; the table is created at the store itself.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import ModuleType

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import LocalDevServer

from devstack.auth import LocalAuth
from devstack.chalice_app import load_app
from devstack.changes import ChangeNames, ChangeResources, ensure_change_resources
from devstack.dynamodb_local import (
    DYNAMODB_LOCAL,
    MOTO,
    STORES,
    DynamoDBLocal,
    DynamoDBLocalUnavailable,
    unavailable_reason,
)
from devstack.emulator import EMULATOR_CREDENTIALS, MotoServer
from devstack.event_source import (
    EVENT_SOURCE_MODES,
    PROCESS,
    THREAD,
    EventSourceProcess,
    EventSourceSpec,
)
from devstack.event_source_pollers import make_change_pollers, make_pollers, stop_pollers
from devstack.event_source_supervisor import EventSourceSupervisor
from devstack.gateway import GatewayHTTPServer, handler_class
from devstack.infra import DEFAULT_TEMPLATE, InfraTemplate
from devstack.ingest import Ingest
from devstack.lifecycle import StartStop
from devstack.pipeline_settings import app_environment, poller_concurrency, stream_poll_seconds
from devstack.poller import SqsPoller
from devstack.resources import (
    DEFAULT_DLQ,
    DEFAULT_QUEUE,
    DEFAULT_TABLE,
    Resources,
    ensure_resources,
    fifo_name,
    region,
)
from devstack.stream_failures import StreamFailureSettings
from devstack.stream_poller import StreamPoller

LOG = logging.getLogger("devstack.pipeline")


class Pipeline(StartStop):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, emulator_port: int = 0,
                 endpoint_url: str | None = None, queue_name: str = DEFAULT_QUEUE,
                 dlq_name: str = DEFAULT_DLQ, table_name: str = DEFAULT_TABLE,
                 honour_batch_item_failures: bool = True, visibility_timeout: int | None = None,
                 stage: str = "local", infra_path: str | Path = DEFAULT_TEMPLATE,
                 start_poller: bool = True, store: str = MOTO, dynamodb_port: int = 0,
                 dynamodb_endpoint_url: str | None = None, auth: LocalAuth | None = None,
                 queue_type: str = "standard", concurrency: int | None = None,
                 crash_every: int = 0, stream_crash_every: int = 0, event_source: str = THREAD,
                 log_level: str = "INFO") -> None:
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, not {store!r}")
        if event_source not in EVENT_SOURCE_MODES:
            raise ValueError(f"event_source must be one of {', '.join(EVENT_SOURCE_MODES)}, "
                             f"not {event_source!r}")
        # infra's QueueType: "fifo" makes FIFO queues (names ending in .fifo) and the FIFO
        # request template, as the stack does with that parameter.
        self.stack_parameters = {"QueueType": queue_type}
        if queue_type == "fifo":
            queue_name, dlq_name = fifo_name(queue_name), fifo_name(dlq_name)
        self.host = host
        # 0: the kernel chooses when the part starts; each then holds the port it got.
        self.port = port
        self.emulator_port = emulator_port
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        self.queue_name, self.dlq_name, self.table_name = queue_name, dlq_name, table_name
        self.honour_batch_item_failures = honour_batch_item_failures
        self.visibility_timeout = visibility_timeout
        self.stage = stage
        self.infra_path = Path(infra_path)
        self.start_poller = start_poller
        self.store = store
        self.dynamodb_port = dynamodb_port
        # Where the table lives; None: at endpoint_url (moto, or the emulator given).
        self.dynamodb_endpoint_url = dynamodb_endpoint_url
        self.auth = auth  # API key and SigV4 required, as on AWS (devstack/auth.py)
        self.requested_concurrency = concurrency  # None: DEFAULT_POLLER_CONCURRENCY off moto
        self.crash_every = crash_every  # test hook: SqsPoller's mid-batch crashes
        self.stream_crash_every = stream_crash_every  # and StreamPoller's
        self.event_source = event_source
        self.log_level = log_level  # the event source process's
        self.emulator: MotoServer | None = None
        self.dynamodb_emulator: DynamoDBLocal | None = None
        self.resources: Resources | None = None
        self.app: Chalice | None = None
        self.config: Config | None = None
        self.app_module: ModuleType | None = None
        # In threads: the pollers (`poller` is the first); in a process: its handle.
        self.poller: SqsPoller | None = None
        self.pollers: list[SqsPoller] = []
        # The change path's: the stream poller, then the history queue's.
        self.change_pollers: list[SqsPoller | StreamPoller] = []
        self.changes: ChangeResources | None = None
        self._supervisor: EventSourceSupervisor | None = None
        self._server: LocalDevServer | None = None
        self._server_thread: threading.Thread | None = None
        self._saved_environ: dict[str, str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def event_source_process(self) -> EventSourceProcess | None:
        """The event source's process (PROCESS mode; its replacement once one died)."""
        return self._supervisor.process if self._supervisor is not None else None

    @property
    def event_source_restarts(self) -> int:
        return self._supervisor.restarts if self._supervisor is not None else 0

    def start(self) -> Pipeline:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # Loading the app sets environment variables (as `chalice local` does); stop() undoes it.
        self._saved_environ = dict(os.environ)
        os.environ.setdefault("AWS_DEFAULT_REGION", region())
        start_dynamodb_local = self.store == DYNAMODB_LOCAL and self.dynamodb_endpoint_url is None
        if start_dynamodb_local:
            reason = unavailable_reason()
            if reason is not None:
                raise DynamoDBLocalUnavailable(reason)
        if self.endpoint_url is None or start_dynamodb_local:
            # Only emulators are ever talked to: dummy credentials keep boto3 off real ones.
            for name, value in EMULATOR_CREDENTIALS.items():
                os.environ.setdefault(name, value)
        if self.endpoint_url is None:
            self.emulator = MotoServer(self.host, self.emulator_port).launch()
            self.emulator_port = self.emulator.port
            self.endpoint_url = self.emulator.endpoint_url
            LOG.info("starting %s on %s", self.emulator.name, self.endpoint_url)
        if start_dynamodb_local:
            self.dynamodb_emulator = DynamoDBLocal(self.host, self.dynamodb_port).launch()
            self.dynamodb_port = self.dynamodb_emulator.port
            self.dynamodb_endpoint_url = self.dynamodb_emulator.endpoint_url
            LOG.info("starting %s on %s", self.dynamodb_emulator.name,
                     self.dynamodb_endpoint_url)
        infra = InfraTemplate(self.infra_path)
        change_names = ChangeNames(self.table_name)
        env = app_environment(self.table_name, self.queue_name, self.endpoint_url,
                              self.dynamodb_endpoint_url, self.honour_batch_item_failures,
                              change_names)
        # Import the app while moto boots: both take about a second.
        self.app, self.config, self.app_module = load_app(env, stage=self.stage)
        for emulator in (self.emulator, self.dynamodb_emulator):
            if emulator is not None:
                emulator.wait_ready()
        self.resources = ensure_resources(self.endpoint_url, infra, self.queue_name,
                                          self.dlq_name, self.table_name,
                                          dynamodb_endpoint_url=self.dynamodb_endpoint_url,
                                          parameters=self.stack_parameters)
        self.changes = ensure_change_resources(self.endpoint_url, self.dynamodb_endpoint_url,
                                               change_names, infra)
        ingest = Ingest(infra.gateway_spec(parameters=self.stack_parameters),
                        self.resources.queue_url, region(),
                        stage=self.stage, auth=self.auth)
        spec = EventSourceSpec(
            app_env=env, stage=self.stage, endpoint_url=self.endpoint_url,
            queue_url=self.resources.queue_url, queue_arn=self.resources.queue_arn,
            max_receive_count=self.resources.max_receive_count,
            pollers=poller_concurrency(self.dynamodb_endpoint_url is None,
                                       self.requested_concurrency),
            honour_batch_item_failures=self.honour_batch_item_failures,
            visibility_timeout=self.visibility_timeout, crash_every=self.crash_every,
            stream_crash_every=self.stream_crash_every, stream_poll_seconds=stream_poll_seconds(),
            stream_arn=self.changes.stream_arn, dynamodb_endpoint_url=self.dynamodb_endpoint_url,
            history_queue_url=self.changes.history_queue_url,
            history_queue_arn=self.changes.history_queue_arn,
            history_max_receive_count=self.changes.history_max_receive_count,
            stream_failure_queue_url=self.changes.stream_failure_queue_url,
            stream_failure=StreamFailureSettings.from_infra(infra).to_dict())
        if self.start_poller and self.event_source == PROCESS:
            # It imports the app (about a second) while the gateway starts.
            self._supervisor = EventSourceSupervisor(spec, self.log_level).launch()
        self._server = LocalDevServer(self.app, self.config, self.host, self.port,
                                      handler_cls=handler_class(ingest, self.auth),
                                      server_cls=GatewayHTTPServer)
        self.port = self._server.server.server_address[1]  # bound: the port it got
        if self._supervisor is not None:
            # Bound, not serving yet: the pipeline answers once every part of it runs.
            self._supervisor.wait_ready()
        # A short poll interval: shutdown() waits for it, and stopping should be quick.
        self._server_thread = threading.Thread(target=self._server.server.serve_forever,
                                               kwargs={"poll_interval": 0.1}, name="gateway",
                                               daemon=True)
        self._server_thread.start()
        if self.start_poller and self._supervisor is None:
            self.pollers = [poller.start() for poller in
                            make_pollers(spec, self.app, self.config, self.app_module)]
            self.poller = self.pollers[0]
            self.change_pollers = [poller.start() for poller in
                                   make_change_pollers(spec, self.app, self.config,
                                                       self.app_module)]
            LOG.info("event source (threads): %d poller(s), one batch each at a time",
                     len(self.pollers))
        LOG.info("pipeline ready on %s (SQS %s, DynamoDB %s); item changes on the event bus %s",
                 self.base_url, self.endpoint_url,
                 self.dynamodb_endpoint_url or self.endpoint_url, self.changes.bus_name)

    def stop(self) -> None:
        # The event source first (it finishes its batches while the gateway stops), the
        # emulators last.
        if self._supervisor is not None:
            self._supervisor.request_stop()
        for poller in self.pollers:
            poller.request_stop()
        if self._server is not None:
            if self._server_thread is not None and self._server_thread.is_alive():
                self._server.shutdown()  # blocks forever unless serve_forever is running
            self._server.server.server_close()
            self._server = None
        stop_pollers([*self.pollers, *self.change_pollers])
        self.pollers, self.poller, self.change_pollers = [], None, []
        if self._supervisor is not None:
            self._supervisor.stop()
            self._supervisor = None
        # Last: the emulators outlive the parts that use them. Both stop at once.
        emulators = [e for e in (self.dynamodb_emulator, self.emulator) if e is not None]
        for emulator in emulators:
            emulator.request_stop()
        for emulator in emulators:
            emulator.stop()
        self.emulator = self.dynamodb_emulator = None
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None

