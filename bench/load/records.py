"""What a load run sends (unique creates, or a mix over a set of ids) and records: its settings,
and for every request when it was due, sent, answered and seen applied, in seconds since the
run's start (bench/load/runner.py says how)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

# Operation weights of --mix: mostly writes that can succeed, some that a set of shared ids
# makes conflict (a create of an existing id, an update of a deleted one is rejected).
MIX_WEIGHTS = {"create": 2, "update": 4, "put": 3, "delete": 1}


class Workload:
    """Command number i of a run: (item id, operation, body); deterministic for a run tag and
    seed."""

    def __init__(self, run_tag: str, mix: bool = False, ids: int = 50, seed: int = 1) -> None:
        self.run_tag, self.mix, self.ids = run_tag, mix, ids
        self.random = random.Random(seed)

    def command(self, index: int) -> tuple[str, str, bytes]:
        item_id, operation = f"load-{self.run_tag}-{index}", "create"
        if self.mix:
            item_id = f"load-{self.run_tag}-{self.random.randrange(self.ids)}"
            operation = self.random.choices(list(MIX_WEIGHTS), list(MIX_WEIGHTS.values()))[0]
        document: dict[str, object] = {"operation": operation, "id": item_id}
        if operation != "delete":
            document["item"] = {"name": "load test", "n": index}
        return item_id, operation, json.dumps(document).encode()


@dataclass
class RequestRecord:
    index: int
    item_id: str
    operation: str
    due: float  # when it should have been sent; latencies count from it
    sent: float | None = None
    answered: float | None = None
    http_status: int | None = None  # None: no HTTP answer (see error)
    error: str | None = None
    request_id: str | None = None
    outcome: str | None = None  # applied, rejected, or None (never seen)
    outcome_seen: float | None = None
    last_pending: float | None = None  # when the last poll that found it pending was sent
    polls: int = 0
    received: float | None = None  # the outcome's requestTimeEpoch, in this run's seconds
    handled: float | None = None  # the outcome's handledAt, in this run's seconds

    def lags(self) -> dict[str, float | None]:
        """From the due time: to the POST's answer (post_latency), the outcome first seen
        (applied_lag), API Gateway's stamp (received_lag), the stack's own record of applying
        it (handled_lag); and how long before the outcome was seen it was last seen pending
        (resolution)."""
        since_due = {name: None if moment is None else moment - self.due for name, moment in (
            ("post_latency", self.answered), ("applied_lag", self.outcome_seen),
            ("received_lag", self.received), ("handled_lag", self.handled))}
        before = next(t for t in (self.last_pending, self.answered, self.due) if t is not None)
        return {**since_due, "resolution": None if self.outcome_seen is None
                else self.outcome_seen - before}


@dataclass(frozen=True)
class LoadConfig:
    post_url: str
    read_url: str  # base of GET /requests/{id}
    rate: float | None = None  # open loop, requests/s
    concurrency: int | None = None  # closed loop, workers
    count: int | None = None
    duration: float | None = None
    connections: int = 64
    api_key: str | None = None
    # SigV4 headers for (url, method, body, headers): scripts/sigv4.Signer.headers; POSTs and reads.
    sign: Callable[..., dict[str, str]] | None = None
    poll: bool = True
    poll_concurrency: int = 4
    poll_after: bool = False  # read no outcome before every POST is answered
    outcome_timeout: float = 120.0
    progress: bool = True


@dataclass
class LoadRun:
    config: LoadConfig
    records: list[RequestRecord] = field(default_factory=list)
    send_seconds: float = 0.0  # first due time to last POST answer
    total_seconds: float = 0.0  # until the last outcome was seen or given up
    poll_errors: dict[str, int] = field(default_factory=dict)
    started_epoch: float = 0.0  # time.time() at the run's time 0
