"""The load loop: POST commands (open or closed loop), then read each outcome back.

Times are seconds since the run's start (time.perf_counter). In rate mode (open loop) request i
is due at i / rate and its latency counts from then, not from when it was actually sent, so a
slow server or a busy client cannot hide delays (coordinated omission). In concurrency mode
(closed loop) each worker sends its next request when the previous one answered.

Each accepted request's outcome is polled with a backoff, `poll_concurrency` GETs in flight at
most; `resolution` is how long before it was seen it was last seen pending. The outcome's
`requestTimeEpoch` and `handledAt` give POST->applied exactly, on the stack's clock, however late
it was read: so `poll_after` can keep every read off the stack until the POSTs are done.
"""

from __future__ import annotations

import asyncio
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
    """Follows accepted requests until their outcome is seen or `outcome_timeout` passed (counted
    from the POST's answer, or from the end of the POSTs if that is later)."""

    def __init__(self, run: LoadRun, session: aiohttp.ClientSession, clock: Callable[[], float],
                 progress: tqdm[Any]) -> None:
        self.run, self.config, self.session = run, run.config, session
        self.clock, self.progress = clock, progress
        self.slots = asyncio.Semaphore(self.config.poll_concurrency)
        self.posted = asyncio.Event()  # every POST answered
        self.polling_since = 0.0  # when the POSTs were done
        self.following: set[asyncio.Task[None]] = set()

    def follow(self, record: RequestRecord) -> None:
        task = asyncio.create_task(self._follow(record))
        self.following.add(task)
        task.add_done_callback(self.following.discard)

    async def done_posting(self) -> None:
        self.polling_since = self.clock()
        self.posted.set()
        await asyncio.gather(*self.following)

    async def _follow(self, record: RequestRecord) -> None:
        assert record.answered is not None
        interval = POLL_FIRST
        await asyncio.sleep(POLL_FIRST)
        if self.config.poll_after:
            await self.posted.wait()
        while True:
            async with self.slots:
                if (self.clock() - max(record.answered, self.polling_since)
                        > self.config.outcome_timeout or await self._poll(record)):
                    break
            interval = min(interval * POLL_BACKOFF, POLL_MAX_INTERVAL)
            await asyncio.sleep(interval)
        self.progress.update(1)  # seen, or given up: no outcome

    async def _poll(self, record: RequestRecord) -> bool:
        """One GET of the outcome; True once it is applied or rejected."""
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
        body = _json_object(text)
        if status == 200 and body.get("status") in ("applied", "rejected"):
            record.outcome, record.outcome_seen = str(body["status"]), self.clock()
            record.received = self._run_seconds(body.get("requestTimeEpoch"))
            record.handled = self._run_seconds(body.get("handledAt"))
            return True
        if status == 404 and body.get("status") == "pending":
            record.last_pending = started
        else:
            key = f"HTTP {status}" if status else text
            self.run.poll_errors[key] = self.run.poll_errors.get(key, 0) + 1
        return False

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
                    poller.follow(record)

        if config.rate is not None:
            await _open_loop(config.rate, next_request, clock)
        else:
            assert config.concurrency is not None
            await _closed_loop(config.concurrency, next_request, clock)
        run.send_seconds = max((r.answered or 0.0) for r in run.records) if run.records else 0.0
        await poller.done_posting()
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
