"""devstack.emulator.free_port: ports for the servers tests and benchmarks start, chosen where no
outgoing connection can take them before the server binds."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from devstack import emulator
from devstack.emulator import LOWEST_FREE_PORT, ephemeral_range, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    low, _ = ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert LOWEST_FREE_PORT <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_chosen() -> None:
    seed = 42
    first = free_port(rng=random.Random(seed))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", first))
        holder.listen()
        assert free_port(rng=random.Random(seed)) != first  # the same first pick, refused


def test_without_room_below_the_range_the_kernel_chooses(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    kernels_low, _ = ephemeral_range()
    narrow = tmp_path / "ip_local_port_range"
    narrow.write_text(f"{LOWEST_FREE_PORT + 10}\t65000\n")
    monkeypatch.setattr(emulator, "EPHEMERAL_RANGE_FILE", narrow)
    assert ephemeral_range() == (LOWEST_FREE_PORT + 10, 65000)
    assert free_port() >= kernels_low  # an ephemeral port, the kernel's own pick


def test_where_the_kernel_does_not_say_the_range_is_macos_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulator, "EPHEMERAL_RANGE_FILE", tmp_path / "missing")
    assert ephemeral_range() == (49152, 65535)
    assert LOWEST_FREE_PORT <= free_port() < 49152
