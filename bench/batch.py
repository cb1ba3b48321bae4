"""A 10-message batch on a slower network: the consumer against one DynamoDB round trip (P2).

    .venv/bin/python -m bench.batch [--latency-ms 10] [--rounds 20] [--warmup 50]

Amazon's DynamoDB Local (in memory; moto would lose writes under concurrent transactions) sits
behind devstack/faults.py's proxy, which adds `--latency-ms` to every DynamoDB request at the
HTTP level and counts what it forwards by operation (X-Amz-Target). Through that proxy, each
round runs, interleaved so that the machine's drift hits them alike:
- one round trip: a single PutItem of a small item (the unit the ratios divide by);
- the consumer (`chalicelib.BatchProcessor` + `ItemStore`, as app.py builds them: a batch's
  writes of distinct items in one transaction) on a batch of 10 messages;
- the consumer's transaction alone: the TransactWriteItems it builds for a 10-message batch
  (built beforehand, not timed) sent as one call, so that the table shows what the emulator's
  transaction costs apart from the consumer's own work.
The comparison with other consumers (the seed's handler, Powertools) is bench/versus.py's.
Rounds alternate creates of new items and updates of the items the previous round created (the
common case: one message per item). The first --warmup rounds (50: about 600 transactions) are
not counted: DynamoDB Local's JVM keeps compiling its transaction path over its first several
hundred transactions, and DynamoDB has no such warm-up. After the run, every item written by
the consumer is read back (not through the proxy): it exists, with the version its writes give.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from bench import results as bench_results
from bench.output import machine, table
from bench.stats import percentile
from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.poller import lambda_record as poller_lambda_record

REGION = "us-west-2"
BATCH = 10
QUEUE_ARN = f"arn:aws:sqs:{REGION}::bench-batch-queue"  # never resolved: nothing fails


@dataclass(frozen=True)
class Message:
    request_id: str
    stamp_ms: int
    body: dict[str, Any]


def lambda_record(message: Message, queue_arn: str) -> dict[str, Any]:
    """The record Lambda would hand the handler for this message (the poller's own builder)."""
    return poller_lambda_record({
        "MessageId": message.request_id,
        "ReceiptHandle": str(uuid.uuid4()),
        "Body": json.dumps(message.body),
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(message.stamp_ms)},
        "MessageAttributes": {
            "requestId": {"StringValue": message.request_id, "DataType": "String"},
            "requestTimeEpoch": {"StringValue": str(message.stamp_ms), "DataType": "Number"},
        },
    }, queue_arn, REGION)


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    writes: int = 0  # applied writes (the consumer's EMF "Applied")

    def row(self, name: str, round_trip: float) -> list[object]:
        per_write = sum(self.calls.values()) / self.writes if self.writes else float("nan")
        return [name, len(self.seconds), median(self.seconds) * 1e3,
                percentile(self.seconds, 0.9) * 1e3, median(self.seconds) / round_trip,
                per_write, ", ".join(f"{op} {n}" for op, n in sorted(self.calls.items()))]


class CapturingClient:
    """A DynamoDB client that keeps the transactions it is given instead of sending them."""

    def __init__(self) -> None:
        self.transactions: list[dict[str, Any]] = []

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.transactions.append(kwargs)
        return {}


def batch_messages(prefix: str, round_number: int, size: int, clock_ms: list[int]) -> list[Message]:
    """Round 0, 2, ...: creates of new items; 1, 3, ...: updates of the previous round's."""
    create = round_number % 2 == 0
    base = round_number - (0 if create else 1)
    messages = []
    for index in range(size):
        clock_ms[0] += 1
        item_id = f"{prefix}-{base}-{index}"
        body: dict[str, Any] = ({"operation": "create", "id": item_id,
                                 "item": {"name": f"item {index}", "n": index}} if create else
                                {"operation": "update", "id": item_id, "item": {"n": index + 1}})
        messages.append(Message(str(uuid.uuid4()), clock_ms[0], body))
    return messages


def applied_from_emf(captured: str) -> int:
    """The Applied count of the consumer's EMF lines (chalicelib/metrics.py), one per batch."""
    from chalicelib.metrics import APPLIED

    return sum(int(json.loads(line).get(APPLIED, 0)) for line in captured.splitlines()
               if line.startswith("{") and '"_aws"' in line)


