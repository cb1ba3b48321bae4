"""FIFO mode end to end: `python -m devstack --fifo` (`make run FIFO=1`), over HTTP only.

The gateway renders infra's FIFO request template (MessageGroupId = the item id, encoded and cut
to 128 characters; MessageDeduplicationId = the requestId) into a FIFO queue; the consumer gets
an item's requests in the order they were sent and judges conditions in that order.
"""

from __future__ import annotations

import pytest

from chalicelib.clients import MAX_ATTEMPTS
from devstack.faults import Fault
from devstack.resources import DEFAULT_QUEUE, fifo_name
from tests.e2e.conftest import PipelineProcess, start_pipeline, unique

pytestmark = pytest.mark.e2e

# Over 128 characters once URL-encoded: its group id is cut (still one group for the item).
LONG_ID = "ü😀 & % + / ? " * 12


@pytest.fixture(scope="module")
def fifo_pipeline(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> PipelineProcess:
    return start_pipeline(request, tmp_path_factory, "fifo", "--fifo")


def test_the_pipeline_runs_on_a_fifo_queue(fifo_pipeline: PipelineProcess) -> None:
    sqs = fifo_pipeline.sqs()
    url = sqs.get_queue_url(QueueName=fifo_name(DEFAULT_QUEUE))["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true"
    assert fifo_name(DEFAULT_QUEUE) in fifo_pipeline.log()  # the banner names it


def test_an_items_requests_apply_in_the_order_they_were_sent(
        fifo_pipeline: PipelineProcess) -> None:
    """A create and updates chained by expectedVersion, posted back to back for two items: out
    of order, a later update would be rejected (FIFO mode does not wait for earlier ones)."""
    items = [unique(LONG_ID), unique("plain")]
    request_ids: list[str] = []
    for number in range(4):
        for item_id in items:
            command = ({"operation": "create", "id": item_id, "item": {"n": 0}} if number == 0
                       else {"operation": "update", "id": item_id, "item": {"n": number},
                             "expectedVersion": number})
            request_ids.append(fifo_pipeline.submit(command))
    assert [fifo_pipeline.outcome(r)["status"] for r in request_ids] == ["applied"] * 8
    for item_id in items:
        assert fifo_pipeline.item(item_id) == (200, {"id": item_id, "version": 4, "n": 3})


def test_a_failed_request_holds_back_its_items_later_ones(
        fifo_pipeline: PipelineProcess) -> None:
    """The second update fails once (a transient DynamoDB error): the third, sent right after,
    is applied only after it, on SQS's redelivery."""
    item_id = unique("held")
    fault = fifo_pipeline.proxy.add(Fault('"fail-once"', times=MAX_ATTEMPTS))
    first = fifo_pipeline.submit({"operation": "create", "id": item_id, "item": {"n": 1}})
    failing = fifo_pipeline.submit({"operation": "update", "id": item_id,
                                    "item": {"n": "fail-once"}, "expectedVersion": 1})
    last = fifo_pipeline.submit({"operation": "update", "id": item_id, "item": {"n": 3},
                                 "expectedVersion": 2})
    assert [fifo_pipeline.outcome(r)["status"] for r in (first, failing, last)] == [
        "applied"] * 3
    assert fault.injected == MAX_ATTEMPTS
    assert fifo_pipeline.item(item_id) == (200, {"id": item_id, "version": 3, "n": 3})


def test_a_client_retry_is_a_new_request(fifo_pipeline: PipelineProcess) -> None:
    """SQS deduplicates by our requestId, which API Gateway makes per request: the same body
    posted twice, even with one client-chosen x-amzn-RequestId, is two requests."""
    item_id = unique("retry")
    header = {"x-amzn-RequestId": "11111111-2222-4333-8444-5555555555ab"}
    body = '{"operation": "put", "id": "%s", "item": {"n": 1}}' % item_id
    answers = [fifo_pipeline.post(body, headers=header) for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202]
    request_ids = {a.json()["requestId"] for a in answers}
    assert len(request_ids) == 2
    assert {fifo_pipeline.outcome(r)["status"] for r in request_ids} == {"applied"}
    assert fifo_pipeline.item(item_id) == (200, {"id": item_id, "version": 2, "n": 1})
