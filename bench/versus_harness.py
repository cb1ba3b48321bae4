"""bench.versus's harness: the workload, its deliveries, the proxy in its own process, the
consumers' handlers on metered clients, and what each run left in its tables."""

from __future__ import annotations

import contextlib
import io
import math
import multiprocessing
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.output import scan
from bench.versus_workload import BATCH, REGION, Request, item_bytes, record
from devstack.lambda_events import LocalLambdaContext

CONSUMERS = ("seed", "powertools", "sqs-manager")
PATTERNS = ("in order", "duplicates", "shuffled")
MAX_RECEIVES = 5  # the queue's maxReceiveCount (infra/extension.yaml), then the DLQ
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]  # a Lambda handler


def _serve_proxy(target: str, latency_ms: float, pipe: Connection) -> None:
    from devstack.faults import FaultProxy

    with FaultProxy(target, latency_ms=latency_ms) as proxy:
        pipe.send(proxy.url)
        while pipe.recv() == "counts":
            pipe.send(dict(proxy.calls))
            proxy.reset_counts()


class ProxyProcess:
    """devstack/faults.py's proxy in a child process: its CPU is not the handler's."""

    def __init__(self, target: str, latency_ms: float) -> None:
        self._pipe, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve_proxy, args=(target, latency_ms, child), daemon=True)
        self._process.start()
        self.url: str = self._pipe.recv()

    def counts(self) -> dict[str, int]:
        """Calls forwarded since the last time, by operation."""
        self._pipe.send("counts")
        return dict(self._pipe.recv())

    def close(self) -> None:
        self._pipe.send("stop")
        self._process.join(10)


