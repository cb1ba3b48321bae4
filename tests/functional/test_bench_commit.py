"""The commit a benchmark names: the files it writes itself do not make it "dirty"."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.output import commit


def test_a_benchmark_names_its_commit_and_only_code_changes_make_it_dirty(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                               *args], cwd=tmp_path, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.json").write_text("{}\n")
    (tmp_path / "app.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "first")
    head = git("rev-parse", "--short=7", "HEAD")
    assert commit(tmp_path) == head
    (tmp_path / "bench" / "results.json").write_text('{"cold_start_ratio": 1.1}\n')
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert commit(tmp_path) == head
    (tmp_path / "app.py").write_text("x = 2\n")
    assert commit(tmp_path) == f"{head}-dirty"
