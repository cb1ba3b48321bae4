"""End to end through `python -m devstack`: POST -> API Gateway -> SQS -> Lambda -> DynamoDB -> GET.

Every request goes over HTTP to the pipeline process, as a client of the deployed API would.
"""

from __future__ import annotations

import decimal
import json
import re
import time
from typing import Any

import pytest

from devstack.faults import THROTTLE, Fault
from devstack.resources import DEFAULT_DLQ, DEFAULT_QUEUE
from devstack.vtl import dumps_compact
from tests.bad_requests import BAD_REQUESTS
from tests.conftest import FEW_RECEIVES
from tests.e2e.conftest import PipelineProcess, unique

pytestmark = [pytest.mark.e2e, pytest.mark.both_stores]

AWKWARD = "& + % = ? # ü 😀 \" ' \\ \n\t end"


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": AWKWARD}
    for level in range(depth):
        value = {f"level{level}": value, "list": [level, str(level)]}
    return value


def stored(pipeline: PipelineProcess, item_id: str) -> dict[str, Any]:
    status, body = pipeline.item(item_id)
    assert status == 200, body
    assert body["id"] == item_id
    return {k: v for k, v in body.items() if k not in ("id", "version")}


ITEMS: dict[str, Any] = {
    "awkward text": {"text": AWKWARD, f"key {AWKWARD}": AWKWARD, "empty": "", "list": [AWKWARD]},
    "deep nesting": nested(25),
    "exact numbers": {"tenth": decimal.Decimal("0.1"), "big": 12345678901234567890,
                      "negative": decimal.Decimal("-2.5"), "zero": 0,
                      "list": [decimal.Decimal("0.1"), 12345678901234567890]},
    "mixed types": {"t": True, "f": False, "none": None, "map": {}, "nested": [[], [{}]]},
}


def test_commands_round_trip_exactly(pipeline: PipelineProcess) -> None:
    sent: dict[str, tuple[str, str]] = {}
    for name, item in ITEMS.items():
        item_id = unique(f"rt {AWKWARD[:12]}")  # ids with & + % = ? # and a space, too
        # dumps_compact writes Decimals as written (0.1 stays 0.1), unlike json.dumps.
        response = pipeline.post(dumps_compact({"operation": "create", "id": item_id,
                                                "item": item}))
        assert response.status_code == 202, response.text
        sent[name] = (response.json()["requestId"], item_id)
    for name, (request_id, item_id) in sent.items():
        outcome = pipeline.outcome(request_id)
        assert outcome["status"] == "applied", (name, outcome)
        assert stored(pipeline, item_id) == ITEMS[name], name
        # The request's trail: the gateway's lines, the handler's own JSON line (its outcome),
        # then the poller's (it deleted the message).
        for step in ("received", "enqueued", "handled"):
            pipeline.wait_for_log(f"[{request_id}] {step}", timeout=10)
        assert [line["message"] for line in consumer_log(pipeline)
                if line["requestId"] == request_id] == ["applied"], name


def test_exact_numbers_survive_from_the_raw_body(pipeline: PipelineProcess) -> None:
    item_id = unique("numbers")
    raw = ('{"operation": "put", "id": "%s", "item": {"a": 0.1, "b": 12345678901234567890, '
           '"c": [0.30000000000000004, 1E+2]}}' % item_id)
    response = pipeline.post(raw)
    assert response.status_code == 202, response.text
    assert pipeline.outcome(response.json()["requestId"])["status"] == "applied"
    assert stored(pipeline, item_id) == json.loads(
        '{"a": 0.1, "b": 12345678901234567890, "c": [0.30000000000000004, 1E+2]}',
        parse_float=decimal.Decimal)


def test_200_kb_item_is_stored_whole(pipeline: PipelineProcess) -> None:
    item_id = unique("big")
    blob = ("0123456789abcdef" * 12800)[:200 * 1024]
    request_id = pipeline.submit({"operation": "create", "id": item_id, "item": {"blob": blob}})
    assert pipeline.outcome(request_id)["status"] == "applied"
    assert stored(pipeline, item_id) == {"blob": blob}


