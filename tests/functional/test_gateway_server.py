"""The local gateway's server: clients that connect at once are queued by the kernel until the
accept loop takes them, not dropped (a dropped SYN costs a client a 1 s retransmit; there the
server is bound but not serving, so every connection waits in the backlog), and a client that
hangs up before its answer is one log line, not a traceback."""

from __future__ import annotations

import logging
import socket
import struct
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler

import pytest
from chalice.local import ThreadedHTTPServer

from devstack.gateway import GatewayHTTPServer
from tests.waiting import wait_until

CLIENTS = 20  # more than socketserver's default backlog of 5


def connected_while_not_accepting(server_cls: type[ThreadedHTTPServer]) -> int:
    server = server_cls(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        with ExitStack() as sockets:
            done = 0
            for _ in range(CLIENTS):
                client = sockets.enter_context(socket.socket())
                client.settimeout(0.3)
                try:
                    client.connect(server.server_address)
                except TimeoutError:
                    continue
                done += 1
            return done
    finally:
        server.server_close()


def test_clients_connecting_at_once_are_all_queued() -> None:
    assert connected_while_not_accepting(GatewayHTTPServer) == CLIENTS


def test_chalices_own_server_would_drop_them() -> None:
    # What the backlog fixes; if this starts to fail, the kernel queues more than it is asked to.
    assert connected_while_not_accepting(ThreadedHTTPServer) < CLIENTS


class AnswersWhenToldTo(BaseHTTPRequestHandler):
    """Answers a GET with a body too large for the socket's buffers, once `go` is set; raises
    ValueError for any other method."""

    go = threading.Event()

    def do_GET(self) -> None:
        self.go.wait(5)
        self.send_response(200)
        self.send_header("Content-Length", str(BIG))
        self.end_headers()
        self.wfile.write(b"x" * BIG)

    def do_DELETE(self) -> None:
        raise ValueError("a fault of the server's own")

    def log_message(self, format: str, *args: object) -> None:
        pass


BIG = 8 * 1024 * 1024


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[GatewayHTTPServer, threading.Thread]:
    server = GatewayHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def test_a_client_that_hangs_up_early_is_one_log_line_not_a_traceback(
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devstack.gateway")
    AnswersWhenToldTo.go.clear()
    server, thread = serve(AnswersWhenToldTo)
    try:
        client = socket.create_connection(server.server_address)
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        # As a client that timed out: gone, with a reset, before the answer is written.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        AnswersWhenToldTo.go.set()
        wait_until(lambda: "closed the connection" in caplog.text, 10, interval=0.02)
        assert "closed the connection before its answer was written" in caplog.text
        # It goes on serving.
        with socket.create_connection(server.server_address) as again:
            again.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert again.recv(12) == b"HTTP/1.0 200"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert "Traceback" not in capfd.readouterr().err


def test_any_other_error_is_still_reported_with_its_traceback(
        capfd: pytest.CaptureFixture[str]) -> None:
    server, thread = serve(AnswersWhenToldTo)
    try:
        with socket.create_connection(server.server_address) as client:
            client.sendall(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n")
            client.settimeout(5)
            assert client.recv(1) == b""  # the handler died: the server closed the connection
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    err = capfd.readouterr().err
    assert "Traceback" in err and "ValueError: a fault of the server's own" in err
