"""bench.versus, tiny, against DynamoDB Local: the same deliveries through the three consumers,
the figures recorded per consumer, the correctness columns telling them apart, and P2."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench import versus
from bench.versus_workload import deliveries, expected_items, workload
from devstack.dynamodb_local import DynamoDBLocal


def test_the_deliveries_are_the_workload_once_twice_and_shuffled() -> None:
    requests = workload(8, seed=3)
    assert requests == workload(8, seed=3)  # seeded
    once = Counter(r.request_id for r, _ in deliveries(requests, "in order", 3))
    twice = deliveries(requests, "duplicates", 3)
    shuffled = [r for r, _ in deliveries(requests, "shuffled", 3)]
    assert set(once.values()) == {1} and len(once) == len(requests)
    assert Counter(r.request_id for r, _ in twice) == Counter({k: 2 for k in once})
    # A copy comes after its first delivery, as a redelivery does.
    assert [count for r, count in twice if r == requests[0]] == [1, 2]
    assert sorted(shuffled, key=lambda r: r.offset_ms) == requests and shuffled != requests
    last = {r.body["id"]: r.body["operation"] for r in requests}
    assert {i for i, item in expected_items(requests).items() if item is None} == {
        i for i, operation in last.items() if operation == "delete"}


def test_a_tiny_run_records_each_consumer_and_tells_them_apart(
        tmp_path: Path, dynamodb_local: DynamoDBLocal, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    recorded = versus.run(items=6, seed=7, latency_ms=0, cold_rounds=0, warmup_items=0,
                          results_path=path, dynamodb_url=dynamodb_local.endpoint_url)
    written = json.loads(path.read_text())
    assert written["versus"]["requests"] == recorded["requests"]
    requests = recorded["requests"]
    seed, powertools, ours = (recorded[c] for c in versus.CONSUMERS)
    for figures in (seed, powertools, ours):
        assert figures["items_wrong_in_order"] == 0  # the harness's reference holds for all
        assert figures["batch_p50_ms"] > 0 and figures["cpu_ms_per_message"] > 0
        assert figures["usd_per_million_requests_128mb"] > 3.5  # API Gateway alone is 3.50
    # One call per message; Powertools adds its idempotency record's put and update.
    assert seed["ddb_calls_per_message"] == seed["write_units_per_message"] == 1.0
    assert powertools["ddb_calls_per_message"] == 3.0
    assert ours["ddb_calls_per_message"] < 1
    # The seed applies every redelivery again and gets items wrong; Powertools catches the
    # duplicates but not the order; sqs-manager neither, and records every request's outcome.
    assert seed["writes_applied_twice"] == requests
    assert seed["items_wrong_after_duplicates"] + seed["items_wrong_after_shuffle"] > 0
    assert powertools["writes_applied_twice"] == powertools["items_wrong_after_duplicates"] == 0
    assert powertools["items_wrong_after_shuffle"] > 0
    assert seed["requests_without_outcome"] == powertools["requests_without_outcome"] == requests
    assert ours["items_wrong_after_duplicates"] == ours["items_wrong_after_shuffle"] == 0
    assert ours["writes_applied_twice"] == ours["requests_without_outcome"] == 0
    # P2: sqs-manager's batch p50 in round trips, its calls per item write (one transaction a
    # batch: 10 writes a call where a batch holds no two commands for one item).
    assert written["batch_latency_ratio"] == pytest.approx(
        ours["batch_p50_ms"] / recorded["round_trip_p50_ms"], rel=1e-3)
    calls = sum(ours["calls_by_operation"].values())
    assert written["ddb_calls_per_write"] == pytest.approx(ours["ddb_calls_per_write"], abs=1e-4)
    assert calls / requests <= ours["ddb_calls_per_write"] < 1
    assert written["details"]["bench.versus"]["round_trip_ms"] > 0
    out = capsys.readouterr().out
    assert "batch_latency_ratio" in out and "| items wrong, shuffled" in out
    assert "| DynamoDB on-demand" in out
