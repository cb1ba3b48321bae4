"""Reliability at volume (docs/reliability.md): R1, accounting under faults; R2, duplicates; R6,
the change stream under faults (bench/reliability_history.py).

    .venv/bin/python -m bench.reliability r1 --requests 10000 --fault-rate 0.1 --crashes 3
    .venv/bin/python -m bench.reliability r2 --requests 10000
    .venv/bin/python -m bench.reliability r6 --requests 2000 --fault-rate 0.1 --crashes 5

Each starts the pipeline as a real process (`python -m devstack --store dynamodb-local`) with a
3 s visibility timeout; docs/reliability.md says what each run does and counts.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.output import machine, parser, table
from bench.reliability_history import R6Result, run_r6
from bench.reliability_stack import Pacer, Sent, Stack, progress, report, stack
from bench.reliability_workload import GATEWAY_INVALID, Accounting, comparable, workload
from chalicelib.commands import REQUEST_ID, REQUEST_TIME_EPOCH
from devstack.faults import RandomFaults
from devstack.redrive import redrive

ITEMS_PER_REQUEST = 20  # 10,000 requests over 500 items


# -- R1 -------------------------------------------------------------------------------------------

@dataclass
class R1Result:
    requests: int
    sent: Sent
    faults: RandomFaults
    crashes: int
    transient_retries: int  # consumer "retry" log lines: a message failed and went back
    dlq_moves: int  # poller's "DLQ" log lines
    client_timeouts: int  # proxied calls the consumer stopped waiting for (its 2 s read timeout)
    first: Accounting  # before the redrive
    redriven: int
    final: Accounting
    seconds: dict[str, float]

    @property
    def holds(self) -> bool:
        final = self.final
        return (final.lost == final.applied_twice == final.wrong_items == 0
                and final.version_short == final.invalid_not_rejected == 0)

    def report(self) -> None:
        faults = self.faults
        report(f"R1: {self.requests:,} requests, fault rate {faults.rate}, seed {faults.seed}", [
            ["requests sent", self.requests],
            ["refused by the gateway (4xx, not accepted)", self.sent.refused],
            ["  of which valid bodies", self.sent.refused_valid],
            ["no answer or 5xx from the gateway", len(self.sent.errors)],
            ["accepted (202)", len(self.sent.accepted)],
            ["DynamoDB requests through the fault proxy", faults.seen],
            ["faults injected", faults.total_injected],
            *[[f"  {kind}", n] for kind, n in sorted(faults.injected.items())],
            ["consumer crashes mid-batch", self.crashes],
            ["messages retried after a transient failure", self.transient_retries],
            ["calls the consumer stopped waiting for (read timeout)", self.client_timeouts],
            ["moves to the DLQ", self.dlq_moves],
            ["redriven from the DLQ", self.redriven]], self.final.examples, self.seconds,
            more="\n\n### Accounting (accepted = applied + rejected + in the DLQ only + lost)\n\n"
            + table(["", "after the run", "after redrive"], [
                [name, value, final] for (name, value), (_, final)
                in zip(self.first.rows(), self.final.rows(), strict=True)]))


def run_r1(count: int, fault_rate: float, crashes: int, seed: int, threads: int = 4,
           max_backlog: int = 200, drain_timeout: float = 1800.0,
           log_dir: Path | None = None) -> R1Result:
    work = workload(count, max(10, count // ITEMS_PER_REQUEST), seed)
    # About `crashes` crashes: invocations are about count / 10 (full batches under a backlog).
    crash_every = max(2, count // (10 * max(1, crashes))) if crashes else 0
    faults = RandomFaults(fault_rate, seed)
    with stack(log_dir, "r1", faults, crash_every) as target:
        started = time.monotonic()
        sent = target.send(work, threads, target.pacer(max_backlog))
        seconds = {"send": time.monotonic() - started}
        progress(f"sent {count} in {seconds['send']:.0f} s; draining")
        seconds["drain after send"] = target.drain(drain_timeout)
        progress("drained; accounting, then redriving the DLQ")
        first = target.account(sent.accepted)
        redriven = redrive(target.sqs, target.dlq_url, target.queue_url)
        seconds["redrive + drain"] = target.drain(drain_timeout)
        final = target.account(sent.accepted)
        seconds["total"] = time.monotonic() - started
        return R1Result(count, sent, faults, target.log_count("crash #"),
                        target.log_count('"message": "retry"'),
                        target.log_count(" DLQ messageId="), target.proxy.client_gone,
                        first, redriven, final, seconds)


# -- R2 -------------------------------------------------------------------------------------------

@dataclass
class R2Result:
    messages: int
    items_compared: int
    outcomes_compared: int
    items_differing: list[str]
    outcomes_differing: list[str]
    seconds: dict[str, float]

    @property
    def holds(self) -> bool:
        return not self.items_differing and not self.outcomes_differing

    def report(self) -> None:
        report(f"R2: {self.messages:,} messages, each delivered twice vs once", [
            ["messages (single run)", self.messages],
            ["deliveries (double run)", self.messages * 2],
            ["outcomes compared", self.outcomes_compared],
            ["items compared (tombstones too)", self.items_compared],
            ["outcomes differing", len(self.outcomes_differing)],
            ["items differing", len(self.items_differing)]],
            [f"differs: {key}" for key in (self.items_differing + self.outcomes_differing)[:10]],
            self.seconds)


def r2_messages(count: int, seed: int) -> list[dict[str, Any]]:
    """SendMessageBatch entries with chosen stamps, one hour old (past the in-order window)."""
    work = [r for r in workload(count, max(10, count // ITEMS_PER_REQUEST), seed)
            if r.kind != GATEWAY_INVALID]
    base = int(time.time() * 1000) - 3_600_000
    return [{"MessageBody": r.body, "MessageAttributes": {
        REQUEST_ID: {"DataType": "String", "StringValue": f"r2-{seed}-{n:06d}"},
        REQUEST_TIME_EPOCH: {"DataType": "Number", "StringValue": str(base + n)}}}
        for n, r in enumerate(work)]


def twice(messages: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Every message twice: the originals in order, each duplicate somewhere after its own."""
    rng = random.Random(seed)
    keyed = [(float(n), 0, m) for n, m in enumerate(messages)]
    keyed += [(rng.uniform(n, len(messages)), 1, m) for n, m in enumerate(messages)]
    return [m for _, _, m in sorted(keyed, key=lambda k: (k[0], k[1]))]