def run(latency_ms: float, rounds: int, results_path: Path, moto_url: str | None = None,
        dynamodb_url: str | None = None, warmup: int = 50) -> int:
    """Start moto (for the queue names ensure_resources wants) and DynamoDB Local unless given."""
    from devstack.dynamodb_local import DynamoDBLocal, unavailable_reason
    from devstack.emulator import MotoServer

    if dynamodb_url is None and unavailable_reason() is not None:
        print(f"cannot run: {unavailable_reason()}", file=sys.stderr)
        return 1
    with contextlib.ExitStack() as stack:
        if moto_url is None:
            moto_url = stack.enter_context(MotoServer()).endpoint_url
        if dynamodb_url is None:
            dynamodb_url = stack.enter_context(DynamoDBLocal()).endpoint_url
        return measure_batches(latency_ms, rounds, results_path, moto_url, dynamodb_url, warmup)


def measure_batches(latency_ms: float, rounds: int, results_path: Path, moto_url: str,
                    dynamodb_url: str, warmup: int = 50) -> int:
    import boto3

    from chalicelib import BatchProcessor, ItemStore, Settings
    from chalicelib.clients import client_config
    from devstack.faults import FaultProxy
    from devstack.resources import ensure_resources

    print(f"machine: {machine()}")
    table_name = f"bench-batch-{uuid.uuid4().hex[:6]}"
    with FaultProxy(dynamodb_url, latency_ms=latency_ms) as proxy:
        # The queues are never used: ensure_resources makes the table as infra defines it.
        ensure_resources(moto_url, queue_name=f"{table_name}-q", dlq_name=f"{table_name}-dlq",
                         table_name=table_name, dynamodb_endpoint_url=dynamodb_url)
        print(f"DynamoDB Local {dynamodb_url} behind the proxy {proxy.url} "
              f"(+{latency_ms:g} ms per request); {warmup} warm-up rounds, then {rounds} "
              f"measured, batches of {BATCH}")
        client = boto3.client("dynamodb", endpoint_url=proxy.url, config=client_config())
        direct = boto3.client("dynamodb", endpoint_url=dynamodb_url)
        settings = Settings(table_name=table_name, queue_name="bench-batch-queue",
                            report_batch_item_failures=True)
        processor = BatchProcessor(ItemStore(client, settings), settings)
        capturing = CapturingClient()
        builder = BatchProcessor(ItemStore(capturing, settings), settings)
        names = ("round trip", "consumer 10", "alone 10")
        samples = {name: Samples() for name in names}
        warming = {name: Samples() for name in names}
        clock_ms = [int(time.time() * 1000)]
        expected_versions: dict[str, int] = {}

        def measure(name: str, action: Any, into: dict[str, Samples] = samples) -> None:
            proxy.reset_counts()
            captured = io.StringIO()
            began = time.perf_counter()
            with contextlib.redirect_stdout(captured):  # the consumer's EMF lines
                writes = action()
            into[name].seconds.append(time.perf_counter() - began)
            into[name].calls.update(proxy.calls)
            into[name].writes += writes if writes is not None else applied_from_emf(
                captured.getvalue())

        def consumer(messages: list[Message]) -> None:
            answer = processor.process([lambda_record(m, QUEUE_ARN) for m in messages])
            if answer["batchItemFailures"]:
                raise RuntimeError(f"the consumer failed messages: {answer}")
            written(messages)

        def written(messages: list[Message]) -> None:
            """Each message is one more version of its item, for check_items."""
            for message in messages:
                expected_versions[message.body["id"]] = (
                    expected_versions.get(message.body["id"], 0) + 1)

        def prebuilt(messages: list[Message]) -> dict[str, Any]:
            capturing.transactions.clear()
            with contextlib.redirect_stdout(io.StringIO()):
                builder.process([lambda_record(m, QUEUE_ARN) for m in messages])
            written(messages)
            (transaction,) = capturing.transactions
            return transaction

        def send(transaction: dict[str, Any]) -> int:
            client.transact_write_items(**transaction)
            return len(transaction["TransactItems"]) // 2

        def round_trip() -> int:
            client.put_item(TableName=table_name, Item={"pk": {"S": "item#round-trip"},
                                                         "n": {"N": "1"}})
            return 1

        for number in range(rounds + warmup):
            ten_batch = batch_messages("ten", number, BATCH, clock_ms)
            transaction = prebuilt(batch_messages("alone", number, BATCH, clock_ms))
            steps: list[tuple[str, Any]] = [
                ("round trip", round_trip), ("consumer 10", lambda m=ten_batch: consumer(m)),
                ("round trip", round_trip), ("alone 10", lambda t=transaction: send(t))]
            for name, action in steps:
                measure(name, action, warming if number < warmup else samples)
        check_items(direct, table_name, expected_versions)

    if warmup:
        warm_trip = median(warming["round trip"].seconds)
        print(f"warm-up ({warmup} rounds, not counted): consumer, 10 messages p50 "
              f"{median(warming['consumer 10'].seconds) * 1e3:.1f} ms, one round trip "
              f"{warm_trip * 1e3:.1f} ms: "
              f"{median(warming['consumer 10'].seconds) / warm_trip:.2f} round trips")
    trip = median(samples["round trip"].seconds)
    print("\n## A batch through a network with +%g ms per DynamoDB request (ms)\n" % latency_ms)
    print(table(["scenario", "runs", "p50 ms", "p90 ms", "p50 / round trip",
                 "DynamoDB calls per write", "calls by operation"], [
        samples["round trip"].row("one round trip (PutItem)", trip),
        samples["consumer 10"].row("consumer, 10 messages (one transaction)", trip),
        samples["alone 10"].row("its transaction alone (built beforehand)", trip)]))
    ten = samples["consumer 10"]
    values = {"batch_latency_ratio": median(ten.seconds) / trip,
              "ddb_calls_per_write": sum(ten.calls.values()) / ten.writes}
    details = {"latency_ms": latency_ms, "rounds": rounds, "warmup_rounds": warmup,
               "round_trip_ms": trip * 1e3,
               "consumer_10_p50_ms": median(ten.seconds) * 1e3,
               "transaction_alone_ratio": median(samples["alone 10"].seconds) / trip,
               "consumer_calls": dict(ten.calls), "consumer_applied_writes": ten.writes,
               "items_checked": len(expected_versions)}
    bench_results.record(values, details, "bench.batch", results_path)
    print(f"\nbatch_latency_ratio {values['batch_latency_ratio']:.2f} (target <= 2; its "
          f"transaction alone: {details['transaction_alone_ratio']:.2f}), ddb_calls_per_write "
          f"{values['ddb_calls_per_write']:.2f} (target <= 1); {len(expected_versions)} items "
          f"read back and checked; written to {results_path}")
    return 0


