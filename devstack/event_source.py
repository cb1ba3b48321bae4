"""Lambda's side of the local pipeline: the SQS event source's pollers and the handler they invoke,
in a process of their own (what `make run` does) or in threads of the gateway's process.

On AWS, API Gateway and the function share nothing. In one Python process the pollers and the
handler took the interpreter's lock from the gateway whenever batches ran, and the gateway's
latency showed it (docs/benchmarks.md, P3). So `python -m devstack` starts

    python -m devstack.event_source --ready-fd N --log-level L SPEC_JSON

as its child (a part of the pipeline, not a user command); `--event-source thread` keeps
everything in one process, for a debugger that should stop in the handler. The child writes to
the pipeline's standard output, in the same format. Like the emulators' guard, it runs in a
session of its own (Ctrl-C reaches the pipeline, which stops it) and its standard input is a
pipe from the pipeline: at end of file (the pipeline died, `kill -9` included) it stops, as it
does on SIGTERM, after the batches in hand. If it dies first, the pipeline starts a new one
(devstack/event_source_supervisor.py). Its pollers are made by devstack/event_source_pollers.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from devstack import log_format
from devstack.event_source_pollers import (
    POLLERS_STOP_SECONDS,
    make_change_pollers,
    make_pollers,
    stop_pollers,
)
from devstack.guard import parent_closed
from devstack.infra import PROJECT_DIR
from devstack.poller import SqsPoller
from devstack.stream_poller import POLL_INTERVAL_SECONDS, StreamPoller

LOG = logging.getLogger("devstack.event_source")

# Where the event source runs: a process of its own, as Lambda runs apart from API Gateway
# (`make run`), or threads of the gateway's process (one debugger sees all).
PROCESS, THREAD = "process", "thread"
EVENT_SOURCE_MODES = (PROCESS, THREAD)

READY = b"ready\n"
# How long the pipeline waits for the child to import the app and start polling (about 1 s).
READY_TIMEOUT_SECONDS = 60.0
# Pollers finish the batch in hand on SIGTERM: the child waits for them POLLERS_STOP_SECONDS,
# and the pipeline kills the child a little later. What it had received comes back after the
# visibility timeout.
STOP_TIMEOUT_SECONDS = POLLERS_STOP_SECONDS + 5.0
# When the pipeline is gone, its emulators go too (their guards see the same): a poller waiting
# on one (boto3 retries a refused connection for seconds) is not waited for beyond this.
ORPHANED_STOP_SECONDS = 1.0


@dataclass(frozen=True)
class EventSourceSpec:
    """What the event source needs, in JSON: the app's environment and the queue it reads."""

    app_env: dict[str, str]
    stage: str
    endpoint_url: str  # SQS
    queue_url: str
    queue_arn: str
    max_receive_count: int
    pollers: int
    honour_batch_item_failures: bool = True
    visibility_timeout: int | None = None
    crash_every: int = 0
    stream_crash_every: int = 0  # test hook: StreamPoller's mid-batch crashes
    stream_poll_seconds: float = POLL_INTERVAL_SECONDS  # an idle shard's reads
    # The change path (devstack/changes.py); no stream ARN: not run.
    stream_arn: str = ""
    dynamodb_endpoint_url: str | None = None
    history_queue_url: str = ""
    history_queue_arn: str = ""
    history_max_receive_count: int = 0
    # The stream mapping's on-failure queue and failure settings (StreamFailureSettings).
    stream_failure_queue_url: str = ""
    stream_failure: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EventSourceSpec:
        return cls(**json.loads(text))


class EventSourceFailed(RuntimeError):
    """The event source process ended before it polled (its reason is in the log above)."""


class EventSourceProcess:
    """The pipeline's handle on its event source process."""

    def __init__(self, spec: EventSourceSpec, log_level: str = "INFO") -> None:
        self.spec = spec
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self._ready_read: int | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def launch(self) -> EventSourceProcess:
        """Start it without waiting: it imports the app while the gateway starts."""
        ready_read, ready_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devstack.event_source", "--ready-fd", str(ready_write),
                 "--log-level", self.log_level, self.spec.to_json()],
                stdin=subprocess.PIPE,  # its lifeline: closes when we exit, however we exit
                pass_fds=(ready_write,), cwd=PROJECT_DIR, start_new_session=True)
        except BaseException:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)
        self._ready_read = ready_read
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> EventSourceProcess:
        assert self.process is not None and self._ready_read is not None, "not launched"
        received = b""
        deadline = time.monotonic() + timeout
        try:
            while READY not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EventSourceFailed(f"the event source did not start in {timeout} s")
                ready, _, _ = select.select([self._ready_read], [], [], remaining)
                if ready:
                    chunk = os.read(self._ready_read, 64)
                    if not chunk:  # closed without a word: it ended
                        code = self.process.wait(timeout=10)
                        raise EventSourceFailed(
                            f"the event source exited with code {code} before polling")
                    received += chunk
        finally:
            os.close(self._ready_read)
            self._ready_read = None
        return self

    def request_stop(self) -> None:
        """Ask it to stop, without waiting (the gateway stops meanwhile)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        if self._ready_read is not None:
            os.close(self._ready_read)
            self._ready_read = None
        if self.process is None:
            return
        self.request_stop()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            LOG.warning("the event source did not stop in %s s: killed", timeout)
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.event_source")
    parser.add_argument("--ready-fd", type=int, required=True,
                        help="written 'ready' once polling (then closed)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("spec", help="EventSourceSpec as JSON")
    args = parser.parse_args(argv)
    log_format.configure(args.log_level)
    spec = EventSourceSpec.from_json(args.spec)
    signalled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)  # no lock taken here: see devstack/guard.py

    # The wakeup pipe ends the select below at once when a signal comes.
    wakeup, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from devstack.chalice_app import load_app  # chalice.local: not needed to parse the spec

    app, config, module = load_app(spec.app_env, stage=spec.stage)
    pollers: list[SqsPoller | StreamPoller] = [
        poller.start() for poller in [*make_pollers(spec, app, config, module),
                                      *make_change_pollers(spec, app, config, module)]]
    LOG.info("event source (pid %d): %d poller(s), one batch each at a time", os.getpid(),
             len(pollers))
    os.write(args.ready_fd, READY)
    os.close(args.ready_fd)
    orphaned = False
    try:
        while not signalled:
            try:
                ready, _, _ = select.select([0, wakeup], [], [], 1.0)
            except (OSError, ValueError):
                orphaned = True  # stdin is not a descriptor select takes: as good as closed
                break
            if 0 in ready and parent_closed():
                LOG.warning("the pipeline is gone: stopping")
                orphaned = True
                break
    finally:
        # The pollers are daemon threads: those still waiting when this returns end with the
        # process, and what they had received comes back after the visibility timeout.
        stop_pollers(pollers, ORPHANED_STOP_SECONDS if orphaned else POLLERS_STOP_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
