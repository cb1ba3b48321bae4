"""P3: the local gateway against a direct SQS SendMessage to the same moto, in one run
(docs/benchmarks.md, "P3").

    .venv/bin/python -m bench.gateway [--requests 200] [--threads 8] [--blocks 3]

Latency: `--requests` sequential requests of each path, alternating one by one. Throughput:
`--blocks` blocks of `--requests` requests from `--threads` threads, alternating; the median
block rate. The queue is drained after every block (moto allows one PurgeQueue a minute).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median
from typing import Any

import numpy
import urllib3

from bench import results as bench_results
from bench.output import machine, parser, pipeline, table
from devstack.dynamodb_local import MOTO
from devstack.resources import DEFAULT_QUEUE


def body(number: int) -> str:
    return json.dumps({"operation": "create", "id": f"gw-{number}-{uuid.uuid4().hex[:8]}",
                       "item": {"name": "gateway bench", "n": number}})


Send = Callable[[int], None]


def senders(base_url: str, sqs: Any, queue_url: str, threads: int) -> dict[str, Send]:
    pool = urllib3.PoolManager(maxsize=threads, block=True)

    def gateway(number: int) -> None:
        response = pool.request("POST", f"{base_url}/SQSManager", body=body(number),
                                headers={"Content-Type": "application/json"})
        if response.status != 202:
            raise RuntimeError(f"gateway answered {response.status}: {response.data[:300]!r}")

    def direct(number: int) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body(number), MessageAttributes={
            "requestId": {"DataType": "String", "StringValue": uuid.uuid4().hex},
            "requestTimeEpoch": {"DataType": "Number", "StringValue": str(int(time.time() * 1e3))}})

    return {"gateway": gateway, "direct": direct}


def drain(sqs: Any, queue_url: str) -> None:
    """Delete what is visible in the queue."""
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                          VisibilityTimeout=60).get("Messages"):
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])


def seconds(send: Send, requests: int, threads: int = 1) -> float:
    """How long `requests` sends took, from `threads` threads (one: in this one)."""
    began = time.perf_counter()
    if threads == 1:
        for number in range(requests):
            send(number)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(send, range(requests)))
    return time.perf_counter() - began


def run(requests: int, threads: int, blocks: int, results_path: Path) -> None:
    import boto3

    print(f"machine: {machine()}")
    with pipeline(MOTO) as devstack:
        sqs = boto3.client("sqs", endpoint_url=devstack.endpoint_url, region_name="us-west-2",
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        queue_url = sqs.get_queue_url(QueueName=DEFAULT_QUEUE)["QueueUrl"]
        print(f"devstack {devstack.base_url} (moto {devstack.endpoint_url}); {requests} "
              f"requests per measurement, {threads} threads, {blocks} throughput blocks")
        paths = senders(devstack.base_url, sqs, queue_url, threads)
        for send in paths.values():  # warm-up: connections, code paths
            seconds(send, 20)
        drain(sqs, queue_url)
        latencies: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(requests):
            for name, send in paths.items():
                latencies[name].append(seconds(send, 1) * 1e3)
        drain(sqs, queue_url)
        rates: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(blocks):
            for name, send in paths.items():
                rates[name].append(requests / seconds(send, requests, threads))
                drain(sqs, queue_url)

    p50 = {name: median(latencies[name]) for name in paths}
    print(f"\n## Gateway vs direct SendMessage (same moto; latency sequential, throughput with "
          f"{threads} threads)\n")
    print(table(["path", "requests", "p50 ms", "p90 ms", "p99 ms", "requests/s (median)"], [
        [name, requests, p50[name], *numpy.percentile(latencies[name], [90, 99]),
         median(rates[name])]
        for name in paths]))
    values = {"gateway_latency_ratio": p50["gateway"] / p50["direct"],
              "gateway_throughput_ratio": median(rates["gateway"]) / median(rates["direct"])}
    extra_ms = p50["gateway"] - p50["direct"]
    bench_results.record(values, {
        "requests": requests, "threads": threads, "blocks": blocks,
        "gateway_extra_p50_ms": extra_ms, **{f"{name}_p50_ms": p50[name] for name in paths},
        **{f"{name}_requests_per_second": median(rates[name]) for name in paths}},
        "bench.gateway", results_path)
    print(f"\nthe gateway adds {extra_ms:.2f} ms at p50 to a direct SendMessage\n"
          f"gateway_latency_ratio {values['gateway_latency_ratio']:.2f} (target <= 1.3), "
          f"gateway_throughput_ratio {values['gateway_throughput_ratio']:.2f} (target >= 0.8); "
          f"written to {results_path}")


def main(argv: list[str] | None = None) -> int:
    cli = parser("bench.gateway", __doc__)
    cli.add_argument("--requests", type=int, default=200, choices=range(1, 2001),
                     metavar="1..2000")
    cli.add_argument("--threads", type=int, default=8, choices=range(1, 65), metavar="1..64")
    cli.add_argument("--blocks", type=int, default=3, choices=range(1, 11), metavar="1..10")
    cli.add_argument("--results", type=Path, default=bench_results.DEFAULT_PATH)
    args = cli.parse_args(argv)
    run(args.requests, args.threads, args.blocks, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
