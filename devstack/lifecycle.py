"""`with server:` for every local server devstack starts: started on entry, stopped on exit,
whatever happens inside (the emulators, the fault proxy, the pipeline and its process)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStop:
    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
