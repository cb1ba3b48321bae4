"""Fixtures shared by functional test modules: the consumer's (test_consumer_*.py, test_fifo.py:
app.py loaded with one deploy path's settings, its DynamoDB traffic through devstack's fault
proxy), and those of the stacks in moto's CloudFormation (test_infra_stack*.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from devstack.emulator import MotoServer
from devstack.faults import FaultProxy
from devstack.resources import Resources
from scripts.standalone_template import write as write_standalone
from tests.conftest import AppImport


@pytest.fixture
def faults(dynamodb_endpoint: str) -> Iterator[FaultProxy]:
    """An HTTP proxy in front of the table's emulator that answers chosen writes with errors."""
    with FaultProxy(dynamodb_endpoint) as proxy:
        yield proxy


@pytest.fixture
def load_app(resources: Resources, monkeypatch: pytest.MonkeyPatch, faults: FaultProxy,
             backend: str, import_app: AppImport
             ) -> Callable[[bool], tuple[ModuleType, FaultProxy]]:
    def load(report_batch_item_failures: bool) -> tuple[ModuleType, FaultProxy]:
        monkeypatch.setenv("TABLE_NAME", resources.table_name)
        monkeypatch.setenv("QUEUE_NAME", resources.queue_name)
        monkeypatch.setenv("REPORT_BATCH_ITEM_FAILURES", str(report_batch_item_failures).lower())
        # A message that failed transiently comes back at once (retries.py's pacing, compressed
        # to nothing): a test that drains the queue need not wait out the backoff.
        monkeypatch.setenv("RETRY_DELAY_SCALE", "0")
        if backend == "moto":  # moto loses writes under concurrent transactions (aws-facts)
            monkeypatch.setenv("BATCH_CONCURRENCY", "1")
        # The consumer's DynamoDB traffic goes through the proxy (botocore honours this).
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", faults.url)
        return import_app(), faults
    return load


# ---------------------------------------------------------------- stacks in moto's CloudFormation


@pytest.fixture(scope="module")
def moto(moto_server: MotoServer) -> MotoServer:
    return moto_server


@pytest.fixture
def no_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dummy credentials and the region come from tests/conftest.py; the stack tests' clients
    # name the endpoint themselves (tests/moto_stacks.py).
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


# The standalone template, built once per worker for the modules that deploy it.
@pytest.fixture(scope="session")
def template_body(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_standalone(tmp_path_factory.mktemp("standalone") / "standalone.json").read_text()
