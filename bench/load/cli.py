"""python -m bench.load: POST commands to a stack and measure POST and POST->applied latency
(docs/running-locally.md, "The load tool").

    .venv/bin/python -m bench.load                       # local pipeline (make run), 10/s, 100
    .venv/bin/python -m bench.load --rate 50 --duration 30
    .venv/bin/python -m bench.load --concurrency 8 --count 500 --mix
    .venv/bin/python -m bench.load --self-test           # the tool's own ceiling
    .venv/bin/python -m bench.load --pipeline dynamodb-local --rate 100 --count 10000 \\
        --warmup 3000 --poll-after --poll-concurrency 8 --outcome-timeout 400 --record  # P4
    .venv/bin/python -m bench.load --allow-remote --ingest-url "$INGEST_URL" \\
        --read-url "$READ_URL" --api-key "$KEY" --sigv4 --rate 20 --duration 60

A URL that is not loopback is refused unless --allow-remote is given: it is your deployed stack.
--sigv4 signs for the region in $AWS_DEFAULT_REGION (us-west-2 without it).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from urllib.parse import urlsplit

from bench import output
from bench import results as bench_results
from bench.load.records import LoadConfig, LoadRun, Workload
from bench.load.report import summarize, summary_text, write_json, write_plots
from bench.load.runner import run_load
from bench.output import PROJECT_DIR, machine, pipeline
from devstack.dynamodb_local import DYNAMODB_LOCAL, MOTO
from scripts.sigv4 import Signer

MAX_COUNT, MAX_DURATION = 100_000, 1800.0
P4_RATE = 100.0  # P4 (bench/results.py): POST -> applied at 100/s on DynamoDB Local


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post_url(ingest_url: str) -> str:
    base = ingest_url.rstrip("/")
    return base if base.endswith("/SQSManager") else f"{base}/SQSManager"


def parser() -> argparse.ArgumentParser:
    p = output.parser("bench.load", __doc__)
    add = p.add_argument
    add("--url", default="http://127.0.0.1:8000", help="base URL of POSTs and reads")
    add("--ingest-url", help="base URL of POST /SQSManager (default --url)")
    add("--read-url", help="base URL of GET /requests/{id} (default --url)")
    add("--api-key", default=os.environ.get("LOAD_API_KEY"),
        help="x-api-key for POSTs (default $LOAD_API_KEY)")
    add("--sigv4", action="store_true", help="sign POSTs and reads (execute-api), credentials "
        "from boto3's chain (for IngestAuthorization AWS_IAM)")
    add("--allow-remote", action="store_true", help="allow URLs that are not loopback")
    add("--pipeline", choices=(MOTO, DYNAMODB_LOCAL),
        help="start a local pipeline with this store for the run instead of using --url")
    add("--rate", type=float, help="open loop: requests/s (default 10)")
    add("--concurrency", type=int, help="closed loop: workers")
    add("--count", type=int, help=f"requests, 1..{MAX_COUNT} (default 100 without --duration)")
    add("--duration", type=float, help=f"seconds of sending, at most {MAX_DURATION:g}")
    add("--warmup", type=int, default=0,
        help="first send this many requests the same way, not counted, no outcome reads")
    add("--connections", type=int, default=64, help="POSTs in flight at most (64)")
    add("--mix", action="store_true",
        help="create/update/put/delete on --ids ids instead of unique creates")
    add("--ids", type=int, default=50, help="ids of --mix (50)")
    add("--no-poll", action="store_true", help="POST only, read no outcomes")
    add("--poll-concurrency", type=int, default=4, help="outcome GETs in flight at most (4)")
    add("--poll-after", action="store_true", help="read outcomes only once every POST is "
        "answered (POST->applied then comes from each outcome's handledAt)")
    add("--outcome-timeout", type=float, default=120.0,
        help="give up on an outcome this long after its POST, s (120)")
    add("--out", type=Path, help="output directory (default build/load/<time>/)")
    add("--no-progress", action="store_true", help="no progress bars")
    add("--self-test", action="store_true",
        help="measure the tool's ceiling against a trivial local endpoint")
    add("--record", action="store_true", help=f"merge P4 (POST->applied p99, by handledAt) "
        f"into --results; needs --pipeline {DYNAMODB_LOCAL} --rate {P4_RATE:g}")
    add("--results", type=Path, default=bench_results.DEFAULT_PATH, help="file of --record")
    return p


def config_from(args: argparse.Namespace, p: argparse.ArgumentParser) -> LoadConfig:
    ingest, read = args.ingest_url or args.url, (args.read_url or args.url).rstrip("/")
    for url in (ingest, read):
        if urlsplit(url).scheme not in ("http", "https"):
            p.error(f"not an http(s) URL: {url}")
        if not is_loopback(url) and not args.allow_remote:
            p.error(f"{url} is not loopback: pass --allow-remote to load your deployed stack")
    if args.rate is not None and args.concurrency is not None:
        p.error("give --rate or --concurrency, not both")
    rate = args.rate if args.rate is not None or args.concurrency is not None else 10.0
    count = args.count if args.count is not None or args.duration is not None else 100
    if (count is not None and not 1 <= count <= MAX_COUNT) or not 0 <= args.warmup <= MAX_COUNT:
        p.error(f"--count must be 1..{MAX_COUNT}, --warmup 0..{MAX_COUNT}")
    if args.duration is not None and not 0 < args.duration <= MAX_DURATION:
        p.error(f"--duration must be in (0, {MAX_DURATION:.0f}] s")
    if (rate is not None and rate <= 0) or (args.concurrency is not None and args.concurrency < 1):
        p.error("--rate and --concurrency must be positive")
    if args.record and (args.pipeline != DYNAMODB_LOCAL or rate != P4_RATE or args.no_poll):
        p.error(f"--record measures P4: --pipeline {DYNAMODB_LOCAL} --rate {P4_RATE:g}, "
                "outcomes read")
    region = os.environ.get("AWS_DEFAULT_REGION", "us-west-2")
    return LoadConfig(
        post_url=post_url(ingest), read_url=read, rate=rate, concurrency=args.concurrency,
        count=count, duration=args.duration, connections=args.connections,
        api_key=args.api_key, sign=Signer(region).headers if args.sigv4 else None,
        poll=not args.no_poll, poll_concurrency=args.poll_concurrency,
        poll_after=args.poll_after, outcome_timeout=args.outcome_timeout,
        progress=not args.no_progress)


def execute(config: LoadConfig, args: argparse.Namespace, out: Path) -> LoadRun:
    """A run (after its warm-up), its summary printed, its files written to `out`."""
    tag = uuid.uuid4().hex[:8]
    if args.warmup:
        warm = asyncio.run(run_load(replace(config, count=args.warmup, duration=None, poll=False),
                                    Workload(f"{tag}w")))
        accepted = sum(1 for r in warm.records if r.http_status == 202)
        print(f"warm-up: {args.warmup} requests, {accepted} accepted (not counted)")
    run = asyncio.run(run_load(config, Workload(tag, mix=args.mix, ids=args.ids)))
    mode = f"rate {config.rate:g}/s" if config.rate else f"concurrency {config.concurrency}"
    bounds = [f"{config.count} requests" if config.count else "",
              f"{config.duration:g} s" if config.duration else ""]
    title = f"load: {mode}, {' and '.join(b for b in bounds if b)}"
    summary = summarize(run)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in asdict(config).items() if k not in ("api_key", "sign")}
    write_json(out / "results.json", run, summary, {
        **settings, "api_key": bool(config.api_key), "sigv4": config.sign is not None,
        "mix": args.mix, "ids": args.ids if args.mix else None, "machine": machine()})
    paths = write_plots(out, run, title)
    print(f"\n## {title}\n\n{summary_text(summary)}\n\nwrote {out / 'results.json'}, "
          + ", ".join(p.name for p in paths))
    return run


def self_test(args: argparse.Namespace, p: argparse.ArgumentParser, out: Path) -> int:
    """Closed loop against the stub endpoint in a process of its own: POST only, then POST +
    outcome polling."""
    stub = subprocess.Popen([sys.executable, "-m", "bench.load.stub_server"], cwd=PROJECT_DIR,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert stub.stdout is not None
        args.url = stub.stdout.readline().strip().removeprefix("listening on ")
        if args.rate is None and args.concurrency is None:
            args.concurrency = 32
        if args.count is None and args.duration is None:
            args.count = 5000
        print(f"machine: {machine()}\nstub endpoint (own process): {args.url}")
        ceiling = {}
        for name in ("post-only", "post+poll"):
            args.no_poll = name == "post-only"
            summary = summarize(execute(config_from(args, p), args, out / name))
            ceiling[name] = {k: summary[k] for k in ("post_throughput", "polls", "endings")}
            print(f"self-test {name}: {summary['post_throughput']:.0f} POSTs/s, POST p50 "
                  f"{summary['post_latency_ms']['p50']:.1f} ms, p99 "
                  f"{summary['post_latency_ms']['p99']:.1f} ms; outcome GETs {summary['polls']:,}")
        (out / "ceiling.json").write_text(json.dumps(ceiling, indent=1) + "\n", encoding="utf-8")
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    return 0


def record_p4(run: LoadRun, args: argparse.Namespace) -> None:
    summary = summarize(run)
    applied = summary["handled_latency_ms"]
    if applied["count"] == 0:
        raise SystemExit("--record: no outcome with handledAt: nothing to record")
    bench_results.record({"applied_p99_ms": applied["p99"]}, {
        "rate": run.config.rate, "count": len(run.records), "warmup": args.warmup,
        "endings": summary["endings"], "post_p50_ms": summary["post_latency_ms"]["p50"],
        "post_p99_ms": summary["post_latency_ms"]["p99"], "applied_p50_ms": applied["p50"],
        "applied_throughput": summary["handled_throughput"]}, "bench.load", args.results)
    print(f"applied_p99_ms {applied['p99']:.0f} (target <= 1000); written to {args.results}")


def measure(args: argparse.Namespace, p: argparse.ArgumentParser, out: Path) -> int:
    config = config_from(args, p)
    print(f"machine: {machine()}\nPOST {config.post_url}; outcomes from {config.read_url}")
    run = execute(config, args, out)
    if args.record:
        record_p4(run, args)
    return 0 if run.records else 1


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    out = args.out or PROJECT_DIR / "build" / "load" / (
        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-self-test" * args.self_test)
    if args.self_test:
        return self_test(args, p, out)
    if args.pipeline is None:
        return measure(args, p, out)
    if args.ingest_url or args.read_url:
        p.error("--pipeline starts its own pipeline: no --ingest-url or --read-url")
    with pipeline(args.pipeline) as started:
        print(f"pipeline (python -m devstack --store {args.pipeline}): {started.base_url}")
        args.url = started.base_url
        return measure(args, p, out)