@dataclass
class Meter:
    """On one consumer's client: capacity units (DynamoDB's ConsumedCapacity) and item writes
    applied, from the calls that succeeded."""

    table_name: str
    units: Counter[str] = field(default_factory=Counter)

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.dynamodb.*", self._ask)
        client.meta.events.register("after-call.dynamodb.*", self._count)
        return client

    def _ask(self, params: dict[str, Any], model: Any, context: dict[str, Any],
             **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        actions = params.get("TransactItems") or [{model.name: params}]
        context["transaction_writes"] = len(params.get("TransactItems") or [])
        context["item_writes"] = sum(
            1 for action in actions for kind, write in action.items()
            if kind in WRITES | {"Put", "Update", "Delete"}
            and write.get("TableName") == self.table_name
            and (write.get("Item") or write.get("Key") or {}).get("pk", {}).get(
                "S", "").startswith("item#"))

    def _count(self, http_response: Any, parsed: dict[str, Any], model: Any,
               context: dict[str, Any], **_: Any) -> None:
        if http_response.status_code != 200:
            self.units["failed calls"] += 1
            return
        consumed = parsed.get("ConsumedCapacity") or []
        units = sum(c.get("CapacityUnits", 0.0) for c in (
            consumed if isinstance(consumed, list) else [consumed]))
        if model.name == "TransactWriteItems":
            # DynamoDB Local reports 2 units for any transaction (10 one-KB puts: 2.0); DynamoDB
            # charges 2 WRU per KB per item: counted here, sized after the run (write_units).
            self.units["transaction writes"] += context.get("transaction_writes", 0)
        else:
            self.units["write" if model.name in WRITES else "read"] += units
        self.units["item writes"] += context.get("item_writes", 0)


class HarnessQueue:
    """The queue sqs-manager's ChangeMessageVisibility goes to: here the harness is the queue,
    and a failed message comes back at the end of it whatever the delay asked."""

    def get_queue_url(self, **_: Any) -> dict[str, str]:
        return {"QueueUrl": "bench-versus"}

    def change_message_visibility(self, **_: Any) -> dict[str, Any]:
        return {}


@dataclass
class Run:
    consumer: str
    table_name: str
    meter: Meter
    calls: Counter[str] = field(default_factory=Counter)
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0
    to_dlq: int = 0


class Bench:
    def __init__(self, dynamodb_url: str, proxy: ProxyProcess) -> None:
        import boto3

        self.proxy = proxy
        self.direct = boto3.client("dynamodb", endpoint_url=dynamodb_url)

    def _table(self, name: str, key: str = "pk") -> str:
        self.direct.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                                 KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                                 AttributeDefinitions=[{"AttributeName": key,
                                                        "AttributeType": "S"}])
        return name

    def store(self, table_name: str, client: Any = None) -> Any:
        """sqs-manager's store as app.py builds it (REPORT_BATCH_ITEM_FAILURES=true)."""
        from chalicelib import ItemStore, Settings
        return ItemStore(client or self.direct, Settings(
            table_name=table_name, queue_name="bench-versus", report_batch_item_failures=True))

    def handler(self, run: Run) -> Handler:
        import boto3

        from chalicelib.clients import client_config
        # sqs-manager's client settings as app.py's; the others' as their modules make them.
        config = client_config() if run.consumer == "sqs-manager" else None
        client = run.meter.attach(boto3.client("dynamodb", endpoint_url=self.proxy.url,
                                               config=config))
        if run.consumer == "seed":
            from bench import versus_seed
            return versus_seed.make_handler(client, run.table_name)
        if run.consumer == "powertools":
            from bench import versus_powertools
            # Powertools' documented table: partition key "id", TTL on "expiration".
            idempotency = self._table(run.table_name + "-idempotency", key="id")
            self.direct.update_time_to_live(TableName=idempotency, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": "expiration"})
            return versus_powertools.make_handler(client, run.table_name, idempotency)
        from chalicelib import BatchProcessor
        store = self.store(run.table_name, client)
        processor = BatchProcessor(store, store.settings, HarnessQueue)
        return lambda event, context: processor.process(event["Records"], context)

    def run(self, consumer: str, delivered: list[tuple[Request, int]]) -> Iterator[Run]:
        """Deliver batch by batch, yielding after each (so that consumers can take turns)."""
        name = f"versus-{consumer}-{uuid.uuid4().hex[:8]}"
        run = Run(consumer, self._table(name), Meter(name))
        handle = self.handler(run)
        base_ms = int(time.time() * 1000) - len(delivered)  # the requests just arrived
        queue = deque(delivered)
        while queue:
            batch = [queue.popleft() for _ in range(min(BATCH, len(queue)))]
            event = {"Records": [record(request, count, base_ms) for request, count in batch]}
            context = LocalLambdaContext("versus", 60, REGION, "")  # no account: nothing reads it
            self.proxy.counts()
            with contextlib.redirect_stdout(io.StringIO()):  # sqs-manager's EMF lines
                began, cpu_began = time.perf_counter(), time.process_time()
                try:
                    answer = handle(event, context)
                    failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
                except Exception:  # the whole batch comes back
                    failed = {r["messageId"] for r in event["Records"]}
                run.cpu_ms += (time.process_time() - cpu_began) * 1e3
                run.wall_ms.append((time.perf_counter() - began) * 1e3)
            run.calls.update(self.proxy.counts())
            for request, count in batch:
                if request.message_id not in failed:
                    continue
                if count < MAX_RECEIVES:
                    queue.append((request, count + 1))
                else:
                    run.to_dlq += 1
            yield run

    def round_trips(self, count: int) -> Iterator[Run]:
        """One small PutItem through the proxy per turn: the round trip P2 divides by."""
        import boto3

        from chalicelib.clients import client_config
        name = f"versus-trip-{uuid.uuid4().hex[:8]}"
        run = Run("round trip", self._table(name), Meter(name))
        client = boto3.client("dynamodb", endpoint_url=self.proxy.url, config=client_config())
        for _ in range(count):
            began = time.perf_counter()
            client.put_item(TableName=name, Item={"pk": {"S": "item#trip"}, "n": {"N": "1"}})
            run.wall_ms.append((time.perf_counter() - began) * 1e3)
            yield run

    def write_units(self, run: Run) -> float:
        """The engine's units, plus 2 WRU per KB for each transaction write action, the KB those
        of the table's largest item (DynamoDB's item size: names and values, in bytes)."""
        largest = max(map(item_bytes, scan(self.direct, run.table_name)), default=1)
        return run.meter.units["write"] + 2 * run.meter.units["transaction writes"] * math.ceil(
            largest / 1024)

    def items(self, run: Run, item_ids: set[str]) -> dict[str, dict[str, str] | None]:
        """Each item as the consumer's reader sees it (sqs-manager: its read API's get_item)."""
        from boto3.dynamodb.types import TypeDeserializer

        from chalicelib import ItemNotFoundError
        store = self.store(run.table_name)
        found: dict[str, dict[str, str] | None] = {}
        for item_id in item_ids:
            if run.consumer == "sqs-manager":
                try:
                    item = store.get_item(item_id)
                except ItemNotFoundError:
                    found[item_id] = None
                    continue
                found[item_id] = {k: str(v) for k, v in item.items() if k not in ("id", "version")}
                continue
            raw = self.direct.get_item(TableName=run.table_name, ConsistentRead=True,
                                       Key={"pk": {"S": "item#" + item_id}}).get("Item")
            found[item_id] = None if raw is None else {
                k: str(TypeDeserializer().deserialize(v)) for k, v in raw.items() if k != "pk"}
        return found

    def without_outcome(self, run: Run, requests: list[Request]) -> int:
        """Requests of which nothing can be read by request id: all, without outcome records."""
        if run.consumer != "sqs-manager":
            return len(requests)
        from chalicelib import OutcomeNotFoundError
        store = self.store(run.table_name)
        missing = 0
        for request in requests:
            try:
                store.get_outcome(request.request_id)
            except OutcomeNotFoundError:
                missing += 1
        return missing


def in_turn(runs: list[Iterator[Run]]) -> list[Run]:
    """Advance each run one batch at a time, in turn; their last states."""
    last: dict[int, Run] = {}
    active = dict(enumerate(runs))
    while active:
        for index, run in list(active.items()):
            state = next(run, None)
            if state is None:
                del active[index]
            else:
                last[index] = state
    return [last[index] for index in range(len(runs))]
