"""Shared fixtures. The emulator is moto in server mode, a real process on loopback, reached over
HTTP by boto3 with an endpoint URL, as the Lambda's clients reach DynamoDB and SQS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import ItemStore, Settings
from devstack.emulator import EMULATOR_CREDENTIALS, MotoServer, free_port
from devstack.resources import Resources, ensure_resources

REGION = "us-west-2"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer(port=free_port()) as server:
        yield server


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: dummy credentials and a fixed region for every test."""
    for name, value in EMULATOR_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def endpoint_url(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    return moto_server.endpoint_url


@pytest.fixture
def backend() -> str:
    """The DynamoDB engine behind the `dynamodb` and `store` fixtures."""
    return "moto"


@pytest.fixture
def dynamodb(endpoint_url: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=REGION)


@pytest.fixture
def sqs(endpoint_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint_url, region_name=REGION)


@pytest.fixture
def resources(endpoint_url: str) -> Resources:
    """A fresh queue, DLQ and table per test, made from infra/extension.yaml's settings."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    return ensure_resources(endpoint_url, queue_name=f"{name}-queue", dlq_name=f"{name}-dlq",
                            table_name=f"{name}-table")


@pytest.fixture
def settings(resources: Resources) -> Settings:
    return Settings(table_name=resources.table_name, queue_name=resources.queue_name)


@pytest.fixture
def store(dynamodb: Any, settings: Settings) -> ItemStore:
    return ItemStore(dynamodb, settings)
