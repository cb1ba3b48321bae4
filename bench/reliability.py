"""Reliability at volume (docs/reliability.md): R1, accounting under faults; R2, duplicates; R6,
the change stream under faults (bench/reliability_history.py).

    .venv/bin/python -m bench.reliability r1 --requests 10000 --fault-rate 0.1 --crashes 3
    .venv/bin/python -m bench.reliability r2 --requests 10000
    .venv/bin/python -m bench.reliability r6 --requests 2000 --fault-rate 0.1 --crashes 5

Both start the pipeline as a real process (`python -m devstack --store dynamodb-local`: SQS on
moto, the table on Amazon's DynamoDB Local, the consumer running a batch's items concurrently),
with a short visibility timeout (3 s) so that failed and abandoned messages come back quickly.

R1: every DynamoDB call of the pipeline goes through a fault proxy (devstack/faults.py) that fails
it with probability --fault-rate (seeded; throttling, 500 before, and 500 after the store served
it), and every Nth invocation of the consumer dies mid-batch (`--crash-every`, chosen to give
about --crashes crashes: part of the batch handled, nothing deleted). The requests go to the
gateway over HTTP (keep-alive sessions, a few threads), paced to keep the queue's backlog under
--max-backlog (a request older than the in-order window is judged on arrival). Once the queue
is drained the whole table and the DLQ are read and accounted (bench/reliability_workload.py);
then the DLQ is redriven, the queue drained again, and the accounting repeated.

R2: no faults; the same messages (chosen requestIds and requestTimeEpochs, one hour old, so that
conditions are judged at once and the outcome cannot depend on timing) sent straight to the
queue, in stamp order: once to one pipeline, and to a second one with every message sent twice,
each duplicate at a random later place. The tables must be identical, outcomes included.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.output import machine, table
from bench.reliability_history import print_r6, run_r6
from bench.reliability_stack import Pacer, Sent, drain, progress, send_http, stack
from bench.reliability_workload import (
    GATEWAY_INVALID,
    Accounting,
    Snapshot,
    account,
    comparable,
    peek_queue,
    read_table,
    workload,
)
from chalicelib.commands import REQUEST_ID, REQUEST_TIME_EPOCH
from devstack.faults import RandomFaults
from devstack.redrive import redrive
from devstack.resources import DEFAULT_TABLE

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


def run_r1(count: int, fault_rate: float, crashes: int, seed: int, threads: int = 4,
           max_backlog: int = 200, drain_timeout: float = 1800.0,
           log_dir: Path | None = None) -> R1Result:
    work = workload(count, max(10, count // ITEMS_PER_REQUEST), seed)
    # About `crashes` crashes: invocations are about count / 10 (full batches under a backlog).
    crash_every = max(2, count // (10 * max(1, crashes))) if crashes else 0
    faults = RandomFaults(fault_rate, seed)
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp, \
            stack(log_dir or Path(tmp), "r1", faults, crash_every) as target:
            sqs = target.sqs()
            queue_url, dlq_url = target.queue_urls()
            dynamodb = target.dynamodb()
            seconds: dict[str, float] = {}
            started = time.monotonic()
            sent = send_http(target, work, threads, Pacer(sqs, queue_url, max_backlog))
            seconds["send"] = time.monotonic() - started
            progress(f"sent {count} in {seconds['send']:.0f} s; draining")
            seconds["drain after send"] = drain(sqs, queue_url, drain_timeout)
            progress("drained; accounting, then redriving the DLQ")
            first = account(sent.accepted, read_table(dynamodb, DEFAULT_TABLE),
                            peek_queue(sqs, dlq_url))
            redriven = redrive(sqs, dlq_url, queue_url)
            mark = time.monotonic()
            drain(sqs, queue_url, drain_timeout)
            seconds["redrive + drain"] = time.monotonic() - mark
            final = account(sent.accepted, read_table(dynamodb, DEFAULT_TABLE),
                            peek_queue(sqs, dlq_url))
            seconds["total"] = time.monotonic() - started
            return R1Result(count, sent, faults, target.log_count("crash #"),
                            target.log_count('"message": "retry"'),
                            target.log_count(" DLQ messageId="), target.proxy.client_gone,
                            first, redriven, final, seconds)


def print_r1(result: R1Result) -> None:
    faults = result.faults
    print(f"\n## R1: {result.requests:,} requests, fault rate {faults.rate}, seed {faults.seed}\n")
    print(table(["what", "count"], [
        ["requests sent", result.requests],
        ["refused by the gateway (4xx, not accepted)", result.sent.refused],
        ["  of which valid bodies", result.sent.refused_valid],
        ["no answer or 5xx from the gateway", len(result.sent.errors)],
        ["accepted (202)", len(result.sent.accepted)],
        ["DynamoDB requests through the fault proxy", faults.seen],
        ["faults injected", faults.total_injected],
        *[[f"  {kind}", n] for kind, n in sorted(faults.injected.items())],
        ["consumer crashes mid-batch", result.crashes],
        ["messages retried after a transient failure", result.transient_retries],
        ["calls the consumer stopped waiting for (read timeout)", result.client_timeouts],
        ["moves to the DLQ", result.dlq_moves],
        ["redriven from the DLQ", result.redriven]]))
    print("\n### Accounting (accepted = applied + rejected + in the DLQ only + lost)\n")
    print(table(["", "after the run", "after redrive"],
                [[name, value, final] for (name, value), (_, final)
                 in zip(result.first.rows(), result.final.rows(), strict=True)]))
    for text in result.final.examples:
        print(f"  {text}")
    print("\nseconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()))


# -- R2 -------------------------------------------------------------------------------------------

@dataclass
class R2Result:
    messages: int
    items_compared: int
    outcomes_compared: int
    items_differing: list[str]
    outcomes_differing: list[str]
    seconds: dict[str, float]


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


def send_direct(sqs: Any, queue_url: str, messages: list[dict[str, Any]], pacer: Pacer) -> None:
    for start in range(0, len(messages), 10):
        pacer.wait()
        entries = [{"Id": str(i), **m} for i, m in enumerate(messages[start:start + 10])]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
        if failed:
            raise RuntimeError(f"SendMessageBatch failed: {json.dumps(failed)[:500]}")


def deliver(log_dir: Path, name: str, messages: list[dict[str, Any]], max_backlog: int,
            drain_timeout: float) -> tuple[Snapshot, float]:
    # One poller: each run applies the messages in the order they were sent, so the only
    # difference between the two runs is the duplicates (several pollers would also reorder
    # conditional writes, which standard mode judges on arrival).
    with stack(log_dir, name, pollers=1) as target:
        sqs = target.sqs()
        queue_url, _ = target.queue_urls()
        started = time.monotonic()
        send_direct(sqs, queue_url, messages, Pacer(sqs, queue_url, max_backlog))
        progress(f"{name}: sent {len(messages)} messages; draining")
        drain(sqs, queue_url, drain_timeout)
        return read_table(target.dynamodb(), DEFAULT_TABLE), (
            time.monotonic() - started)


def run_r2(count: int, seed: int, max_backlog: int = 200, drain_timeout: float = 1800.0,
           log_dir: Path | None = None) -> R2Result:
    messages = r2_messages(count, seed)
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        where = log_dir or Path(tmp)
        once, once_seconds = deliver(where, "r2-once", messages, max_backlog, drain_timeout)
        doubled, twice_seconds = deliver(where, "r2-twice", twice(messages, seed), max_backlog,
                                         drain_timeout)
    items_once, outcomes_once = comparable(once)
    items_twice, outcomes_twice = comparable(doubled)
    return R2Result(
        len(messages), len(set(items_once) | set(items_twice)),
        len(set(outcomes_once) | set(outcomes_twice)),
        sorted(k for k in set(items_once) | set(items_twice)
               if items_once.get(k) != items_twice.get(k)),
        sorted(k for k in set(outcomes_once) | set(outcomes_twice)
               if outcomes_once.get(k) != outcomes_twice.get(k)),
        {"single delivery": once_seconds, "double delivery": twice_seconds})


def print_r2(result: R2Result) -> None:
    print(f"\n## R2: {result.messages:,} messages, each delivered twice vs once\n")
    print(table(["what", "count"], [
        ["messages (single run)", result.messages],
        ["deliveries (double run)", result.messages * 2],
        ["outcomes compared", result.outcomes_compared],
        ["items compared (tombstones too)", result.items_compared],
        ["outcomes differing", len(result.outcomes_differing)],
        ["items differing", len(result.items_differing)]]))
    for key in (result.items_differing + result.outcomes_differing)[:10]:
        print(f"  differs: {key}")
    print("\nseconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", choices=["r1", "r2", "r6"])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.1, help="R1 (default 0.1)")
    parser.add_argument("--crashes", type=int, default=3, help="R1: about this many (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4, help="R1 HTTP senders (default 4)")
    parser.add_argument("--max-backlog", type=int, default=200)
    parser.add_argument("--drain-timeout", type=float, default=1800.0)
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep the pipeline's logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000:
        parser.error("--requests must be 1..100,000")
    print(f"machine: {machine()}", flush=True)
    if args.run == "r6":
        r6 = run_r6(args.requests, args.fault_rate, args.crashes, args.seed, args.threads,
                    args.max_backlog, args.drain_timeout, args.log_dir)
        print_r6(r6)
        good = r6.holds
    elif args.run == "r1":
        r1 = run_r1(args.requests, args.fault_rate, args.crashes, args.seed, args.threads,
                    args.max_backlog, args.drain_timeout, args.log_dir)
        print_r1(r1)
        good = (r1.final.lost == r1.final.applied_twice == r1.final.wrong_items == 0
                and r1.final.version_short == r1.final.invalid_not_rejected == 0)
    else:
        r2 = run_r2(args.requests, args.seed, args.max_backlog, args.drain_timeout,
                    args.log_dir)
        print_r2(r2)
        good = not r2.items_differing and not r2.outcomes_differing
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
