"""The local gateway against a direct SQS SendMessage to the same emulator, in one run.

    .venv/bin/python -m bench.gateway [--requests 200] [--threads 8] [--blocks 3]

Starts `python -m devstack` (moto, free loopback ports, log level WARNING, its event source
running in its own process as in `make run`) and sends the same valid `create` command two ways:
- gateway: `POST /SQSManager` over one keep-alive HTTP connection per client thread (validation
  against the model, the mapping template from infra/, a SigV4-signed SendMessage to moto, the
  integration response);
- direct: boto3's `sqs.send_message` to the same queue of the same moto, with the two message
  attributes the mapping template adds (one client, shared by the threads: boto3 clients are
  thread-safe).
Latency: `--requests` sequential requests of each, alternating one by one. Throughput: `--blocks`
blocks of `--requests` requests from `--threads` threads, gateway and direct alternating; the
median block rate of each. The queue is drained (receive + delete) after every block, so that both
see a queue about as shallow (moto allows one PurgeQueue a minute).

It also prints what the gateway adds in ms (its p50 minus the direct p50): the ratio depends on
how fast moto is at the moment, the added ms much less.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median
from typing import Any

from bench import results as bench_results
from bench.output import machine, table
from bench.stats import percentile

QUEUE, DLQ, TABLE = "bench-gateway-queue", "bench-gateway-dlq", "bench-gateway-table"


def body(number: int) -> bytes:
    return json.dumps({"operation": "create", "id": f"gw-{number}-{uuid.uuid4().hex[:8]}",
                       "item": {"name": "gateway bench", "n": number}}).encode()


class GatewayClient:
    """One keep-alive connection per thread, as a load tool would hold."""

    def __init__(self, base_url: str) -> None:
        host, _, port = base_url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self._local = threading.local()

    def send(self, number: int) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(
                self.host, self.port, timeout=30)
        connection.request("POST", "/SQSManager", body=body(number),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 202:
            raise RuntimeError(f"gateway answered {response.status}: {payload[:300]!r}")


class DirectClient:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url

    def send(self, number: int) -> None:
        now = str(int(time.time() * 1000))
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body(number).decode(),
                              MessageAttributes={
                                  "requestId": {"DataType": "String",
                                                "StringValue": uuid.uuid4().hex},
                                  "requestTimeEpoch": {"DataType": "Number", "StringValue": now}})


def drain(sqs: Any, queue_url: str, max_seconds: float = 60.0) -> int:
    """Delete what is visible in the queue; returns how many."""
    deleted = 0
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0, VisibilityTimeout=60).get("Messages")
        if not messages:
            break
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        deleted += len(messages)
    return deleted


def timed(send: Callable[[int], None], number: int) -> float:
    began = time.perf_counter()
    send(number)
    return time.perf_counter() - began


def block_rate(send: Callable[[int], None], requests: int, threads: int) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(send, range(requests)))
    return requests / (time.perf_counter() - began)


def run(requests: int, threads: int, blocks: int, results_path: Path) -> int:
    import boto3

    from devstack.process import DevstackProcess

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as log_dir, DevstackProcess(
            Path(log_dir) / "devstack.log", "--log-level", "WARNING", "--queue-name", QUEUE,
            "--dlq-name", DLQ, "--table-name", TABLE,
            env={"LOG_LEVEL": "WARNING", "AWS_EC2_METADATA_DISABLED": "true"}) as devstack:
        sqs = boto3.client("sqs", endpoint_url=devstack.endpoint_url, region_name="us-west-2",
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        print(f"devstack {devstack.base_url} (moto {devstack.endpoint_url}); {requests} "
              f"requests per measurement, {threads} threads, {blocks} throughput blocks")
        senders = {"gateway": GatewayClient(devstack.base_url).send,
                   "direct": DirectClient(sqs, queue_url).send}
        for send in senders.values():  # warm-up: connections, code paths
            for number in range(20):
                send(number)
        drain(sqs, queue_url)
        latencies: dict[str, list[float]] = {name: [] for name in senders}
        for number in range(requests):
            for name, send in senders.items():
                latencies[name].append(timed(send, number))
        drain(sqs, queue_url)
        rates: dict[str, list[float]] = {name: [] for name in senders}
        for _ in range(blocks):
            for name, send in senders.items():
                rates[name].append(block_rate(send, requests, threads))
                drain(sqs, queue_url)

    p50 = {name: median(latencies[name]) for name in senders}
    rows = [[name, requests, p50[name] * 1e3,
             percentile(latencies[name], 0.9) * 1e3, percentile(latencies[name], 0.99) * 1e3,
             median(rates[name]), ", ".join(f"{rate:.0f}" for rate in rates[name])]
            for name in senders]
    print("\n## Gateway vs direct SendMessage (same moto; latency sequential, throughput with "
          f"{threads} threads)\n")
    print(table(["path", "requests", "p50 ms", "p90 ms", "p99 ms", "requests/s (median)",
                 "requests/s per block"], rows))
    values = {"gateway_latency_ratio": p50["gateway"] / p50["direct"],
              "gateway_throughput_ratio": median(rates["gateway"]) / median(rates["direct"])}
    extra_ms = (p50["gateway"] - p50["direct"]) * 1e3
    details = {"requests": requests, "threads": threads, "blocks": blocks,
               "gateway_extra_p50_ms": extra_ms,
               **{f"{name}_p50_ms": p50[name] * 1e3 for name in senders},
               **{f"{name}_requests_per_second": median(rates[name]) for name in senders}}
    print(f"\nthe gateway adds {extra_ms:.2f} ms at p50 to a direct SendMessage")
    bench_results.record(values, details, "bench.gateway", results_path)
    print(f"gateway_latency_ratio {values['gateway_latency_ratio']:.2f} (target <= 1.3), "
          f"gateway_throughput_ratio {values['gateway_throughput_ratio']:.2f} (target >= 0.8); "
          f"written to {results_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--results", type=Path, default=bench_results.DEFAULT_PATH)
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 2000 and 1 <= args.threads <= 64 and 1 <= args.blocks <= 10):
        parser.error("--requests 1..2000, --threads 1..64, --blocks 1..10")
    return run(args.requests, args.threads, args.blocks, args.results)


if __name__ == "__main__":
    sys.exit(main())
