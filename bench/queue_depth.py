"""SQS on moto as a backlog grows: stock moto_server against devstack's patched one.

    .venv/bin/python -m bench.queue_depth [--depths 0,500,1000,2000,4000] [--samples 10]

SQS's latency does not depend on how many messages wait; moto's did (devstack/moto_server.py
says why). For each server and each depth, the queue is filled to that depth, then `--samples`
times: one SendMessage, one ReceiveMessage of up to 10 (visibility 30 s) and one
DeleteMessageBatch of what it got; the medians are printed. Both servers run as processes on
127.0.0.1, reached over HTTP by boto3, one after the other.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench.stats import machine, median, table
from devstack.emulator import EMULATOR_CREDENTIALS, MotoServer, free_port

REGION = "us-west-2"
BODY = "x" * 200


class StockMotoServer(MotoServer):
    """moto's own server, without devstack's patches."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]


Row = tuple[int, float, float, float]  # depth, then ms: send, receive, delete


def measure(server: MotoServer, depths: list[int], samples: int) -> list[Row]:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=server.endpoint_url, region_name=REGION,
                       aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    url = sqs.create_queue(QueueName="depth")["QueueUrl"]
    rows: list[Row] = []
    depth = 0
    for target in depths:
        while depth < target:
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": BODY} for i in range(10)])
            depth += 10
        sends, receives, deletes = [], [], []
        for _ in range(samples):
            began = time.perf_counter()
            sqs.send_message(QueueUrl=url, MessageBody=BODY)
            sends.append(time.perf_counter() - began)
            began = time.perf_counter()
            got: list[dict[str, Any]] = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
            receives.append(time.perf_counter() - began)
            began = time.perf_counter()
            if got:
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(got)])
            deletes.append(time.perf_counter() - began)
            depth += 1 - len(got)
        rows.append((target, median(sends) * 1e3, median(receives) * 1e3,
                     median(deletes) * 1e3))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_depth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="0,500,1000,2000,4000",
                        help="queue depths to measure at, ascending (default 0,500,1000,2000,4000)")
    parser.add_argument("--samples", type=int, default=10,
                        help="send/receive/delete rounds per depth (default 10)")
    args = parser.parse_args(argv)
    depths = sorted(int(d) for d in args.depths.split(","))
    if depths[0] < 0 or depths[-1] > 20_000 or not 1 <= args.samples <= 100:
        parser.error("depths must be 0..20000 and --samples 1..100")
    print(f"machine: {machine()}")
    results = {}
    for name, kind in (("stock moto_server", StockMotoServer), ("devstack/moto_server.py",
                                                                 MotoServer)):
        with kind(port=free_port()) as server:
            results[name] = measure(server, depths, args.samples)
    print(f"\n## SQS calls on moto at a queue depth (median of {args.samples}; ms)\n")
    rows = []
    for index, depth in enumerate(depths):
        for name, measured in results.items():
            _, send, receive, delete = measured[index]
            rows.append([depth, name, send, receive, delete])
    print(table(["depth", "server", "SendMessage", "ReceiveMessage (10)",
                 "DeleteMessageBatch"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
