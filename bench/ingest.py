"""End-to-end load: autocannon against the local pipeline, then the time to drain the queue.

    .venv/bin/python -m bench.ingest [--duration 10] [--connections 10] [--paced-rate 10]

For each scenario a fresh local pipeline (`python -m devstack` as a subprocess, with its own moto
server, on free loopback ports) takes POST /SQSManager from autocannon for --duration seconds:
every request a valid `create` with a unique id (autocannon's `-I` and `[<id>]`). autocannon
reports the gateway's requests/s, latency and non-2xx answers; then the script waits until every
accepted request has an outcome in the table (queue empty, outcome count = accepted), bounded by
--drain-timeout. Scenarios:
  open    as fast as -c connections go (the gateway outruns the consumer: a backlog builds);
  paced   autocannon -R <rate> requests/s on one connection (evenly spaced), about what the
          consumer keeps up with here.
moto's SendMessage slows down as the queue deepens (about 7 ms at depth 0, 38 ms at 1k, 136 ms at
4k), so the open scenario's latency grows with its own backlog. Everything runs on this machine:
autocannon, the pipeline (gateway + poller + handler, one Python process) and moto share the cores.

autocannon: $AUTOCANNON or --autocannon (a command), else node_modules/.bin/autocannon in the
project, else `npx --yes autocannon@9.0.0`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import machine, table
from chalicelib.store import REQUEST_PREFIX
from devstack.process import PROJECT_DIR, DevstackProcess
from devstack.resources import queue_depth

AUTOCANNON_PIN = "autocannon@9.0.0"
QUEUE, DLQ, TABLE = "bench-ingest-queue", "bench-ingest-dlq", "bench-ingest-table"
REGION = "us-west-2"
BODY = '{"operation": "create", "id": "ac-[<id>]", "item": {"name": "load test", "n": 1}}'
WARM_UP_REQUESTS = 5


@dataclass
class Run:
    name: str
    rate: int | None
    load: dict[str, Any] = field(default_factory=dict)
    accepted: int = 0
    depth_samples: list[tuple[float, int]] = field(default_factory=list)
    depth_at_end: int = 0
    drain_seconds: float | None = None
    load_seconds: float = 0.0
    outcomes: int = 0
    rejected: int = 0
    dlq: int = 0


# -- tools -----------------------------------------------------------------------------------------

def autocannon_command(explicit: str | None) -> list[str]:
    if explicit:
        return shlex.split(explicit)
    local = PROJECT_DIR / "node_modules" / ".bin" / "autocannon"
    if local.exists():
        return [str(local)]
    if shutil.which("npx") is None:
        raise SystemExit("autocannon needs node: install node 20 and npm, or pass --autocannon")
    return ["npx", "--yes", AUTOCANNON_PIN]


def wait_for_devstack_sources(timeout: float) -> None:
    """devstack is written concurrently by someone else: wait for its entry point."""
    deadline = time.monotonic() + timeout
    needed = [PROJECT_DIR / "devstack" / "__main__.py", PROJECT_DIR / "devstack" / "pipeline.py"]
    while not all(path.exists() for path in needed):
        if time.monotonic() > deadline:
            raise SystemExit(f"devstack is not there yet: {[str(p) for p in needed]}")
        time.sleep(2)


def aws_client(service: str, endpoint_url: str) -> Any:
    import boto3

    from devstack.emulator import EMULATOR_CREDENTIALS

    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION,
                        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


# -- the pipeline process --------------------------------------------------------------------------

def devstack(log_dir: Path, log_level: str) -> DevstackProcess:
    """`python -m devstack` on free ports, with this benchmark's own queue and table names."""
    port_log = log_dir / f"devstack-{time.monotonic_ns()}.log"
    return DevstackProcess(port_log, "--log-level", log_level, "--queue-name", QUEUE,
                           "--dlq-name", DLQ, "--table-name", TABLE,
                           env={"LOG_LEVEL": log_level, "AWS_EC2_METADATA_DISABLED": "true"})


# -- measuring -------------------------------------------------------------------------------------

