"""The local event source running several batches at once (`--concurrency`), as Lambda does:
on DynamoDB Local every message is still applied exactly once; on moto it stays at one poller."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devstack.dynamodb_local import DYNAMODB_LOCAL, DynamoDBLocal
from devstack.pipeline import Pipeline
from devstack.pipeline_settings import DEFAULT_POLLER_CONCURRENCY, poller_concurrency
from devstack.resources import client, queue_depth
from tests.waiting import wait_until

REQUESTS = 40


@pytest.fixture(scope="module")
def concurrent_pipeline(dynamodb_local: DynamoDBLocal) -> Iterator[Pipeline]:
    name = f"concurrency-{uuid.uuid4().hex[:8]}"
    # Three batches at once, each on 3 threads: concurrent enough to interleave batches, gentle
    # enough for DynamoDB Local on a shared 2-core machine (30 concurrent transactions there
    # exceed the consumer's 2 s read timeout under load; see docs/limits.md).
    saved = os.environ.get("BATCH_CONCURRENCY")
    os.environ["BATCH_CONCURRENCY"] = "3"
    with Pipeline(store=DYNAMODB_LOCAL,
                  dynamodb_endpoint_url=dynamodb_local.endpoint_url, concurrency=3,
                  # A batch that times out on a busy machine comes back in 2 s, not 6 minutes.
                  visibility_timeout=2,
                  queue_name=f"{name}-queue", dlq_name=f"{name}-dlq",
                  table_name=f"{name}-table") as running:
        yield running
    if saved is None:
        os.environ.pop("BATCH_CONCURRENCY", None)
    else:
        os.environ["BATCH_CONCURRENCY"] = saved


def _post(base_url: str, number: int) -> str:
    response = requests.post(f"{base_url}/SQSManager", timeout=30, json={
        "operation": "create", "id": f"c{number}", "item": {"n": number}})
    assert response.status_code == 202, response.text
    request_id: str = response.json()["requestId"]
    return request_id


def _outcome(base_url: str, request_id: str) -> dict[str, Any] | None:
    response = requests.get(f"{base_url}/requests/{request_id}", timeout=30)
    return response.json() if response.status_code == 200 else None


def test_several_pollers_apply_every_message_once(concurrent_pipeline: Pipeline) -> None:
    pipeline = concurrent_pipeline
    assert len(pipeline.pollers) == 3 and pipeline.poller is pipeline.pollers[0]
    assert len({poller.name for poller in pipeline.pollers}) == 3
    assert pipeline.app_module is not None
    assert pipeline.app_module.settings.batch_concurrency == 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        request_ids = list(pool.map(lambda n: _post(pipeline.base_url, n), range(REQUESTS)))
    assert len(set(request_ids)) == REQUESTS
    outcomes: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 90
    while len(outcomes) < REQUESTS and time.monotonic() < deadline:
        for request_id in request_ids:
            if request_id not in outcomes:
                found = _outcome(pipeline.base_url, request_id)
                if found is not None:
                    outcomes[request_id] = found
        time.sleep(0.5)
    assert len(outcomes) == REQUESTS
    assert {outcome["status"] for outcome in outcomes.values()} == {"applied"}
    assert not any(outcome.get("duplicate") for outcome in outcomes.values())
    for number in range(REQUESTS):
        item = requests.get(f"{pipeline.base_url}/items/c{number}", timeout=30).json()
        assert item == {"id": f"c{number}", "version": 1, "n": number}  # applied once
    assert pipeline.resources is not None
    sqs = client("sqs", pipeline.endpoint_url)
    # Messages whose write timed out on a busy machine come back (and are found applied).
    queue_url = pipeline.resources.queue_url
    wait_until(lambda: queue_depth(sqs, queue_url) == 0, 120, interval=0.2)
    assert queue_depth(sqs, pipeline.resources.dlq_url) == 0
    # Every batch was one invocation of one poller: at least REQUESTS / 10 of them in all.
    assert sum(poller.invocations for poller in pipeline.pollers) >= REQUESTS // 10


def test_moto_keeps_one_poller_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="devstack.pipeline"):
        assert poller_concurrency(table_on_moto=True, requested=4) == 1
    assert "answers DynamoDB one request at a time" in caplog.text
    assert poller_concurrency(table_on_moto=True, requested=None) == 1
    assert poller_concurrency(table_on_moto=False, requested=None) == DEFAULT_POLLER_CONCURRENCY
    assert poller_concurrency(table_on_moto=False, requested=5) == 5
    with pytest.raises(ValueError):
        poller_concurrency(table_on_moto=False, requested=0)
