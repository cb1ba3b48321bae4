"""moto's own server, without devstack's patches: what the tests of devstack/moto_server.py
compare the patched server with."""

from __future__ import annotations

import socket
import sys

from devstack.emulator import EmulatorProcess, MotoServer


class StockMotoServer(MotoServer):
    def take_port(self) -> socket.socket | None:
        # moto's own server binds by number: a port held for it (devstack/ports.py).
        return EmulatorProcess.take_port(self)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
