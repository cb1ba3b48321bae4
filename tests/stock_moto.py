"""moto's own server, without devstack's patches: what the tests of devstack/moto_server.py
compare the patched server with."""

from __future__ import annotations

import sys

from devstack.emulator import MotoServer


class StockMotoServer(MotoServer):
    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
