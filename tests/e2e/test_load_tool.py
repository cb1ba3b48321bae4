"""bench.load against the real local pipeline, and its self-test against its stub endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.load.cli import main
from bench.load.report import PLOTS
from tests.e2e.conftest import PipelineProcess

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
        _, item = pipeline.item(figures["item_id"])
        assert item["n"] == figures["index"]  # the command that was sent is the one applied


def test_self_test_drives_the_stub_endpoint(tmp_path: Path) -> None:
    assert main(["--self-test", "--count", "300", "--no-progress", "--out", str(tmp_path)]) == 0
    ceiling = json.loads((tmp_path / "ceiling.json").read_text("utf-8"))
    assert ceiling["post-only"]["endings"] == {"accepted (not polled)": 300}
    assert ceiling["post+poll"]["endings"] == {"applied": 300}
    assert ceiling["post+poll"]["polls"] >= 300
    for name in ("post-only", "post+poll"):
        assert outputs(tmp_path / name)["summary"]["requests"] == 300
