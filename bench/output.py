"""What every benchmark shares: its command line, the machine and commit it ran on, a quiet
local pipeline, and its figures as a Markdown table."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.process import DevstackProcess

PROJECT_DIR = Path(__file__).resolve().parent.parent


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: `python -m <prog>`, its module docstring as --help."""
    return argparse.ArgumentParser(prog=f"python -m {prog}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


@contextlib.contextmanager
def pipeline(store: str, *args: str, log_dir: Path | None = None, name: str = "devstack",
             env: dict[str, str] | None = None, timeout: float = 120.0
             ) -> Iterator[DevstackProcess]:
    """`python -m devstack --store <store> <args>` on free loopback ports, logging at WARNING
    only, its log in `log_dir` (default: a temporary directory). Its stream is read at Lambda's
    pace even where the test suite slows it (tests/conftest.py): what a benchmark measures, and
    how often R6's stream handler crashes, follow that pace."""
    from devstack.process import DevstackProcess
    from devstack.stream_poller import POLL_INTERVAL_SECONDS

    with tempfile.TemporaryDirectory(prefix="bench-devstack-") as tmp:
        process = DevstackProcess(Path(log_dir or tmp) / f"{name}.log", "--log-level", "WARNING",
                                  *args, store=store, env={
                                      "LOG_LEVEL": "WARNING", "AWS_EC2_METADATA_DISABLED": "true",
                                      "DEVSTACK_STREAM_POLL_SECONDS": str(POLL_INTERVAL_SECONDS),
                                      **(env or {})})
        process.start(timeout)  # DynamoDB Local's JVM takes a few seconds
        try:
            yield process
        finally:
            process.stop()


def scan(dynamodb: Any, table: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a table, as DynamoDB returns it, read consistently page by page."""
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True,
                                                        **params):
        yield from page["Items"]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (it reads as plain text too), numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows)
               for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric,
                                                                          strict=True)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                          for w, num in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def machine() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()} "
            f"({sys.implementation.name}), {platform.system()} {platform.machine()}; "
            f"load average at start {load}")


def commit(checkout: Path = PROJECT_DIR) -> str:
    """The commit measured, "-dirty" if a tracked file differs from it. bench/results.json does
    not count: `make bench` writes it before its later parts run."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                              cwd=checkout).stdout.strip()

    head = git("rev-parse", "--short=7", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  ":(exclude)bench/results.json")
    return f"{head}-dirty" if head and changed else head or "unknown"
