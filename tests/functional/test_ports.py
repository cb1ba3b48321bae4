"""devstack/ports.py: every server binds port 0 and reports what it got, or is handed a socket
already bound, or binds a port held for it; a port taken is said plainly. No check-then-bind."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from devstack.emulator import MotoServer
from devstack.faults import FaultProxy
from devstack.ports import PortInUseError, PortReservation, bound_port, listening_socket


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield bound_port(sock)


def test_a_handed_socket_takes_connections_before_its_server_runs() -> None:
    with listening_socket("127.0.0.1") as handed:
        port = bound_port(handed)
        assert port != 0
        # The kernel completes the handshake into the backlog: a client that comes early
        # waits for the server instead of being refused.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_moto_serves_on_the_socket_it_was_handed() -> None:
    server = MotoServer()
    assert server.port == 0
    with server:
        assert server.port != 0
        with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/data.json",
                                    timeout=10) as answer:
            assert answer.status == 200


def test_a_taken_port_is_refused_before_anything_starts(squatter: int) -> None:
    with pytest.raises(PortInUseError, match=f"port {squatter} for the moto server"):
        MotoServer(port=squatter).launch()
    with pytest.raises(PortInUseError, match=f"port {squatter} "):
        PortReservation(port=squatter)


def test_a_reserved_port_is_kept_from_others_and_given_to_its_server() -> None:
    with PortReservation() as reservation:
        with socket.socket() as other, pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", reservation.port))  # a bind without SO_REUSEADDR
        # The program it is for binds with SO_REUSEADDR, as Jetty and HTTPServer do.
        server = HTTPServer(("127.0.0.1", reservation.port), _Hello)
    try:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with urllib.request.urlopen(f"http://127.0.0.1:{reservation.port}/", timeout=10) as got:
            assert got.read() == b"hello"
    finally:
        server.shutdown()
        server.server_close()


def test_the_fault_proxy_reports_the_port_it_got() -> None:
    proxy = FaultProxy("http://127.0.0.1:9")
    assert proxy.port == 0
    with proxy:
        assert proxy.port != 0 and proxy.url == f"http://127.0.0.1:{proxy.port}"
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5):
            pass


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass
