"""python -m bench.load: POST commands to a stack and measure POST and POST->applied latency.

    .venv/bin/python -m bench.load                       # local pipeline (make run), 10/s, 100
    .venv/bin/python -m bench.load --rate 50 --duration 30
    .venv/bin/python -m bench.load --concurrency 8 --count 500 --mix
    .venv/bin/python -m bench.load --self-test           # the tool's own ceiling
    .venv/bin/python -m bench.load --pipeline dynamodb-local --rate 100 --count 10000 \
        --warmup 3000 --poll-after --poll-concurrency 8 --outcome-timeout 400 --record  # P4
    .venv/bin/python -m bench.load --allow-remote --ingest-url "$INGEST_URL" \\
        --read-url "$READ_URL" --api-key "$KEY" --sigv4 --rate 20 --duration 60

--ingest-url is the base URL of POST /SQSManager (or that full URL); --read-url the base of
GET /requests/{id}. Locally both are the pipeline's (--url, default http://127.0.0.1:8000), or
those of a pipeline the tool starts for the run (--pipeline moto|dynamodb-local: `python -m
devstack` on free loopback ports, stopped after). A URL that is not loopback is refused unless
--allow-remote is given: it is your deployed stack. A run ends when every accepted request has
an outcome (or --outcome-timeout passed), so it measures the drain too.
Prints a summary and writes results.json and three PNGs to --out (default
build/load/<UTC time>/).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import results as bench_results
from bench.load.records import LoadConfig, LoadRun
from bench.load.report import write_json, write_plots
from bench.load.runner import run_load
from bench.load.summary import summarize, summary_text
from bench.load.workload import Workload
from bench.output import machine
from devstack.dynamodb_local import DYNAMODB_LOCAL, MOTO
from devstack.process import DevstackProcess
from scripts.sigv4 import Signer

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
DEFAULT_URL = "http://127.0.0.1:8000"
MAX_COUNT = 100_000
MAX_DURATION = 1800.0
SELF_TEST_COUNT = 5000
SELF_TEST_CONCURRENCY = 32
# P4 (bench/results.py): POST -> applied at 100 requests/s on the local pipeline on DynamoDB Local.
P4_RATE = 100.0


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post_url(ingest_url: str) -> str:
    base = ingest_url.rstrip("/")
    return base if base.endswith("/SQSManager") else f"{base}/SQSManager"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    target = p.add_argument_group("target")
    target.add_argument("--url", default=DEFAULT_URL,
                        help=f"base URL for both POST and reads (default {DEFAULT_URL})")
    target.add_argument("--ingest-url", help="base URL of POST /SQSManager (default --url)")
    target.add_argument("--read-url", help="base URL of GET /requests/{id} (default --url)")
    target.add_argument("--api-key", default=os.environ.get("LOAD_API_KEY"),
                        help="x-api-key for POST (default $LOAD_API_KEY)")
    target.add_argument("--sigv4", action="store_true",
                        help="sign POSTs and reads with SigV4 (execute-api), credentials from "
                             "boto3's chain (for IngestAuthorization AWS_IAM, the default)")
    target.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-west-2"),
                        help="region for --sigv4 (default $AWS_DEFAULT_REGION or us-west-2)")
    target.add_argument("--allow-remote", action="store_true",
                        help="allow URLs that are not loopback (your own deployed stack)")
    target.add_argument("--pipeline", choices=(MOTO, DYNAMODB_LOCAL),
                        help="start a local pipeline with this store for the run (python -m "
                             "devstack on free loopback ports) instead of using --url")
    load = p.add_argument_group("load (one of --rate/--concurrency; --count and/or --duration)")
    load.add_argument("--rate", type=float, help="open loop: requests/s (default 10)")
    load.add_argument("--concurrency", type=int, help="closed loop: workers")
    load.add_argument("--count", type=int, help="requests (default 100 without --duration)")
    load.add_argument("--duration", type=float, help="seconds of sending")
    load.add_argument("--warmup", type=int, default=0,
                      help="first send this many requests the same way, not counted, no "
                           "outcome reads (default 0)")
    load.add_argument("--connections", type=int, default=64,
                      help="POSTs in flight at most (default 64)")
    load.add_argument("--timeout", type=float, default=30.0, help="per HTTP request, s")
    load.add_argument("--mix", action="store_true",
                      help="create/update/put/delete on --ids ids instead of unique creates")
    load.add_argument("--ids", type=int, default=50, help="ids of --mix (default 50)")
    load.add_argument("--seed", type=int, default=1, help="random seed of --mix")
    reads = p.add_argument_group("outcomes")
    reads.add_argument("--no-poll", action="store_true", help="POST only, read no outcomes")
    reads.add_argument("--poll-concurrency", type=int, default=4,
                       help="outcome GETs in flight at most (default 4)")
    reads.add_argument("--poll-first", type=float, default=0.1,
                       help="first poll this long after the POST's answer, s (default 0.1)")
    reads.add_argument("--poll-backoff", type=float, default=1.5,
                       help="each later poll of a request waits this factor longer (1.5)")
    reads.add_argument("--poll-after", action="store_true",
                       help="read outcomes only once every POST is answered (POST->applied "
                            "then comes from each outcome's handledAt)")
    reads.add_argument("--poll-max-interval", type=float, default=1.0,
                       help="backoff cap between polls of one request, s (default 1)")
    reads.add_argument("--outcome-timeout", type=float, default=120.0,
                       help="give up on an outcome this long after its POST, s (default 120)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, help="output directory (default build/load/<time>/)")
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    out.add_argument("--self-test", action="store_true",
                     help="measure the tool's ceiling against a trivial local endpoint")
    out.add_argument("--record", action="store_true",
                     help=f"merge P4 (POST->applied p99, by handledAt) into --results; needs "
                          f"--pipeline {DYNAMODB_LOCAL} --rate {P4_RATE:g}")
    out.add_argument("--results", type=Path, default=bench_results.DEFAULT_PATH,
                     help="the results file of --record (default bench/results.json)")
    return p


def config_from(args: argparse.Namespace, p: argparse.ArgumentParser) -> LoadConfig:
    ingest = args.ingest_url or args.url
    read = (args.read_url or args.url).rstrip("/")
    for url in (ingest, read):
        if urlsplit(url).scheme not in ("http", "https"):
            p.error(f"not an http(s) URL: {url}")
        if not is_loopback(url) and not args.allow_remote:
            p.error(f"{url} is not loopback: pass --allow-remote to load your deployed stack")
    if args.rate is not None and args.concurrency is not None:
        p.error("give --rate or --concurrency, not both")
    rate = args.rate if args.rate is not None or args.concurrency is not None else 10.0
    count = args.count if args.count is not None or args.duration is not None else 100
    if count is not None and not 1 <= count <= MAX_COUNT:
        p.error(f"--count must be 1..{MAX_COUNT}")
    if args.duration is not None and not 0 < args.duration <= MAX_DURATION:
        p.error(f"--duration must be in (0, {MAX_DURATION:.0f}] s")
    if (rate is not None and rate <= 0) or (args.concurrency is not None and args.concurrency < 1):
        p.error("--rate and --concurrency must be positive")
    if not 0 <= args.warmup <= MAX_COUNT:
        p.error(f"--warmup must be 0..{MAX_COUNT}")
    if args.record and (args.pipeline != DYNAMODB_LOCAL or rate != P4_RATE or args.no_poll):
        p.error(f"--record measures P4: --pipeline {DYNAMODB_LOCAL} --rate {P4_RATE:g}, "
                "outcomes read")
    return LoadConfig(
        post_url=post_url(ingest), read_url=read, rate=rate, concurrency=args.concurrency,
        count=count, duration=args.duration, connections=args.connections, timeout=args.timeout,
        api_key=args.api_key, sign=Signer(args.region).headers if args.sigv4 else None,
        poll=not args.no_poll, poll_concurrency=args.poll_concurrency,
        poll_first=args.poll_first, poll_backoff=args.poll_backoff,
        poll_max_interval=args.poll_max_interval, poll_after=args.poll_after,
        outcome_timeout=args.outcome_timeout,
        progress=not args.no_progress)


def settings_of(config: LoadConfig, args: argparse.Namespace) -> dict[str, Any]:
    settings = {k: v for k, v in vars(config).items() if k not in ("api_key", "sign")}
    settings.update(api_key=bool(config.api_key), sigv4=config.sign is not None, mix=args.mix,
                    ids=args.ids if args.mix else None, seed=args.seed, machine=machine())
    return settings


def execute(config: LoadConfig, args: argparse.Namespace, out: Path, title: str) -> LoadRun:
    tag = uuid.uuid4().hex[:8]
    if args.warmup:
        warm = asyncio.run(run_load(replace(config, count=args.warmup, duration=None, poll=False),
                                    Workload(f"{tag}w")))
        accepted = sum(1 for r in warm.records if r.http_status == 202)
        print(f"warm-up: {args.warmup} requests, {accepted} accepted (not counted)")
    workload = Workload(tag, mix=args.mix, ids=args.ids, seed=args.seed)
    run = asyncio.run(run_load(config, workload))
    summary = summarize(run)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", run, summary, settings_of(config, args))
    paths = write_plots(out, run, title)
    print(f"\n## {title}\n")
    print(summary_text(summary))
    print(f"\nwrote {out / 'results.json'}, " + ", ".join(p.name for p in paths))
    return run


def default_out(suffix: str = "") -> Path:
    return PROJECT_DIR / "build" / "load" / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                                             + suffix)


def self_test(args: argparse.Namespace, p: argparse.ArgumentParser) -> int:
    """Closed loop against the stub endpoint: POST only, then POST + outcome polling."""
    stub = subprocess.Popen([sys.executable, "-m", "bench.load.stub_server"], cwd=PROJECT_DIR,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert stub.stdout is not None
        line = stub.stdout.readline().strip()
        if not line.startswith("listening on "):
            p.error(f"stub endpoint did not start: {line!r}")
        args.url = line.removeprefix("listening on ")
        args.ingest_url = args.read_url = None
        if args.rate is None and args.concurrency is None:
            args.concurrency = SELF_TEST_CONCURRENCY
        if args.count is None and args.duration is None:
            args.count = SELF_TEST_COUNT
        out = args.out or default_out("-self-test")
        print(f"machine: {machine()}\nstub endpoint (own process): {args.url}")
        results = {}
        for name, poll in (("post-only", False), ("post+poll", True)):
            args.no_poll = not poll
            config = config_from(args, p)
            run = execute(config, args, out / name, f"self-test {name}: {_shape(config)}")
            results[name] = summarize(run)
        print("\n## Ceiling of the load tool (stub endpoint answering at once)\n")
        for name, summary in results.items():
            print(f"{name}: {summary['post_throughput']:.0f} POSTs/s, POST p50 "
                  f"{summary['post_latency_ms']['p50']:.1f} ms, p99 "
                  f"{summary['post_latency_ms']['p99']:.1f} ms; outcome GETs "
                  f"{summary['polls']:,}")
        (out / "ceiling.json").write_text(json.dumps(
            {k: {"post_throughput": v["post_throughput"], "polls": v["polls"],
                 "endings": v["endings"]} for k, v in results.items()}, indent=1) + "\n",
            encoding="utf-8")
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    return 0


def _shape(config: LoadConfig) -> str:
    mode = f"rate {config.rate:g}/s" if config.rate else f"concurrency {config.concurrency}"
    bound = " and ".join(x for x in (f"{config.count} requests" if config.count else "",
                                     f"{config.duration:g} s" if config.duration else "") if x)
    return f"{mode}, {bound}"


@contextmanager
def local_pipeline(store: str) -> Iterator[str]:
    """`python -m devstack --store STORE` for one run; its base URL."""
    with tempfile.TemporaryDirectory(prefix="bench-load-") as log_dir:
        process = DevstackProcess(Path(log_dir) / "devstack.log", "--log-level", "WARNING",
                                  store=store, env={"LOG_LEVEL": "WARNING",
                                                    "AWS_EC2_METADATA_DISABLED": "true"})
        process.start(timeout=120)  # DynamoDB Local's JVM takes a few seconds
        try:
            print(f"pipeline (python -m devstack --store {store}): {process.base_url}")
            yield process.base_url
        finally:
            process.stop()


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


def measure(args: argparse.Namespace, p: argparse.ArgumentParser) -> int:
    config = config_from(args, p)
    print(f"machine: {machine()}\nPOST {config.post_url}; outcomes from {config.read_url}")
    run = execute(config, args, args.out or default_out(), f"load: {_shape(config)}")
    if args.record:
        record_p4(run, args)
    return 0 if run.records else 1


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.self_test:
        return self_test(args, p)
    if args.pipeline is None:
        return measure(args, p)
    if args.ingest_url or args.read_url:
        p.error("--pipeline starts its own pipeline: no --ingest-url or --read-url")
    with local_pipeline(args.pipeline) as url:
        args.url = url
        return measure(args, p)
