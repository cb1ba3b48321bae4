"""The benchmarks' bookkeeping: the results file and its table.
(Structure and counts only: speed is measured by the benchmarks, never asserted here.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import results


def test_results_merge_per_script_and_refuse_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results.record({"cold_start_ratio": 1.2345678}, {"rounds": 3}, "bench.cold_start", path)
    merged = results.record({"batch_latency_ratio": 1.5, "ddb_calls_per_write": 1.0},
                            {"rounds": 2, "p50_ms": [361.68558749957447]}, "bench.versus", path)
    on_disk = json.loads(path.read_text())
    assert on_disk == merged
    assert on_disk["cold_start_ratio"] == 1.2346
    assert set(on_disk["details"]) == {"bench.cold_start", "bench.versus"}
    assert on_disk["details"]["bench.versus"]["rounds"] == 2
    assert on_disk["details"]["bench.versus"]["p50_ms"] == [361.686]
    with pytest.raises(ValueError):
        results.record({"speed": 1.0}, {}, "bench.x", path)


def test_summary_says_met_missed_or_not_measured() -> None:
    rows = results.summary_rows({"cold_start_ratio": 1.2, "gateway_throughput_ratio": 0.9})
    verdicts = {row[0]: row[4] for row in rows}
    assert verdicts == {"cold_start_ratio": "MISSED", "batch_latency_ratio": "not measured",
                        "ddb_calls_per_write": "not measured",
                        "gateway_latency_ratio": "not measured",
                        "gateway_throughput_ratio": "met", "applied_p99_ms": "not measured"}
    assert [row[0] for row in rows] == list(results.KEYS)


def test_bench_pipelines_read_the_stream_at_lambdas_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite slows the stream (tests/conftest.py); a benchmark run from a test must not
    # inherit that: R6's crash count and history_latency follow the stream's pace.
    from bench import output
    from devstack.process import DevstackProcess
    from devstack.stream_poller import POLL_INTERVAL_SECONDS

    monkeypatch.setenv("DEVSTACK_STREAM_POLL_SECONDS", "1")
    started: list[dict[str, str]] = []

    def start(self: DevstackProcess, timeout: float = 60.0) -> DevstackProcess:
        started.append(self.env)
        return self

    monkeypatch.setattr(DevstackProcess, "start", start)
    monkeypatch.setattr(DevstackProcess, "stop", lambda self: None)
    with output.pipeline("moto"):
        pass
    assert started[0]["DEVSTACK_STREAM_POLL_SECONDS"] == str(POLL_INTERVAL_SECONDS)
