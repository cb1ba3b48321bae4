"""devstack/moto_server.py keeps HTTP/1.1 connections alive, as SQS and DynamoDB do; moto's own
server (Werkzeug's development server) closes every one, so each call paid a new connection."""

from __future__ import annotations

import http.client

import pytest

from bench.queue_depth import StockMotoServer
from devstack.emulator import MotoServer, free_port

LIST_QUEUES = "Action=ListQueues&Version=2012-11-05"


def two_calls_on_one_connection(server: MotoServer) -> tuple[bool, list[str | None]]:
    """Whether the second call went over the first call's socket, and each answer's
    Connection header."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    # moto routes a request by the service its credential scope names (S3 without one).
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-west-2/sqs/"
                                "aws4_request, SignedHeaders=host, Signature=0"}
    try:
        answers: list[str | None] = []
        sockets = []
        for _ in range(2):
            connection.request("POST", "/", body=LIST_QUEUES, headers=headers)
            sockets.append(connection.sock)
            response = connection.getresponse()
            assert response.status == 200 and b"ListQueuesResponse" in response.read()
            answers.append(response.getheader("Connection"))
        return sockets[0] is sockets[1], answers
    finally:
        connection.close()


@pytest.mark.parametrize(("kind", "reused"), [(MotoServer, True), (StockMotoServer, False)],
                         ids=["devstack", "stock"])
def test_a_connection_serves_more_than_one_call(kind: type[MotoServer], reused: bool) -> None:
    with kind(port=free_port()) as server:
        same_socket, answers = two_calls_on_one_connection(server)
    assert same_socket is reused
    assert answers == ([None, None] if reused else ["close", "close"])
