"""bench.load's pure parts: statistics, how requests end, workload bodies, URL safety."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from bench.load.cli import config_from, is_loopback, parser, post_url
from bench.load.records import MIX_WEIGHTS, LoadConfig, LoadRun, RequestRecord, Workload
from bench.load.report import ending, latency_summary, summarize

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "chalicelib" / "command.schema.json")
                    .read_text(encoding="utf-8"))


def test_latency_summary_in_milliseconds_with_interpolated_percentiles() -> None:
    seconds = [n / 1000 for n in range(100, 0, -1)]  # 1..100 ms, unordered
    stats = latency_summary(seconds)
    assert stats["count"] == 100
    assert stats["avg"] == pytest.approx(50.5)
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p95"] == pytest.approx(95.05)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["max"] == pytest.approx(100)


def test_latency_summary_of_nothing_is_not_a_number() -> None:
    stats = latency_summary([])
    assert stats["count"] == 0
    assert all(math.isnan(stats[name]) for name in ("avg", "p50", "p99", "max"))


def test_latency_counts_from_the_due_time_not_the_send_time() -> None:
    # Sent late (the client or the connection pool was busy): the wait is part of the latency.
    record = RequestRecord(0, "a", "create", due=1.0, sent=1.5, answered=1.6)
    assert record.lags()["post_latency"] == pytest.approx(0.6)
    record.outcome_seen, record.last_pending = 3.0, 2.5
    assert record.lags()["applied_lag"] == pytest.approx(2.0)
    assert record.lags()["resolution"] == pytest.approx(0.5)


def _record(index: int, status: int | None, outcome: str | None = None) -> RequestRecord:
    record = RequestRecord(index, f"id-{index}", "create", due=index * 0.1,
                           sent=index * 0.1, answered=index * 0.1 + 0.01, http_status=status)
    if status == 202:
        record.request_id = f"r{index}"
    if status is None:
        record.error = "ClientConnectorError"
    if outcome:
        record.outcome, record.outcome_seen = outcome, index * 0.1 + 0.5
    return record


def test_summary_counts_how_requests_ended() -> None:
    run = LoadRun(LoadConfig(post_url="http://127.0.0.1:1/SQSManager",
                             read_url="http://127.0.0.1:1", rate=10, count=6))
    run.records = [_record(0, 202, "applied"), _record(1, 202, "applied"),
                   _record(2, 202, "rejected"), _record(3, 202), _record(4, 429),
                   _record(5, None)]
    run.send_seconds = 0.51
    summary = summarize(run)
    assert summary["endings"] == {"applied": 2, "rejected": 1, "no outcome": 1, "HTTP 429": 1,
                                  "error ClientConnectorError": 1}
    assert summary["post_latency_ms"]["count"] == 4  # 202s only
    assert summary["applied_latency_ms"]["count"] == 3
    assert summary["applied_latency_ms"]["max"] == pytest.approx(500)
    assert summary["post_throughput"] == pytest.approx(6 / 0.51)
    assert summary["accepted_throughput"] == pytest.approx(4 / 0.51)
    assert ending(_record(7, 202), polled=False) == "accepted (not polled)"


def test_workload_bodies_are_valid_commands() -> None:
    validator = Draft4Validator(SCHEMA)
    creates = [Workload("t").command(i) for i in range(20)]
    assert len({item_id for item_id, _, _ in creates}) == 20
    assert {operation for _, operation, _ in creates} == {"create"}
    mixing = Workload("t", mix=True, ids=5)
    mixed = [mixing.command(i) for i in range(400)]
    assert {operation for _, operation, _ in mixed} == set(MIX_WEIGHTS)
    assert len({item_id for item_id, _, _ in mixed}) == 5
    for item_id, operation, body in creates + mixed:
        document = json.loads(body)
        assert not list(validator.iter_errors(document)), document
        assert (document["id"], document["operation"]) == (item_id, operation)


def test_only_loopback_urls_unless_allowed() -> None:
    assert is_loopback("http://127.0.0.1:8000") and is_loopback("http://localhost:1")
    assert is_loopback("http://[::1]:8000")
    assert not is_loopback("https://abc.execute-api.us-west-2.amazonaws.com/Prod1")
    remote = ["--ingest-url", "https://abc.execute-api.us-west-2.amazonaws.com/Prod1"]
    with pytest.raises(SystemExit):
        config_from(parser().parse_args(remote), parser())
    config = config_from(parser().parse_args([*remote, "--allow-remote"]), parser())
    assert config.post_url == "https://abc.execute-api.us-west-2.amazonaws.com/Prod1/SQSManager"
    assert config.read_url == "http://127.0.0.1:8000"


def test_defaults_are_bounded_and_open_loop() -> None:
    config = config_from(parser().parse_args([]), parser())
    assert (config.rate, config.concurrency, config.count, config.duration) == (10, None, 100,
                                                                               None)
    for bad in (["--count", "0"], ["--count", "1000000"], ["--duration", "99999"],
                ["--rate", "5", "--concurrency", "2"], ["--warmup", "-1"],
                # --record is P4 only: 100/s on a pipeline of its own on DynamoDB Local.
                ["--record"], ["--record", "--pipeline", "moto", "--rate", "100"],
                ["--record", "--pipeline", "dynamodb-local", "--rate", "50"],
                ["--record", "--pipeline", "dynamodb-local", "--rate", "100", "--no-poll"]):
        with pytest.raises(SystemExit):
            config_from(parser().parse_args(bad), parser())


def test_post_url_takes_a_base_or_the_full_url() -> None:
    assert post_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/SQSManager"
    assert post_url("https://x/Prod1/SQSManager") == "https://x/Prod1/SQSManager"


def test_p4_is_what_record_accepts() -> None:
    args = parser().parse_args(["--record", "--pipeline", "dynamodb-local", "--rate", "100",
                                "--count", "10", "--warmup", "5"])
    config = config_from(args, parser())
    assert (config.rate, config.count, config.poll) == (100, 10, True)
