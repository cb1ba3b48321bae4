"""In-order results (R2, R3) as properties, with hypothesis: random sequences of requests to one
item, delivered shuffled and duplicated, against the real store over HTTP.

SQS is played by the test: every message is delivered once (and a duplicate of some), in random
order; a message whose condition is pending (ConditionPendingError) comes back in a later round,
in random order again, as SQS would after its visibility delay; in the last round it no longer
waits. What is claimed:
- every request ends with exactly one outcome, the same for every delivery of it (R2);
- for puts, updates and deletes, the item equals the result of applying every request once in
  the order API Gateway stamped them, whatever the delivery order (R3);
- with creates and expectedVersion, conditions are judged when the message is applied: the
  in-order result holds when delivery is in order (duplicates included), and otherwise every
  request still ends applied or rejected once. FIFO mode is the answer for those.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import (
    ConditionPendingError,
    ItemNotFoundError,
    ItemStore,
    OutcomeNotFoundError,
    Stamp,
)
from chalicelib.batch import CONDITION_RETRIES
from chalicelib.commands import Command
from devstack.in_order import Model

pytestmark = pytest.mark.both_stores

ATTRIBUTES = ["a", "b", "c"]
VALUES = st.one_of(st.integers(-3, 3), st.sampled_from(["x", "y"]), st.none())


@dataclass(frozen=True)
class Request:
    command: Command
    stamp: Stamp


def in_order(requests: list[Request]) -> Model:
    model = Model()
    for request in sorted(requests, key=lambda r: r.stamp):
        model.apply(request.command)
    return model


def commands(conditional: bool) -> st.SearchStrategy[Command]:
    item = st.dictionaries(st.sampled_from(ATTRIBUTES), VALUES.filter(lambda v: v is not None),
                           max_size=3)
    changes = st.dictionaries(st.sampled_from(ATTRIBUTES), VALUES, min_size=1, max_size=3)
    version = st.one_of(st.none(), st.integers(0, 3)) if conditional else st.none()
    operations = ["put", "update", "delete", *(["create"] if conditional else [])]
    return st.sampled_from(operations).flatmap(lambda op: st.builds(
        Command, st.just(op), st.just("placeholder"),
        item if op in ("create", "put") else changes if op == "update" else st.just({}),
        version))


def sequences(conditional: bool) -> st.SearchStrategy[list[Request]]:
    # Few distinct times, so that ties on requestTimeEpoch (ordered by requestId) are common.
    times = st.integers(1, 4).map(lambda t: 1_700_000_000_000 + t)
    pair = st.tuples(commands(conditional), times)
    return st.lists(pair, min_size=1, max_size=7).map(lambda pairs: [
        Request(command, Stamp(time, f"r{index:02d}-{uuid.uuid4().hex[:6]}"))
        for index, (command, time) in enumerate(pairs)])


def deliver(store: ItemStore, requests: list[Request], rng: random.Random,
            shuffle: bool = True) -> list[Request]:
    """Every request delivered at least once (some twice) with pending ones coming back in later
    rounds; returns the deliveries made."""
    pending = [*requests, *rng.sample(requests, k=rng.randint(0, len(requests)))]
    if shuffle:
        rng.shuffle(pending)
    else:
        pending.sort(key=lambda r: r.stamp)
    delivered: list[Request] = []
    for round_number in range(CONDITION_RETRIES + 1):
        later: list[Request] = []
        for request in pending:
            delivered.append(request)
            try:
                store.apply(request.command, request.stamp,
                            may_wait=round_number < CONDITION_RETRIES)
            except ConditionPendingError:
                later.append(request)
        if shuffle:
            rng.shuffle(later)
        pending = later
    assert not pending
    return delivered


def with_id(requests: list[Request], item_id: str) -> list[Request]:
    return [Request(Command(r.command.operation, item_id, r.command.item,
                            r.command.expected_version), r.stamp) for r in requests]


def stored(store: ItemStore, item_id: str) -> Model:
    try:
        found = store.get_item(item_id)
    except ItemNotFoundError:
        return Model()
    return Model(True, {k: v for k, v in found.items() if k not in ("id", "version")},
                 found["version"])


def outcomes(store: ItemStore, requests: list[Request]) -> dict[str, dict[str, Any]]:
    found = {}
    for request in requests:
        try:
            found[request.stamp.request_id] = store.get_outcome(request.stamp.request_id)
        except OutcomeNotFoundError:  # pragma: no cover - the assertion below says which
            pytest.fail(f"no outcome for {request}")
    return found


PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@PROPERTY
@given(requests=sequences(conditional=False), seed=st.integers(0, 2**32 - 1))
def test_puts_updates_and_deletes_give_the_in_order_result_in_any_delivery_order(
        store: ItemStore, requests: list[Request], seed: int) -> None:
    requests = with_id(requests, f"r3-{uuid.uuid4().hex}")
    deliver(store, requests, random.Random(seed))
    expected, found = in_order(requests), stored(store, requests[0].command.id)
    assert (found.exists, found.item) == (expected.exists, expected.item)
    outcomes(store, requests)  # every request has its one outcome


@PROPERTY
@given(requests=sequences(conditional=True), seed=st.integers(0, 2**32 - 1))
def test_with_conditions_in_order_delivery_is_exact_and_duplicates_change_nothing(
        store: ItemStore, requests: list[Request], seed: int) -> None:
    """Delivered in order, each request once more at some point: the item, its version and
    every outcome are those of applying each request once, in order (R2)."""
    requests = with_id(requests, f"r2-{uuid.uuid4().hex}")
    model = Model()
    expected_status = {r.stamp.request_id: "applied" if model.apply(r.command) else "rejected"
                       for r in sorted(requests, key=lambda r: r.stamp)}
    deliver(store, requests, random.Random(seed), shuffle=False)
    found = stored(store, requests[0].command.id)
    assert (found.exists, found.item) == (model.exists, model.item)
    if model.exists:
        assert found.version == model.version
    assert {k: v["status"] for k, v in outcomes(store, requests).items()} == expected_status


@PROPERTY
@given(requests=sequences(conditional=True), seed=st.integers(0, 2**32 - 1))
def test_with_conditions_any_delivery_ends_every_request_once(
        store: ItemStore, requests: list[Request], seed: int) -> None:
    requests = with_id(requests, f"any-{uuid.uuid4().hex}")
    rng = random.Random(seed)
    deliver(store, requests, rng)
    first = outcomes(store, requests)
    assert {o["status"] for o in first.values()} <= {"applied", "rejected"}
    before = stored(store, requests[0].command.id)
    deliver(store, requests, rng)  # everything again: no request has a second effect
    assert outcomes(store, requests) == first
    assert stored(store, requests[0].command.id) == before


def test_two_updates_of_different_attributes_in_reverse_both_apply(store: ItemStore) -> None:
    """The case users hit: the older update arrives last and still applies."""
    item_id = f"reverse-{uuid.uuid4().hex}"
    store.apply(Command("put", item_id, {"keep": 1}), Stamp(1, "p"))
    store.apply(Command("update", item_id, {"b": 2}), Stamp(3, "u2"))
    assert store.apply(Command("update", item_id, {"a": 1, "b": 1}),
                       Stamp(2, "u1")).status == "applied"
    assert store.get_item(item_id) == {"id": item_id, "version": 3, "keep": 1, "a": 1, "b": 2}


def test_a_late_put_keeps_what_newer_updates_wrote(store: ItemStore) -> None:
    item_id = f"late-put-{uuid.uuid4().hex}"
    store.apply(Command("put", item_id, {"a": 0, "b": 0}), Stamp(1, "p1"))
    store.apply(Command("update", item_id, {"a": 3, "c": None}), Stamp(3, "u"))
    assert store.apply(Command("put", item_id, {"b": 2, "c": 2}), Stamp(2, "p2")).status == (
        "applied")
    assert store.get_item(item_id) == {"id": item_id, "version": 3, "a": 3, "b": 2}


def test_an_update_before_its_create_waits_then_applies(store: ItemStore) -> None:
    item_id = f"early-{uuid.uuid4().hex}"
    update = Command("update", item_id, {"n": 2})
    with pytest.raises(ConditionPendingError, match="does not exist"):
        store.apply(update, Stamp(2, "u"), may_wait=True)
    store.apply(Command("create", item_id, {"n": 1}), Stamp(1, "c"))
    assert store.apply(update, Stamp(2, "u"), may_wait=True).status == "applied"
    assert store.get_item(item_id) == {"id": item_id, "version": 2, "n": 2}


def test_items_written_before_attribute_stamps_still_take_updates(
        store: ItemStore, dynamodb: Any) -> None:
    """An item as the previous release stored it (no attrStamps): updated by the merge path."""
    item_id = f"legacy-{uuid.uuid4().hex}"
    dynamodb.put_item(TableName=store.table, Item={
        "pk": {"S": "item#" + item_id}, "id": {"S": item_id}, "version": {"N": "4"},
        "item": {"M": {"a": {"N": "1"}}}, "lastRequestTime": {"N": "5"},
        "lastRequestId": {"S": "old"}, "updatedAt": {"N": "5"}})
    assert store.apply(Command("update", item_id, {"b": 2}), Stamp(6, "u1")).status == (
        "applied")
    assert store.apply(Command("update", item_id, {"a": 3}), Stamp(7, "u2")).status == (
        "applied")
    assert store.get_item(item_id) == {"id": item_id, "version": 6, "a": 3, "b": 2}


def test_a_waiting_conditional_write_is_never_satisfied_by_newer_writes(store: ItemStore) -> None:
    """Found by the property test: a delete expecting version 3 waits (the item is at 2); a
    newer update takes the item to 3. In order the delete was rejected: so it is here."""
    item_id = f"wait-{uuid.uuid4().hex}"
    store.apply(Command("put", item_id, {"b": 3}), Stamp(1, "p"))
    store.apply(Command("update", item_id, {"c": None}), Stamp(2, "u1"))
    delete = Command("delete", item_id, {}, 3)
    with pytest.raises(ConditionPendingError, match="expected version 3, but"):
        store.apply(delete, Stamp(3, "d"), may_wait=True)
    store.apply(Command("update", item_id, {"c": 2}), Stamp(4, "u2"))
    assert store.apply(delete, Stamp(3, "d"), may_wait=True).status == "rejected"
    assert "can no longer be checked" in str(store.get_outcome("d")["reason"])
    assert store.get_item(item_id) == {"id": item_id, "version": 3, "b": 3, "c": 2}


def test_a_late_delete_keeps_newer_updates_for_a_put_between_them(store: ItemStore) -> None:
    """Found by the property test on CI. In order: put, delete, put {}, update -> {b: 0, c: x}.
    The update and the first put arrive before the delete, the second put last: the delete must
    not throw away the update, which the second put (between them) makes count."""
    item_id = f"late-delete-{uuid.uuid4().hex}"
    store.apply(Command("put", item_id, {"b": "y"}), Stamp(1, "p1"))
    store.apply(Command("update", item_id, {"b": 0, "c": "x", "a": None}), Stamp(4, "u"))
    assert store.apply(Command("delete", item_id), Stamp(2, "d")).status == "applied"
    with pytest.raises(ItemNotFoundError):  # what the update wrote stays out of sight
        store.get_item(item_id)
    assert store.apply(Command("put", item_id, {}), Stamp(3, "p2")).status == "applied"
    assert store.get_item(item_id) == {"id": item_id, "version": 4, "b": 0, "c": "x"}


def test_an_update_on_a_deleted_item_waits_even_when_a_newer_update_came_first(
        store: ItemStore) -> None:
    """In order: put, delete, put, update a, update b. The update of b arrives before the
    delete, the update of a after it: a put between the delete and a may still come, so the
    update of a waits instead of being rejected for good."""
    item_id = f"wait-deleted-{uuid.uuid4().hex}"
    store.apply(Command("put", item_id, {"k": 1}), Stamp(1, "p1"))
    store.apply(Command("update", item_id, {"b": 2}), Stamp(5, "ub"))
    store.apply(Command("delete", item_id), Stamp(2, "d"))
    update_a = Command("update", item_id, {"a": 1})
    with pytest.raises(ConditionPendingError, match="it was deleted"):
        store.apply(update_a, Stamp(4, "ua"), may_wait=True)
    store.apply(Command("put", item_id, {"k": 3}), Stamp(3, "p2"))
    assert store.apply(update_a, Stamp(4, "ua"), may_wait=True).status == "applied"
    assert store.get_item(item_id) == {"id": item_id, "version": 5, "k": 3, "a": 1, "b": 2}
