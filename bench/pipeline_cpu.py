"""CPU per request of the local pipeline, by process, against a baseline revision.

    .venv/bin/python -m bench.pipeline_cpu --baseline REV [--rate 100] [--count 6000]
                                           [--warmup 2000] [--rounds 2]

On 2 cores, whether `make run STORE=dynamodb-local` keeps up with 100 requests/s (P4) is a matter
of CPU: the pipeline process (the gateway), its event source process (pollers and consumer; in
the pipeline's process before devstack/event_source.py, 0 then), moto's server and DynamoDB Local
share the cores with the load generator and whatever else runs. Latency figures swing with that
load; CPU time spent per request hardly does, so this is the figure to compare two versions by.

For each variant (this checkout, and REV checked out in a temporary git worktree), each round:
`python -m devstack --store dynamodb-local` on free loopback ports, --warmup POSTs (not counted),
then --count POSTs at --rate with bench.load (no outcome reads: they would load the pipeline
too), then a wait until the queue is empty (nothing waiting, nothing in flight). Each process's
CPU time (user + system, /proc/PID/stat: Linux only) is read before the counted POSTs and after
the queue is empty. Rounds alternate the order of the variants (baseline first, then current
first) so that drift hits both alike. Prints milliseconds of CPU per request by process, and
the POST latency bench.load measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import machine, table
from devstack.dynamodb_local import DYNAMODB_LOCAL, unavailable_reason
from devstack.process import PROJECT_DIR, DevstackProcess

PROC = Path("/proc")
PARTS = ("pipeline", "event source", "moto", "DynamoDB Local")
# Revisions before devstack/event_source.py ran the event source in the pipeline's process.
OPTIONAL_PARTS = {"event source"}
DRAIN_TIMEOUT = 300.0


@dataclass
class Variant:
    name: str
    checkout: Path
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))
    requests: int = 0
    post_p50: list[float] = field(default_factory=list)
    post_p99: list[float] = field(default_factory=list)
    drain_seconds: list[float] = field(default_factory=list)

    def row(self) -> list[object]:
        per = {part: 1000 * seconds / self.requests for part, seconds in self.cpu.items()}
        return [self.name, *per.values(), sum(per.values()),
                " / ".join(f"{p:.0f}" for p in self.post_p50),
                " / ".join(f"{p:.0f}" for p in self.post_p99),
                " / ".join(f"{s:.1f}" for s in self.drain_seconds)]

    def total_ms(self) -> float:
        return 1000 * sum(self.cpu.values()) / self.requests


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): state, ppid, ..."""
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def pipeline_processes(root: int) -> dict[str, int]:
    """The pipeline's process, its event source's and its emulators' (not their guards)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                parent = int(stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    found = {"pipeline": root}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "guard.py" in command:
            continue
        if "devstack.event_source" in command:
            found["event source"] = pid
        elif "moto_server.py" in command:
            found["moto"] = pid
        elif "DynamoDBLocal.jar" in command:
            found["DynamoDB Local"] = pid
    missing = set(PARTS) - OPTIONAL_PARTS - set(found)
    if missing:
        raise RuntimeError(f"no process found for {sorted(missing)} under {root}")
    return found


def load(stack: DevstackProcess, rate: float, count: int, out: Path) -> dict[str, Any]:
    """bench.load (this checkout's, for every variant): its summary."""
    subprocess.run([sys.executable, "-m", "bench.load", "--url", stack.base_url, "--rate",
                    str(rate), "--count", str(count), "--no-poll", "--no-progress", "--out",
                    str(out)], cwd=PROJECT_DIR, check=True, stdout=subprocess.DEVNULL)
    summary: dict[str, Any] = json.loads((out / "results.json").read_text())["summary"]
    return summary


def wait_drained(stack: DevstackProcess) -> float:
    """Seconds until the queue holds nothing, waiting or in flight."""
    from bench.ingest import aws_client
    from devstack.resources import DEFAULT_QUEUE, queue_depth

    sqs = aws_client("sqs", stack.endpoint_url)
    url = sqs.get_queue_url(QueueName=DEFAULT_QUEUE)["QueueUrl"]
    began = time.monotonic()
    while queue_depth(sqs, url) > 0:
        if time.monotonic() - began > DRAIN_TIMEOUT:
            raise RuntimeError(f"the queue was not empty after {DRAIN_TIMEOUT:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - began


def measure(variant: Variant, args: argparse.Namespace, scratch: Path) -> None:
    log = scratch / f"devstack-{variant.name}-{time.monotonic_ns()}.log"
    with DevstackProcess(log, "--log-level", "INFO", store=DYNAMODB_LOCAL,
                         cwd=variant.checkout) as stack:
        assert stack.process is not None
        if args.warmup:
            load(stack, args.rate, args.warmup, scratch / "warmup")
            wait_drained(stack)
        processes = pipeline_processes(stack.process.pid)
        before = {part: cpu_seconds(pid) for part, pid in processes.items()}
        summary = load(stack, args.rate, args.count, scratch / "run")
        variant.drain_seconds.append(wait_drained(stack))
        for part, pid in processes.items():
            variant.cpu[part] += cpu_seconds(pid) - before[part]
    variant.requests += args.count
    variant.post_p50.append(summary["post_latency_ms"]["p50"])
    variant.post_p99.append(summary["post_latency_ms"]["p99"])
    print(f"  {variant.name}: {variant.total_ms():.2f} ms of CPU per request so far",
          flush=True)


def worktree(revision: str, scratch: Path) -> Path:
    """REV checked out beside this one, with this checkout's node_modules (DynamoDB Local)."""
    path = scratch / "baseline"
    subprocess.run(["git", "-C", str(PROJECT_DIR), "worktree", "add", "--detach", str(path),
                    revision], check=True, capture_output=True)
    (path / "node_modules").symlink_to(PROJECT_DIR / "node_modules")
    return path


def run(args: argparse.Namespace) -> list[Variant]:
    with tempfile.TemporaryDirectory(prefix="pipeline-cpu-") as name:
        scratch = Path(name)
        variants = [Variant("current", PROJECT_DIR)]
        if args.baseline:
            variants.insert(0, Variant(f"baseline {args.baseline}",
                                       worktree(args.baseline, scratch)))
        try:
            for number in range(args.rounds):
                print(f"round {number + 1} of {args.rounds}", flush=True)
                for variant in variants if number % 2 == 0 else variants[::-1]:
                    measure(variant, args, scratch)
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(PROJECT_DIR), "worktree", "remove", "--force",
                                str(scratch / "baseline")], check=False, capture_output=True)
    return variants