def test_what_the_gateway_accepts_but_dynamodb_cannot_store_ends_rejected(
        pipeline: PipelineProcess) -> None:
    """Valid JSON that is no storable command ends `rejected` with a reason: never retried into
    the DLQ, never left `pending`."""
    cases = {
        '{"operation": "put", "id": "%s", "item": {"s": "\\ud83d"}}': "lone UTF-16 surrogate",
        '{"operation": "put", "id": "%s", "item": {"d": %s1%s}}' % (
            "%s", "[" * 31, "]" * 31): "nested deeper than 30",
    }
    for body, reason in cases.items():
        response = pipeline.post(body % unique("unstorable"))
        assert response.status_code == 202, response.text
        outcome = pipeline.outcome(response.json()["requestId"])
        assert outcome["status"] == "rejected", outcome
        assert reason in outcome["reason"]


def test_fits_the_queue_but_not_dynamodb_is_rejected_with_a_size_reason(
        pipeline: PipelineProcess) -> None:
    item_id = unique("too-big")
    blob = "x" * (600 * 1024)
    request_id = pipeline.submit({"operation": "create", "id": item_id, "item": {"blob": blob}})
    outcome = pipeline.outcome(request_id)
    assert outcome["status"] == "rejected"
    assert "400 KB" in outcome["reason"] and "item size limit" in outcome["reason"]
    assert pipeline.item(item_id)[0] == 404


def test_over_the_queue_limit_is_413_json(pipeline: PipelineProcess) -> None:
    for size in (1024 * 1024 + 1, 2 * 1024 * 1024):
        body = json.dumps({"operation": "create", "id": unique("huge"),
                           "item": {"blob": "x" * size}})
        response = pipeline.post(body)
        assert response.status_code == 413, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert "shorter than" in response.json()["message"]


@pytest.mark.parametrize(("body", "content_type", "status"), BAD_REQUESTS)
def test_gateway_rejects_bad_requests_with_json(pipeline: PipelineProcess, body: str,
                                                content_type: str, status: int) -> None:
    response = pipeline.post(body, content_type)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["message"], str)


def test_a_client_chosen_request_id_cannot_pass_for_a_redelivery(
        pipeline: PipelineProcess) -> None:
    # API Gateway makes a UUID in x-amzn-RequestId the request's $context.requestId; the
    # product identifies requests by extendedRequestId, so both requests are applied.
    chosen = {"x-amzn-RequestId": "0f8e6c1a-1d2b-4c3d-9e4f-a5b6c7d8e9f0"}
    ids = [unique("chosen-a"), unique("chosen-b")]
    answers = [pipeline.post(json.dumps({"operation": "create", "id": item_id, "item": {"n": n}}),
                             headers=chosen) for n, item_id in enumerate(ids)]
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert {a.headers["x-amzn-RequestId"] for a in answers} == {chosen["x-amzn-RequestId"]}
    request_ids = [a.json()["requestId"] for a in answers]
    assert len(set(request_ids)) == 2
    for n, (request_id, item_id) in enumerate(zip(request_ids, ids, strict=True)):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", request_id)  # goes into URLs as it is
        outcome = pipeline.outcome(request_id)
        assert (outcome["status"], outcome["id"]) == ("applied", item_id)
        assert stored(pipeline, item_id) == {"n": n}


@pytest.mark.parametrize("item_id", ["a b/c%d+e ü😀", "x%2541", "+", "/", "%"])
def test_ids_needing_percent_encoding_read_back_by_path(pipeline: PipelineProcess,
                                                        item_id: str) -> None:
    item_id = f"{item_id} {unique('enc')}"
    request_id = pipeline.submit({"operation": "create", "id": item_id, "item": {"v": item_id}})
    assert pipeline.outcome(request_id)["status"] == "applied"
    # pipeline.item() sends GET /items/{quote(item_id, safe="")}: "/" as %2F, "+" as %2B.
    assert stored(pipeline, item_id) == {"v": item_id}


