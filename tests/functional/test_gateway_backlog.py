"""The local gateway's listen backlog: clients that connect at once are queued by the kernel
until the accept loop takes them, not dropped (a dropped SYN costs a client a 1 s retransmit).
The server is bound but not serving, so every connection waits in the backlog."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler

from chalice.local import ThreadedHTTPServer

from devstack.gateway import GatewayHTTPServer

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