def report(variants: list[Variant], args: argparse.Namespace) -> None:
    print(f"\n## CPU per request at {args.rate:g} requests/s, {args.count:,} requests a round, "
          f"{args.rounds} round(s) (ms)\n")
    print(table(["variant", *PARTS, "all parts", "POST p50 ms", "POST p99 ms",
                 "drained after s"], [variant.row() for variant in variants]))
    if len(variants) == 2:
        baseline, current = variants
        print(f"\ncurrent / baseline, all parts: {current.total_ms() / baseline.total_ms():.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=None,
                        help="a git revision to compare with (default: this checkout only)")
    parser.add_argument("--rate", type=float, default=100, help="requests/s (default 100)")
    parser.add_argument("--count", type=int, default=6000, help="counted requests a round")
    parser.add_argument("--warmup", type=int, default=2000, help="requests before, not counted")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (default 2)")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 1000 and 1 <= args.count <= 100_000 and 0 <= args.warmup <= 100_000
            and 1 <= args.rounds <= 10):
        parser.error("--rate 0..1000, --count 1..100000, --warmup 0..100000, --rounds 1..10")
    reason = unavailable_reason() or (None if PROC.joinpath("self", "stat").exists() else
                                      "CPU times are read from /proc: Linux only")
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 1
    print(f"machine: {machine()}")
    report(run(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
