"""One workload through three consumers: the seed's handler (bench/versus_seed.py), Powertools
(bench/versus_powertools.py) and sqs-manager as app.py builds it; and P2 (docs/benchmarks.md,
"sqs-manager against what you would build instead" and "P2").

    .venv/bin/python -m bench.versus [--items 200] [--seed 7] [--latency-ms 10] [--cold-rounds 10]

Each consumer handles the same deliveries (bench/versus_workload.py: in order, every message
twice, shuffled) in this process, on DynamoDB Local behind devstack/faults.py's proxy in a process
of its own (+--latency-ms per call, calls counted); bench/versus_harness.py meters its clients.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path
from statistics import mean, median
from typing import Any

import numpy

from bench import cold_start, versus_cost
from bench import results as bench_results
from bench.output import commit, machine, parser, table
from bench.versus_harness import CONSUMERS, PATTERNS, Bench, ProxyProcess, in_turn
from bench.versus_workload import BATCH, deliveries, expected_items, workload
from devstack.emulator import EMULATOR_CREDENTIALS

HANDLER_MODULES = {"seed": "import bench.versus_seed",
                   "powertools": "import bench.versus_powertools", "sqs-manager": "import app"}
# The rows of the table, in order: (key, what it says).
ROWS = (
    ("ddb_calls_per_message", "DynamoDB calls per message"),
    ("write_units_per_message", "write units per message"),
    ("read_units_per_message", "read units per message"),
    ("batch_p50_ms", "handler wall time per batch, p50 (ms)"),
    ("batch_p99_ms", "handler wall time per batch, p99 (ms)"),
    ("cpu_ms_per_message", "handler CPU per message (ms)"),
    ("items_wrong_after_duplicates", "items wrong, every message twice"),
    ("items_wrong_after_shuffle", "items wrong, shuffled"),
    ("writes_applied_twice", "writes applied twice"),
    ("requests_without_outcome", "requests without a readable outcome"),
    ("cold_start_ms", "cold start: import + clients (ms)"),
    ("usd_per_million_requests_128mb", "USD per million requests, 128 MB"),
    ("usd_per_million_requests_1024mb", "USD per million requests, 1024 MB"),
)


def cold_starts(rounds: int) -> dict[str, float]:
    """Median ms to import each handler module (its clients made at import) in a fresh process,
    as bench.cold_start measures."""
    seconds = cold_start.measure(rounds, [cold_start.Scenario(c, code)
                                          for c, code in HANDLER_MODULES.items()])
    return {consumer: median(values) * 1e3 for consumer, values in seconds.items()}


def measure(bench: Bench, items: int, seed: int, warmup_items: int) -> dict[str, Any]:
    requests = workload(items, seed)
    expected = expected_items(requests)
    if warmup_items:  # DynamoDB Local's JVM compiles its hot paths over the first calls
        warm = workload(warmup_items, seed + 1)
        in_turn([bench.run(c, deliveries(warm, "in order", seed)) for c in CONSUMERS])
    # P2's round trips take their turn with the consumers' batches, one per batch.
    *timed_runs, trips = in_turn([
        *(bench.run(c, deliveries(requests, "in order", seed)) for c in CONSUMERS),
        bench.round_trips(math.ceil(len(requests) / BATCH))])
    timed = dict(zip(CONSUMERS, timed_runs, strict=True))
    figures: dict[str, Any] = {"round_trip_p50_ms": median(trips.wall_ms)}
    for consumer in CONSUMERS:
        runs = {"in order": timed[consumer], **{p: in_turn([bench.run(consumer, deliveries(
            requests, p, seed + i))])[0] for i, p in enumerate(PATTERNS) if p != "in order"}}
        wrong = {p: sum(1 for item_id, item in bench.items(run, set(expected)).items()
                        if item != expected[item_id]) for p, run in runs.items()}
        run, n = runs["in order"], len(requests)
        measured = versus_cost.Measured(
            bench.write_units(run) / n, run.meter.units["read"] / n, mean(run.wall_ms),
            run.cpu_ms / len(run.wall_ms))
        figures[consumer] = {
            "ddb_calls_per_message": sum(run.calls.values()) / n,
            "ddb_calls_per_write": sum(run.calls.values()) / run.meter.units["item writes"],
            "calls_by_operation": dict(run.calls),
            "write_units_per_message": measured.write_units_per_message,
            "read_units_per_message": measured.read_units_per_message,
            "batch_p50_ms": median(run.wall_ms),
            "batch_p99_ms": float(numpy.percentile(run.wall_ms, 99)),
            "batch_mean_ms": measured.batch_wall_ms, "cpu_ms_per_message": run.cpu_ms / n,
            "items_wrong_in_order": wrong["in order"],
            "items_wrong_after_duplicates": wrong["duplicates"],
            "items_wrong_after_shuffle": wrong["shuffled"],
            "writes_applied_twice": int(runs["duplicates"].meter.units["item writes"]
                                        - run.meter.units["item writes"]),
            "requests_without_outcome": max(bench.without_outcome(r, requests)
                                            for r in runs.values()),
            "failed_calls": {p: int(r.meter.units["failed calls"]) for p, r in runs.items()},
            "to_dlq": {p: r.to_dlq for p, r in runs.items()},
            "usd_per_million_requests_128mb": versus_cost.per_million(measured, 128),
            "usd_per_million_requests_1024mb": versus_cost.per_million(measured, 1024),
            "cost_lines_128mb": versus_cost.lines(measured, 128),
        }
    return figures


def record_p2(versus: dict[str, Any], results_path: Path) -> None:
    """P2 from sqs-manager's in-order run: its batch p50 in round trips, calls per item write."""
    ours, trip = versus["sqs-manager"], versus["round_trip_p50_ms"]
    values = {"batch_latency_ratio": ours["batch_p50_ms"] / trip,
              "ddb_calls_per_write": ours["ddb_calls_per_write"]}
    bench_results.record(values, {
        "latency_ms": versus["latency_ms"], "requests": versus["requests"],
        "round_trip_ms": trip, "batch_p50_ms": ours["batch_p50_ms"],
        "calls": ours["calls_by_operation"]}, "bench.versus", results_path)
    print(f"\nbatch_latency_ratio {values['batch_latency_ratio']:.2f} (target <= 2: "
          f"{ours['batch_p50_ms']:.1f} / {trip:.1f} ms), ddb_calls_per_write "
          f"{values['ddb_calls_per_write']:.2f} (target <= 1)")


