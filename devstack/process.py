"""`python -m devstack` as a real process on free loopback ports: what the end-to-end tests and
the load benchmark run, exactly as a user's `make run` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from devstack.dynamodb_local import DYNAMODB_LOCAL, MOTO
from devstack.emulator import EMULATOR_CREDENTIALS, free_port
from devstack.resources import region

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Variables of the caller that would change what the pipeline talks to or how it runs.
_NOT_INHERITED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
                  "AWS_PROFILE", "REPORT_BATCH_ITEM_FAILURES")


class DevstackProcess:
    def __init__(self, log_path: Path, *args: str, env: Mapping[str, str] | None = None,
                 store: str = MOTO, cwd: Path = PROJECT_DIR) -> None:
        """cwd: the checkout whose devstack and app run."""
        self.port = free_port()
        self.emulator_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.endpoint_url = f"http://127.0.0.1:{self.emulator_port}"
        self.store = store
        # Where the table lives: moto itself, or DynamoDB Local on a port of its own.
        self.dynamodb_port = free_port() if store == DYNAMODB_LOCAL else self.emulator_port
        self.dynamodb_endpoint_url = f"http://127.0.0.1:{self.dynamodb_port}"
        self.log_path = log_path
        self.command = [sys.executable, "-m", "devstack", "--host", "127.0.0.1",
                        "--port", str(self.port), "--emulator-port", str(self.emulator_port),
                        "--store", store, *args]
        if store == DYNAMODB_LOCAL:
            self.command += ["--dynamodb-port", str(self.dynamodb_port)]
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        self.env.update(EMULATOR_CREDENTIALS)
        self.env.update({"AWS_DEFAULT_REGION": region(), "PYTHONUNBUFFERED": "1", **(env or {})})
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> DevstackProcess:
        """Start it and wait until the read API answers; RuntimeError with the log otherwise."""
        with self.log_path.open("wb") as log:
            # Its own session, so that a last-resort kill reaches its moto child too.
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise RuntimeError(f"devstack exited with {code}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/items?limit=1", timeout=2):
                    return self
            except urllib.error.HTTPError as error:
                if error.code == 403:  # it answers: with --auth, unsigned reads are refused
                    return self
                time.sleep(0.1)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"devstack did not answer in {timeout} s:\n{self.log()[-3000:]}")

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

    def __enter__(self) -> DevstackProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
