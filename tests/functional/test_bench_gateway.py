"""bench.gateway, small: both paths are measured against a real devstack, P3's keys land in the
results file, and a run unlike `make run` (--no-consumer, --event-source thread) prints its
figures without overwriting them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import gateway


def run(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert gateway.main(["--requests", "15", "--threads", "2", "--blocks", "1", *extra]) == 0
    return capsys.readouterr().out


def test_the_pipeline_run_records_p3_and_what_the_gateway_adds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    out = run(capsys, "--results", str(results))
    assert "event source running in its own process, as in make run" in out
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


@pytest.mark.parametrize(("option", "said"), [
    (("--no-consumer",), "event source off (--no-consumer)"),
    (("--event-source", "thread"), "event source running in the gateway's process"),
])
def test_a_run_unlike_make_run_is_printed_not_recorded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: tuple[str, ...],
        said: str) -> None:
    results = tmp_path / "results.json"
    out = run(capsys, *option, "--results", str(results))
    assert said in out
    assert "not written: P3 is measured with the event source as make run runs it" in out
    assert re.search(r"the gateway adds -?\d+\.\d\d ms at p50", out), out
    assert not results.exists()