def report(versus: dict[str, Any]) -> None:
    print(f"\n## One workload, three consumers ({versus['requests']} requests, "
          f"+{versus['latency_ms']:g} ms per DynamoDB call, on {versus['commit']})\n")
    print(table(["", *CONSUMERS], [[what, *(versus[c].get(key, float("nan")) for c in CONSUMERS)]
                                   for key, what in ROWS]))
    print("\n## Cost per million requests, 128 MB (a model: bench/versus_cost.py)\n")
    lines = [versus[c]["cost_lines_128mb"] for c in CONSUMERS]
    print(table(["line", *CONSUMERS], [[name, *(line[name] for line in lines)]
                                       for name in lines[0]]))


def run(items: int, seed: int, latency_ms: float, cold_rounds: int, warmup_items: int,
        results_path: Path | None, dynamodb_url: str | None = None) -> dict[str, Any]:
    from devstack.dynamodb_local import DynamoDBLocal, unavailable_reason

    print(f"machine: {machine()}")
    with contextlib.ExitStack() as stack:
        if dynamodb_url is None:
            if unavailable_reason() is not None:
                raise SystemExit(f"cannot run: {unavailable_reason()}")
            dynamodb_url = stack.enter_context(DynamoDBLocal()).endpoint_url
        proxy = ProxyProcess(dynamodb_url, latency_ms)
        stack.callback(proxy.close)
        figures = measure(Bench(dynamodb_url, proxy), items, seed, warmup_items)
    colds = cold_starts(cold_rounds) if cold_rounds else {}
    for consumer, cold in colds.items():
        figures[consumer]["cold_start_ms"] = cold
    versus: dict[str, Any] = {
        "commit": commit(), "items": items, "requests": len(workload(items, seed)),
        "seed": seed, "latency_ms": latency_ms, "cold_rounds": cold_rounds,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    report(versus)
    if results_path is not None:
        record_p2(versus, results_path)
        bench_results.record_section("versus", versus, results_path)
        print(f"written to {results_path}: P2, and the comparison under \"versus\"")
    return versus


def main(argv: list[str] | None = None) -> int:
    cli = parser("bench.versus", __doc__)
    cli.add_argument("--items", type=int, default=200, choices=range(1, 5001), metavar="1..5000",
                     help="items in the workload (200)")
    cli.add_argument("--seed", type=int, default=7, help="the workload's seed (7)")
    cli.add_argument("--latency-ms", type=float, default=10.0, help="added to every DynamoDB "
                     "call (10)")
    cli.add_argument("--cold-rounds", type=int, default=10,
                     help="fresh processes per handler module (10; 0: no cold start)")
    cli.add_argument("--warmup-items", type=int, default=100,
                     help="items of the warm-up run, not counted (100)")
    cli.add_argument("--results", type=Path, default=bench_results.DEFAULT_PATH)
    args = cli.parse_args(argv)
    # Dummy credentials (only emulators are talked to), set before any client reads them.
    os.environ.update({**EMULATOR_CREDENTIALS, "AWS_DEFAULT_REGION": "us-west-2",
                       "AWS_EC2_METADATA_DISABLED": "true", "LOG_LEVEL": "WARNING"})
    run(args.items, args.seed, args.latency_ms, args.cold_rounds, args.warmup_items,
        args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
