"""The whole path offline: emulator + resources + gateway + SQS poller, as one context manager.

    with Pipeline(port=free_port(), emulator_port=free_port()) as pipeline:
        requests.post(pipeline.base_url + "/SQSManager", json={...})

The Chalice app is loaded the way `chalice local` loads it (stage `local`, its environment variables
set before app.py is imported), with TABLE_NAME / QUEUE_NAME / AWS_ENDPOINT_URL pointing at the
pipeline's own resources. With `store="dynamodb-local"` the table lives in DynamoDB Local and the
app's DynamoDB clients go there (AWS_ENDPOINT_URL_DYNAMODB); SQS stays on moto. An
AWS_ENDPOINT_URL_DYNAMODB already set (a fault proxy in front of the store) wins for the app's
clients; the table is created at the store itself.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from chalice.app import Chalice
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

from devstack.auth import LocalAuth
from devstack.dynamodb_local import (
    DYNAMODB_LOCAL,
    MOTO,
    STORES,
    DynamoDBLocal,
    DynamoDBLocalUnavailable,
    unavailable_reason,
)
from devstack.emulator import EMULATOR_CREDENTIALS, MotoServer
from devstack.gateway import GatewayHTTPServer, Ingest, handler_class
from devstack.infra import DEFAULT_TEMPLATE, PROJECT_DIR, InfraTemplate
from devstack.poller import SqsPoller, sqs_event_config
from devstack.resources import (
    DEFAULT_DLQ,
    DEFAULT_QUEUE,
    DEFAULT_TABLE,
    Resources,
    client,
    ensure_resources,
    fifo_name,
    region,
)

LOG = logging.getLogger("devstack.pipeline")

# Lambda runs several batches of one queue at once (its SQS pollers scale out); locally a few
# pollers do, where the store takes concurrent transactions.
DEFAULT_POLLER_CONCURRENCY = 3


def poller_concurrency(table_on_moto: bool, requested: int | None) -> int:
    """How many batches the local event source runs at once: on moto one, always. moto's own
    transactions lose updates under concurrent ones, so devstack/moto_server.py answers DynamoDB
    one request at a time: more batches would only wait for each other."""
    if requested is not None and requested < 1:
        raise ValueError(f"poller concurrency must be at least 1, not {requested}")
    if table_on_moto:
        if requested is not None and requested > 1:
            LOG.warning("--concurrency %d ignored: the table is on moto, which answers DynamoDB "
                        "one request at a time; one batch at a time", requested)
        return 1
    return requested or DEFAULT_POLLER_CONCURRENCY


def load_app(env: dict[str, str], project_dir: Path = PROJECT_DIR,
             stage: str = "local") -> tuple[Chalice, Config, ModuleType]:
    """Import app.py as `chalice local --stage <stage>` does; `env` wins over the stage's."""
    factory = CLIFactory(str(project_dir), environ=os.environ)
    if (project_dir / ".chalice" / "config.json").exists():
        config = factory.create_config_obj(chalice_stage_name=stage)
        stage_env = dict(config.environment_variables)
    else:
        config = Config(chalice_stage=stage, config_from_disk={"app_name": "sqs-manager"},
                        default_params={"project_dir": str(project_dir)})
        stage_env = {}
    # app.py reads its settings at import (as in Lambda): import it afresh for this env.
    sys.modules.pop("app", None)
    app_obj = factory.load_chalice_app({**stage_env, **env})
    module = importlib.import_module("app")
    if not isinstance(app_obj, LocalChalice):
        # What chalice.local.create_local_server does: a thread-local current_request.
        CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
        app_obj.__class__ = CustomLocalChalice
    return app_obj, config, module


