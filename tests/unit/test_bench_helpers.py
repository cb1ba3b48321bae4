"""The benchmarks' bookkeeping: percentiles, the results file, the batch workload.
(Structure and counts only: speed is measured by the benchmarks, never asserted here.)"""

from __future__ import annotations

import io
import json
import math
import statistics
from pathlib import Path

import pytest

from bench import results
from bench.batch import applied_from_emf, batch_messages
from bench.stats import percentile
from chalicelib.metrics import MetricsBatch


def test_percentiles_are_the_standard_librarys_inclusive_quantiles() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 1..100, unordered
    assert percentile(values, 0.5) == statistics.median(values) == 50.5
    assert percentile(values, 0.99) == pytest.approx(99.01)  # numpy.percentile's "linear"
    assert percentile([7.0], 0.9) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_results_merge_per_script_and_refuse_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results.record({"cold_start_ratio": 1.2345678}, {"rounds": 3}, "bench.cold_start", path)
    merged = results.record({"batch_latency_ratio": 1.5, "ddb_calls_per_write": 1.0},
                            {"rounds": 2, "p50_ms": [361.68558749957447]}, "bench.batch", path)
    on_disk = json.loads(path.read_text())
    assert on_disk == merged
    assert on_disk["cold_start_ratio"] == 1.2346
    assert set(on_disk["details"]) == {"bench.cold_start", "bench.batch"}
    assert on_disk["details"]["bench.batch"]["rounds"] == 2
    assert on_disk["details"]["bench.batch"]["p50_ms"] == [361.686]
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


def test_batch_rounds_create_then_update_the_same_items() -> None:
    clock = [1_000]
    creates = batch_messages("p", 0, 10, clock)
    updates = batch_messages("p", 1, 10, clock)
    assert [m.body["operation"] for m in creates] == ["create"] * 10
    assert [m.body["operation"] for m in updates] == ["update"] * 10
    assert [m.body["id"] for m in creates] == [m.body["id"] for m in updates]
    assert len({m.body["id"] for m in creates}) == 10  # one message per item
    stamps = [m.stamp_ms for m in creates + updates]
    assert stamps == sorted(stamps) and len(set(stamps)) == 20


def test_applied_count_comes_from_the_consumers_emf_lines() -> None:
    stream = io.StringIO()
    batch = MetricsBatch(stream=stream)
    for status in ("applied", "applied", "rejected"):
        batch.record(status)
    batch.flush(3, 12.0)
    batch.record("applied")
    batch.flush(1, 3.0)
    assert applied_from_emf(stream.getvalue() + '{"level": "INFO"}\n') == 3
