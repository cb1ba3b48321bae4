"""bench.gateway, small: both paths are measured against a real devstack, and P3's keys land in
the results file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import gateway


def test_a_small_run_records_p3_and_what_the_gateway_adds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    assert gateway.main(["--requests", "15", "--threads", "2", "--blocks", "1",
                         "--results", str(results)]) == 0
    out = capsys.readouterr().out
    for path in ("gateway", "direct"):
        assert re.search(rf"^\| {path} +\| +15 \|", out, re.MULTILINE), out
    recorded = json.loads(results.read_text())
    assert recorded["gateway_latency_ratio"] > 0 and recorded["gateway_throughput_ratio"] > 0
    details = recorded["details"]["bench.gateway"]
    extra = details["gateway_extra_p50_ms"]
    # results.json keeps 3 decimals of each figure.
    assert extra == pytest.approx(details["gateway_p50_ms"] - details["direct_p50_ms"], abs=0.002)
    printed = re.search(r"the gateway adds (-?\d+\.\d\d) ms at p50", out)
    assert printed is not None, out
    assert float(printed.group(1)) == pytest.approx(extra, abs=0.006)