class Pipeline:
    def __init__(self, host: str = "127.0.0.1", port: int = 8000, emulator_port: int = 5000,
                 endpoint_url: str | None = None, queue_name: str = DEFAULT_QUEUE,
                 dlq_name: str = DEFAULT_DLQ, table_name: str = DEFAULT_TABLE,
                 honour_batch_item_failures: bool = True, visibility_timeout: int | None = None,
                 stage: str = "local", infra_path: str | Path = DEFAULT_TEMPLATE,
                 start_poller: bool = True, store: str = MOTO, dynamodb_port: int = 5002,
                 dynamodb_endpoint_url: str | None = None, auth: LocalAuth | None = None,
                 queue_type: str = "standard", concurrency: int | None = None,
                 crash_every: int = 0) -> None:
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, not {store!r}")
        # infra's QueueType: "fifo" makes FIFO queues (names ending in .fifo) and the FIFO
        # request template, as the stack does with that parameter.
        self.stack_parameters = {"QueueType": queue_type}
        if queue_type == "fifo":
            queue_name, dlq_name = fifo_name(queue_name), fifo_name(dlq_name)
        self.host = host
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
        self.emulator: MotoServer | None = None
        self.dynamodb_emulator: DynamoDBLocal | None = None
        self.resources: Resources | None = None
        self.app: Chalice | None = None
        self.config: Config | None = None
        self.app_module: ModuleType | None = None
        self.poller: SqsPoller | None = None  # the first of `pollers`
        self.pollers: list[SqsPoller] = []
        self._server: LocalDevServer | None = None
        self._server_thread: threading.Thread | None = None
        self._saved_environ: dict[str, str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

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
            self.endpoint_url = self.emulator.endpoint_url
        if start_dynamodb_local:
            self.dynamodb_emulator = DynamoDBLocal(self.host, self.dynamodb_port).launch()
            self.dynamodb_endpoint_url = self.dynamodb_emulator.endpoint_url
        infra = InfraTemplate(self.infra_path)
        # The handler's mode follows the (simulated) event source mapping's setting, as the two
        # deploy paths set it: a mismatch would lose failed messages.
        report = "true" if self.honour_batch_item_failures else "false"
        env = {"TABLE_NAME": self.table_name, "QUEUE_NAME": self.queue_name,
               "AWS_ENDPOINT_URL": self.endpoint_url, "REPORT_BATCH_ITEM_FAILURES": report,
               "AWS_DEFAULT_REGION": region()}
        if self.dynamodb_endpoint_url is not None:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = (os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
                                                or self.dynamodb_endpoint_url)
        else:
            # moto answers DynamoDB one request at a time (devstack/moto_server.py): the
            # consumer writes a batch's items one at a time there. Amazon's engine (and
            # DynamoDB) take the default, a thread per item.
            env.setdefault("BATCH_CONCURRENCY", os.environ.get("BATCH_CONCURRENCY", "1"))
        # Import the app while moto boots: both take about a second.
        self.app, self.config, self.app_module = load_app(env, stage=self.stage)
        for emulator in (self.emulator, self.dynamodb_emulator):
            if emulator is not None:
                emulator.wait_ready()
        self.resources = ensure_resources(self.endpoint_url, infra, self.queue_name,
                                          self.dlq_name, self.table_name,
                                          dynamodb_endpoint_url=self.dynamodb_endpoint_url,
                                          parameters=self.stack_parameters)
        ingest = Ingest(infra.gateway_spec(parameters=self.stack_parameters),
                        self.resources.queue_url, region(),
                        stage=self.stage, auth=self.auth)
        self._server = LocalDevServer(self.app, self.config, self.host, self.port,
                                      handler_cls=handler_class(ingest, self.auth),
                                      server_cls=GatewayHTTPServer)
        # A short poll interval: shutdown() waits for it, and stopping should be quick.
        self._server_thread = threading.Thread(target=self._server.server.serve_forever,
                                               kwargs={"poll_interval": 0.1}, name="gateway",
                                               daemon=True)
        self._server_thread.start()
        if self.start_poller:
            count = poller_concurrency(self.dynamodb_endpoint_url is None,
                                       self.requested_concurrency)
            self.pollers = [self._make_poller(f"sqs-poller-{n}").start() for n in range(count)]
            self.poller = self.pollers[0]
            LOG.info("event source: %d poller(s), one batch each at a time", count)
        LOG.info("pipeline ready on %s (SQS %s, DynamoDB %s)", self.base_url, self.endpoint_url,
                 self.dynamodb_endpoint_url or self.endpoint_url)

    def _make_poller(self, name: str = "sqs-poller") -> SqsPoller:
        assert self.app is not None and self.app_module is not None and self.resources
        source = sqs_event_config(self.app)
        # Lambda's timeout for this function, from .chalice/config.json (as deployed).
        timeout = self.config.scope(self.stage, source.name).lambda_timeout if self.config else None
        store = getattr(self.app_module, "store", None)

        def outcome(request_id: str) -> dict[str, Any] | None:
            if store is None:
                return None
            try:
                found: dict[str, Any] = store.get_outcome(request_id)
                return found
            except Exception:
                return None

        return SqsPoller(
            client("sqs", self.endpoint_url), self.resources.queue_url, self.resources.queue_arn,
            self.app_module.handle_messages, region(), batch_size=source.batch_size,
            batching_window=source.maximum_batching_window_in_seconds,
            honour_batch_item_failures=self.honour_batch_item_failures,
            visibility_timeout=self.visibility_timeout, function_name=source.name,
            function_timeout=float(timeout or 60),
            max_receive_count=self.resources.max_receive_count, outcome_lookup=outcome,
            name=name, crash_every=self.crash_every)

    def stop(self) -> None:
        for poller in self.pollers:
            poller.request_stop()
        for poller in self.pollers or ([self.poller] if self.poller is not None else []):
            poller.stop()
        self.pollers, self.poller = [], None
        if self._server is not None:
            if self._server_thread is not None and self._server_thread.is_alive():
                self._server.shutdown()  # blocks forever unless serve_forever is running
            self._server.server.server_close()
            self._server = None
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

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
