"""Start an AWS emulator (moto in server mode, or DynamoDB Local) as a real process, and wait
until it answers.

Each emulator runs under devstack.guard in a session of its own: Ctrl-C in a terminal does not
reach it before the parts that use it have stopped (its owner stops it, last), and if the owner
dies without stopping it (`kill -9`), the guard sees its pipe close and stops the emulator, so
no emulator outlives its run to serve that run's data to the next one.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TypeVar

# moto accepts any credentials; these keep boto3 from looking for real ones.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}

# Run as a script (standard library only), so it starts from any working directory.
GUARD = Path(__file__).resolve().with_name("guard.py")
MOTO_SERVER = Path(__file__).resolve().with_name("moto_server.py")

EmulatorT = TypeVar("EmulatorT", bound="EmulatorProcess")


# Where the kernel takes ports for outgoing connections (Linux says; macOS's default otherwise).
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_FREE_PORT = 10000


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = EPHEMERAL_RANGE_FILE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def free_port(host: str = "127.0.0.1", rng: random.Random | None = None) -> int:
    """A port nothing is bound to now, for a server started next (tests and benchmarks).

    Chosen at random below the ephemeral range where there is room: a port the kernel picks
    (bind to port 0) is an ephemeral one, which any outgoing connection may take between this
    check and the server's bind, and the test suite opens thousands (moto closes each).
    """
    low, _ = ephemeral_range()
    if low - LOWEST_FREE_PORT < 1000:  # no room below it: take what the kernel gives
        with socket.socket() as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
            return port
    choose = rng or random.SystemRandom()
    while True:
        candidate = choose.randrange(LOWEST_FREE_PORT, low)
        with socket.socket() as sock:
            try:
                sock.bind((host, candidate))  # without SO_REUSEADDR: not even in TIME_WAIT
            except OSError:
                continue
            return candidate


def port_in_use(host: str, port: int) -> bool:
    """Something listens on the port (connects), or it cannot be bound for another reason."""
    with socket.socket() as probe:
        probe.settimeout(1.0)
        if probe.connect_ex(("127.0.0.1" if host in ("", "0.0.0.0") else host, port)) == 0:
            return True
    with socket.socket() as sock:
        # As the servers bind: a port only in TIME_WAIT from an earlier run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class PortInUseError(RuntimeError):
    """The emulator's port is taken: starting anyway would talk to whatever holds it."""

    def __init__(self, name: str, port: int, option: str, url: str) -> None:
        super().__init__(
            f"port {port} for {name} is already in use (an emulator left over from an earlier "
            f"run, or another program). Stop it, or pass {option} {url} to use it on purpose.")
        self.port = port


class EmulatorProcess:
    """An emulator process under devstack.guard; a context manager that always stops it."""

    name = "the emulator"
    # The devstack option that uses an emulator already running instead of starting one.
    endpoint_option = "--endpoint-url"
    ready_path = "/"

    def __init__(self, host: str = "127.0.0.1", port: int = 5000) -> None:
        self.host = host
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def working_directory(self) -> Path | None:
        return None

    def start(self: EmulatorT, timeout: float = 20.0) -> EmulatorT:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self: EmulatorT) -> EmulatorT:
        """Start the process without waiting, so callers can do other work while it boots."""
        if port_in_use(self.host, self.port):
            raise PortInUseError(self.name, self.port, self.endpoint_option, self.endpoint_url)
        self.process = subprocess.Popen(
            [sys.executable, str(GUARD), "--", *self.command()],
            # The guard's lifeline: this end closes when we exit, however we exit.
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.working_directory(),
            env={**os.environ, **EMULATOR_CREDENTIALS},
            start_new_session=True,
        )
        return self

    def wait_ready(self: EmulatorT, timeout: float = 20.0) -> EmulatorT:
        if self.process is None:
            raise RuntimeError(f"{self.name} was not launched")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode}; "
                                   f"is port {self.port} already in use?")
            try:
                urllib.request.urlopen(f"{self.endpoint_url}{self.ready_path}", timeout=1)
                return self
            except urllib.error.HTTPError:
                return self  # an HTTP error is an answer (DynamoDB Local: 400 at /)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on {self.endpoint_url} in {timeout} s")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def request_stop(self) -> None:
        """Ask the guard to stop the emulator, without waiting (to stop several at once)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # the guard stops the emulator, then exits

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.request_stop()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # The guard is stuck: kill its whole session (it leads it), the emulator with
                # it, rather than leave an orphan serving this run's data to the next.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process = None

    def __enter__(self: EmulatorT) -> EmulatorT:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class MotoServer(EmulatorProcess):
    """moto_server: SQS (and DynamoDB with the default store) on loopback."""

    name = "the moto server"
    ready_path = "/moto-api/data.json"

    def command(self) -> list[str]:
        # moto.server, with SQS FIFO groups redelivered in order (devstack/moto_server.py).
        return [sys.executable, str(MOTO_SERVER), "-H", self.host, "-p", str(self.port)]

    def reset(self) -> None:
        """Forget every resource (moto's own reset endpoint)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10)
