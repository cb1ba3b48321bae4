"""The load loop: POST commands (open or closed loop), then read each outcome back.

Times are seconds since the run's start (time.perf_counter). In rate mode (open loop) request i
is due at i / rate and its latency counts from then, not from when it was actually sent, so a
slow server or a busy client cannot hide delays (coordinated omission). In concurrency mode
(closed loop) each worker sends its next request when the previous one answered.

Outcomes are polled with bounded concurrency and a per-request backoff; POST->applied is the
time the outcome was first seen, and `resolution` is how long before that it was last seen
pending (the true moment lies in between). An outcome also says when API Gateway received the
request (`requestTimeEpoch`) and when the consumer recorded it (`handledAt`): those give
POST->applied exactly, on the stack's clock (the same as this machine's locally; NTP-synced on
AWS), however late it was read, so `poll_after` can defer every read until the POSTs are done
and keep the reads' load off the stack while it is measured.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from tqdm import tqdm
from yarl import URL

from bench.load.records import LoadConfig, LoadRun, RequestRecord, Workload

# A request's first poll this long after its POST's answer; each later one waits 1.5 times
# longer, at most 1 s.
POLL_FIRST, POLL_BACKOFF, POLL_MAX_INTERVAL = 0.1, 1.5, 1.0
HTTP_TIMEOUT = 30.0  # seconds, per request


def _json_object(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class _Poller:
    """Reads outcomes: a heap of (due time, record), `poll_concurrency` GETs in flight at most."""

    def __init__(self, run: LoadRun, session: aiohttp.ClientSession, clock: Callable[[], float],
                 progress: tqdm[Any]) -> None:
        self.run, self.config, self.session = run, run.config, session
        self.clock, self.progress = clock, progress
        self.heap: list[tuple[float, int, RequestRecord, float]] = []
        self.sequence = itertools.count()
        self.posting = True
        self.polling_since = 0.0  # with poll_after: when the POSTs were done
        self.in_flight = 0  # GETs under way: their records may come back to the heap

    def push(self, record: RequestRecord, due: float, interval: float = POLL_FIRST) -> None:
        heapq.heappush(self.heap, (due, next(self.sequence), record, interval))

    async def worker(self) -> None:
        while self.posting or self.heap or self.in_flight:
            if not self.heap or (self.config.poll_after and self.posting):
                await asyncio.sleep(0.02)
                continue
            due, _, record, interval = self.heap[0]
            now = self.clock()
            if due > now:  # wake up again soon: an earlier entry may be pushed meanwhile
                await asyncio.sleep(min(due - now, 0.02))
                continue
            heapq.heappop(self.heap)
            assert record.answered is not None
            if now - max(record.answered, self.polling_since) > self.config.outcome_timeout:
                self.progress.update(1)  # given up: no outcome
                continue
            self.in_flight += 1
            try:
                await self._poll(record, interval)
            finally:
                self.in_flight -= 1

    async def _poll(self, record: RequestRecord, interval: float) -> None:
        assert record.request_id is not None
        url = f"{self.config.read_url}/requests/{quote(record.request_id, safe='')}"
        headers = self.config.sign(url) if self.config.sign else {}
        started = self.clock()
        record.polls += 1
        try:
            async with self.session.get(URL(url, encoded=True), headers=headers) as response:
                status, text = response.status, await response.text()
        except (TimeoutError, aiohttp.ClientError) as error:
            status, text = 0, type(error).__name__
        seen = self.clock()
        body = _json_object(text)
        if status == 200 and body.get("status") in ("applied", "rejected"):
            record.outcome, record.outcome_seen = str(body["status"]), seen
            record.received = self._run_seconds(body.get("requestTimeEpoch"))
            record.handled = self._run_seconds(body.get("handledAt"))
            self.progress.update(1)
            return
        if status == 404 and body.get("status") == "pending":
            record.last_pending = started
        else:
            key = f"HTTP {status}" if status else text
            self.run.poll_errors[key] = self.run.poll_errors.get(key, 0) + 1
        interval = min(interval * POLL_BACKOFF, POLL_MAX_INTERVAL)
        self.push(record, seen + interval, interval)

    def _run_seconds(self, epoch_ms: Any) -> float | None:
        if not isinstance(epoch_ms, int) or isinstance(epoch_ms, bool):
            return None
        return epoch_ms / 1000 - self.run.started_epoch


async def run_load(config: LoadConfig, workload: Workload) -> LoadRun:
    if (config.rate is None) == (config.concurrency is None):
        raise ValueError("give exactly one of rate and concurrency")
    if config.count is None and config.duration is None:
        raise ValueError("give a count, a duration, or both")
    run = LoadRun(config)
    post_headers = {"Content-Type": "application/json"}
    if config.api_key:
        post_headers["x-api-key"] = config.api_key
    started = time.perf_counter()
    run.started_epoch = time.time()

    def clock() -> float:
        return time.perf_counter() - started

    sent_bar = tqdm(total=config.count, desc="POST", unit="req", disable=not config.progress)
    outcome_bar = tqdm(total=None, desc="outcomes", unit="req",
                       disable=not (config.progress and config.poll))
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config.connections + config.poll_concurrency),
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)) as session:
        poller = _Poller(run, session, clock, outcome_bar)
        post_slots = asyncio.Semaphore(config.connections)

        def next_request(index: int, due: float) -> Awaitable[None] | None:
            """Request `index`, due at `due`, to send; None once the run has sent all it should."""
            if (config.count is not None and index >= config.count) or (
                    config.duration is not None and due >= config.duration):
                return None
            item_id, operation, body = workload.command(index)
            record = RequestRecord(index, item_id, operation, due)
            run.records.append(record)
            return post(record, body)

        async def post(record: RequestRecord, body: bytes) -> None:
            async with post_slots:  # beyond `connections` in flight, requests wait (and it counts)
                headers = post_headers if config.sign is None else {
                    **post_headers, **config.sign(config.post_url, "POST", body, post_headers)}
                record.sent = clock()
                try:
                    async with session.post(config.post_url, data=body,
                                            headers=headers) as response:
                        record.http_status, text = response.status, await response.text()
                except (TimeoutError, aiohttp.ClientError) as error:
                    record.error, text = type(error).__name__, ""
                record.answered = clock()
            sent_bar.update(1)
            request_id = _json_object(text).get("requestId") if record.http_status == 202 else None
            if isinstance(request_id, str) and request_id:
                record.request_id = request_id
                if config.poll:
                    outcome_bar.total = (outcome_bar.total or 0) + 1
                    poller.push(record, record.answered + POLL_FIRST)

        pollers = [asyncio.create_task(poller.worker())
                   for _ in range(config.poll_concurrency if config.poll else 0)]
        if config.rate is not None:
            await _open_loop(config.rate, next_request, clock)
        else:
            assert config.concurrency is not None
            await _closed_loop(config.concurrency, next_request, clock)
        run.send_seconds = max((r.answered or 0.0) for r in run.records) if run.records else 0.0
        poller.polling_since = clock()
        poller.posting = False
        await asyncio.gather(*pollers)
        run.total_seconds = clock()
    sent_bar.close()
    outcome_bar.close()
    return run


NextRequest = Callable[[int, float], Awaitable[None] | None]


async def _open_loop(rate: float, next_request: NextRequest, clock: Callable[[], float]) -> None:
    tasks: set[asyncio.Future[None]] = set()
    for index in itertools.count():
        due = index / rate
        request = next_request(index, due)
        if request is None:
            break
        if (delay := due - clock()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(request)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


async def _closed_loop(concurrency: int, next_request: NextRequest,
                       clock: Callable[[], float]) -> None:
    counter = itertools.count()

    async def worker() -> None:
        while (request := next_request(next(counter), clock())) is not None:
            await request

    await asyncio.gather(*(worker() for _ in range(concurrency)))
