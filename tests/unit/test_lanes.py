"""A batch's lanes (chalicelib/lanes.py), without I/O."""

from __future__ import annotations

from typing import Any

from chalicelib.commands import Command
from chalicelib.errors import InvalidCommandError
from chalicelib.lanes import is_fifo, lanes


def test_a_batch_is_split_into_one_lane_per_item_in_request_order() -> None:
    def record(message_id: str, body: str, epoch: int) -> dict[str, Any]:
        return {"messageId": message_id, "body": body, "attributes": {}, "messageAttributes": {
            "requestId": {"stringValue": message_id, "dataType": "String"},
            "requestTimeEpoch": {"stringValue": str(epoch), "dataType": "Number"}}}

    records = [record("a2", '{"operation": "delete", "id": "a"}', 2),
               record("b1", '{"operation": "delete", "id": "b"}', 1),
               record("bad", "not json", 0),
               record("a1", '{"operation": "delete", "id": "a"}', 1),
               record("bad2", '{"operation": "zap", "id": "a"}', 0)]
    found = lanes(records)
    assert [[entry[0]["messageId"] for entry in lane] for lane in found] == [
        ["a1", "a2"], ["b1"], ["bad"], ["bad2"]]
    # Each message comes with its body as parsed: a command, or why it is none.
    assert isinstance(found[0][0][1], Command)
    assert isinstance(found[2][0][1], InvalidCommandError)
    assert isinstance(found[3][0][1], InvalidCommandError)


def test_from_a_fifo_queue_lanes_are_message_groups_in_sqs_order() -> None:
    def record(message_id: str, group: str, epoch: int) -> dict[str, Any]:
        return {"messageId": message_id, "body": '{"operation": "delete", "id": "%s"}' % group,
                "eventSourceARN": "arn:aws:sqs:us-west-2::q.fifo",
                "attributes": {"MessageGroupId": group}, "messageAttributes": {
                    "requestTimeEpoch": {"stringValue": str(epoch), "dataType": "Number"}}}

    # SQS's order within a group wins over requestTimeEpoch there.
    records = [record("a-first", "a", 9), record("b", "b", 1), record("a-second", "a", 2)]
    lanes_found = [[entry[0]["messageId"] for entry in lane] for lane in lanes(records)]
    assert lanes_found == [["a-first", "a-second"], ["b"]]
    assert is_fifo(records[0])
    assert not is_fifo({"eventSourceARN": "arn:aws:sqs:us-west-2::q"})


def test_a_record_without_a_body_is_a_lane_of_its_own() -> None:
    found = lanes([{"messageId": "m"}, {"messageId": "n", "body": None}])
    assert [len(lane) for lane in found] == [1, 1]
    assert isinstance(found[0][0][1], KeyError) and isinstance(found[1][0][1], TypeError)
