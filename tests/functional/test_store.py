"""The DynamoDB store against the emulator over HTTP: CRUD, versions, conditions, ordering,
idempotency, tombstones, pages and outcomes. No mocking of the store."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from chalicelib import (
    InvalidQueryError,
    ItemNotFoundError,
    ItemStore,
    OutcomeNotFoundError,
    Settings,
    Stamp,
    parse_command,
)

pytestmark = pytest.mark.both_stores  # moto and DynamoDB Local (tests/conftest.py)

TIME = 1_700_000_000_000


class Client:
    """Sends commands as the consumer would, each with its own request id and later time."""

    def __init__(self, store: ItemStore) -> None:
        self.store = store
        self.clock = TIME
        self.count = 0

    def send(self, body: str, stamp: Stamp | None = None) -> dict[str, Any]:
        if stamp is None:
            self.clock += 1000
            self.count += 1
            stamp = Stamp(self.clock, f"req-{self.count:04d}")
        self.store.apply(parse_command(body), stamp)
        return self.store.get_outcome(stamp.request_id)


@pytest.fixture
def client(store: ItemStore) -> Client:
    return Client(store)


def test_create_read_update_delete(client: Client, store: ItemStore) -> None:
    before = int(time.time() * 1000)
    outcome = client.send('{"operation": "create", "id": "a", "item": {"n": 1, "keep": "k"}}')
    # When: the request's stamp (API Gateway's time), and when the consumer recorded it.
    assert outcome.pop("requestTimeEpoch") == TIME + 1000
    assert before <= outcome.pop("handledAt") <= time.time() * 1000
    assert outcome == {"requestId": "req-0001", "status": "applied", "operation": "create",
                       "id": "a"}
    assert store.get_item("a") == {"id": "a", "version": 1, "n": 1, "keep": "k"}
    assert client.send('{"operation": "update", "id": "a", "item": {"n": 2, "keep": null, '
                       '"new": [1]}}')["status"] == "applied"
    assert store.get_item("a") == {"id": "a", "version": 2, "n": 2, "new": [1]}
    read = client.send('{"operation": "read", "id": "a"}')
    assert read["item"] == {"id": "a", "version": 2, "n": 2, "new": [1]}
    assert client.send('{"operation": "delete", "id": "a"}')["status"] == "applied"
    with pytest.raises(ItemNotFoundError):
        store.get_item("a")
    assert client.send('{"operation": "read", "id": "a"}')["item"] is None


def test_put_replaces_the_whole_item_and_counts_versions(client: Client,
                                                         store: ItemStore) -> None:
    client.send('{"operation": "put", "id": "p", "item": {"a": 1, "b": 2}}')
    client.send('{"operation": "put", "id": "p", "item": {"c": 0.1}}')
    assert store.get_item("p") == {"id": "p", "version": 2, "c": Decimal("0.1")}


@pytest.mark.parametrize("body, reason", [
    ('{"operation": "update", "id": "missing", "item": {"a": 1}}', "does not exist"),
    ('{"operation": "create", "id": "x", "item": {}}', "already exists (version 1)"),
    ('{"operation": "put", "id": "x", "item": {}, "expectedVersion": 5}',
     "expected version 5, but the current version is 1"),
    ('{"operation": "put", "id": "x", "item": {}, "expectedVersion": 0}',
     "expected version 0, but the current version is 1"),
    ('{"operation": "delete", "id": "nope", "expectedVersion": 2}',
     "expected version 2, but item 'nope' does not exist"),
])
def test_rejections_are_recorded_with_a_reason(client: Client, store: ItemStore, body: str,
                                               reason: str) -> None:
    client.send('{"operation": "create", "id": "x", "item": {"v": 1}}')
    outcome = client.send(body)
    assert outcome["status"] == "rejected" and reason in outcome["reason"], outcome
    assert store.get_item("x") == {"id": "x", "version": 1, "v": 1}


def test_expected_version_guards_writes(client: Client, store: ItemStore) -> None:
    client.send('{"operation": "put", "id": "v", "item": {}, "expectedVersion": 0}')
    assert client.send('{"operation": "update", "id": "v", "item": {"a": 1}, '
                       '"expectedVersion": 1}')["status"] == "applied"
    assert client.send('{"operation": "delete", "id": "v", "expectedVersion": 2}')["status"] \
        == "applied"
    # A delete is a write (version 3); re-created, the item goes on counting, so an old
    # expectedVersion does not match again (while the tombstone lasts: TOMBSTONE_TTL_DAYS).
    client.send('{"operation": "create", "id": "v", "item": {}}')
    assert store.get_item("v")["version"] == 4


def test_delete_of_a_missing_item_is_applied(client: Client) -> None:
    assert client.send('{"operation": "delete", "id": "ghost"}')["status"] == "applied"


@pytest.mark.parametrize("body, reason", [
    ('{"operation": "update", "id": "x", "item": {"": null}}', "empty attribute name"),
    ('{"operation": "update", "id": "x", "item": {"": 1}}', "empty attribute name"),
    ('{"operation": "put", "id": "x", "item": {}, "expectedVersion": %s}' % ("9" * 40),
     "40 significant digits"),
])
def test_what_dynamodb_would_refuse_is_rejected_not_retried(client: Client, body: str,
                                                            reason: str) -> None:
    """DynamoDB answers these with a ValidationException (moto may not): rejecting them up front
    keeps them out of the retries and the DLQ on AWS too."""
    client.send('{"operation": "create", "id": "x", "item": {"v": 1}}')
    outcome = client.send(body)
    assert outcome["status"] == "rejected" and reason in outcome["reason"], outcome


def test_a_redelivered_request_has_no_second_effect(client: Client, store: ItemStore) -> None:
    stamp = Stamp(TIME + 10**6, "same-request")
    body = '{"operation": "update", "id": "r", "item": {"n": 5}}'
    client.send('{"operation": "create", "id": "r", "item": {"n": 0}}')
    first = client.send(body, stamp)
    again = client.send(body, stamp)
    assert first == again
    assert first == {"requestId": "same-request", "status": "applied", "operation": "update",
                     "id": "r", "requestTimeEpoch": TIME + 10**6,
                     "handledAt": first["handledAt"]}
    assert store.get_item("r")["version"] == 2


def test_an_older_write_never_overwrites_a_newer_one(client: Client, store: ItemStore) -> None:
    client.send('{"operation": "put", "id": "o", "item": {"v": "new"}}', Stamp(TIME + 50, "b"))
    late = client.send('{"operation": "put", "id": "o", "item": {"v": "old"}}', Stamp(TIME, "a"))
    assert late["status"] == "rejected" and "superseded" in late["reason"]
    tie = client.send('{"operation": "put", "id": "o", "item": {"v": "tie"}}',
                      Stamp(TIME + 50, "a"))
    assert tie["status"] == "rejected"
    assert store.get_item("o") == {"id": "o", "version": 1, "v": "new"}


def test_a_delete_keeps_older_writes_from_resurrecting_the_item(client: Client,
                                                                store: ItemStore) -> None:
    client.send('{"operation": "delete", "id": "t"}', Stamp(TIME + 50, "del"))
    late = client.send('{"operation": "create", "id": "t", "item": {}}', Stamp(TIME, "old"))
    assert late["status"] == "rejected" and "superseded" in late["reason"]
    with pytest.raises(ItemNotFoundError):
        store.get_item("t")


def test_exact_values_round_trip(client: Client, store: ItemStore) -> None:
    body = ('{"operation": "put", "id": "e", "item": {"n": 12345678901234567890, "f": 0.1, '
            '"s": "& + % = ? # ü 😀 \\" \' \\\\ \\n", "deep": {"l": [{"m": [true, null, -1.5]}]}}}')
    client.send(body)
    assert store.get_item("e") == {"id": "e", "version": 1, **parse_command(body).item}


def test_an_item_over_400_kb_is_rejected_with_a_reason_that_says_so(client: Client) -> None:
    outcome = client.send('{"operation": "put", "id": "big", "item": {"s": "%s"}}'
                          % ("x" * 420_000))
    assert outcome["status"] == "rejected" and "400 KB" in outcome["reason"]


def test_pages_cover_every_live_item_once(client: Client, store: ItemStore) -> None:
    for index in range(25):
        client.send('{"operation": "put", "id": "i%02d", "item": {"n": %d}}' % (index, index))
    client.send('{"operation": "delete", "id": "i07"}')
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list_items(limit="10", cursor=cursor)
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page.get("cursor")
        if cursor is None:
            break
    assert sorted(seen) == [f"i{n:02d}" for n in range(25) if n != 7]
    assert pages == 3


@pytest.mark.parametrize("limit, cursor", [("0", None), ("101", None), ("x", None),
                                           (None, "!!!"), (None, "aGVsbG8")])
def test_bad_page_queries_are_client_errors(store: ItemStore, limit: str | None,
                                            cursor: str | None) -> None:
    with pytest.raises(InvalidQueryError):
        store.list_items(limit=limit, cursor=cursor)


def test_outcomes_expire(dynamodb: Any, settings: Settings) -> None:
    now = [1_000_000.0]
    store = ItemStore(dynamodb, settings, clock=lambda: now[0])
    store.apply(parse_command('{"operation": "delete", "id": "z"}'), Stamp(TIME, "exp"))
    assert store.get_outcome("exp")["status"] == "applied"
    now[0] += settings.outcome_ttl_seconds + 1
    with pytest.raises(OutcomeNotFoundError):
        store.get_outcome("exp")
    with pytest.raises(OutcomeNotFoundError):
        store.get_outcome("never-sent")


def test_one_dynamodb_call_per_write_in_the_common_case(client: Client, store: ItemStore) -> None:
    calls: list[str] = []

    def record(request: Any, **_: Any) -> None:
        calls.append(request.headers["X-Amz-Target"].decode().split(".")[-1])

    store.client.meta.events.register("before-send.dynamodb", record)
    for body in ('{"operation": "create", "id": "c", "item": {"n": 1}}',
                 '{"operation": "update", "id": "c", "item": {"n": 2}}',
                 '{"operation": "put", "id": "c", "item": {}, "expectedVersion": 2}',
                 '{"operation": "delete", "id": "c"}'):
        client.store.apply(parse_command(body), Stamp(TIME + len(calls), f"one-{len(calls)}"))
    assert calls == ["TransactWriteItems"] * 4
