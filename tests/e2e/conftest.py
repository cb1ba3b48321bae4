"""The pipeline as a real process (`python -m devstack`), on free ports, for end-to-end tests.

A fault proxy runs in the test process in front of the pipeline's emulator; the pipeline's
DynamoDB clients go through it (AWS_ENDPOINT_URL_DYNAMODB), so tests can make the consumer's
writes fail the way DynamoDB fails, without touching the code under test.
"""

from __future__ import annotations

import decimal
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
import requests

from devstack.auth import SigV4RequestAuth, printed_api_key
from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.faults import FaultProxy
from devstack.process import DevstackProcess

REGION = "us-west-2"
# Failed messages come back after this many seconds (infra's 180 s would make tests crawl).
VISIBILITY_TIMEOUT = 3


class PipelineProcess(DevstackProcess):
    """The pipeline process, with its DynamoDB traffic through a fault proxy, and client helpers."""

    def __init__(self, log_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(log_path, "--visibility-timeout", str(VISIBILITY_TIMEOUT), *args)
        self.emulator_url = self.endpoint_url
        self.proxy = FaultProxy(self.emulator_url).start()
        self.env.update({"AWS_ENDPOINT_URL_DYNAMODB": self.proxy.url, **(env or {})})
        self.http = requests.Session()
        try:
            self.start(timeout=30)
        except RuntimeError as error:
            self.proxy.stop()
            pytest.fail(str(error))

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.http.get(f"{self.base_url}/requests/{request_id}", timeout=10)
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            assert response.status_code == 404, response.text
            assert response.json()["status"] == "pending"
            time.sleep(0.2)
        raise AssertionError(f"no outcome for {request_id} in {timeout} s\n{self.log()[-3000:]}")

    def item(self, item_id: str) -> tuple[int, Any]:
        response = self.http.get(f"{self.base_url}/items/{quote(item_id, safe='')}", timeout=10)
        return response.status_code, json.loads(response.text, parse_float=decimal.Decimal)

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not logged in {timeout} s\n{self.log()[-3000:]}")

    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.emulator_url, region_name=REGION,
                            aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineProcess]:
    """The default pipeline: event source mapping with ReportBatchItemFailures."""
    process = PipelineProcess(tmp_path_factory.mktemp("pipeline") / "pipeline.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def safe_mode_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineProcess]:
    """A mapping without ReportBatchItemFailures, and the handler in its matching safe mode."""
    process = PipelineProcess(tmp_path_factory.mktemp("safe") / "pipeline.log",
                              "--no-batch-item-failures",
                              env={"REPORT_BATCH_ITEM_FAILURES": "false"})
    yield process
    process.stop()


@pytest.fixture(scope="session")
def auth_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthPipeline]:
    """`make run AUTH=1`: the API key and SigV4-signed reads required, as on the prod1 stage."""
    process = AuthPipeline(tmp_path_factory.mktemp("auth") / "pipeline.log", "--auth")
    yield process
    process.stop()


class AuthPipeline(PipelineProcess):
    """The pipeline with --auth, knowing the API key it printed; reads signed with the printed
    dummy credentials (the emulator's, which the tests' environment already holds)."""

    def __init__(self, log_path: Path, *args: str) -> None:
        super().__init__(log_path, *args)
        self.wait_for_log("(dummy credentials")
        self.api_key = printed_api_key(self.log())
        self.http.headers["x-api-key"] = self.api_key
        self.http.auth = SigV4RequestAuth(REGION)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
