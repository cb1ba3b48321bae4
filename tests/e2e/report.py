"""Figures a test prints to the terminal even when output is captured (docs/reliability.md quotes
them from `make test`'s log)."""

from __future__ import annotations

import pytest


def report(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)