def post_command(url: str, item_id: str) -> int:
    body = json.dumps({"operation": "create", "id": item_id, "item": {"name": "warm up"}})
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def count_outcomes(dynamodb: Any, status: str | None = None) -> int:
    request: dict[str, Any] = {
        "TableName": TABLE, "Select": "COUNT",
        "FilterExpression": "begins_with(#pk, :prefix)",
        "ExpressionAttributeNames": {"#pk": "pk"},
        "ExpressionAttributeValues": {":prefix": {"S": REQUEST_PREFIX}},
    }
    if status is not None:
        request["FilterExpression"] += " AND #status = :status"
        request["ExpressionAttributeNames"]["#status"] = "status"
        request["ExpressionAttributeValues"][":status"] = {"S": status}
    total = 0
    for _ in range(10_000):  # bounded pages
        response = dynamodb.scan(**request)
        total += int(response["Count"])
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return total


class DepthSampler(threading.Thread):
    """The queue's depth once a second while the load runs (bounded by max_samples)."""

    def __init__(self, sqs: Any, queue_url: str, max_samples: int) -> None:
        super().__init__(name="depth-sampler", daemon=True)
        self.sqs, self.queue_url, self.max_samples = sqs, queue_url, max_samples
        self.samples: list[tuple[float, int]] = []
        self.started_at = time.monotonic()
        self._done = threading.Event()

    def run(self) -> None:
        for _ in range(self.max_samples):
            if self._done.wait(1.0):
                return
            self.samples.append((time.monotonic() - self.started_at,
                                 queue_depth(self.sqs, self.queue_url)))

    def stop(self) -> None:
        self._done.set()
        self.join(10)


def run_scenario(run: Run, args: argparse.Namespace, command: list[str], log_dir: Path) -> Run:
    with devstack(log_dir, args.log_level) as stack:
        sqs = aws_client("sqs", stack.endpoint_url)
        dynamodb = aws_client("dynamodb", stack.endpoint_url)
        queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]
        url = f"{stack.base_url}/SQSManager"
        warm = sum(1 for i in range(WARM_UP_REQUESTS)
                   if 200 <= post_command(url, f"warm-{i}") < 300)
        connections = args.connections if run.rate is None else args.paced_connections
        cannon = [*command, "-c", str(connections), "-d", str(args.duration),
                  "-t", "30", "-m", "POST", "-H", "Content-Type=application/json",
                  "-b", BODY, "-I", "-j"]
        if run.rate is not None:
            cannon += ["-R", str(run.rate)]
        cannon.append(url)
        print(f"  [{run.name}] {shlex.join(cannon)}", flush=True)
        sampler = DepthSampler(sqs, queue_url, max_samples=int(args.duration) + 120)
        sampler.start()
        started = time.monotonic()
        completed = subprocess.run(cannon, capture_output=True, text=True, check=False,
                                   timeout=args.duration + 120)
        load_end = time.monotonic()
        sampler.stop()
        if completed.returncode != 0:
            raise RuntimeError(f"autocannon failed ({completed.returncode}): "
                               f"{completed.stderr[-2000:]}")
        run.load = json.loads(completed.stdout)
        run.load_seconds = load_end - started
        run.depth_samples = sampler.samples
        run.accepted = int(run.load.get("2xx", 0)) + warm
        run.depth_at_end = queue_depth(sqs, queue_url)
        # autocannon does not count the requests still in flight when its time is up: the
        # gateway may accept up to -c more. So: drained = the queue empty twice in a row, 0.5 s
        # apart, and at least one outcome per request autocannon saw accepted.
        deadline = load_end + args.drain_timeout
        empty_since: float | None = None
        while time.monotonic() < deadline:
            if queue_depth(sqs, queue_url) == 0:
                if empty_since is None:
                    empty_since = time.monotonic()
                else:
                    run.outcomes = count_outcomes(dynamodb)
                    if run.outcomes >= run.accepted:
                        run.drain_seconds = empty_since - load_end
                        break
            else:
                empty_since = None
            time.sleep(0.5)
        if run.drain_seconds is None:
            run.outcomes = count_outcomes(dynamodb)
        run.rejected = count_outcomes(dynamodb, "rejected")
        run.dlq = queue_depth(sqs, dlq_url)
        print(f"  [{run.name}] accepted {run.accepted}, backlog at load end {run.depth_at_end}, "
              f"drained in {run.drain_seconds if run.drain_seconds is not None else 'n/a'} s",
              flush=True)
    return run


