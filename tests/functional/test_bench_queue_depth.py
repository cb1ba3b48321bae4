"""bench.queue_depth against both servers, small; and the patched server, like the stock one,
hands out every message of a backlog once and then nothing."""

from __future__ import annotations

import boto3
import pytest

from bench import queue_depth
from devstack.emulator import MotoServer, free_port
from tests.conftest import REGION


def test_both_servers_are_measured_at_each_depth(capsys: pytest.CaptureFixture[str]) -> None:
    assert queue_depth.main(["--depths", "0,30", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    for server in ("stock moto_server", "devstack/moto_server.py"):
        assert out.count(f"| {server}") == 2, out


@pytest.mark.parametrize("kind", [queue_depth.StockMotoServer, MotoServer])
def test_a_backlog_is_received_whole_once(kind: type[MotoServer]) -> None:
    with kind(port=free_port()) as server:
        sqs = boto3.client("sqs", endpoint_url=server.endpoint_url, region_name=REGION)
        url = sqs.create_queue(QueueName="backlog")["QueueUrl"]
        for start in range(0, 60, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "MessageBody": f"m{start + n}"} for n in range(10)])
        seen: list[str] = []
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                         VisibilityTimeout=30).get("Messages", []):
            seen += [m["Body"] for m in got]
        assert sorted(seen) == sorted(f"m{n}" for n in range(60))
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "60"
