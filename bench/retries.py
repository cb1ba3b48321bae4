"""R5, recovery: how soon requests are applied when DynamoDB fails, with the queue's own
visibility timeout (360 s, as on AWS) and the consumer pacing its retries (docs/reliability.md,
"R5").

    .venv/bin/python -m bench.retries faults --requests 1000     # 10% transient faults
    .venv/bin/python -m bench.retries hotkey --requests 2400     # 8 writers, 2 items
    .venv/bin/python -m bench.retries outage --minutes 2 --requests 600

R1's pipeline and accounting (bench/reliability_stack.py, bench/reliability_workload.py) without
its short visibility timeout. POST->applied is each outcome's `handledAt` minus its
`requestTimeEpoch`, read from the table once the queue is drained.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from bench.output import machine, parser
from bench.reliability_stack import Pacer, Sent, Stack, progress, report, stack
from bench.reliability_workload import WRITE, Accounting, Request, account, workload
from chalicelib.commands import parse_command
from devstack.faults import RandomFaults
from devstack.resources import queue_depth


class RatePacer(Pacer):
    """Lets one request through every 1 / rate seconds, whatever the backlog."""

    def __init__(self, rate: float) -> None:
        self.interval = 1 / rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self, timeout: float = 600.0) -> None:
        with self._lock:
            slot = self._next = max(self._next, time.monotonic()) + self.interval
        time.sleep(max(0.0, slot - self.interval - time.monotonic()))


@dataclass
class RecoveryResult:
    scenario: str
    sent: Sent
    accounting: Accounting
    dlq: int
    latencies: list[float]  # POST -> outcome recorded, seconds, per accepted request
    applied_latencies: list[float]  # the same, of the applied ones only
    after_back: float | None  # outage: last outcome recorded this long after DynamoDB was back
    retries: int  # consumer "retry" log lines
    outages: int  # consumer "outage" log lines (batches that failed alike)
    seconds: float


def run(scenario: str, count: int, seed: int, fault_rate: float = 0.1,
        minutes: float = 2.0, log_dir: Path | None = None) -> RecoveryResult:
    if scenario == "hotkey":
        work = workload(count, 2, seed, prefix="hot-", conditional_share=0, gateway_invalid=0,
                        consumer_invalid=0)
        threads = 8
    elif scenario == "outage":
        work = [_put(f"outage-{n:05d}", n) for n in range(count)]
        threads = 4
    else:
        work = workload(count, max(10, count // 20), seed, prefix=f"{scenario}-")
        threads = 4
    faults = RandomFaults(fault_rate, seed) if scenario == "faults" else None
    with stack(log_dir, scenario, faults, visibility_timeout=None) as target:
        started = time.monotonic()
        back_ms: int | None = None
        if scenario == "outage":
            target.proxy.down = True
            sent = target.send(work, threads, RatePacer(count / (minutes * 60)))
            time.sleep(max(0.0, started + minutes * 60 - time.monotonic()))
            target.proxy.down = False
            back_ms = int(time.time() * 1000)
            progress(f"DynamoDB back after {time.monotonic() - started:.0f} s; "
                     f"{queue_depth(target.sqs, target.queue_url)} in the queue")
        else:
            sent = target.send(work, threads, target.pacer(200))
        progress(f"sent {count} in {time.monotonic() - started:.0f} s; draining")
        target.drain(1800)
        return _result(scenario, target, sent, target.peek(target.dlq_url), back_ms,
                       time.monotonic() - started)


def _put(item_id: str, value: int) -> Request:
    """A put of its own item: it can only be applied, so that what the outage run measures is
    how soon, not the in-order window's waits (a young update of a missing item waits 14 s)."""
    body = json.dumps({"operation": "put", "id": item_id, "item": {"n": value}})
    return Request(WRITE, item_id, body, parse_command(body))


def _result(scenario: str, target: Stack, sent: Sent, dlq: list[str], back_ms: int | None,
            seconds: float) -> RecoveryResult:
    snapshot = target.table()
    accepted: dict[str, Request] = sent.accepted
    outcomes = [snapshot.outcomes[r] for r in accepted if r in snapshot.outcomes]
    latencies = [(float(o["handledAt"]) - float(o["requestTimeEpoch"])) / 1000 for o in outcomes]
    applied = [seconds for seconds, o in zip(latencies, outcomes, strict=True)
               if o["status"] == "applied"]
    after_back = None
    if back_ms is not None and outcomes:
        after_back = (max(float(o["handledAt"]) for o in outcomes) - back_ms) / 1000
    return RecoveryResult(scenario, sent, account(accepted, snapshot, dlq), len(dlq), latencies,
                          applied, after_back, target.log_count('"message": "retry"'),
                          target.log_count('"message": "outage'), seconds)


def figures(result: RecoveryResult) -> list[list[Any]]:
    accounting, latencies = result.accounting, result.latencies
    rows: list[list[Any]] = [
        ["accepted (202)", accounting.accepted],
        ["applied / rejected", f"{accounting.applied:,} / {accounting.rejected:,}"],
        ["in the DLQ", result.dlq],
        ["lost", accounting.lost],
        ["applied twice / version short",
         f"{accounting.applied_twice} / {accounting.version_short}"],
        ["wrong items (of plain items)", f"{accounting.wrong_items} of {accounting.plain_items}"],
        ["messages retried / batches failed as an outage", f"{result.retries} / {result.outages}"],
        ["POST->outcome p50 / p99 / max (s)", " / ".join(
            f"{float(v):.1f}" for v in numpy.percentile(latencies, [50, 99, 100]))],
        # Rejections include failed conditions that waited for earlier requests (2, 4, 8 s).
        ["POST->applied max, applied only (s)", f"{max(result.applied_latencies):.1f}"],
    ]
    if result.after_back is not None:
        rows.append(["last applied after DynamoDB was back (s)", f"{result.after_back:.1f}"])
    rows.append(["run (s)", f"{result.seconds:.0f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    cli = parser("bench.retries", __doc__)
    cli.add_argument("scenario", choices=["faults", "hotkey", "outage"])
    cli.add_argument("--requests", type=int, default=1000)
    cli.add_argument("--fault-rate", type=float, default=0.1, help="faults (default 0.1)")
    cli.add_argument("--minutes", type=float, default=2.0, help="outage (default 2)")
    cli.add_argument("--seed", type=int, default=1)
    cli.add_argument("--log-dir", type=Path, default=None)
    args = cli.parse_args(argv)
    print(f"machine: {machine()}", flush=True)
    result = run(args.scenario, args.requests, args.seed, args.fault_rate, args.minutes,
                 args.log_dir)
    report(f"{args.scenario}: {args.requests:,} requests", figures(result), value="value")
    accounting = result.accounting
    good = (accounting.lost == accounting.applied_twice == accounting.wrong_items == 0
            and not result.sent.errors)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
