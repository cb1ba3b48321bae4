"""Shared fixtures. The emulators are real processes on loopback, reached over HTTP by boto3 with
an endpoint URL, as the Lambda's clients reach DynamoDB and SQS: moto in server mode for SQS (and
DynamoDB), and Amazon's DynamoDB Local for the table in the tests marked `both_stores`, which run
once per store: `[moto]` and `[dynamodb-local]`. The one way to run a test on both stores is that
marker: it parametrizes whichever store fixture the test takes (STORE_FIXTURES)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, TypeVar

import boto3
import pytest

from chalicelib import ItemStore, Settings
from devstack.dynamodb_local import DYNAMODB_LOCAL, MOTO, STORES, DynamoDBLocal
from devstack.emulator import EMULATOR_CREDENTIALS, MotoServer
from devstack.resources import Resources, ensure_resources
from tests.stores import skip_unless_dynamodb_local_runs

REGION = "us-west-2"
T = TypeVar("T")
# Fixtures that take the store from a `both_stores` parametrization (request.param), the first
# one a test uses: the table's endpoint (functional tests), the pipeline process (e2e), or just
# the store's name (tests that start their own pipeline).
STORE_FIXTURES = ("dynamodb_endpoint", "pipeline", "safe_mode_pipeline", "store_name")

# Every DynamoDB Local the tests start (directly or in a pipeline process, which inherits this)
# runs without the JVM's optimising compiler (C2): a test's JVM lives seconds, and compiling its
# hot code with C2 about doubled its CPU without making it answer faster. The suite is CPU-bound,
# so that is wall time (docs/testing.md, "How it runs"). `make run` and the benchmarks keep the
# JVM's default.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1")
# Pipelines the tests start read their table's stream once a second instead of Lambda's 4 times:
# dozens of them wait between tests, and those reads are most of an idle pipeline's CPU
# (devstack/pipeline_settings.py). What a read returns, and when it is handed on, is the same.
os.environ.setdefault("DEVSTACK_STREAM_POLL_SECONDS", "1")

# Tests that fail on DynamoDB Local because the code under test (chalicelib) differs from what
# DynamoDB does: test name -> what DynamoDB Local answers. Strict: fixed code makes them fail.
DYNAMODB_LOCAL_DIFFERENCES: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_stores: run once on moto and once on DynamoDB Local (skipped, with the "
                   "reason, where DynamoDB Local cannot run)")
    config.addinivalue_line(
        "markers", "alone: times something, so `make test` runs it after the rest, with no "
                   "other test beside it")
    config.addinivalue_line(
        "markers", "queue_behaviour: in a both_stores module, run on moto only: what it proves "
                   "is SQS's part (DLQ, redrive), which the table's engine does not change")
    config.addinivalue_line(
        "markers", "long: runs for tens of seconds, mostly waiting on servers: `make test` "
                   "starts these first, spread over the workers (pytest_collection_modifyitems)")


@pytest.hookimpl(trylast=True)  # after `-m` deselected: the order the workers report is final
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    items[:] = long_first(items, workers, lambda item: item.get_closest_marker("long") is not None)


def long_first(items: Sequence[T], workers: int, is_long: Callable[[T], bool]) -> list[T]:
    """Long tests first, one share per worker. pytest-xdist's worksteal scheduler hands each
    worker an equal run of the collection in order, then moves tests from a busy worker's end
    to an idle one: in collection order the long ones (mostly e2e, collected first) fill one
    worker's run and finish alone after the others. Each worker's run now starts with its share
    of them, while the rest keep their order (a module's tests stay together with its fixtures)."""
    long = [item for item in items if is_long(item)]
    if workers < 2 or not long:
        return list(items)
    rest = [item for item in items if not is_long(item)]
    ordered: list[T] = []
    remaining = len(items)
    for worker in range(workers):
        size = remaining // (workers - worker)  # the scheduler's split (xdist's worksteal.py)
        remaining -= size
        mine = long[worker::workers]
        take = max(0, size - len(mine))
        ordered += mine + rest[:take]
        rest = rest[take:]
    return ordered + rest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_stores") is None:
        return
    if metafunc.definition.get_closest_marker("queue_behaviour") is not None:
        return
    used = [name for name in STORE_FIXTURES if name in metafunc.fixturenames]
    if not used:
        return
    difference = DYNAMODB_LOCAL_DIFFERENCES.get(metafunc.definition.originalname)
    marks = [pytest.mark.xfail(strict=True, reason=difference)] if difference else []
    metafunc.parametrize(used[0],
                         [pytest.param(MOTO), pytest.param(DYNAMODB_LOCAL, marks=marks)],
                         indirect=True, ids=list(STORES))


def store_of(request: pytest.FixtureRequest) -> str:
    """The store a `both_stores` parametrization chose (moto otherwise); skips, saying why,
    where DynamoDB Local cannot run."""
    store: str = getattr(request, "param", MOTO)
    if store == DYNAMODB_LOCAL:
        skip_unless_dynamodb_local_runs()
    return store


@pytest.fixture
def store_name(request: pytest.FixtureRequest) -> str:
    return store_of(request)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """Amazon's DynamoDB Local on a free port (it listens on every interface; tests use
    127.0.0.1 only). Skips, saying why, without Java 17+ or the npm package."""
    skip_unless_dynamodb_local_runs()
    with DynamoDBLocal() as server:
        yield server


AppImport = Callable[[], ModuleType]  # the import_app fixture


@pytest.fixture
def import_app() -> Iterator[AppImport]:
    """Imports app.py afresh under the test's environment (it reads its settings at import, as
    in Lambda); forgotten afterwards, so that no other test gets this test's settings."""

    def fresh() -> ModuleType:
        sys.modules.pop("app", None)
        return importlib.import_module("app")

    yield fresh
    sys.modules.pop("app", None)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: dummy credentials and a fixed region for every test."""
    for name, value in EMULATOR_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)


@pytest.fixture
def endpoint_url(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto: SQS always, and DynamoDB unless the test runs on DynamoDB Local."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    return moto_server.endpoint_url


@pytest.fixture
def dynamodb_endpoint(request: pytest.FixtureRequest, endpoint_url: str) -> str:
    """Where the table lives: moto, or DynamoDB Local for a `both_stores` test's second run."""
    if store_of(request) == DYNAMODB_LOCAL:
        server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
        return server.endpoint_url
    return endpoint_url


@pytest.fixture
def dynamodb(dynamodb_endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=REGION)


@pytest.fixture
def backend(dynamodb_endpoint: str, endpoint_url: str) -> str:
    """The DynamoDB engine behind the `dynamodb` and `store` fixtures."""
    return MOTO if dynamodb_endpoint == endpoint_url else DYNAMODB_LOCAL


@pytest.fixture
def sqs(endpoint_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint_url, region_name=REGION)


@pytest.fixture
def resources(endpoint_url: str, dynamodb_endpoint: str) -> Resources:
    """A fresh queue, DLQ and table per test, made from infra/extension.yaml's settings."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    return ensure_resources(endpoint_url, queue_name=f"{name}-queue", dlq_name=f"{name}-dlq",
                            table_name=f"{name}-table", dynamodb_endpoint_url=dynamodb_endpoint)


# What the DLQ tests give their queue's redrive policy: they prove what happens at
# maxReceiveCount, whatever it is; infra's (30, sized for outages: chalicelib/retries.py) would
# cost 30 failed deliveries each.
FEW_RECEIVES = 3


def with_few_receives(sqs: Any, resources: Resources) -> Resources:
    """`resources` with its queue's maxReceiveCount set to FEW_RECEIVES."""
    sqs.set_queue_attributes(QueueUrl=resources.queue_url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": resources.dlq_arn, "maxReceiveCount": FEW_RECEIVES})})
    return dataclasses.replace(resources, max_receive_count=FEW_RECEIVES)


@pytest.fixture
def settings(resources: Resources) -> Settings:
    return Settings(table_name=resources.table_name, queue_name=resources.queue_name)


@pytest.fixture
def store(dynamodb: Any, settings: Settings) -> ItemStore:
    return ItemStore(dynamodb, settings)
