"""Change path latency: from a write's `applied` outcome to its change stored in the item history.

    .venv/bin/python -m bench.history_latency [--rate 100] [--seconds 20] [--store dynamodb-local]

Starts the local pipeline (`make run`, the event source in its own process), POSTs creates of
distinct items at `--rate` per second for `--seconds`, then waits for every change to reach the
history. The latency of a write is the history item's `recordedAt` minus its outcome's
`handledAt`: both stamped by the same machine's clock, so nothing is polled while it runs. It
covers the stream poller, publish_changes, the bus, the history queue and record_history.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from typing import Any

import boto3
import numpy
import requests

from bench.output import machine, table
from devstack.dynamodb_local import DYNAMODB_LOCAL, STORES
from devstack.event_source import PROCESS
from devstack.pipeline import Pipeline
from devstack.resources import region

TARGET_P99_MS = 2000.0


def post_at_rate(base_url: str, run: str, rate: float, seconds: float) -> list[str]:
    """POST one create per 1/rate s (two sender threads); the accepted request ids."""
    accepted: list[str] = []
    lock = threading.Lock()
    total = int(rate * seconds)
    start = time.monotonic()

    def sender(offset: int) -> None:
        session = requests.Session()
        for n in range(offset, total, 2):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            answer = session.post(f"{base_url}/SQSManager", timeout=30, json={
                "operation": "create", "id": f"{run}-{n}", "item": {"n": n}})
            if answer.status_code == 202:
                with lock:
                    accepted.append(answer.json()["requestId"])

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted


def measure(pipeline: Pipeline, rate: float, seconds: float, wait: float) -> dict[str, Any]:
    assert pipeline.changes is not None
    run = f"lat-{uuid.uuid4().hex[:6]}"
    accepted = post_at_rate(pipeline.base_url, run, rate, seconds)
    dynamodb = boto3.client("dynamodb", region_name=region(),
                            endpoint_url=pipeline.dynamodb_endpoint_url or pipeline.endpoint_url)
    outcomes: dict[str, dict[str, Any]] = {}
    recorded: dict[str, int] = {}
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(recorded) < len(accepted):
        time.sleep(1)
        for request_id in accepted:
            if request_id not in outcomes:
                answer = requests.get(f"{pipeline.base_url}/requests/{request_id}", timeout=30)
                if answer.status_code == 200:
                    outcomes[request_id] = answer.json()
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=pipeline.changes.history_table,
            ProjectionExpression="#i, recordedAt", ExpressionAttributeNames={"#i": "id"})
        recorded = {item["id"]["S"]: int(item["recordedAt"]["N"])
                    for page in pages for item in page["Items"]
                    if item["id"]["S"].startswith(run)}
    latencies = [recorded[o["id"]] - int(o["handledAt"]) for o in outcomes.values()
                 if o.get("status") == "applied" and o["id"] in recorded]
    return {"accepted": len(accepted), "applied": len(outcomes), "in history": len(recorded),
            **dict(zip(["p50 ms", "p99 ms"], numpy.percentile(latencies, [50, 99])
                       if latencies else [float("nan")] * 2, strict=True)),
            "max ms": max(latencies, default=float("nan"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--store", choices=STORES, default=DYNAMODB_LOCAL)
    parser.add_argument("--wait", type=float, default=120.0,
                        help="seconds to wait for the last changes after the writes")
    args = parser.parse_args(argv)
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