def send_direct(target: Stack, messages: list[dict[str, Any]], pacer: Pacer) -> None:
    for start in range(0, len(messages), 10):
        pacer.wait()
        entries = [{"Id": str(i), **m} for i, m in enumerate(messages[start:start + 10])]
        failed = target.sqs.send_message_batch(QueueUrl=target.queue_url,
                                               Entries=entries).get("Failed")
        if failed:
            raise RuntimeError(f"SendMessageBatch failed: {json.dumps(failed)[:500]}")


def run_r2(count: int, seed: int, max_backlog: int = 200, drain_timeout: float = 1800.0,
           log_dir: Path | None = None) -> R2Result:
    messages = r2_messages(count, seed)
    tables, seconds = [], {}
    for name, delivered in (("single delivery", messages),
                            ("double delivery", twice(messages, seed))):
        # One poller: each run applies the messages in the order they were sent, so the only
        # difference between the two runs is the duplicates (several pollers would also reorder
        # conditional writes, which standard mode judges on arrival).
        with stack(log_dir, f"r2-{name.split()[0]}", pollers=1) as target:
            started = time.monotonic()
            send_direct(target, delivered, target.pacer(max_backlog))
            progress(f"{name}: sent {len(delivered)} messages; draining")
            target.drain(drain_timeout)
            tables.append(comparable(target.table()))
            seconds[name] = time.monotonic() - started
    (items_once, outcomes_once), (items_twice, outcomes_twice) = tables
    items, outcomes = set(items_once) | set(items_twice), set(outcomes_once) | set(outcomes_twice)
    return R2Result(len(messages), len(items), len(outcomes),
                    sorted(k for k in items if items_once.get(k) != items_twice.get(k)),
                    sorted(k for k in outcomes if outcomes_once.get(k) != outcomes_twice.get(k)),
                    seconds)


def main(argv: list[str] | None = None) -> int:
    cli = parser("bench.reliability", __doc__)
    cli.add_argument("run", choices=["r1", "r2", "r6"])
    cli.add_argument("--requests", type=int, default=10_000, choices=range(1, 100_001),
                     metavar="1..100000")
    cli.add_argument("--fault-rate", type=float, default=0.1, help="R1, R6 (default 0.1)")
    cli.add_argument("--crashes", type=int, default=3, help="R1, R6: about this many (3)")
    cli.add_argument("--seed", type=int, default=1)
    cli.add_argument("--threads", type=int, default=4, help="R1, R6 HTTP senders (default 4)")
    cli.add_argument("--max-backlog", type=int, default=200)
    cli.add_argument("--drain-timeout", type=float, default=1800.0)
    cli.add_argument("--log-dir", type=Path, default=None,
                     help="keep the pipeline's logs here (default: a temporary directory)")
    args = cli.parse_args(argv)
    print(f"machine: {machine()}", flush=True)
    common = {"max_backlog": args.max_backlog, "drain_timeout": args.drain_timeout,
              "log_dir": args.log_dir}
    if args.run == "r2":
        result: R1Result | R2Result | R6Result = run_r2(args.requests, args.seed, **common)
    else:
        result = (run_r1 if args.run == "r1" else run_r6)(
            args.requests, args.fault_rate, args.crashes, args.seed, args.threads, **common)
    result.report()
    return 0 if result.holds else 1


if __name__ == "__main__":
    sys.exit(main())
