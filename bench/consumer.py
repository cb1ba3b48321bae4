"""Consumer throughput: Lambda-shaped batches through BatchProcessor into DynamoDB (moto, HTTP).

    .venv/bin/python -m bench.consumer [--messages 600] [--max-seconds 40]

Starts a moto server process on a free loopback port and runs, each on a table of its own:
  store   in order        the project's ItemStore: one conditional TransactWriteItems per write
                          (item change + outcome), messages delivered in request order;
  store   shuffled+dups   the same messages shuffled, 10% delivered twice (SQS standard queues
                          do both): older writes are then rejected as superseded, duplicates
                          find their outcome;
  naive   in order        a baseline defined here: PutItem / UpdateItem / DeleteItem of the item
                          with no condition, then PutItem of the outcome (2 calls, no ordering,
                          no idempotency, no atomicity);
  naive   shuffled+dups   the same, to show what the guarantees buy: final items are checked
                          against the in-order result.
The messages: --messages / 8 items x 8 writes (create, update, put, ..., every 5th item ends
deleted), in batches of 10 as Lambda delivers them, validated by chalicelib (the same code in
both), logging formatted as in Lambda and discarded. Every run is bounded by --messages and
--max-seconds.
moto's timings are not DynamoDB's: compare the rows with each other, not with AWS.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from statistics import median
from typing import Any, cast

from bench.output import machine, table
from bench.stats import percentile
from chalicelib.store import ITEM_PREFIX, REQUEST_PREFIX
from devstack.poller import lambda_record as poller_lambda_record

WRITES_PER_ITEM = 8
BATCH_SIZE = 10
DUPLICATE_FRACTION = 0.10
REGION = "us-west-2"


def use_emulator_environment(region: str, log_level: str) -> None:
    """Dummy credentials (only emulators are ever talked to), the region, the consumer's log
    level; set before the consumer's modules read them."""
    from devstack.emulator import EMULATOR_CREDENTIALS

    os.environ.update(EMULATOR_CREDENTIALS)
    os.environ.update({"AWS_DEFAULT_REGION": region, "AWS_EC2_METADATA_DISABLED": "true",
                       "LOG_LEVEL": log_level})


# -- the messages ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    request_id: str
    stamp_ms: int
    body: dict[str, Any]


def workload(count: int, run: str) -> list[Message]:
    """count writes, in request order, over count // 8 items."""
    messages: list[Message] = []
    items = max(1, count // WRITES_PER_ITEM)
    base_ms = int(time.time() * 1000) - 3_600_000
    stamp = 0
    for step in range(WRITES_PER_ITEM):
        for index in range(items):
            if len(messages) >= count:
                break
            item_id = f"{run}-item-{index:05d}"
            if step == 0:
                body: dict[str, Any] = {"operation": "create", "id": item_id,
                                        "item": {"name": f"item {index}", "step": 0, "n": 1}}
            elif step == WRITES_PER_ITEM - 1 and index % 5 == 0:
                body = {"operation": "delete", "id": item_id}
            elif step % 3 == 2:
                body = {"operation": "put", "id": item_id,
                        "item": {"name": f"item {index}", "step": step, "n": step}}
            else:
                body = {"operation": "update", "id": item_id,
                        "item": {"step": step, f"field{step}": "x" * 20}}
            stamp += 1
            messages.append(Message(str(uuid.uuid4()), base_ms + stamp, body))
    return messages


def deliveries(messages: list[Message], shuffled: bool, seed: int) -> list[Message]:
    if not shuffled:
        return list(messages)
    rng = random.Random(seed)
    out = list(messages)
    out.extend(rng.sample(messages, int(len(messages) * DUPLICATE_FRACTION)))
    rng.shuffle(out)
    return out


def lambda_record(message: Message, queue_arn: str) -> dict[str, Any]:
    """The record Lambda would hand the handler for this message (the poller's own builder)."""
    import json

    return poller_lambda_record({
        "MessageId": message.request_id,  # a redelivery keeps its messageId
        "ReceiptHandle": str(uuid.uuid4()),
        "Body": json.dumps(message.body),
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(message.stamp_ms)},
        "MessageAttributes": {
            "requestId": {"StringValue": message.request_id, "DataType": "String"},
            "requestTimeEpoch": {"StringValue": str(message.stamp_ms), "DataType": "Number"},
        },
    }, queue_arn, REGION)


