"""R1, R2 and R6 of the reliability issue, CI-sized: the same runs as `python -m bench.reliability`
(docs/reliability.md has the full-size figures), on the pipeline process with DynamoDB Local."""

from __future__ import annotations

import pytest

from bench.reliability import run_r1, run_r2
from bench.reliability_history import run_r6
from tests.e2e.conftest import COMPRESSED_TIME
from tests.stores import skip_unless_dynamodb_local_runs

pytestmark = pytest.mark.e2e


@pytest.mark.long
def test_r1_every_accepted_request_is_accounted_for_under_faults_and_crashes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    skip_unless_dynamodb_local_runs()
    # The pipeline inherits these, as the e2e pipelines have them (tests/e2e/conftest.py,
    # COMPRESSED_TIME): waits for earlier requests and transient pauses compressed.
    for name, value in COMPRESSED_TIME.items():
        monkeypatch.setenv(name, value)
    # A small backlog: requests reach the consumer well inside the 30 s in-order window.
    result = run_r1(150, fault_rate=0.1, crashes=2, seed=5, max_backlog=50)
    assert result.faults.total_injected > 0 and result.crashes >= 1
    assert not result.sent.errors and result.sent.refused_valid == 0
    for accounting in (result.first, result.final):
        assert accounting.accepted == len(result.sent.accepted) > 0
        assert accounting.lost == 0, accounting.examples
        assert accounting.accepted == (accounting.applied + accounting.rejected
                                       + accounting.dlq_only)
        assert accounting.applied_twice == accounting.version_short == 0, accounting.examples
        assert accounting.unknown_outcomes == accounting.invalid_not_rejected == 0
        assert accounting.wrong_items == 0, accounting.examples
    final = result.final
    assert final.dlq_only == final.pending_items == 0
    assert final.plain_items > 0 and final.applied > 0 and final.rejected > 0


@pytest.mark.long
def test_r2_every_message_twice_leaves_the_table_of_a_single_delivery() -> None:
    skip_unless_dynamodb_local_runs()
    result = run_r2(60, seed=5)
    assert result.outcomes_compared >= result.messages > 0 and result.items_compared > 0
    assert result.items_differing == [] and result.outcomes_differing == []


@pytest.mark.long
def test_r6_the_history_equals_the_applied_versions_under_faults_and_stream_crashes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    skip_unless_dynamodb_local_runs()
    # The pipeline inherits these: a failed condition (an update before its create) is rejected
    # after 1 + 2 s instead of 2 + 4 + 8 s of waiting for earlier requests.
    monkeypatch.setenv("IN_ORDER_WINDOW_SECONDS", "3")
    monkeypatch.setenv("CONDITION_RETRY_DELAY_SECONDS", "1")
    # Seeded: the 6th DynamoDB call and the 5th PutEvents call fail, so faults are certain.
    result = run_r6(150, fault_rate=0.1, crashes=3, seed=3, max_backlog=50)
    history = result.history
    assert result.dynamodb_faults.total_injected > 0 and result.events_faults.total_injected > 0
    assert result.stream_crashes > 0
    assert len(result.sent.accepted) == 150 and result.main.applied > 0
    assert history.applied_writes == result.main.applied
    assert history.history_entries + history.tombstone_deletes == history.applied_writes
    assert history.missing == history.twice == history.unknown == 0, history.examples
    assert history.chain_breaks == history.version_not_applied_writes == 0, history.examples
    assert result.history_dlq == 0 and result.stream_failures == 0 and result.holds
