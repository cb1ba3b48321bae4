"""Change path latency: from a write's `applied` outcome to its change stored in the item history.

    .venv/bin/python -m bench.history_latency [--rate 100] [--seconds 20] [--store dynamodb-local]

Starts the local pipeline (`make run`, the event source in its own process), POSTs creates of
distinct items at `--rate` per second for `--seconds` (bench.load's loop), then waits for every
change to reach the history. The latency of a write is the history item's `recordedAt` minus
its outcome's `handledAt`: both stamped by the same machine's clock, so nothing is polled while
it runs. It covers the stream poller, publish_changes, the bus, the history queue and
record_history.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import numpy

from bench.load.records import LoadConfig, Workload
from bench.load.runner import run_load
from bench.output import machine, parser, scan, table
from devstack.dynamodb_local import DYNAMODB_LOCAL, STORES
from devstack.event_source import PROCESS
from devstack.pipeline import Pipeline
from devstack.resources import client

TARGET_P99_MS = 2000.0


def measure(pipeline: Pipeline, rate: float, seconds: float, wait: float) -> dict[str, Any]:
    """POST creates with the load tool (outcomes read once the POSTs are done), then wait for
    their changes in the history."""
    assert pipeline.changes is not None
    tag = uuid.uuid4().hex[:6]
    run = asyncio.run(run_load(LoadConfig(
        f"{pipeline.base_url}/SQSManager", pipeline.base_url, rate=rate, duration=seconds,
        poll_after=True, outcome_timeout=wait, progress=False), Workload(tag)))
    accepted = sum(1 for r in run.records if r.request_id is not None)
    handled_ms = {r.item_id: round((r.handled + run.started_epoch) * 1000) for r in run.records
                  if r.outcome == "applied" and r.handled is not None}
    dynamodb = client("dynamodb", pipeline.dynamodb_endpoint_url or pipeline.endpoint_url)
    recorded: dict[str, int] = {}
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(recorded) < accepted:
        time.sleep(1)
        recorded = {item["id"]["S"]: int(item["recordedAt"]["N"]) for item in scan(
            dynamodb, pipeline.changes.history_table, ProjectionExpression="#i, recordedAt",
            ExpressionAttributeNames={"#i": "id"}) if item["id"]["S"].startswith(f"load-{tag}-")}
    latencies = [recorded[i] - handled for i, handled in handled_ms.items() if i in recorded]
    return {"accepted": accepted, "applied": len(handled_ms), "in history": len(recorded),
            **dict(zip(["p50 ms", "p99 ms"], numpy.percentile(latencies, [50, 99])
                       if latencies else [float("nan")] * 2, strict=True)),
            "max ms": max(latencies, default=float("nan"))}


def main(argv: list[str] | None = None) -> int:
    cli = parser("bench.history_latency", __doc__)
    cli.add_argument("--rate", type=float, default=100.0)
    cli.add_argument("--seconds", type=float, default=20.0)
    cli.add_argument("--store", choices=STORES, default=DYNAMODB_LOCAL)
    cli.add_argument("--wait", type=float, default=120.0,
                     help="seconds to wait for the last changes after the writes")
    args = cli.parse_args(argv)
    print(machine(), flush=True)
    with Pipeline(store=args.store, event_source=PROCESS, log_level="WARNING") as pipeline:
        figures = measure(pipeline, args.rate, args.seconds, args.wait)
    print(table(["rate/s", "seconds", *figures], [[args.rate, args.seconds, *figures.values()]]))
    met = figures["p99 ms"] <= TARGET_P99_MS and figures["in history"] == figures["accepted"]
    print(f"target: p99 applied -> history <= {TARGET_P99_MS:g} ms, every change kept: "
          f"{'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
