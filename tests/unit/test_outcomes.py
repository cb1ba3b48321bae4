"""Outcome kinds, the one place a rejection is decided, and the debug route's event, without
I/O."""

from __future__ import annotations

import json

import pytest

from chalicelib import Settings, dumps
from chalicelib.commands import Command, Stamp
from chalicelib.errors import InvalidCommandError
from chalicelib.events import region, single_message_event
from chalicelib.metrics import MetricsBatch
from chalicelib.outcomes import (
    MAX_ID_CHARS,
    MAX_REASON_CHARS,
    Outcome,
    Status,
    outcome_from_attributes,
    rejection,
)
from chalicelib.writes import Verdict, VerdictKind, verdict

COMMAND = Command("update", "a", {"x": 1})


def test_statuses_and_verdict_kinds_are_written_as_their_text() -> None:
    assert [s.value for s in Status] == ["applied", "rejected"]
    assert {k.value for k in VerdictKind} == {
        "mine", "merge", "superseded", "condition", "rejected"}
    outcome = Outcome("r", Status.APPLIED, "delete", "a")
    assert dumps(outcome.to_json()) == (
        '{"requestId": "r", "status": "applied", "operation": "delete", "id": "a"}')
    assert json.dumps(outcome.to_json()) == dumps(outcome.to_json())
    read_back = outcome_from_attributes({"requestId": "r", "status": "rejected"})
    assert read_back.status is Status.REJECTED


def test_a_superseded_write_is_flagged_by_its_verdict_not_by_its_text() -> None:
    old = {"lastRequestTime": 11, "lastRequestId": "q", "version": 3}
    superseded = rejection("r", verdict(COMMAND, Stamp(10, "r"), old), COMMAND)
    assert superseded.superseded and superseded.status is Status.REJECTED
    assert (superseded.operation, superseded.id) == ("update", "a")
    # The same words from any other cause are an ordinary rejection.
    other = rejection("r", Verdict(VerdictKind.CONDITION, superseded.reason or ""), COMMAND)
    assert not other.superseded and other.reason == superseded.reason
    assert not rejection("r", InvalidCommandError(superseded.reason or "")).superseded
    # And the metrics count what the flag says.
    batch = MetricsBatch()
    for outcome in (superseded, other):
        batch.record(outcome.status, duplicate=outcome.duplicate, superseded=outcome.superseded)
    assert batch.counts["Superseded"] == 1 and batch.counts["Rejected"] == 1


@pytest.mark.parametrize(("cause", "command", "reason", "named"), [
    (InvalidCommandError("item.x: bad", "put", "b"), None, "item.x: bad", ("put", "b")),
    (InvalidCommandError("item.x: bad"), COMMAND, "item.x: bad", ("update", "a")),
    (TypeError("boom"), None, "the body cannot be read as a command: TypeError: boom",
     (None, None)),
    (ValueError("odd"), COMMAND,
     "the command cannot be converted for DynamoDB: ValueError: odd", ("update", "a")),
    (Verdict(VerdictKind.REJECTED, "too late"), COMMAND, "too late", ("update", "a")),
])
def test_a_rejection_is_decided_by_its_cause(cause: Exception | Verdict, command: Command | None,
                                             reason: str,
                                             named: tuple[str | None, str | None]) -> None:
    outcome = rejection("r", cause, command)
    assert outcome == Outcome("r", Status.REJECTED, named[0], named[1], reason)


def test_a_rejection_is_capped_to_fit_an_outcome() -> None:
    outcome = rejection("r", InvalidCommandError("x" * 5000, "put", "i" * 5000))
    assert len(outcome.reason or "") == MAX_REASON_CHARS and len(outcome.id or "") == MAX_ID_CHARS


def test_the_debug_event_names_the_region_the_function_runs_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert region({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-2"}) == "eu-west-1"
    assert region({"AWS_DEFAULT_REGION": "us-east-2"}) == "us-east-2"
    assert region({}) == ""
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    [record] = single_message_event("{}", Settings("t", "q"))["Records"]
    assert record["awsRegion"] == "ap-south-1"
    assert record["eventSourceARN"] == "arn:aws:sqs:ap-south-1::q"
    [given] = single_message_event("{}", Settings("t", "q"), "us-west-2")["Records"]
    assert given["awsRegion"] == "us-west-2"
