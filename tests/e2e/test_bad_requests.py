"""Thousands of bad POST /SQSManager requests against the pipeline process: none answered 5xx,
every error JSON {"message": str}, and nothing the contract refuses ever reaches the queue.

The pipeline runs with no consumer (`--no-consumer`), so every message the gateway enqueues is
still in the queue afterwards: the queue must hold exactly the requests answered 202 (a few
valid control requests among them, so the check is seen to catch enqueued messages), and none
of them may be one the contract refuses (tests/bad_request_judge.py judges that on its own).

Full size (not in `make test`): BAD_REQUESTS=50000 .venv/bin/python -m pytest \
    tests/e2e/test_bad_requests.py
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.process import DevstackProcess
from devstack.resources import DEFAULT_QUEUE
from tests.bad_request_generator import generate
from tests.bad_request_judge import API_GATEWAY_PAYLOAD_LIMIT, BAD, VALID, Request, contract_verdict
from tests.conftest import REGION
from tests.e2e.report import report

BAD_REQUEST_COUNT = int(os.environ.get("BAD_REQUESTS", "5000"))
SEED = int(os.environ.get("BAD_REQUESTS_SEED", "20261127"))
CONTROLS = [b'{"operation": "create", "id": "control-1", "item": {"a": 1}}',
            b'{"operation": "delete", "id": "control-2"}',
            b'{"operation": "read", "id": "control-3"}']


@pytest.fixture(scope="module")
def idle_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevstackProcess]:
    process = DevstackProcess(tmp_path_factory.mktemp("idle") / "pipeline.log", "--no-consumer")
    process.start(timeout=60)
    yield process
    process.stop()


def _sqs(process: DevstackProcess) -> Any:
    return boto3.client("sqs", endpoint_url=process.endpoint_url, region_name=REGION,
                        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def drain(process: DevstackProcess) -> list[tuple[str, str]]:
    """(requestId attribute, body) of every message in the queue, taking them out."""
    sqs = _sqs(process)
    url = sqs.get_queue_url(QueueName=DEFAULT_QUEUE)["QueueUrl"]
    found: list[tuple[str, str]] = []
    empty_receives = 0
    while empty_receives < 2:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=600,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        empty_receives = 0 if messages else empty_receives + 1
        for message in messages:
            request_id = message["MessageAttributes"]["requestId"]["StringValue"]
            found.append((request_id, message["Body"]))
        if messages:  # moto's SQS slows down with depth: keep the queue short as we go
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)])
    return found


def error_message(response: requests.Response) -> str | None:
    """The `message` of a JSON {"message": str} body, else None."""
    try:
        body = response.json()
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else None


# About 5 ms a request here, and moto's queue slows as the accepted ones pile up.
@pytest.mark.timeout(120 + BAD_REQUEST_COUNT // 50)
@pytest.mark.long
def test_bad_requests_get_json_4xx_and_are_never_enqueued(
        idle_pipeline: DevstackProcess, request: pytest.FixtureRequest) -> None:
    assert drain(idle_pipeline) == []
    url = f"{idle_pipeline.base_url}/SQSManager"
    accepted: dict[str, bytes] = {}  # requestId -> body, for every 202
    problems: list[str] = []
    verdicts: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    session = requests.Session()
    cases = itertools.chain(((Request("control", body), VALID) for body in CONTROLS),
                            generate(BAD_REQUEST_COUNT, SEED))
    started = time.monotonic()
    for case, verdict in cases:
        try:
            response = session.post(url + case.query, data=case.body, headers=case.headers(),
                                    timeout=60)
        except requests.ConnectionError as error:  # a dropped connection is a bug too
            problems.append(f"{case.kind}: connection lost ({error}): {case.body[:120]!r}")
            session = requests.Session()
            continue
        verdicts[verdict] += 1
        statuses[response.status_code] += 1
        kinds[case.kind] += verdict == BAD
        status = response.status_code
        if status == 202:
            accepted[response.json()["requestId"]] = case.body
        elif error_message(response) is None:
            problems.append(f"{case.kind}: {status} without a JSON message: {response.text[:200]}")
        too_large = len(case.body) > API_GATEWAY_PAYLOAD_LIMIT
        if status >= 500 or (verdict == BAD and not 400 <= status < 500) or (
                too_large and status != 413):
            problems.append(f"{case.kind} ({verdict}) -> {status} {response.text[:200]}: "
                            f"{case.body[:160]!r} Content-Type {case.content_type!r}")
    elapsed = time.monotonic() - started
    sent = sum(verdicts.values())
    report(request.config,
           f"\nbad requests: {sent} sent ({dict(verdicts)}) in {elapsed:.1f} s "
           f"({1000 * elapsed / max(sent, 1):.1f} ms each); statuses "
           f"{dict(sorted(statuses.items()))}; bad by kind {dict(kinds)}")
    queued = drain(idle_pipeline)
    invalid = [body for _, body in queued
               if contract_verdict(Request("queued", body.encode("utf-8"))) == BAD]
    # Queued but not answered 202, or queued as something else than what was sent.
    unexpected = [(request_id, body) for request_id, body in queued
                  if accepted.get(request_id) != body.encode("utf-8")]
    report(request.config,
           f"queued after the run: {len(queued)} messages, {len(accepted)} answered 202 (of "
           f"them {len(CONTROLS)} controls), {len(invalid)} invalid, {len(unexpected)} not "
           f"answered 202")
    assert verdicts[BAD] >= BAD_REQUEST_COUNT
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:20])
    assert invalid == [], f"{len(invalid)} invalid messages queued: {invalid[:5]}"
    assert unexpected == [], f"{len(unexpected)} unexpected messages: {unexpected[:5]}"
    assert len(queued) == len(accepted)


def _raw_exchange(process: DevstackProcess, data: bytes) -> list[tuple[bytes, bytes]]:
    """Send raw bytes on one connection; (status line, body) of every answer until it closes."""
    with socket.create_connection(("127.0.0.1", process.port), timeout=30) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        stream = connection.makefile("rb")
        answers = []
        while status := stream.readline():
            headers = {}
            while (line := stream.readline().strip()):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = stream.read(int(headers.get("content-length", "0")))
            answers.append((status.strip(), body))
        return answers


def _post(headers: str, body: bytes) -> bytes:
    return (b"POST /SQSManager HTTP/1.1\r\nHost: localhost\r\n"
            + headers.encode("latin-1") + b"\r\n" + body)


NEXT = _post("Content-Type: application/json\r\nContent-Length: 2\r\n", b"[]")


@pytest.mark.parametrize(("headers", "body", "first", "answers"), [
    # Chunked bodies are read (not taken as empty with the chunks left for the next request).
    ("Transfer-Encoding: chunked\r\n", b"a\r\n{\"id\": \"x\"\r\n1\r\n}\r\n0\r\n\r\n", 400, 2),
    ("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n", 400, 1),
    # A Content-Length that frames nothing: 400 and the connection closed.
    ("Content-Length: -5\r\n", b"{}[]x", 400, 1),
    ("Content-Length: many\r\n", b"{}", 400, 1),
    # Declared over API Gateway's 10 MB: 413 without waiting for (or reading) all of it.
    ("Content-Length: 99999999999\r\n", b"[" * 1000, 413, 1),
])
def test_broken_http_framing_is_a_json_4xx(idle_pipeline: DevstackProcess, headers: str,
                                           body: bytes, first: int, answers: int) -> None:
    got = _raw_exchange(idle_pipeline, _post(headers, body) + NEXT)
    assert len(got) == answers, got
    status, payload = got[0]
    assert status.split()[1] == str(first).encode(), got
    assert isinstance(json.loads(payload)["message"], str)
    if answers == 2:  # the connection stayed in step: the next request got its own answer
        assert got[1][0].split()[1] == b"400" and b"Invalid request body" in got[1][1]


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO"])
def test_any_method_gets_api_gateways_json_answer(idle_pipeline: DevstackProcess,
                                                  method: str) -> None:
    # Python's HTTP server answered methods it has no handler for with a 501 HTML page.
    response = requests.request(method, f"{idle_pipeline.base_url}/SQSManager", timeout=10)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