def check_items(client: Any, table_name: str, expected_versions: dict[str, int]) -> None:
    """Every item the consumer wrote exists with one version per write (each applied once)."""
    for item_id, version in expected_versions.items():
        found = client.get_item(TableName=table_name, Key={"pk": {"S": "item#" + item_id}},
                                ConsistentRead=True).get("Item")
        if found is None or int(found["version"]["N"]) != version:
            raise RuntimeError(f"{item_id}: expected version {version}, found {found}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=10.0,
                        help="added to every DynamoDB request (default 10)")
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=50,
                        help="rounds run first and not counted (default 50)")
    parser.add_argument("--results", default=str(bench_results.DEFAULT_PATH),
                        help="merge the ratios into this JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 200:
        parser.error("--rounds must be 1..200")
    if not 0 <= args.warmup <= 500:
        parser.error("--warmup must be 0..500")
    # Dummy credentials (only emulators are talked to), set before the consumer reads them.
    os.environ.update({**EMULATOR_CREDENTIALS, "AWS_DEFAULT_REGION": REGION,
                       "AWS_EC2_METADATA_DISABLED": "true", "LOG_LEVEL": "WARNING"})
    return run(args.latency_ms, args.rounds, Path(args.results), warmup=args.warmup)


if __name__ == "__main__":
    sys.exit(main())
