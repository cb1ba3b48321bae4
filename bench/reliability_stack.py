"""The reliability runs' pipeline (bench/reliability.py): `python -m devstack` on DynamoDB Local
behind the fault proxy, requests sent to its gateway paced by the queue's backlog, and the wait
until the queue is drained."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.reliability_workload import GATEWAY_INVALID, Request
from devstack.dynamodb_local import DYNAMODB_LOCAL
from devstack.faults import FaultProxy, RandomFaults
from devstack.process import DevstackProcess
from devstack.resources import DEFAULT_DLQ, DEFAULT_QUEUE, client, queue_depth

# Short, so that failed and abandoned messages come back quickly.
VISIBILITY_TIMEOUT = 3


@dataclass
class Stack:
    process: DevstackProcess
    proxy: FaultProxy
    events_proxy: FaultProxy | None = None  # the event source's EventBridge calls (R6)

    def sqs(self) -> Any:
        return client("sqs", self.process.endpoint_url)

    def dynamodb(self) -> Any:  # the store itself, not through the proxy
        return client("dynamodb", self.process.dynamodb_endpoint_url)

    def queue_urls(self) -> tuple[str, str]:
        sqs = self.sqs()
        return (sqs.get_queue_url(QueueName=DEFAULT_QUEUE)["QueueUrl"],
                sqs.get_queue_url(QueueName=DEFAULT_DLQ)["QueueUrl"])

    def log_count(self, text: str) -> int:
        return self.process.log().count(text)


@contextmanager
def stack(log_dir: Path, name: str, faults: RandomFaults | None = None,
          crash_every: int = 0, pollers: int | None = None,
          visibility_timeout: int | None = VISIBILITY_TIMEOUT,
          events_faults: RandomFaults | None = None, stream_crash_every: int = 0
          ) -> Iterator[Stack]:
    """visibility_timeout None: the queue's own (infra's), as on AWS. events_faults: the
    pipeline's EventBridge calls go through a second proxy: botocore honours
    AWS_ENDPOINT_URL_EVENTBRIDGE (from the service id, "EventBridge"), and only the event
    source's publisher calls the bus without an explicit endpoint."""
    args = ["--log-level", "WARNING"]
    if visibility_timeout is not None:
        args += ["--visibility-timeout", str(visibility_timeout)]
    if crash_every:
        args += ["--crash-every", str(crash_every)]
    if pollers is not None:
        args += ["--concurrency", str(pollers)]
    if stream_crash_every:
        args += ["--stream-crash-every", str(stream_crash_every)]
    process = DevstackProcess(log_dir / f"{name}.log", *args, store=DYNAMODB_LOCAL,
                              env={"LOG_LEVEL": "WARNING", "AWS_EC2_METADATA_DISABLED": "true"})
    proxy = FaultProxy(None).start()  # its target's port is known once the process runs
    proxy.random = faults
    process.env["AWS_ENDPOINT_URL_DYNAMODB"] = proxy.url
    events_proxy = FaultProxy(None).start() if events_faults is not None else None
    if events_proxy is not None:
        events_proxy.random = events_faults
        process.env["AWS_ENDPOINT_URL_EVENTBRIDGE"] = events_proxy.url
    try:
        process.start(timeout=120)
        proxy.forward_to(process.dynamodb_endpoint_url)
        if events_proxy is not None:
            events_proxy.forward_to(process.endpoint_url)
        yield Stack(process, proxy, events_proxy)
    finally:
        process.stop()
        for started in (proxy, events_proxy):
            if started is not None:
                started.stop()


class Pacer:
    """Holds senders back while the queue holds more than `limit` messages."""

    def __init__(self, sqs: Any, queue_url: str, limit: int) -> None:
        self.sqs, self.queue_url, self.limit = sqs, queue_url, limit
        self._lock = threading.Lock()
        self._checked, self._depth = 0.0, 0

    def wait(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if time.monotonic() - self._checked > 0.5:
                    self._depth = queue_depth(self.sqs, self.queue_url)
                    self._checked = time.monotonic()
                if self._depth < self.limit:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"the backlog stayed over {self.limit} for {timeout} s")


@dataclass
class Sent:
    accepted: dict[str, Request] = field(default_factory=dict)
    refused: int = 0  # 4xx: not accepted
    refused_valid: int = 0  # 4xx for a body the gateway should have taken
    errors: list[str] = field(default_factory=list)  # 5xx or no answer: maybe enqueued


def send_http(target: Stack, work: list[Request], threads: int, pacer: Pacer) -> Sent:
    sent = Sent()
    todo: queue.Queue[Request] = queue.Queue()
    for request in work:
        todo.put(request)
    lock = threading.Lock()
    url = f"{target.process.base_url}/SQSManager"

    def sender() -> None:
        session = requests.Session()
        while True:
            try:
                request = todo.get_nowait()
            except queue.Empty:
                return
            pacer.wait()
            try:
                answer = session.post(url, data=request.body.encode(), timeout=60,
                                      headers={"Content-Type": "application/json"})
            except requests.RequestException as error:
                with lock:
                    sent.errors.append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                if answer.status_code == 202:
                    sent.accepted[answer.json()["requestId"]] = request
                elif 400 <= answer.status_code < 500:
                    sent.refused += 1
                    sent.refused_valid += request.kind != GATEWAY_INVALID
                else:
                    sent.errors.append(f"{answer.status_code}: {answer.text[:200]}")

    workers = [threading.Thread(target=sender, name=f"sender-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sent


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def drain(sqs: Any, queue_url: str, timeout: float) -> float:
    """Wait until the queue holds nothing, visible or in flight, for 3 checks in a row."""
    started = time.monotonic()
    empty = 0
    while time.monotonic() - started < timeout:
        empty = empty + 1 if queue_depth(sqs, queue_url) == 0 else 0
        if empty >= 3:
            return time.monotonic() - started
        time.sleep(1.0)
    raise TimeoutError(f"the queue was not drained in {timeout} s")



def settle(sqs: Any, queue_url: str, check: Callable[[], tuple[bool, int]], timeout: float,
           quiet_checks: int = 10) -> float:
    """Wait until a queue is empty and `check()` says (complete, stored so far) complete, or
    stored stays the same for `quiet_checks` checks a second apart: longer than the stream
    poller's longest pause between retries (5 s), so nothing is still on its way."""
    started = time.monotonic()
    quiet, last = 0, -1
    while time.monotonic() - started < timeout:
        complete, stored = check()
        if queue_depth(sqs, queue_url) == 0:
            quiet = quiet + 1 if stored == last else 0
            if complete or quiet >= quiet_checks:
                return time.monotonic() - started
        last = stored
        time.sleep(1.0)
    raise TimeoutError(f"the history did not settle in {timeout} s")
