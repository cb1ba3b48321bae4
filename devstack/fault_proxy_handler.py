"""The fault proxy's answer to one request (devstack/faults.py): forwarded to its target
untouched (after the proxy's latency), a fault injected as DynamoDB or EventBridge answers it, a
PutEvents call with some of its entries failed and the others forwarded, or, during an outage,
the connection closed unanswered."""

from __future__ import annotations

import http.client
import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from devstack import eventbridge_faults as eventbridge
from devstack.fault_kinds import (
    CANCELLATION_REASONS,
    DYNAMODB_ANSWERS,
    DYNAMODB_TYPE_PREFIX,
    ENTRIES,
    SERVER_ERROR,
    SERVER_ERROR_AFTER,
    Fault,
)

if TYPE_CHECKING:
    from devstack.faults import FaultProxy

# The proxy's log: its answers are what it does.
LOG = logging.getLogger("devstack.faults")

# How long a request waits for a proxy started without its target (FaultProxy(None)).
TARGET_WAIT_SECONDS = 60.0


def handler_class(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    """The request handler of `proxy`'s HTTP server: a part of the proxy, under its lock."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The status line and headers go in one write, the body in another: with Nagle's
        # algorithm on, the body waits for the client's delayed ACK (about 40 ms on Linux).
        disable_nagle_algorithm = True

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if proxy.down:
                with proxy._lock:
                    proxy.refused += 1
                self.close_connection = True
                return
            fault = proxy._pick(body, self.headers.get("x-amz-target", ""))
            try:
                if fault is None:
                    if proxy.latency_ms > 0:
                        time.sleep(proxy.latency_ms / 1000)
                    self._forward(body)
                    return
                if fault.kind == ENTRIES and eventbridge.entry_count(body):
                    self._fail_entries(body, fault)
                    return
                if fault.kind == SERVER_ERROR_AFTER:
                    self._forward(body, answer=False)
                self._inject(fault)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up first (its read timeout): what it sees is a timeout.
                proxy.client_gone += 1
                self.close_connection = True

        def _inject(self, fault: Fault) -> None:
            content_type = "application/x-amz-json-1.0"
            if eventbridge.is_eventbridge(self.headers.get("x-amz-target", "")):
                status, error_type, message = eventbridge.WHOLE_CALL_ANSWERS.get(
                    fault.kind, eventbridge.WHOLE_CALL_ANSWERS[SERVER_ERROR])
                answer: dict[str, Any] = {"__type": error_type, "message": message}
                content_type = eventbridge.CONTENT_TYPE
            else:
                status, error_type, message = DYNAMODB_ANSWERS[fault.kind]
                answer = {"__type": DYNAMODB_TYPE_PREFIX + error_type, "message": message}
            if fault.kind in CANCELLATION_REASONS:
                answer["CancellationReasons"] = CANCELLATION_REASONS[fault.kind]
            payload = json.dumps(answer).encode()
            # Random faults are many: counted (RandomFaults.injected), logged at debug level.
            LOG.log(logging.WARNING if fault.marker else logging.DEBUG,
                    "injected %s (%d/%s) for marker %r", error_type, fault.injected,
                    fault.times if fault.times is not None else "always", fault.marker)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("x-amzn-ErrorType", error_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _fail_entries(self, body: bytes, fault: Fault) -> None:
            """PutEvents: some entries fail, the others go to the bus (one answer)."""
            count = eventbridge.entry_count(body)
            with proxy._lock:
                failing = (proxy.random.entries_to_fail(count)
                           if proxy.random is not None and not fault.marker
                           else dict.fromkeys(range(count), 0))
            forwarded = None
            if len(failing) < count:
                # A changed body: its signature no longer matches (moto does not check).
                status, headers, payload = self._exchange(
                    eventbridge.without_entries(body, set(failing)))
                if status != 200:
                    self._reply(status, headers, payload)
                    return
                forwarded = payload
            self._reply(200, [("Content-Type", eventbridge.CONTENT_TYPE)],
                        eventbridge.merged_answer(count, failing, forwarded))

        def _forward(self, body: bytes, answer: bool = True) -> None:
            status, headers, payload = self._exchange(body)
            if answer:
                self._reply(status, headers, payload)

        def _exchange(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            if not proxy._target_known.wait(TARGET_WAIT_SECONDS):
                return 502, [], b"the fault proxy was never given its target"
            connection = http.client.HTTPConnection(proxy.target.hostname or "127.0.0.1",
                                                    proxy.target.port or 80, timeout=60)
            try:
                # Headers (Host included) go through unchanged: the signature stays valid.
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() != "content-length"}
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                proxy._count(self.headers.get("x-amz-target", ""))
                return response.status, response.getheaders(), payload
            finally:
                connection.close()

        def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "transfer-encoding",
                                        "connection", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug(format, *args)

    return Handler
