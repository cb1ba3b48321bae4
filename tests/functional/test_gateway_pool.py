"""The local gateway's connections to a loopback emulator: as many concurrent sends as client
connections (the load tool holds up to 64) are each kept for reuse, with no "pool is full"
warning and no reconnecting. A stand-in SQS on loopback holds every send until all of them are in
flight, so that the overlap is certain rather than a matter of timing."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devstack.infra import InfraTemplate
from devstack.ingest import Ingest
from tests.conftest import REGION

SENDS = 40  # more than a small pool, fewer than the load tool's 64 connections
ANSWER = (b"<SendMessageResponse><SendMessageResult><MessageId>m-1</MessageId>"
          b"<MD5OfMessageBody>0</MD5OfMessageBody></SendMessageResult><ResponseMetadata>"
          b"<RequestId>r-1</RequestId></ResponseMetadata></SendMessageResponse>")


class HeldSqs(ThreadingHTTPServer):
    """Answers SendMessage only once `SENDS` requests are in flight together."""

    daemon_threads = True
    request_queue_size = SENDS  # all connect at once: socketserver's backlog is 5

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HeldSendHandler)
        self.all_in_flight = threading.Barrier(SENDS, timeout=20)
        self.connections: set[tuple[str, int]] = set()
        self.lock = threading.Lock()


class HeldSendHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as SQS
    server: HeldSqs

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.connections.add(self.client_address)
        self.server.all_in_flight.wait()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_concurrent_sends_keep_their_connections(caplog: pytest.LogCaptureFixture) -> None:
    sqs = HeldSqs()
    threading.Thread(target=sqs.serve_forever, daemon=True).start()
    try:
        port = sqs.server_address[1]
        ingest = Ingest(InfraTemplate().gateway_spec(), f"http://127.0.0.1:{port}/local-owner/q",
                        REGION)

        def post(number: int) -> int:
            return ingest.handle({"Content-Type": "application/json", "Host": "localhost"},
                                 f'{{"operation": "delete", "id": "{number}"}}'.encode(),
                                 "/SQSManager").status

        with caplog.at_level(logging.WARNING, logger="urllib3"):
            for round_ in range(2):  # the second round reuses the first one's connections
                sqs.all_in_flight.reset()
                with ThreadPoolExecutor(max_workers=SENDS) as pool:
                    statuses = list(pool.map(post, range(SENDS)))
                assert statuses == [202] * SENDS, f"round {round_}: {statuses}"
        assert not [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
        assert len(sqs.connections) == SENDS, "connections were dropped and opened again"
    finally:
        sqs.shutdown()
        sqs.server_close()
