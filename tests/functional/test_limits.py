"""Requests that can never succeed end `rejected` with a reason, never retried into the DLQ; reads
and pages answer bad input with not-found or a 4xx. The store against the emulator over HTTP,
DynamoDB's verdicts injected at the HTTP level where the emulator would not give them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import (
    InvalidCommandError,
    InvalidQueryError,
    ItemNotFoundError,
    ItemStore,
    OutcomeNotFoundError,
    Settings,
    Stamp,
    parse_command,
)
from chalicelib.attributes import MAX_ITEM_BYTES, MAX_NESTING, item_size, to_map
from chalicelib.clients import client_config
from chalicelib.commands import Command
from chalicelib.outcomes import MAX_REASON_CHARS
from devstack.faults import INVALID, INVALID_ACTION, Fault, FaultProxy
from tests.conftest import REGION

pytestmark = pytest.mark.both_stores

TIME = 1_700_000_000_000


class Sender:
    def __init__(self, store: ItemStore) -> None:
        self.store = store
        self.count = 0

    def stamp(self) -> Stamp:
        self.count += 1
        return Stamp(TIME + self.count, f"req-{self.count:04d}")

    def send(self, body: str | dict[str, Any]) -> dict[str, Any]:
        """What the consumer does with a message body."""
        text = body if isinstance(body, str) else json.dumps(body)
        try:
            command = parse_command(text)
        except InvalidCommandError as error:
            stamp = self.stamp()
            self.store.reject(stamp, error)
            return self.store.get_outcome(stamp.request_id)
        return self.apply(command)

    def apply(self, command: Command) -> dict[str, Any]:
        stamp = self.stamp()
        self.store.apply(command, stamp)
        return self.store.get_outcome(stamp.request_id)


@pytest.fixture
def sender(store: ItemStore) -> Sender:
    return Sender(store)


@pytest.fixture
def faulty(dynamodb_endpoint: str, settings: Settings) -> Iterator[tuple[Sender, FaultProxy]]:
    """A sender whose DynamoDB calls go through the fault proxy."""
    with FaultProxy(dynamodb_endpoint) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION,
                              config=client_config())
        yield Sender(ItemStore(client, settings)), proxy


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"d": value}
    return value


def test_an_attribute_nested_30_levels_is_stored_31_is_rejected(sender: Sender,
                                                               store: ItemStore) -> None:
    deepest = nested(MAX_NESTING)
    assert sender.send({"operation": "put", "id": "deep", "item": {"a": deepest}})[
        "status"] == "applied"
    assert store.get_item("deep")["a"] == deepest
    assert sender.send({"operation": "update", "id": "deep", "item": {"b": [deepest]}})[
        "status"] == "rejected"
    outcome = sender.send({"operation": "put", "id": "deeper",
                           "item": {"a": nested(MAX_NESTING + 1)}})
    assert outcome["status"] == "rejected"
    assert "nested deeper than 30 objects or arrays" in outcome["reason"]


def test_an_update_of_64_attributes_applies(sender: Sender, store: ItemStore) -> None:
    sender.send({"operation": "put", "id": "wide", "item": {}})
    wide = {f"attribute{i}": i for i in range(64)}
    assert sender.send({"operation": "update", "id": "wide", "item": wide})[
        "status"] == "applied"
    assert store.get_item("wide") == {"id": "wide", "version": 2, **wide}
    removed = sender.send({"operation": "update", "id": "wide",
                           "item": dict.fromkeys(wide)})
    assert removed["status"] == "applied"
    assert store.get_item("wide") == {"id": "wide", "version": 3}


def test_an_attribute_name_over_64_kb_is_rejected(sender: Sender) -> None:
    sender.send({"operation": "put", "id": "names", "item": {}})
    for body in ({"operation": "put", "id": "names", "item": {"n" * 65_536: 1}},
                 {"operation": "update", "id": "names", "item": {"n" * 65_536: 1}}):
        outcome = sender.send(body)
        assert outcome["status"] == "rejected"
        assert "an attribute name of 65,536 bytes" in outcome["reason"]
    assert sender.send({"operation": "update", "id": "names", "item": {"n" * 1000: 1}})[
        "status"] == "applied"


def test_reasons_are_capped_so_an_outcome_always_fits(sender: Sender) -> None:
    long_name = "n" * 60_000
    outcome = sender.send({"operation": "put", "id": "capped",
                           "item": {long_name: nested(MAX_NESTING + 1)}})
    assert outcome["status"] == "rejected"
    assert len(outcome["reason"]) == MAX_REASON_CHARS
    assert outcome["reason"].endswith("…")


def test_an_invalid_command_with_a_huge_id_is_still_recorded(sender: Sender) -> None:
    outcome = sender.send(json.dumps({"operation": "put", "id": "i" * 300_000, "item": {}}))
    assert outcome["status"] == "rejected"
    assert "at most 255 characters" in outcome["reason"]
    assert len(outcome["id"]) <= 300


def test_lone_surrogates_are_rejected_and_recorded(sender: Sender) -> None:
    outcome = sender.send('{"operation": "put", "id": "s\\ud83d", "item": {"x": "\\udc00"}}')
    assert outcome["status"] == "rejected"
    assert "lone UTF-16 surrogate" in outcome["reason"]
    assert outcome["id"] == "s\\ud83d"  # escaped, so the outcome itself is valid text


def test_the_size_check_counts_the_stored_attribute_names(sender: Sender) -> None:
    """An item just under 400 KB as sent, over it with the store's own attributes, is rejected
    by the check (its reason), before DynamoDB sees it."""
    bare = item_size({"s": {"S": ""}})
    body = {"operation": "put", "id": "edge",
            "item": {"s": "x" * (MAX_ITEM_BYTES - bare - 30)}}
    outcome = sender.send(body)
    assert outcome["status"] == "rejected"
    assert "bytes as a DynamoDB item" in outcome["reason"]


def real_engine_only(backend: str) -> None:
    if backend == "moto":
        pytest.skip("moto refuses items over 405,000 bytes (its own estimate), below DynamoDB's "
                    "400 KB: only Amazon's engine can show this")


def test_the_size_check_lets_through_what_fits(sender: Sender, store: ItemStore,
                                               backend: str) -> None:
    real_engine_only(backend)
    body = {"operation": "put", "id": "fits", "item": {"s": "x" * (MAX_ITEM_BYTES - 400)}}
    assert sender.send(body)["status"] == "applied"
    assert len(store.get_item("fits")["s"]) == MAX_ITEM_BYTES - 400


def test_a_read_of_an_item_too_large_to_copy_says_so(sender: Sender, backend: str) -> None:
    real_engine_only(backend)
    # Just small enough to store, with its stamps; its copy in the outcome of a read whose
    # request id is longer (a message sent straight to the queue: its SQS messageId, a UUID) is
    # not. The item's own stamps are as large as an outcome's fields for ids of one length.
    big = {"s": "x" * (MAX_ITEM_BYTES - 170)}
    assert sender.send({"operation": "put", "id": "big", "item": big})["status"] == "applied"
    stamp = Stamp(TIME + 10_000, "0f1e2d3c-4b5a-4697-8877-6655443322ab")
    sender.store.apply(parse_command('{"operation": "read", "id": "big"}'), stamp)
    outcome = sender.store.get_outcome(stamp.request_id)
    assert outcome["status"] == "applied"
    assert outcome["found"] is True and outcome["itemTooLarge"] is True
    assert "item" not in outcome  # never `null`, which means "does not exist"
    assert "GET /items/{id}" in outcome["reason"]


def test_a_read_says_whether_the_item_was_found(sender: Sender) -> None:
    sender.send({"operation": "put", "id": "here", "item": {"v": 1}})
    found = sender.send({"operation": "read", "id": "here"})
    assert (found["found"], found["item"]) == (True, {"id": "here", "version": 1, "v": 1})
    missing = sender.send({"operation": "read", "id": "nothing-here"})
    assert (missing["found"], missing["item"]) == (False, None)
    assert "itemTooLarge" not in found and "itemTooLarge" not in missing


@pytest.mark.parametrize("kind", [INVALID, INVALID_ACTION])
def test_dynamodbs_validation_errors_are_rejections_not_retries(
        faulty: tuple[Sender, FaultProxy], kind: str) -> None:
    sender, proxy = faulty
    fault = proxy.add(Fault('"item#refused"', kind, times=None, operation="TransactWriteItems"))
    outcome = sender.send({"operation": "put", "id": "refused", "item": {"v": 1}})
    assert fault.injected == 1  # not retried by botocore or the store
    assert outcome["status"] == "rejected"
    assert outcome["reason"] == ("DynamoDB refused the write as invalid: One or more parameter "
                                 "values were invalid: (injected)")


def test_a_failed_conversion_nobody_foresaw_is_a_rejection(sender: Sender) -> None:
    class Odd:
        pass

    outcome = sender.apply(Command("put", "odd", {"x": Odd()}))
    assert outcome["status"] == "rejected"
    assert "unsupported value of type Odd" in outcome["reason"]


@pytest.mark.parametrize("item_id", ["i" * 3000, "x\ud83d", "€" * 700])
def test_reads_of_ids_that_cannot_exist_are_not_found(store: ItemStore, item_id: str) -> None:
    with pytest.raises(ItemNotFoundError):
        store.get_item(item_id)
    with pytest.raises(OutcomeNotFoundError):
        store.get_outcome(item_id)


@pytest.mark.parametrize("key", ["item#" + "k" * 3000, "item#\ud83d", "request#" + "€" * 700])
def test_a_crafted_cursor_is_a_client_error(store: ItemStore, key: str) -> None:
    cursor = base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).decode().rstrip("=")
    with pytest.raises(InvalidQueryError):
        store.list_items(cursor=cursor)


def test_update_expressions_stay_under_dynamodbs_4_kb(sender: Sender) -> None:
    """The longest update the schema allows, with the longest attribute names placeholders
    allow for, still fits: expressions name attributes by placeholder, never by name."""
    sender.send({"operation": "put", "id": "long", "item": {}})
    item = {f"{'n' * 200}{i:03d}": {"nested": i} for i in range(64)}
    assert sender.send({"operation": "update", "id": "long", "item": item})[
        "status"] == "applied"
    assert len(to_map(item)) == 64
