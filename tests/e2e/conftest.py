"""The pipeline as a real process (`python -m devstack`), on ports the kernel chooses, for
end-to-end tests.

A fault proxy runs in the test process in front of the emulator that holds the table (moto, or
DynamoDB Local with `--store dynamodb-local`); the pipeline's DynamoDB clients go through it
(AWS_ENDPOINT_URL_DYNAMODB), so tests can make the consumer's writes fail the way DynamoDB fails,
without touching the code under test.

Tests marked `both_stores` (tests/conftest.py) get `pipeline` and `safe_mode_pipeline` once per
store (`[moto]`, `[dynamodb-local]`), one process per store and mode for the session.
"""

from __future__ import annotations

import decimal
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
import requests

from devstack.auth import SigV4RequestAuth, printed_api_key
from devstack.dynamodb_local import DYNAMODB_LOCAL, MOTO
from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.faults import FaultProxy
from devstack.process import DevstackProcess
from tests.conftest import REGION, store_of
from tests.waiting import wait_until

# Failed messages come back after this many seconds (infra's 180 s would make tests crawl).
VISIBILITY_TIMEOUT = 3
# For the same reason, time is compressed where the consumer waits on purpose: a failed
# condition waits 1, 2, 4 s for earlier requests (not 2, 4, 8), and a transient failure comes
# back after a quarter of its pause (chalicelib/retries.py). The pacing itself is tested in
# tests/functional/test_retry_pacing.py and tests/functional/test_consumer_ordering.py.
COMPRESSED_TIME = {"CONDITION_RETRY_DELAY_SECONDS": "1", "RETRY_DELAY_SCALE": "0.25"}


