"""The event source in a process of its own, as `make run` runs it (devstack/event_source.py): it
applies what the gateway enqueues while nothing polls in the gateway's process, stops on SIGTERM
and when its pipeline's pipe closes (the pipeline died), is replaced when it dies, and one that
cannot start is a plain error instead of a pipeline that accepts requests nobody handles."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack import event_source_supervisor
from devstack.event_source import (
    PROCESS,
    EventSourceFailed,
    EventSourceProcess,
    EventSourceSpec,
)
from devstack.pipeline import Pipeline
from devstack.resources import Resources
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    with Pipeline(event_source=PROCESS,
                  visibility_timeout=2) as running:
        yield running


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_child_applies_what_the_gateway_enqueues(pipeline: Pipeline) -> None:
    child = pipeline.event_source_process
    assert child is not None and child.pid is not None and child.pid != os.getpid()
    assert running(child.pid)
    assert pipeline.pollers == [] and pipeline.poller is None  # nothing polls here
    response = requests.post(f"{pipeline.base_url}/SQSManager", timeout=10,
                             json={"operation": "create", "id": "child", "item": {"n": 1}})
    assert response.status_code == 202, response.text
    request_id = response.json()["requestId"]
    # A response is true when it is 2xx or 3xx: 404 means pending.
    outcome = wait_until(lambda: requests.get(f"{pipeline.base_url}/requests/{request_id}",
                                              timeout=10), 20, what="no outcome")
    assert outcome.json()["status"] == "applied"
    item = requests.get(f"{pipeline.base_url}/items/child", timeout=10).json()
    assert item == {"id": "child", "version": 1, "n": 1}


def test_stopping_the_pipeline_stops_the_child() -> None:
    with Pipeline(event_source=PROCESS) as stack:
        assert stack.event_source_process is not None
        pid = stack.event_source_process.pid
        assert pid is not None and running(pid)
    assert stack.event_source_process is None
    assert not running(pid)


def test_an_event_source_that_dies_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    """Killed (the OOM killer, a crash): a new one starts, and requests are still applied."""
    with Pipeline(event_source=PROCESS,
                  visibility_timeout=2) as stack:
        assert stack.event_source_process is not None
        first = stack.event_source_process.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: stack.event_source_restarts >= 1, 30, what="no new event source")
        second = stack.event_source_process.pid
        assert second is not None and second != first and running(second)
        response = requests.post(f"{stack.base_url}/SQSManager", timeout=10, json={
            "operation": "create", "id": "after-crash", "item": {"n": 2}})
        assert response.status_code == 202, response.text
        wait_until(lambda: requests.get(f"{stack.base_url}/items/after-crash", timeout=10), 20,
                   what="not applied")
    assert not running(second)
    assert f"the event source exited with code {-signal.SIGKILL}" in caplog.text


def test_a_replacement_that_cannot_start_is_said_plainly(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """No restart loop: one attempt, then an error line saying nothing consumes the queue."""

    class NeverReady(EventSourceProcess):
        def wait_ready(self, timeout: float = 0) -> EventSourceProcess:
            raise EventSourceFailed("the event source exited with code 1 before polling")

    with Pipeline(event_source=PROCESS) as stack:
        assert stack.event_source_process is not None and stack.event_source_process.pid
        monkeypatch.setattr(event_source_supervisor, "EventSourceProcess", NeverReady)
        os.kill(stack.event_source_process.pid, signal.SIGKILL)
        wait_until(lambda: "nothing consumes the queue now" in caplog.text, 30,
                   what=lambda: caplog.text[-2000:])
        assert stack.event_source_restarts == 0


def spec(resources: Resources, endpoint_url: str, **app_env: str) -> EventSourceSpec:
    return EventSourceSpec(
        app_env={"TABLE_NAME": resources.table_name, "QUEUE_NAME": resources.queue_name,
                 "AWS_ENDPOINT_URL": endpoint_url, **app_env},
        stage="local", endpoint_url=endpoint_url, queue_url=resources.queue_url,
        queue_arn=resources.queue_arn, max_receive_count=resources.max_receive_count,
        pollers=1)


def test_the_spec_travels_as_json(resources: Resources, endpoint_url: str) -> None:
    sent = spec(resources, endpoint_url)
    assert EventSourceSpec.from_json(sent.to_json()) == sent
    assert json.loads(sent.to_json())["queue_url"] == resources.queue_url


def wait_exit(child: EventSourceProcess, seconds: float) -> int:
    assert child.process is not None
    code: int = child.process.wait(timeout=seconds)
    return code


def test_sigterm_stops_it_after_the_batch_in_hand(resources: Resources,
                                                  endpoint_url: str) -> None:
    child = EventSourceProcess(spec(resources, endpoint_url)).launch().wait_ready()
    try:
        assert child.process is not None
        began = time.monotonic()
        child.process.send_signal(signal.SIGTERM)
        assert wait_exit(child, 10) == 0
        assert time.monotonic() - began < 2.0  # a long poll is 1 s
    finally:
        child.stop()


def test_it_stops_when_its_pipeline_is_gone(resources: Resources, endpoint_url: str) -> None:
    child = EventSourceProcess(spec(resources, endpoint_url)).launch().wait_ready()
    try:
        assert child.process is not None and child.process.stdin is not None
        child.process.stdin.close()  # what the kernel does when the pipeline dies, kill -9 too
        assert wait_exit(child, 10) == 0
    finally:
        child.stop()


def test_a_child_that_cannot_start_is_a_plain_error(
        resources: Resources, endpoint_url: str, capfd: pytest.CaptureFixture[str]) -> None:
    # app.py refuses to import with this (int("many")), as it would in Lambda.
    child = EventSourceProcess(spec(resources, endpoint_url, BATCH_CONCURRENCY="many"))
    child.launch()
    try:
        with pytest.raises(EventSourceFailed, match="exited with code 1 before polling"):
            child.wait_ready()
    finally:
        child.stop()
    err: Any = capfd.readouterr().err
    assert "BATCH_CONCURRENCY" in err or "invalid literal for int()" in err
