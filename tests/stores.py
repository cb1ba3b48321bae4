"""The two stores the table can live in, for tests: skipping plainly where DynamoDB Local cannot
run (no Java 17+, or no `npm ci`), so that pytest's `-ra` summary says what did not run."""

from __future__ import annotations

import functools

import pytest

from devstack.dynamodb_local import unavailable_reason


@functools.cache
def _why_dynamodb_local_cannot_run() -> str | None:
    return unavailable_reason()  # runs `java -version`: once per session is enough


def skip_unless_dynamodb_local_runs() -> None:
    reason = _why_dynamodb_local_cannot_run()
    if reason is not None:
        pytest.skip(f"{reason}; the DynamoDB Local tests did not run")