def summarize(runs: list[Run]) -> None:
    load_rows, drain_rows = [], []
    for run in runs:
        load = run.load
        latency, requests = load.get("latency", {}), load.get("requests", {})
        errors = int(load.get("errors", 0)) + int(load.get("timeouts", 0))
        load_rows.append([
            run.name, f"{run.rate}/s" if run.rate else "open", load.get("connections", "-"),
            float(load.get("duration", 0.0)), float(requests.get("average", 0.0)),
            int(load.get("2xx", 0)), int(load.get("non2xx", 0)), errors,
            float(latency.get("p50", 0.0)), float(latency.get("p90", 0.0)),
            float(latency.get("p99", 0.0)), float(latency.get("max", 0.0))])
        depth_max = max((d for _, d in run.depth_samples), default=0)
        total = (run.load_seconds + run.drain_seconds) if run.drain_seconds is not None else None
        drain_rows.append([
            run.name, run.accepted, depth_max, run.depth_at_end,
            run.drain_seconds if run.drain_seconds is not None else "not drained",
            (run.depth_at_end / run.drain_seconds) if run.drain_seconds else float("nan"),
            (run.accepted / total) if total else float("nan"),
            run.outcomes, run.rejected, run.dlq])
    print("\n## Gateway under load (autocannon; latency in ms)\n")
    print(table(["scenario", "rate", "connections", "seconds", "requests/s", "2xx", "non-2xx",
                 "errors+timeouts", "p50", "p90", "p99", "max"], load_rows))
    print("\n## Drain: until every accepted request has an outcome\n")
    print(table(["scenario", "accepted", "max queue depth", "depth at load end",
                 "drain s after load", "drain msgs/s", "end-to-end msgs/s", "outcomes",
                 "rejected", "in DLQ"], drain_rows))
    print("\naccepted = autocannon's 2xx + the warm-up requests; outcomes may exceed it by the "
          "requests in flight when autocannon stopped (accepted by the gateway, not counted).\n"
          "end-to-end msgs/s = accepted / (load time + drain time): the consumer's sustained "
          "rate when the load outlasts it.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (default 10)")
    parser.add_argument("--connections", type=int, default=10, help="autocannon -c (default 10)")
    parser.add_argument("--paced-rate", type=int, default=10,
                        help="requests/s of the paced scenario (default 10; 0 skips it)")
    parser.add_argument("--paced-connections", type=int, default=1,
                        help="autocannon -c of the paced scenario (default 1: -R spreads the "
                             "requests evenly; with more connections it sends them in bursts)")
    parser.add_argument("--no-open", action="store_true", help="skip the open scenario")
    parser.add_argument("--drain-timeout", type=float, default=240.0,
                        help="seconds to wait for the outcomes after the load (default 240)")
    parser.add_argument("--autocannon", default=os.environ.get("AUTOCANNON"),
                        help="autocannon command (default: $AUTOCANNON, the project's "
                             f"node_modules, or npx --yes {AUTOCANNON_PIN})")
    parser.add_argument("--log-level", default="WARNING",
                        help="devstack and consumer log level (default WARNING: INFO logs "
                             "every request twice)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 120 or not 1 <= args.connections <= 100 \
            or not 1 <= args.paced_connections <= 100:
        parser.error("--duration must be 1..120 s and connections 1..100")

    wait_for_devstack_sources(timeout=120)
    command = autocannon_command(args.autocannon)
    version = subprocess.run([*command, "--version"], capture_output=True, text=True,
                             timeout=300, check=False).stdout.strip().replace("\n", ", ")
    print(f"machine: {machine()}")
    print(f"load generator: {shlex.join(command)} ({version})")
    runs = []
    if not args.no_open:
        runs.append(Run("open", None))
    if args.paced_rate > 0:
        runs.append(Run("paced", args.paced_rate))
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as log_dir:
        for run in runs:
            run_scenario(run, args, command, Path(log_dir))
    summarize(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
