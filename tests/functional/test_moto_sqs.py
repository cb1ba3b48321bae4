"""devstack/moto_patches/sqs_depth.py's SQS speed patches answer as stock moto does: the same
script of sends and batch deletes (current, stale, repeated and unknown receipt handles; FIFO
rules and deduplication) gives the same answers from both servers, over HTTP; and the queue
attributes a send reads are moto's own, less the counts that walk the queue."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

from devstack.emulator import MOTO_SERVER, MotoServer
from tests.conftest import REGION
from tests.stock_moto import StockMotoServer


def error_code(call: Any, **kwargs: Any) -> str | None:
    try:
        call(**kwargs)
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


def failures(response: dict[str, Any]) -> list[tuple[str, str, bool, str]]:
    return sorted((f["Id"], f["Code"], f["SenderFault"], f["Message"])
                  for f in response.get("Failed", []))


def run_script(endpoint_url: str) -> dict[str, Any]:
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=REGION)
    seen: dict[str, Any] = {}
    url = sqs.create_queue(QueueName="plain")["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    # Each message received twice: a first (stale) receipt handle, then a current one.
    first: dict[str, str] = {}
    current: dict[str, str] = {}
    for handles, timeout in ((first, 0), (current, 60)):
        while len(handles) < 5:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               VisibilityTimeout=timeout).get("Messages", []):
                handles.setdefault(message["Body"], message["ReceiptHandle"])
    batch = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "current", "ReceiptHandle": current["m0"]},
        {"Id": "stale", "ReceiptHandle": first["m1"]},
        {"Id": "same-message", "ReceiptHandle": first["m0"]},
        {"Id": "unknown", "ReceiptHandle": "not-a-handle"}])
    seen["batch"] = (sorted(e["Id"] for e in batch.get("Successful", [])), failures(batch))
    again = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "deleted-before", "ReceiptHandle": current["m0"]},
        {"Id": "live", "ReceiptHandle": current["m2"]}])
    seen["again"] = (sorted(e["Id"] for e in again.get("Successful", [])), failures(again))
    seen["single unknown"] = error_code(sqs.delete_message, QueueUrl=url,
                                        ReceiptHandle="not-a-handle")
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    seen["counts"] = {k: v for k, v in counts.items() if k.startswith("ApproximateNumber")}

    dedup = sqs.create_queue(QueueName="dedup.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=dedup, MessageBody="same", MessageGroupId="g")
    seen["fifo no group"] = error_code(sqs.send_message, QueueUrl=dedup, MessageBody="x")
    explicit = sqs.create_queue(QueueName="explicit.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "false"})["QueueUrl"]
    seen["fifo no dedup id"] = error_code(sqs.send_message, QueueUrl=explicit, MessageBody="x",
                                          MessageGroupId="g")
    seen["fifo delay"] = error_code(sqs.send_message, QueueUrl=explicit, MessageBody="x",
                                    MessageGroupId="g", MessageDeduplicationId="d",
                                    DelaySeconds=5)
    for _ in range(2):
        sqs.send_message(QueueUrl=explicit, MessageBody="y", MessageGroupId="g",
                         MessageDeduplicationId="d1")
    seen["too big"] = error_code(sqs.send_message, QueueUrl=url, MessageBody="x" * 262_145)
    for name, queue_url in (("dedup", dedup), ("explicit", explicit)):
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url,
                                              AttributeNames=["ApproximateNumberOfMessages"])
        seen[f"{name} depth"] = attributes["Attributes"]["ApproximateNumberOfMessages"]
    return seen


def test_the_patched_server_answers_as_stock_moto() -> None:
    answers = []
    for kind in (StockMotoServer, MotoServer):
        with kind() as server:
            answers.append(run_script(server.endpoint_url))
    stock, patched = answers
    assert patched == stock
    # And what they agree on is SQS's answer.
    assert patched["batch"][0] == ["current", "same-message", "stale"]
    assert [f[:3] for f in patched["batch"][1]] == [("unknown", "ReceiptHandleIsInvalid", True)]
    assert patched["again"] == (["deleted-before", "live"], [])
    assert patched["counts"]["ApproximateNumberOfMessagesNotVisible"] == "2"  # m3 and m4
    assert patched["fifo no group"] == "MissingParameter"
    assert patched["fifo no dedup id"] == patched["fifo delay"] == "InvalidParameterValue"
    assert patched["dedup depth"] == patched["explicit depth"] == "1"


COMPARE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("moto_server", sys.argv[1])
server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(server)  # the patches, without starting a server
from devstack.moto_patches import sqs_depth as patched
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT
from moto.sqs.models import sqs_backends
backend = sqs_backends[ACCOUNT]["us-east-1"]
redrive = {"deadLetterTargetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq",
           "maxReceiveCount": "3"}
backend.create_queue("dlq")
queues = [
    backend.create_queue("plain"),
    backend.create_queue("fifo.fifo", FifoQueue="true", ContentBasedDeduplication="true"),
    backend.create_queue("kms", KmsMasterKeyId="alias/x", Policy='{"Version": "2012-10-17"}',
                         RedrivePolicy=json.dumps(redrive)),
]
for queue in queues:
    stock = {k: v for k, v in queue.attributes.items() if k not in patched._COUNTS}
    if patched._attributes_without_counts(queue) != stock:
        print(json.dumps([queue.name, stock, patched._attributes_without_counts(queue)]))
        sys.exit(1)
print("same")
"""


def test_a_sends_attributes_are_motos_less_the_counts() -> None:
    result = subprocess.run([sys.executable, "-c", COMPARE, str(MOTO_SERVER)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "same", (
        result.stdout + result.stderr)
