"""What a load run records: its settings, and for every request when it was due, sent, answered
and seen applied, in seconds since the run's start (bench/load/runner.py says how)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RequestRecord:
    index: int
    item_id: str
    operation: str
    due: float  # when it should have been sent
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

    def _since_due(self, moment: float | None) -> float | None:
        return None if moment is None else moment - self.due

    @property
    def post_latency(self) -> float | None:
        return self._since_due(self.answered)

    @property
    def applied_lag(self) -> float | None:
        return self._since_due(self.outcome_seen)

    @property
    def handled_lag(self) -> float | None:
        """POST -> applied by the stack's own record (handledAt), from the due time."""
        return self._since_due(self.handled)

    @property
    def received_lag(self) -> float | None:
        """Due time -> API Gateway's stamp (requestTimeEpoch): the client and the gateway."""
        return self._since_due(self.received)

    @property
    def resolution(self) -> float | None:
        if self.outcome_seen is None:
            return None
        before = self.last_pending if self.last_pending is not None else self.answered
        return self.outcome_seen - (before if before is not None else self.due)


@dataclass(frozen=True)
class LoadConfig:
    post_url: str
    read_url: str  # base of GET /requests/{id}
    rate: float | None = None  # open loop, requests/s
    concurrency: int | None = None  # closed loop, workers
    count: int | None = None
    duration: float | None = None
    connections: int = 64
    timeout: float = 30.0
    api_key: str | None = None
    # SigV4 headers for (url, method, body, headers): scripts/sigv4.Signer.headers; POSTs and reads.
    sign: Callable[..., dict[str, str]] | None = None
    poll: bool = True
    poll_concurrency: int = 4
    poll_first: float = 0.1
    poll_backoff: float = 1.5
    poll_max_interval: float = 1.0
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