def test_transient_failure_is_retried_then_applied(pipeline: PipelineProcess) -> None:
    item_id = unique("flaky")
    fault = pipeline.proxy.add(Fault(item_id, THROTTLE, times=None))
    try:
        request_id = pipeline.submit({"operation": "create", "id": item_id, "item": {"n": 1}})
        # Throttled on every attempt of the first invocation: reported, so SQS redelivers it.
        pipeline.wait_for_log(f"[{request_id}] retried")
        assert fault.injected >= 1
    finally:
        pipeline.proxy.remove(fault)
    outcome = pipeline.outcome(request_id, timeout=20)
    assert outcome["status"] == "applied"
    assert stored(pipeline, item_id) == {"n": 1}


@pytest.mark.queue_behaviour  # the DLQ is SQS's: once, on moto
def test_a_message_failing_every_time_ends_in_the_dlq_others_unaffected(
        pipeline: PipelineProcess) -> None:
    poison_id = unique("poison")
    fault = pipeline.proxy.add(Fault(poison_id, THROTTLE, times=None))
    sqs = pipeline.sqs()
    dlq_url = sqs.get_queue_url(QueueName=DEFAULT_DLQ)["QueueUrl"]
    queue_url = sqs.get_queue_url(QueueName=DEFAULT_QUEUE)["QueueUrl"]
    # What happens at maxReceiveCount, sooner: infra's 30 receives, paced by the consumer
    # (chalicelib/retries.py), take about 17 minutes. Put back afterwards: the pipeline is shared.
    redrive_policy = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(
        {**json.loads(redrive_policy), "maxReceiveCount": FEW_RECEIVES})})
    try:
        poison = pipeline.submit({"operation": "create", "id": poison_id, "item": {"p": 1}})
        good = [pipeline.submit({"operation": "create", "id": unique("good"), "item": {"g": i}})
                for i in range(2)]
        for request_id in good:
            assert pipeline.outcome(request_id)["status"] == "applied"
        found = None
        deadline = time.monotonic() + 60
        while found is None and time.monotonic() < deadline:
            messages = sqs.receive_message(
                QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                VisibilityTimeout=0, MessageAttributeNames=["All"]).get("Messages", [])
            found = next((m for m in messages if poison_id in m["Body"]), None)
        assert found is not None, pipeline.log()[-3000:]
        assert found["MessageAttributes"]["requestId"]["StringValue"] == poison
        assert json.loads(found["Body"])["id"] == poison_id
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": redrive_policy})
        pipeline.proxy.remove(fault)
    # Never applied, never recorded: still pending.
    response = pipeline.http.get(f"{pipeline.base_url}/requests/{poison}", timeout=10)
    assert response.status_code == 404 and response.json()["status"] == "pending"


def test_without_report_batch_item_failures_no_failed_message_is_lost(
        safe_mode_pipeline: PipelineProcess) -> None:
    pipeline = safe_mode_pipeline
    flaky_id = unique("safe-flaky")
    fault = pipeline.proxy.add(Fault(flaky_id, THROTTLE, times=None))
    try:
        # Sent together, so they share a batch (1 s batching window) with the failing one.
        first = pipeline.submit({"operation": "create", "id": unique("safe-a"), "item": {}})
        flaky = pipeline.submit({"operation": "create", "id": flaky_id, "item": {"f": 1}})
        last = pipeline.submit({"operation": "create", "id": unique("safe-b"), "item": {}})
        for request_id in (first, last):
            assert pipeline.outcome(request_id)["status"] == "applied"
        pipeline.wait_for_log(f"[{flaky}] retried")
        # The handler raised (Lambda deletes nothing) for a batch the failure shared with others.
        assert re.search(r"BatchRetryError: 1 of [23] messages failed", pipeline.log())
    finally:
        pipeline.proxy.remove(fault)
    assert pipeline.outcome(flaky, timeout=20)["status"] == "applied"
    assert stored(pipeline, flaky_id) == {"f": 1}
    # The handler deleted the successes itself: none of them came back as a duplicate.
    for request_id in (first, last):
        handled = [line for line in consumer_log(pipeline) if line["requestId"] == request_id]
        assert [(line["message"], line["duplicate"]) for line in handled] == [("applied", False)]


def consumer_log(pipeline: PipelineProcess) -> list[dict[str, Any]]:
    """The consumer's JSON log lines (chalicelib.logs) in the pipeline's output."""
    lines = []
    for text in pipeline.log().splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line.get("logger") == "sqs_manager.batch":
                lines.append(line)
    return lines
