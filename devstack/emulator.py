"""Start an AWS emulator (moto in server mode, or DynamoDB Local) as a real process, and wait
until it answers.

Each emulator runs under devstack.guard in a session of its own: Ctrl-C in a terminal does not
reach it before the parts that use it have stopped (its owner stops it, last), and if the owner
dies without stopping it (`kill -9`), the guard sees its pipe close and stops the emulator, so
no emulator outlives its run to serve that run's data to the next one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TypeVar

from devstack.lifecycle import StartStop
from devstack.ports import PortReservation, bound_port, listening_socket

# moto accepts any credentials; these keep boto3 from looking for real ones.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}

# Run as a script (standard library only), so it starts from any working directory.
GUARD = Path(__file__).resolve().with_name("guard.py")
MOTO_SERVER = Path(__file__).resolve().with_name("moto_server.py")

EmulatorT = TypeVar("EmulatorT", bound="EmulatorProcess")


class EmulatorProcess(StartStop):
    """An emulator process under devstack.guard; a context manager that always stops it.

    Port 0 (the default): the kernel chooses, and `port` says what it chose once launched."""

    name = "the emulator"
    # The devstack option that uses an emulator already running instead of starting one.
    endpoint_option = "--endpoint-url"
    ready_path = "/"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._reservation: PortReservation | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def take_port(self) -> socket.socket | None:
        """Take the port before the process starts (devstack/ports.py): a socket to hand to
        the process (it serves on it), or None when the process binds the port by number."""
        self._reservation = PortReservation(self.host, self.port, self.name,
                                            self.endpoint_option)
        self.port = self._reservation.port
        return None

    def working_directory(self) -> Path | None:
        return None

    def start(self: EmulatorT, timeout: float = 20.0) -> EmulatorT:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self: EmulatorT) -> EmulatorT:
        """Start the process without waiting, so callers can do other work while it boots.
        PortInUseError if its port is taken (only a fixed port can be)."""
        handed = self.take_port()
        fds = () if handed is None else (handed.fileno(),)
        guard_options = [] if handed is None else ["--pass-fd", str(handed.fileno())]
        try:
            self.process = subprocess.Popen(
                [sys.executable, str(GUARD), *guard_options, "--", *self.command()],
                # The guard's lifeline: this end closes when we exit, however we exit.
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.working_directory(),
                env={**os.environ, **EMULATOR_CREDENTIALS},
                start_new_session=True,
                pass_fds=fds,
            )
        except BaseException:
            self._release()
            raise
        finally:
            if handed is not None:
                handed.close()  # the process has its own copy
        return self

    def _release(self) -> None:
        if self._reservation is not None:
            self._reservation.release()
            self._reservation = None

    def wait_ready(self: EmulatorT, timeout: float = 20.0) -> EmulatorT:
        if self.process is None:
            raise RuntimeError(f"{self.name} was not launched")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._release()
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode}")
            try:
                urllib.request.urlopen(f"{self.endpoint_url}{self.ready_path}", timeout=1)
                self._release()  # it listens: the reservation has done its job
                return self
            except urllib.error.HTTPError:
                self._release()  # an HTTP error is an answer (DynamoDB Local: 400 at /)
                return self
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
        self._release()
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



class MotoServer(EmulatorProcess):
    """moto_server: SQS (and DynamoDB with the default store) on loopback."""

    name = "the moto server"
    ready_path = "/moto-api/data.json"
    _fd = -1  # the listening socket's descriptor, as the process receives it

    def take_port(self) -> socket.socket | None:
        # Bound and listening here, served there: the port is ours from the start.
        handed = listening_socket(self.host, self.port, self.name, self.endpoint_option)
        self.port = bound_port(handed)
        self._fd = handed.fileno()
        return handed

    def command(self) -> list[str]:
        # moto.server, with devstack/moto_patches/ applied (devstack/moto_server.py).
        return [sys.executable, str(MOTO_SERVER), "--fd", str(self._fd)]

    def reset(self) -> None:
        """Forget every resource (moto's own reset endpoint)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10)
