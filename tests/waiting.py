"""Waiting with a deadline, for tests that poll something that happens in another thread or
process: one loop instead of a copy in every test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], seconds: float, interval: float = 0.1,
               what: str | Callable[[], str] = "") -> T:
    """condition()'s first true value, polled every `interval`; AssertionError after `seconds`,
    with `what` (or what it returns, e.g. the tail of a log) to say what did not happen."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"not within {seconds} s{': ' if detail else ''}{detail}")
        time.sleep(interval)

