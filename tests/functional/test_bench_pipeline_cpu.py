"""bench.pipeline_cpu, small: both variants (a baseline in a git worktree, and this checkout) run
a real pipeline each, and every process's CPU is counted."""

from __future__ import annotations

import subprocess

import pytest

from bench import pipeline_cpu
from devstack.dynamodb_local import unavailable_reason
from devstack.process import PROJECT_DIR

pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")


def worktrees() -> str:
    return subprocess.run(["git", "-C", str(PROJECT_DIR), "worktree", "list"], check=True,
                          capture_output=True, text=True).stdout


def test_both_variants_are_measured_by_process(capsys: pytest.CaptureFixture[str]) -> None:
    before = worktrees()
    parsed = ["--baseline", "HEAD", "--rate", "40", "--count", "30", "--warmup", "10",
              "--rounds", "1"]
    assert pipeline_cpu.main(parsed) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| baseline HEAD", "| current"))]
    assert len(rows) == 2, out
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        pipeline, event_source, moto, dynamodb_local, total = (
            float(cell) for cell in cells[1:6])
        # Every part did work for the 30 requests, and the total is their sum. (A baseline
        # from before devstack/event_source.py ran its event source in the pipeline's process.)
        assert min(pipeline, moto, dynamodb_local) > 0, row
        if row.startswith("| current"):
            assert event_source > 0, row
        assert total == pytest.approx(pipeline + event_source + moto + dynamodb_local,
                                      abs=0.2), row
    assert "current / baseline, all parts: " in out
    assert worktrees() == before  # the baseline's worktree is removed