def expected_items(messages: list[Message]) -> dict[str, dict[str, Any] | None]:
    """Each item's final content if the writes are applied in request order (None: deleted)."""
    final: dict[str, dict[str, Any] | None] = {}
    for message in sorted(messages, key=lambda m: (m.stamp_ms, m.request_id)):
        body = message.body
        if body["operation"] in ("create", "put"):
            final[body["id"]] = dict(body["item"])
        elif body["operation"] == "update":
            current = final.get(body["id"])
            if current is not None:
                current.update(body["item"])
        else:
            final[body["id"]] = None
    return final


# -- the naive baseline ----------------------------------------------------------------------------

class NaiveStore:
    """What the consumer would be without its guarantees: 2 unconditional calls per write."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def apply_together(self, writes: Any) -> dict[int, Any]:
        return {}  # a naive writer writes one at a time

    def apply(self, command: Any, stamp: Any, deadline: float | None = None,
              may_wait: bool = False) -> Any:
        """ItemStore.apply's signature; a naive writer neither waits nor retries."""
        from chalicelib.attributes import to_attribute, to_map
        from chalicelib.outcomes import Outcome

        key = {"pk": {"S": ITEM_PREFIX + command.id}}
        if command.operation in ("create", "put"):
            self.client.put_item(TableName=self.table, Item={
                **key, "id": {"S": command.id}, "item": {"M": to_map(command.item)}})
        elif command.operation == "update":
            names = {f"#a{i}": name for i, name in enumerate(command.item)}
            values = {f":a{i}": to_attribute(value)
                      for i, value in enumerate(command.item.values())}
            self.client.update_item(
                TableName=self.table, Key=key,
                UpdateExpression="SET " + ", ".join(f"#item.#a{i} = :a{i}"
                                                    for i in range(len(names))),
                ExpressionAttributeNames={"#item": "item", **names},
                ExpressionAttributeValues=values)
        elif command.operation == "delete":
            self.client.delete_item(TableName=self.table, Key=key)
        outcome = Outcome(stamp.request_id, "applied", command.operation, command.id)
        self._put_outcome(outcome)
        return outcome

    def reject(self, stamp: Any, reason: str, operation: str | None = None,
               item_id: str | None = None) -> Any:
        from chalicelib.outcomes import Outcome

        outcome = Outcome(stamp.request_id, "rejected", operation, item_id, reason)
        self._put_outcome(outcome)
        return outcome

    def _put_outcome(self, outcome: Any) -> None:
        record = {"pk": {"S": REQUEST_PREFIX + outcome.request_id},
                  "requestId": {"S": outcome.request_id}, "status": {"S": outcome.status}}
        if outcome.operation:
            record["operation"] = {"S": outcome.operation}
        if outcome.id:
            record["id"] = {"S": outcome.id}
        self.client.put_item(TableName=self.table, Item=record)


# -- running ---------------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    records: int = 0
    batch_seconds: list[float] = field(default_factory=list)
    calls: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    wrong_items: int | None = None
    silently_wrong: int | None = None
    flagged: set[str] = field(default_factory=set)
    items_checked: int = 0
    truncated: bool = False

    @property
    def busy_seconds(self) -> float:
        return sum(self.batch_seconds)