class PipelineProcess(DevstackProcess):
    """The pipeline process, with its DynamoDB traffic through a fault proxy, and client helpers."""

    def __init__(self, log_path: Path, *args: str, env: dict[str, str] | None = None,
                 store: str = MOTO) -> None:
        super().__init__(log_path, "--visibility-timeout", str(VISIBILITY_TIMEOUT), *args,
                         store=store)
        # In front of whatever holds the table (moto, or DynamoDB Local), which the process
        # starts on a port it reports as it runs: the proxy learns its target then.
        self.proxy = FaultProxy(None).start()
        self.env.update({"AWS_ENDPOINT_URL_DYNAMODB": self.proxy.url, **COMPRESSED_TIME,
                         **(env or {})})
        self.http = requests.Session()
        try:
            self.start(timeout=30)
        except RuntimeError as error:
            self.proxy.stop()
            pytest.fail(str(error))
        self.proxy.forward_to(self.dynamodb_endpoint_url)
        self.emulator_url = self.endpoint_url  # SQS

    def stop(self) -> None:
        super().stop()
        self.proxy.stop()

    # --- client helpers --------------------------------------------------------------------
    def post(self, body: str | bytes, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> requests.Response:
        data = body.encode("utf-8") if isinstance(body, str) else body
        return self.http.post(f"{self.base_url}/SQSManager", data=data,
                              headers={"Content-Type": content_type, **(headers or {})},
                              timeout=30)

    def submit(self, command: dict[str, Any]) -> str:
        response = self.post(json.dumps(command, ensure_ascii=False))
        assert response.status_code == 202, response.text
        answer = response.json()
        assert set(answer) == {"requestId", "messageId"}
        request_id: str = answer["requestId"]
        return request_id

    def outcome(self, request_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll GET /requests/{id} until the consumer recorded an outcome (404 = pending)."""
        def recorded() -> dict[str, Any] | None:
            response = self.http.get(f"{self.base_url}/requests/{request_id}", timeout=10)
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            assert response.status_code == 404, response.text
            assert response.json()["status"] == "pending"
            return None

        return wait_until(recorded, timeout, interval=0.2,
                          what=lambda: f"no outcome for {request_id}\n{self.log()[-3000:]}")

    def item(self, item_id: str) -> tuple[int, Any]:
        response = self.http.get(f"{self.base_url}/items/{quote(item_id, safe='')}", timeout=10)
        return response.status_code, json.loads(response.text, parse_float=decimal.Decimal)

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        wait_until(lambda: text in self.log(), timeout, interval=0.2,
                   what=lambda: f"{text!r} not logged\n{self.log()[-3000:]}")

    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.emulator_url, region_name=REGION,
                            aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def start_pipeline(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   name: str, *args: str, env: dict[str, str] | None = None,
                   store: str = MOTO) -> PipelineProcess:
    process = PipelineProcess(tmp_path_factory.mktemp(f"{name}-{store}") / "pipeline.log",
                              *args, env=env, store=store)
    request.addfinalizer(process.stop)
    return process


# One process per store and mode for the whole session (the dispatching fixtures below are
# per test, so a parametrized test never restarts a process another test uses).
@pytest.fixture(scope="session")
def moto_pipeline(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> PipelineProcess:
    return start_pipeline(request, tmp_path_factory, "pipeline")


@pytest.fixture(scope="session")
def dynamodb_local_pipeline(request: pytest.FixtureRequest,
                            tmp_path_factory: pytest.TempPathFactory) -> PipelineProcess:
    return start_pipeline(request, tmp_path_factory, "pipeline", store=DYNAMODB_LOCAL)


def _safe_mode(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               store: str) -> PipelineProcess:
    # One poller: its tests need a failing message to share a batch with succeeding ones.
    return start_pipeline(request, tmp_path_factory, "safe", "--no-batch-item-failures",
                          "--concurrency", "1", env={"REPORT_BATCH_ITEM_FAILURES": "false"},
                          store=store)


@pytest.fixture(scope="session")
def moto_safe_mode_pipeline(request: pytest.FixtureRequest,
                            tmp_path_factory: pytest.TempPathFactory) -> PipelineProcess:
    return _safe_mode(request, tmp_path_factory, MOTO)


@pytest.fixture(scope="session")
def dynamodb_local_safe_mode_pipeline(request: pytest.FixtureRequest,
                                      tmp_path_factory: pytest.TempPathFactory) -> PipelineProcess:
    return _safe_mode(request, tmp_path_factory, DYNAMODB_LOCAL)


@pytest.fixture
def pipeline(request: pytest.FixtureRequest) -> PipelineProcess:
    """The default pipeline: event source mapping with ReportBatchItemFailures."""
    store = store_of(request)
    name = "dynamodb_local_pipeline" if store == DYNAMODB_LOCAL else "moto_pipeline"
    process: PipelineProcess = request.getfixturevalue(name)
    return process


@pytest.fixture
def safe_mode_pipeline(request: pytest.FixtureRequest) -> PipelineProcess:
    """A mapping without ReportBatchItemFailures, and the handler in its matching safe mode."""
    store = store_of(request)
    name = ("dynamodb_local_safe_mode_pipeline" if store == DYNAMODB_LOCAL
            else "moto_safe_mode_pipeline")
    process: PipelineProcess = request.getfixturevalue(name)
    return process


def _auth_pipeline(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Iterator[AuthPipeline]:
    process = AuthPipeline(tmp_path_factory.mktemp("auth") / "pipeline.log", "--auth", *args)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def auth_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthPipeline]:
    """`make run AUTH=1`, as the prod1 stage by default: SigV4 on POST (IngestAuthorization
    AWS_IAM) and on reads."""
    yield from _auth_pipeline(tmp_path_factory)


@pytest.fixture(scope="session")
def api_key_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthPipeline]:
    """`make run AUTH=1 INGEST_AUTH=api-key`: the key on POST, SigV4 on reads."""
    yield from _auth_pipeline(tmp_path_factory, "--ingest-auth", "api-key")


@pytest.fixture(scope="session")
def iam_and_key_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthPipeline]:
    """`make run AUTH=1 INGEST_AUTH=iam+api-key`: SigV4 and the key on POST."""
    yield from _auth_pipeline(tmp_path_factory, "--ingest-auth", "iam+api-key")


class AuthPipeline(PipelineProcess):
    """The pipeline with --auth, knowing the API key it printed (if its ingest needs one); every
    request signed with the printed dummy credentials (the emulator's, which the tests'
    environment already holds), as a client of the prod1 stage does."""

    def __init__(self, log_path: Path, *args: str) -> None:
        super().__init__(log_path, *args)
        self.wait_for_log("(dummy credentials")
        self.api_key = printed_api_key(self.log())
        if self.api_key is not None:
            self.http.headers["x-api-key"] = self.api_key
        self.http.auth = SigV4RequestAuth(REGION)

    @property
    def key(self) -> str:
        """The printed key (for a pipeline whose ingest needs one)."""
        assert self.api_key is not None, "this pipeline's ingest needs no key"
        return self.api_key


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
