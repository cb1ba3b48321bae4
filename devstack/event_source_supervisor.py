"""The pipeline's event source in a process of its own (devstack/event_source.py), kept running:
when it dies, a new one starts, as Lambda starts a new execution environment when one crashes;
else the gateway would accept requests that nobody consumes. A replacement that cannot start is
an error in the log, not a restart loop."""

from __future__ import annotations

import logging
import threading
from typing import Self

from devstack.event_source import (
    READY_TIMEOUT_SECONDS,
    EventSourceFailed,
    EventSourceProcess,
    EventSourceSpec,
)

# What it does is the pipeline's: its lines are in the pipeline's log.
LOG = logging.getLogger("devstack.pipeline")


class EventSourceSupervisor:
    """The event source process of one pipeline, and its replacements."""

    def __init__(self, spec: EventSourceSpec, log_level: str = "INFO") -> None:
        self.spec = spec
        self.log_level = log_level
        self.process: EventSourceProcess | None = None  # the running one
        self.restarts = 0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def launch(self) -> Self:
        """Start it without waiting: it imports the app while the gateway starts."""
        self.process = EventSourceProcess(self.spec, self.log_level).launch()
        return self

    def wait_ready(self) -> Self:
        """Wait until it polls, then watch it."""
        assert self.process is not None, "not launched"
        self.process.wait_ready()
        self._watcher = threading.Thread(target=self._watch, name="event-source-watch",
                                         daemon=True)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        """A new event source when one dies (Lambda, too, starts a new execution environment
        when one crashes): else the gateway would accept requests that nobody consumes."""
        while not self._stopping.is_set():
            child = self.process
            if child is None or child.process is None:
                return
            code = child.process.wait()
            if self._stopping.is_set():
                return
            LOG.error("the event source exited with code %s: starting a new one (what it had "
                      "received comes back after the visibility timeout)", code)
            child.stop()  # reaped already: closes its pipe
            replacement = EventSourceProcess(child.spec, self.log_level)
            try:
                replacement.launch().wait_ready()
            except (OSError, EventSourceFailed) as error:
                replacement.stop()
                LOG.error("%s: nothing consumes the queue now; stop the pipeline and look at "
                          "the log above", error)
                return
            self.restarts += 1
            self.process = replacement
            if self._stopping.is_set():  # stop() began meanwhile: it may not have seen it
                replacement.stop()

    def request_stop(self) -> None:
        """Ask it to stop, without waiting (the gateway stops meanwhile)."""
        self._stopping.set()
        if self.process is not None:
            self.process.request_stop()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            # It returns once the child it waits on ends (or a replacement it was starting).
            if self.process is not None:
                self.process.request_stop()
            self._watcher.join(READY_TIMEOUT_SECONDS)
            self._watcher = None
        if self.process is not None:
            self.process.stop()
            self.process = None
