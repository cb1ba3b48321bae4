"""The reliability runs' seeded workload (writes, reads, bodies the gateway refuses, bodies the
consumer must reject) and the accounting of what a run left: applied, rejected, in the DLQ or
lost; writes applied twice (an item's `version` counts its applied writes); items that differ
from the in-order result. docs/reliability.md ("R1") says what each figure counts and why.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chalicelib.commands import Command, Stamp
from devstack.in_order import apply_in_order

ATTRIBUTES = ["a", "b", "c", "d", "e", "f"]
# Kinds of request.
WRITE, READ, GATEWAY_INVALID, CONSUMER_INVALID = "write", "read", "gateway-invalid", "invalid"


@dataclass(frozen=True)
class Request:
    kind: str
    item_id: str
    body: str
    command: Command | None = None  # the write as the model applies it (kind WRITE)

    @property
    def conditional(self) -> bool:
        return self.command is not None and (self.command.operation == "create"
                                             or self.command.expected_version is not None)


def workload(count: int, items: int, seed: int, prefix: str = "rel-",
             conditional_share: float = 0.2, gateway_invalid: float = 0.03,
             consumer_invalid: float = 0.03, reads: float = 0.04) -> list[Request]:
    rng = random.Random(seed)
    ids = [f"{prefix}{n:05d}" for n in range(items)]
    conditional = set(rng.sample(ids, int(len(ids) * conditional_share)))
    requests = []
    for _ in range(count):
        item_id = rng.choice(ids)
        draw = rng.random()
        if draw < gateway_invalid:
            refused = rng.choice([{"operation": "upsert", "id": item_id, "item": {}},
                               {"operation": "put", "id": item_id},
                               {"operation": "update", "id": item_id, "item": {}}])
            requests.append(Request(GATEWAY_INVALID, item_id, json.dumps(refused)))
        elif draw < gateway_invalid + consumer_invalid:
            value = rng.choice(["\ud83d", 1e-200])  # a lone surrogate; below DynamoDB's 1E-130
            invalid = {"operation": rng.choice(["put", "update"]), "id": item_id,
                       "item": {rng.choice(ATTRIBUTES): value}}
            requests.append(Request(CONSUMER_INVALID, item_id, json.dumps(invalid)))
        elif draw < gateway_invalid + consumer_invalid + reads:
            requests.append(Request(READ, item_id, json.dumps({"operation": "read",
                                                                "id": item_id})))
        else:
            command = _write(rng, item_id, item_id in conditional)
            body: dict[str, Any] = {"operation": command.operation, "id": item_id}
            if command.operation != "delete":
                body["item"] = command.item
            if command.expected_version is not None:
                body["expectedVersion"] = command.expected_version
            requests.append(Request(WRITE, item_id, json.dumps(body), command))
    return requests


def _write(rng: random.Random, item_id: str, conditional: bool) -> Command:
    operations = ["put"] * 6 + ["update"] * 9 + ["delete"] * 2
    if conditional:
        operations += ["create"] * 3
    operation = rng.choice(operations)
    item: dict[str, Any] = {}
    if operation in ("put", "create"):
        item = {name: _value(rng) for name in rng.sample(ATTRIBUTES, rng.randint(0, 3))}
    elif operation == "update":
        item = {name: None if rng.random() < 0.2 else _value(rng)
                for name in rng.sample(ATTRIBUTES, rng.randint(1, 3))}
    expected = rng.randint(0, 4) if conditional and rng.random() < 0.3 else None
    return Command(operation, item_id, item, expected)


def _value(rng: random.Random) -> Any:
    return rng.choice([rng.randint(-100, 100), rng.choice(["x", "y", "z"]), True,
                       [1, "two"], {"n": rng.randint(0, 9)}])


@dataclass
class Snapshot:
    """The table after a run: outcomes by requestId, item records (tombstones too) by id."""

    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)


class Counts:
    """An accounting: every int field is a row of its report; `examples` up to 10 notes."""

    examples: list[str]

    def rows(self) -> list[list[Any]]:
        return [[name.replace("_", " "), value] for name, value in vars(self).items()
                if isinstance(value, int)]

    def note(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text[:500])


# -- accounting -----------------------------------------------------------------------------------

@dataclass
class Accounting(Counts):
    accepted: int = 0
    applied: int = 0
    rejected: int = 0
    dlq_only: int = 0  # in the DLQ with no outcome
    dlq_with_outcome: int = 0  # in the DLQ, though handled once before (e.g. after a crash)
    lost: int = 0
    unknown_outcomes: int = 0  # outcomes of requests the client never saw accepted
    invalid_not_rejected: int = 0  # consumer-invalid requests that did not end rejected
    items: int = 0
    applied_twice: int = 0  # items whose version exceeds their applied writes
    version_short: int = 0  # items whose version is below them (an applied write with no effect)
    plain_items: int = 0  # items with puts, updates, deletes only: compared with the model
    wrong_items: int = 0
    pending_items: int = 0  # items with a request still in the DLQ: not compared yet
    conditional_items: int = 0
    conditional_in_order: int = 0  # of those, equal to the in-order result anyway
    examples: list[str] = field(default_factory=list)


def account(accepted: dict[str, Request], snapshot: Snapshot, dlq: list[str]) -> Accounting:
    """accepted: requestId -> the request the gateway answered 202 for."""
    result = Accounting(accepted=len(accepted))
    in_dlq = set(dlq)
    by_item: dict[str, list[tuple[Stamp, Request]]] = {}
    pending: set[str] = set()
    for request_id, request in accepted.items():
        outcome = snapshot.outcomes.get(request_id)
        if outcome is None:
            if request_id in in_dlq:
                result.dlq_only += 1
                pending.add(request.item_id)
            else:
                result.lost += 1
                result.note(f"lost: {request_id} {request.body}")
            continue
        result.dlq_with_outcome += request_id in in_dlq
        status = outcome["status"]
        result.applied += status == "applied"
        result.rejected += status == "rejected"
        if request.kind == CONSUMER_INVALID and status != "rejected":
            result.invalid_not_rejected += 1
            result.note(f"invalid but {status}: {request_id} {request.body}")
        stamp = Stamp(int(outcome["requestTimeEpoch"]), request_id)
        by_item.setdefault(request.item_id, []).append((stamp, request))
    result.unknown_outcomes = len(set(snapshot.outcomes) - set(accepted))
    applied_writes = Counter(str(o.get("id")) for o in snapshot.outcomes.values()
                             if o["status"] == "applied" and o.get("operation") != "read")
    for item_id in sorted(set(by_item) | set(snapshot.items)):
        result.items += 1
        record = snapshot.items.get(item_id)
        version = int(record["version"]) if record else 0
        if version > applied_writes[item_id]:
            result.applied_twice += 1
            result.note(f"{item_id}: version {version}, {applied_writes[item_id]} applied")
        elif version < applied_writes[item_id]:
            result.version_short += 1
            result.note(f"{item_id}: version {version}, {applied_writes[item_id]} applied")
        requests = by_item.get(item_id, [])
        if item_id in pending:
            result.pending_items += 1
            continue
        writes = [(s, r.command) for s, r in requests if r.command is not None]
        model, _ = apply_in_order(writes)
        live = record is not None and not record.get("deleted")
        stored = (live, dict(record.get("item", {})) if record is not None and live else {})
        matches = stored == (model.exists, model.item)
        if any(r.conditional for _, r in requests):
            result.conditional_items += 1
            result.conditional_in_order += matches
        else:
            result.plain_items += 1
            if not matches:
                result.wrong_items += 1
                result.note(f"{item_id}: stored {stored}, in order {model.exists, model.item}")
    return result


def comparable(snapshot: Snapshot) -> tuple[dict[str, Any], dict[str, Any]]:
    """Items and outcomes without the fields that record when (handledAt, expiresAt, ...)."""
    when = {"handledAt", "expiresAt", "updatedAt"}
    items, outcomes = ({key: {n: v for n, v in record.items() if n not in when}
                        for key, record in records.items()}
                       for records in (snapshot.items, snapshot.outcomes))
    return items, outcomes