class CountingStore:
    """Wraps a store to count its outcomes, and note the items a client was told about: those
    with a rejected outcome or a failed (to be retried) message."""

    def __init__(self, inner: Any, statuses: Counter[str], flagged: set[str]) -> None:
        self.inner = inner
        self.statuses = statuses
        self.flagged = flagged

    def apply(self, command: Any, stamp: Any, deadline: float | None = None,
              may_wait: bool = False) -> Any:
        try:
            outcome = self.inner.apply(command, stamp, deadline, may_wait)
        except Exception:
            self.flagged.add(command.id)
            raise
        return self._count(outcome)

    def apply_together(self, writes: Any) -> dict[int, Any]:
        done: dict[int, Any] = self.inner.apply_together(writes)
        for outcome in done.values():
            self._count(outcome)
        return done

    def reject(self, stamp: Any, reason: str, operation: str | None = None,
               item_id: str | None = None) -> Any:
        return self._count(self.inner.reject(stamp, reason, operation, item_id))

    def _count(self, outcome: Any) -> Any:
        self.statuses["duplicate" if outcome.duplicate else outcome.status] += 1
        if outcome.status != "applied" and outcome.id:
            self.flagged.add(outcome.id)
        return outcome


def final_items(client: Any, table_name: str, deadline: float) -> dict[str, dict[str, Any] | None]:
    from chalicelib.attributes import from_map

    found: dict[str, dict[str, Any] | None] = {}
    request: dict[str, Any] = {"TableName": table_name}
    for _ in range(1000):  # bounded pages
        response = client.scan(**request)
        for record in response.get("Items", []):
            value = from_map(record)
            if not str(value["pk"]).startswith(ITEM_PREFIX):
                continue
            found[value["id"]] = None if value.get("deleted") else dict(value.get("item", {}))
        if "LastEvaluatedKey" not in response or time.monotonic() > deadline:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return found


def run_scenario(name: str, store_kind: str, shuffled: bool, count: int, seed: int,
                 max_seconds: float) -> Result:
    from chalicelib import BatchProcessor, ItemStore, Settings
    from chalicelib.store import dynamodb_client
    from devstack.resources import ensure_resources

    run = name.replace(" ", "-").replace("+", "")
    table_name = f"bench-{run}"
    client = dynamodb_client()  # the project's client: same retry and timeout config
    # The table as infra/extension.yaml defines it (and a queue pair the runs do not use).
    ensure_resources(os.environ["AWS_ENDPOINT_URL"], queue_name=f"{table_name}-queue",
                     dlq_name=f"{table_name}-dlq", table_name=table_name)
    result = Result(name)

    def count_call(**_: Any) -> None:
        result.calls += 1

    client.meta.events.register("before-call.dynamodb", count_call)
    # One lane at a time, as the local pipeline runs on moto (devstack/pipeline.py): stock moto
    # answers 500 and can leave half-written items under concurrent transactions (aws-facts).
    settings = Settings(table_name=table_name, queue_name="bench-queue",
                        report_batch_item_failures=True, batch_concurrency=1)
    inner: Any = (ItemStore(client, settings) if store_kind == "store"
                  else NaiveStore(client, table_name))
    counting = CountingStore(inner, result.statuses, result.flagged)
    processor = BatchProcessor(cast(Any, counting), settings)
    messages = workload(count, run)
    queue_arn = f"arn:aws:sqs:{REGION}::bench-queue"  # never resolved: report mode deletes nothing
    records = [lambda_record(m, queue_arn) for m in deliveries(messages, shuffled, seed)]
    deadline = time.monotonic() + max_seconds
    for start in range(0, len(records), BATCH_SIZE):
        if time.monotonic() > deadline:
            result.truncated = True
            break
        batch = records[start:start + BATCH_SIZE]
        began = time.perf_counter()
        response = processor.process(batch)
        result.batch_seconds.append(time.perf_counter() - began)
        result.records += len(batch)
        if response["batchItemFailures"]:
            result.statuses["retry"] += len(response["batchItemFailures"])
    calls_before_check = result.calls
    if not result.truncated:
        expected = expected_items(messages)
        found = final_items(client, table_name, time.monotonic() + 30)
        result.items_checked = len(expected)
        wrong = {item_id for item_id, item in expected.items() if found.get(item_id) != item}
        result.wrong_items = len(wrong)
        result.silently_wrong = len(wrong - result.flagged)
    result.calls = calls_before_check
    return result


