"""bench.versus's workload: the requests, the in-order result, the three ways of delivering them,
the records Lambda would hand over, and an item's size as DynamoDB counts it."""

from __future__ import annotations

import json
import random
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from devstack.lambda_events import lambda_record

BATCH = 10
REGION = "us-west-2"
QUEUE_ARN = f"arn:aws:sqs:{REGION}::bench-versus"  # no account: the function's own
COLOURS = ("red", "green", "blue", "amber")


@dataclass(frozen=True)
class Request:
    request_id: str
    message_id: str
    offset_ms: int  # when API Gateway received it, from the run's start
    body: dict[str, Any]


def workload(items: int, seed: int) -> list[Request]:
    """Per item a create, 1-3 updates and, for one item in four, a delete; interleaved."""
    rng = random.Random(seed)
    pending: list[deque[dict[str, Any]]] = []
    for number in range(items):
        item_id = f"w{seed}-{number}"
        commands = deque([{"operation": "create", "id": item_id, "item": {
            "name": f"item {number}", "n": 0, "colour": rng.choice(COLOURS)}}])
        for step in range(1, rng.randint(1, 3) + 1):
            commands.append({"operation": "update", "id": item_id, "item": rng.choice((
                {"n": step}, {"colour": rng.choice(COLOURS)}, {"n": step, "note": f"s{step}"}))})
        if rng.random() < 0.25:
            commands.append({"operation": "delete", "id": item_id})
        pending.append(commands)
    requests: list[Request] = []
    while pending:
        commands = rng.choice(pending)
        body = commands.popleft()
        if not commands:
            pending.remove(commands)
        requests.append(Request(str(uuid.UUID(int=rng.getrandbits(128))),
                                str(uuid.UUID(int=rng.getrandbits(128))), len(requests), body))
    return requests


def expected_items(requests: list[Request]) -> dict[str, dict[str, str] | None]:
    """The in-order result: what each item holds after its requests, applied once, in order."""
    state: dict[str, dict[str, str] | None] = {}
    for body in (request.body for request in requests):
        fields = {name: str(value) for name, value in (body.get("item") or {}).items()}
        state[body["id"]] = (fields if body["operation"] == "create" else None
                             if body["operation"] == "delete" else {**(state[body["id"]] or {}),
                                                                     **fields})
    return state


def deliveries(requests: list[Request], pattern: str, seed: int) -> list[tuple[Request, int]]:
    """(request, receive count) in delivery order: in order; every message twice, the copy 1-50
    messages later; or shuffled."""
    rng = random.Random(seed)
    if pattern == "shuffled":
        return [(request, 1) for request in rng.sample(requests, len(requests))]
    if pattern == "in order":
        return [(request, 1) for request in requests]
    keyed = [(float(i), 1, r) for i, r in enumerate(requests)] + [
        (i + rng.uniform(1, 50), 2, r) for i, r in enumerate(requests)]
    return [(request, count) for _, count, request in sorted(keyed, key=lambda k: k[:2])]


def record(request: Request, receive_count: int, base_ms: int) -> dict[str, Any]:
    stamp = str(base_ms + request.offset_ms)
    return lambda_record({
        "MessageId": request.message_id, "ReceiptHandle": str(uuid.uuid4()),
        "Body": json.dumps(request.body),
        "Attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": stamp},
        "MessageAttributes": {
            "requestId": {"StringValue": request.request_id, "DataType": "String"},
            "requestTimeEpoch": {"StringValue": stamp, "DataType": "Number"}},
    }, QUEUE_ARN, REGION)


def item_bytes(value: dict[str, Any]) -> int:
    """An item's (or a map's) size as DynamoDB counts it: attribute names plus values, a number
    about half its digits plus one, a map or list 3 bytes plus one per element."""
    total = 0
    for name, attribute in value.items():
        (kind, inner), = attribute.items()
        total += len(name.encode()) + (
            len(inner.encode()) if kind == "S" else len(inner.strip("-").replace(".", "")) // 2 + 1
            if kind == "N" else 3 + len(inner) + item_bytes(inner) if kind == "M"
            else 3 + sum(item_bytes({"": v}) for v in inner) if kind == "L" else 1)
    return total


