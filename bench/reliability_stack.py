"""The reliability runs' pipeline (docs/reliability.md): `python -m devstack` on DynamoDB Local
behind the fault proxy, requests sent to its gateway paced by the queue's backlog, the wait until
the queue is drained, and what the run left in the table and the DLQ."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.output import pipeline, scan, table
from bench.reliability_workload import GATEWAY_INVALID, Accounting, Request, Snapshot, account
from chalicelib.attributes import from_map
from chalicelib.commands import REQUEST_ID
from chalicelib.dynamodb import ITEM_PREFIX, REQUEST_PREFIX
from devstack.dynamodb_local import DYNAMODB_LOCAL
from devstack.faults import FaultProxy, RandomFaults
from devstack.process import DevstackProcess
from devstack.resources import DEFAULT_DLQ, DEFAULT_QUEUE, DEFAULT_TABLE, client, queue_depth

# Short, so that failed and abandoned messages come back quickly.
VISIBILITY_TIMEOUT = 3


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


@dataclass
class Stack:
    process: DevstackProcess
    proxy: FaultProxy
    events_proxy: FaultProxy | None = None  # the event source's EventBridge calls (R6)

    def __post_init__(self) -> None:
        self.sqs = client("sqs", self.process.endpoint_url)
        self.dynamodb = client("dynamodb", self.process.dynamodb_endpoint_url)  # not proxied
        self.queue_url, self.dlq_url = self.url(DEFAULT_QUEUE), self.url(DEFAULT_DLQ)

    def url(self, queue_name: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])

    def log_count(self, text: str) -> int:
        return self.process.log().count(text)

    def pacer(self, max_backlog: int) -> Pacer:
        return Pacer(self.sqs, self.queue_url, max_backlog)

    def send(self, work: list[Request], threads: int, pacer: Pacer) -> Sent:
        """POST every request to the gateway from `threads` keep-alive sessions."""
        sent, todo, lock = Sent(), queue.SimpleQueue[Request](), threading.Lock()
        for request in work:
            todo.put(request)
        url = f"{self.process.base_url}/SQSManager"

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

    def drain(self, timeout: float, queue_url: str | None = None,
              check: Callable[[], tuple[bool, int]] | None = None, quiet_checks: int = 3) -> float:
        """Seconds until the queue (the main one by default) holds nothing, visible or in flight,
        for `quiet_checks` checks a second apart. With `check()` (complete?, stored so far): until
        the queue is empty and it says complete, or stored stays the same that long (R6: longer
        than the stream poller's longest pause between retries, 5 s, so nothing is on its way)."""
        started, quiet, last = time.monotonic(), 0, None if check is None else -1
        while time.monotonic() - started < timeout:
            complete, stored = check() if check else (False, None)
            if queue_depth(self.sqs, queue_url or self.queue_url) == 0:
                quiet = quiet + 1 if stored == last else 0
                if complete or quiet >= quiet_checks:
                    return time.monotonic() - started
            last = stored
            time.sleep(1.0)
        raise TimeoutError(f"{queue_url or self.queue_url} did not settle in {timeout} s")

    def table(self) -> Snapshot:
        snapshot = Snapshot()
        for record in map(from_map, scan(self.dynamodb, DEFAULT_TABLE)):
            if str(record["pk"]).startswith(REQUEST_PREFIX):
                snapshot.outcomes[str(record["requestId"])] = record
            elif str(record["pk"]).startswith(ITEM_PREFIX):
                snapshot.items[str(record["id"])] = record
        return snapshot

    def peek(self, queue_url: str) -> list[str]:
        """The requestIds of the messages in a queue (a DLQ), left there: received with a long
        visibility timeout, then made visible again."""
        found: dict[str, str] = {}
        handles = []
        for _ in range(10_000):  # bounded
            messages = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                VisibilityTimeout=120, MessageAttributeNames=["All"]).get("Messages", [])
            if not messages:
                break
            for message in messages:
                attribute = (message.get("MessageAttributes") or {}).get(REQUEST_ID) or {}
                found[message["MessageId"]] = attribute.get("StringValue") or message["MessageId"]
                handles.append(message["ReceiptHandle"])
        for start in range(0, len(handles), 10):
            self.sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start:start + 10])])
        return list(found.values())

    def account(self, accepted: dict[str, Request]) -> Accounting:
        return account(accepted, self.table(), self.peek(self.dlq_url))


@contextmanager
def stack(log_dir: Path | None, name: str, faults: RandomFaults | None = None,
          crash_every: int = 0, pollers: int | None = None,
          visibility_timeout: int | None = VISIBILITY_TIMEOUT,
          events_faults: RandomFaults | None = None, stream_crash_every: int = 0
          ) -> Iterator[Stack]:
    """log_dir None: a temporary one. visibility_timeout None: the queue's own (infra's), as on
    AWS. events_faults: the pipeline's EventBridge calls go through a second proxy: botocore
    honours AWS_ENDPOINT_URL_EVENTBRIDGE (from the service id, "EventBridge"), and only the
    event source's publisher calls the bus without an explicit endpoint."""
    args: list[str] = []
    for option, value in (("--visibility-timeout", visibility_timeout),
                          ("--crash-every", crash_every), ("--concurrency", pollers),
                          ("--stream-crash-every", stream_crash_every)):
        if value:
            args += [option, str(value)]
    proxy = FaultProxy(None).start()  # its target's port is known once the process runs
    proxy.random = faults
    env = {"AWS_ENDPOINT_URL_DYNAMODB": proxy.url}
    events_proxy = FaultProxy(None).start() if events_faults is not None else None
    if events_proxy is not None:
        events_proxy.random = events_faults
        env["AWS_ENDPOINT_URL_EVENTBRIDGE"] = events_proxy.url
    try:
        with pipeline(DYNAMODB_LOCAL, *args, log_dir=log_dir, name=name, env=env) as process:
            proxy.forward_to(process.dynamodb_endpoint_url)
            if events_proxy is not None:
                events_proxy.forward_to(process.endpoint_url)
            yield Stack(process, proxy, events_proxy)
    finally:
        for started in (proxy, events_proxy):
            if started is not None:
                started.stop()


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def report(title: str, rows: list[list[Any]], notes: Sequence[str] = (),
           seconds: dict[str, float] | None = None, value: str = "count", more: str = "") -> None:
    """A run's figures: its title, a table of (what, value), `more`, example notes, durations."""
    print(f"\n## {title}\n\n{table(['what', value], rows)}{more}")
    for text in notes:
        print(f"  {text}")
    if seconds:
        print("\nseconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