def warm_up(count: int) -> None:
    """A few batches on a table of their own: connections, code paths, moto's first requests."""
    run_scenario("warm up", "store", True, count, 0, 20)
    run_scenario("warm up naive", "naive", True, count, 0, 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consumer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=600,
                        help="distinct messages per scenario (default 600, at most 20000)")
    parser.add_argument("--max-seconds", type=float, default=40.0,
                        help="time limit per scenario (default 40 s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not 10 <= args.messages <= 20_000:
        parser.error("--messages must be 10..20000")

    from devstack.emulator import MotoServer, free_port

    use_emulator_environment(REGION, "INFO")
    # Lambda formats every log line; keep that cost, drop the output.
    from chalicelib.logs import get_logger

    sink = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    for handler in get_logger("sqs_manager.batch").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)

    print(f"machine: {machine()}")
    server = MotoServer(port=free_port())
    with server:
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
        print(f"moto server: {server.endpoint_url} (its own process); "
              f"{args.messages} messages per scenario, batches of {BATCH_SIZE}\n", flush=True)
        warm_up(40)
        results = []
        for name, kind, shuffled in (("store in order", "store", False),
                                     ("store shuffled+dups", "store", True),
                                     ("naive in order", "naive", False),
                                     ("naive shuffled+dups", "naive", True)):
            result = run_scenario(name, kind, shuffled, args.messages, args.seed,
                                  args.max_seconds)
            results.append(result)
            print(f"  {name}: {result.records} records in {result.busy_seconds:.1f} s"
                  f"{' (stopped at --max-seconds)' if result.truncated else ''}", flush=True)
    sink.close()

    rows = []
    for r in results:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
        wrong = "-" if r.wrong_items is None else f"{r.wrong_items}/{r.items_checked}"
        silent = "-" if r.silently_wrong is None else str(r.silently_wrong)
        tenth = max(1, len(r.batch_seconds) // 10)
        rows.append([r.name, r.records, median(r.batch_seconds) * 1e3,
                     percentile(r.batch_seconds, 0.95) * 1e3,
                     median(r.batch_seconds[:tenth]) * 1e3, median(r.batch_seconds[-tenth:]) * 1e3,
                     r.records / r.busy_seconds if r.busy_seconds else 0.0,
                     r.calls / r.records if r.records else 0.0, statuses, wrong, silent])
    print()
    print(table(["scenario", "records", "batch p50 ms", "batch p95 ms", "first 10% p50",
                 "last 10% p50", "messages/s",
                 "DynamoDB calls/msg", "outcomes", "final != in-order", "silently"], rows))
    print("\nfirst/last 10% p50: median batch time over the first and the last tenth of the "
          "batches: a slowdown as the table grows would show there (stock moto's transactions "
          "copied the whole table; devstack/moto_server.py's copy only the items they touch).")
    print("final != in-order: items whose final content differs from applying every write "
          "once in request order;\nsilently: of those, items where no outcome was rejected "
          "and no message failed (the client was told nothing).")
    base = next((r for r in results if r.name == "naive in order"), None)
    own = next((r for r in results if r.name == "store in order"), None)
    if base and own and base.busy_seconds and own.busy_seconds:
        ratio = (base.records / base.busy_seconds) / (own.records / own.busy_seconds)
        print(f"\nnaive in order is {ratio:.2f}x the store's messages/s in order "
              f"(moto over HTTP, one thread; not a prediction of DynamoDB's numbers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
