"""Ports for the servers devstack and the tests start, with no check-then-bind anywhere.

A port that is checked free and bound later can be taken in between: by another test worker's
server, or by any outgoing connection (the kernel gives those ephemeral ports, and the suite
opens thousands). So every server here binds port 0 and reports the port it got, or is handed
a socket already bound:

- our own Python servers (the gateway, the fault proxy, stubs) bind port 0 in-process;
- moto's server runs in a process of its own: `listening_socket` binds and listens here, and
  the process serves on that descriptor (devstack/moto_server.py --fd);
- a program that only takes a port number (DynamoDB Local refuses `-port 0`; `chalice local`
  takes 0 but prints "Serving on http://127.0.0.1:0") gets a `PortReservation`: a socket bound
  with SO_REUSEADDR and never listening, held until the program listens on the same port. On
  Linux, connect() never picks a port that has an explicitly bound socket, and a bind without
  SO_REUSEADDR conflicts with it, so nothing else can take the port meanwhile; the program's own
  bind succeeds because it sets SO_REUSEADDR too (Jetty and Python's HTTPServer do) and ours
  does not listen. tests/functional/test_ports.py checks each of these.

With a fixed port (`make run`'s 8000/5000/5002), the same bind fails at once if something holds
the port, and says so (PortInUseError): no probe that could race.
"""

from __future__ import annotations

import errno
import socket
from types import TracebackType


class PortInUseError(RuntimeError):
    """The emulator's port is taken: starting anyway would talk to whatever holds it."""

    def __init__(self, name: str, port: int, option: str, url: str) -> None:
        super().__init__(
            f"port {port} for {name} is already in use (an emulator left over from an earlier "
            f"run, or another program). Stop it, or pass {option} {url} to use it on purpose.")
        self.port = port


def _bound(host: str, port: int, name: str, option: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As servers bind: a port only in TIME_WAIT from an earlier run is free to take.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(name, port, option, f"http://{host}:{port}") from error
        raise
    return sock


def listening_socket(host: str, port: int = 0, name: str = "the server",
                     option: str = "--endpoint-url") -> socket.socket:
    """A listening socket on `port` (0: the kernel's choice), to hand to a server process.
    Connections that arrive before the server accepts wait in the backlog, none is refused."""
    sock = _bound(host, port, name, option)
    sock.listen(128)
    return sock


def bound_port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


class PortReservation:
    """A port held for a program that binds it by number (see the module's docstring); a
    context manager. Release it once the program listens."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str = "the server",
                 option: str = "--endpoint-url") -> None:
        self._socket: socket.socket | None = _bound(host, port, name, option)
        self.port = bound_port(self._socket)

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
