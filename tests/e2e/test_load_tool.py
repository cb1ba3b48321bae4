"""bench.load against the real local pipeline (one it is pointed at, and one it starts for the
run), and its self-test against its stub endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.load.cli import main
from bench.load.report import PLOTS
from tests.e2e.conftest import AuthPipeline, PipelineProcess
from tests.stores import skip_unless_dynamodb_local_runs

pytestmark = pytest.mark.e2e
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def outputs(directory: Path) -> dict[str, Any]:
    for name in PLOTS:
        assert (directory / name).read_bytes()[:8] == PNG_SIGNATURE, name
    results: dict[str, Any] = json.loads((directory / "results.json").read_text("utf-8"))
    return results


def test_a_short_open_loop_run_ends_with_every_request_applied(
        pipeline: PipelineProcess, tmp_path: Path) -> None:
    assert main(["--url", pipeline.base_url, "--rate", "20", "--count", "50", "--no-progress",
                 "--outcome-timeout", "120", "--out", str(tmp_path)]) == 0
    results = outputs(tmp_path)
    assert results["summary"]["endings"] == {"applied": 50}
    requests = results["requests"]
    assert len(requests) == 50 and len({r["request_id"] for r in requests}) == 50
    for figures in requests:
        assert figures["http_status"] == 202
        assert 0 < figures["post_latency"] < figures["applied_lag"]
        # The outcome's own times: stamped by the gateway, then applied, then read. The stamps
        # are whole milliseconds, cut down, so a request the gateway stamps within 1 ms of its
        # due time can read up to 1 ms early (CI once saw -0.17 ms).
        assert -0.001 < figures["received_lag"] <= figures["handled_lag"] + 0.001
        assert figures["handled_lag"] <= figures["applied_lag"] + 0.001
        _, item = pipeline.item(figures["item_id"])
        assert item["n"] == figures["index"]  # the command that was sent is the one applied
    assert results["summary"]["handled_latency_ms"]["count"] == 50


def test_with_poll_after_no_outcome_is_read_before_the_posts_are_done(
        pipeline: PipelineProcess, tmp_path: Path) -> None:
    assert main(["--url", pipeline.base_url, "--rate", "20", "--count", "30", "--no-progress",
                 "--poll-after", "--outcome-timeout", "120", "--out", str(tmp_path)]) == 0
    results = outputs(tmp_path)
    assert results["summary"]["endings"] == {"applied": 30}
    last_answer = max(r["answered"] for r in results["requests"])
    assert min(r["outcome_seen"] for r in results["requests"]) > last_answer
    # POST -> applied still comes per request, from handledAt, not from when it was read.
    assert all(r["handled_lag"] < r["applied_lag"] for r in results["requests"])


def test_signs_posts_and_reads_like_a_prod1_client(auth_pipeline: AuthPipeline,
                                                  tmp_path: Path) -> None:
    """The --auth pipeline (IngestAuthorization AWS_IAM) verifies SigV4 on POSTs and reads as
    API Gateway does: --sigv4 signs both."""
    target = ["--url", auth_pipeline.base_url, "--rate", "20", "--no-progress"]
    assert main([*target, "--count", "10", "--sigv4", "--out", str(tmp_path / "signed")]) == 0
    assert outputs(tmp_path / "signed")["summary"]["endings"] == {"applied": 10}

    assert main([*target, "--count", "3", "--out", str(tmp_path / "unsigned")]) == 0
    assert outputs(tmp_path / "unsigned")["summary"]["endings"] == {"HTTP 403": 3}


def test_sends_the_key_where_ingest_needs_one(api_key_pipeline: AuthPipeline,
                                              tmp_path: Path) -> None:
    target = ["--url", api_key_pipeline.base_url, "--rate", "20", "--no-progress"]
    assert main([*target, "--count", "3", "--api-key", api_key_pipeline.key,
                 "--outcome-timeout", "1", "--out", str(tmp_path / "unsigned-reads")]) == 0
    summary = outputs(tmp_path / "unsigned-reads")["summary"]
    assert summary["endings"] == {"no outcome": 3}
    assert set(summary["poll_errors"]) == {"HTTP 403"}

    assert main([*target, "--count", "3", "--out", str(tmp_path / "no-key")]) == 0
    assert outputs(tmp_path / "no-key")["summary"]["endings"] == {"HTTP 403": 3}


def test_self_test_drives_the_stub_endpoint(tmp_path: Path) -> None:
    assert main(["--self-test", "--count", "300", "--no-progress", "--out", str(tmp_path)]) == 0
    ceiling = json.loads((tmp_path / "ceiling.json").read_text("utf-8"))
    assert ceiling["post-only"]["endings"] == {"accepted (not polled)": 300}
    assert ceiling["post+poll"]["endings"] == {"applied": 300}
    assert ceiling["post+poll"]["polls"] >= 300
    for name in ("post-only", "post+poll"):
        assert outputs(tmp_path / name)["summary"]["requests"] == 300


def test_a_pipeline_of_its_own_is_started_loaded_and_drained(tmp_path: Path) -> None:
    assert main(["--pipeline", "moto", "--concurrency", "4", "--count", "40", "--warmup", "5",
                 "--no-progress", "--outcome-timeout", "120", "--out", str(tmp_path)]) == 0
    results = outputs(tmp_path)
    assert results["summary"]["endings"] == {"applied": 40}  # the warm-up is not counted
    assert results["summary"]["handled_latency_ms"]["count"] == 40


def test_record_writes_p4_from_a_dynamodb_local_pipeline(tmp_path: Path) -> None:
    skip_unless_dynamodb_local_runs()
    results_path = tmp_path / "results.json"
    assert main(["--pipeline", "dynamodb-local", "--rate", "100", "--count", "60",
                 "--warmup", "20", "--poll-after", "--no-progress", "--record",
                 "--results", str(results_path), "--out", str(tmp_path / "run")]) == 0
    assert outputs(tmp_path / "run")["summary"]["endings"] == {"applied": 60}
    recorded = json.loads(results_path.read_text("utf-8"))
    assert recorded["applied_p99_ms"] > 0
    details = recorded["details"]["bench.load"]
    assert (details["rate"], details["count"], details["warmup"]) == (100, 60, 20)
    assert details["endings"] == {"applied": 60}
