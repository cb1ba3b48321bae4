"""`python -m devstack` as a real process on ports the kernel chooses: what the end-to-end tests
and the load benchmark run, exactly as a user's `make run` does. It reports the ports it got
over a pipe once it runs (--ready-fd), so nothing here ever guesses a free port."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from devstack.dynamodb_local import DYNAMODB_LOCAL, MOTO
from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.lifecycle import StartStop
from devstack.resources import region

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Variables of the caller that would change what the pipeline talks to or how it runs.
_NOT_INHERITED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
                  "AWS_PROFILE", "REPORT_BATCH_ITEM_FAILURES")


def _port(url: str) -> int:
    return urlsplit(url).port or 80


def _read_line(fd: int, deadline: float) -> bytes:
    """A line from the pipe, or b"" if the writer exits (its end closes) or time runs out."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b""
        chunk = os.read(fd, 4096)
        if not chunk:
            return b""
        data += chunk
    return data


class DevstackProcess(StartStop):
    """The URLs and ports (base_url, endpoint_url, dynamodb_endpoint_url, port, emulator_port,
    dynamodb_port) are known once start() returns."""

    def __init__(self, log_path: Path, *args: str, env: Mapping[str, str] | None = None,
                 store: str = MOTO, cwd: Path = PROJECT_DIR) -> None:
        """cwd: the checkout whose devstack and app run."""
        self.store = store
        self.base_url = self.endpoint_url = self.dynamodb_endpoint_url = ""
        self.port = self.emulator_port = self.dynamodb_port = 0
        self.log_path = log_path
        self.command = [sys.executable, "-m", "devstack", "--host", "127.0.0.1",
                        "--port", "0", "--emulator-port", "0", "--store", store, *args]
        if store == DYNAMODB_LOCAL:
            self.command += ["--dynamodb-port", "0"]
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        self.env.update(EMULATOR_CREDENTIALS)
        self.env.update({"AWS_DEFAULT_REGION": region(), "PYTHONUNBUFFERED": "1", **(env or {})})
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> DevstackProcess:
        """Start it and wait until it reports its URLs (every part runs); RuntimeError with the
        log otherwise."""
        ready_read, ready_write = os.pipe()
        try:
            with self.log_path.open("wb") as log:
                # Its own session, so that a last-resort kill reaches its moto child too.
                self.process = subprocess.Popen(
                    [*self.command, "--ready-fd", str(ready_write)], cwd=self.cwd,
                    env=self.env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(ready_write,),
                    start_new_session=True)
        finally:
            os.close(ready_write)  # the child's copy alone: its exit ends the read below
        try:
            line = _read_line(ready_read, time.monotonic() + timeout)
        finally:
            os.close(ready_read)
        if not line:
            code = self.process.poll()
            self.stop()
            what = f"exited with {code}" if code is not None else f"did not run in {timeout} s"
            raise RuntimeError(f"devstack {what}:\n{self.log()[-3000:]}")
        urls = json.loads(line)
        self.base_url, self.endpoint_url = urls["gateway"], urls["sqs"]
        self.dynamodb_endpoint_url = urls["dynamodb"]
        self.port, self.emulator_port = _port(self.base_url), _port(self.endpoint_url)
        self.dynamodb_port = _port(self.dynamodb_endpoint_url)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

