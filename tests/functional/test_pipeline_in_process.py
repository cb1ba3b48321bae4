"""devstack.Pipeline used in-process as a pytest fixture (its own moto, free ports)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest
import requests

from chalicelib.retries import MAX_RECEIVE_COUNT
from devstack.pipeline import Pipeline
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    before = dict(os.environ)
    with Pipeline(visibility_timeout=2) as running:
        yield running
    assert dict(os.environ) == before  # stop() undid what loading the app set


def test_post_then_read_back(pipeline: Pipeline) -> None:
    assert pipeline.resources is not None
    assert pipeline.resources.max_receive_count == MAX_RECEIVE_COUNT  # infra's RedrivePolicy
    assert pipeline.resources.maximum_message_size == 1024 * 1024
    response = requests.post(f"{pipeline.base_url}/SQSManager", timeout=10,
                             json={"operation": "put", "id": "in process", "item": {"a": "ü"}})
    assert response.status_code == 202, response.text
    request_id = response.json()["requestId"]
    # A response is true when it is 2xx or 3xx: 404 means pending.
    outcome = wait_until(lambda: requests.get(f"{pipeline.base_url}/requests/{request_id}",
                                              timeout=10), 20, what="no outcome")
    assert outcome.json()["status"] == "applied"
    item = requests.get(f"{pipeline.base_url}/items/in%20process", timeout=10)
    assert item.json() == {"id": "in process", "version": 1, "a": "ü"}


def test_poller_uses_the_apps_registration(pipeline: Pipeline) -> None:
    assert pipeline.poller is not None
    assert (pipeline.poller.batch_size, pipeline.poller.batching_window) == (10, 1)
    assert pipeline.poller.function_timeout == 60  # handle_messages' lambda_timeout


def test_other_methods_on_the_ingest_path_are_chalice_local_403(pipeline: Pipeline) -> None:
    response = requests.get(f"{pipeline.base_url}/SQSManager", timeout=10)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_the_gateway_answers_even_a_request_it_cannot_read(pipeline: Pipeline) -> None:
    # A Content-Length that is no number frames nothing: a JSON 400 (the client's HTTP is
    # broken) and the connection closed.
    with socket.create_connection((pipeline.host, pipeline.port), timeout=10) as connection:
        connection.sendall(b"POST /SQSManager HTTP/1.1\r\nHost: localhost\r\n"
                           b"Content-Type: application/json\r\nContent-Length: many\r\n\r\n")
        answer = connection.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400"), head
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"message": "Bad Request"}
