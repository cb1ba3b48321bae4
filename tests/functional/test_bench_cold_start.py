"""bench.cold_start: the as-on-Lambda layouts hold the package's files with the .pyc each deploy
path ships, and one small round of every scenario, imported for real in a fresh interpreter,
records P1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import cold_start
from scripts import bytecode


def pyc_files(layout: Path) -> set[str]:
    return {str(path.relative_to(layout)) for path in layout.rglob("*.pyc")}


def test_each_layout_holds_what_its_deploy_path_ships_and_imports(tmp_path: Path) -> None:
    layouts = {pyc: cold_start.lambda_layout(tmp_path / pyc, pyc)
               for pyc in (cold_start.NO_PYC, cold_start.LIBRARY_PYC, cold_start.ALL_PYC)}
    store = bytecode.pyc_name("chalicelib/store.py")
    chalice_app = bytecode.pyc_name("chalice/app.py")
    assert pyc_files(layouts[cold_start.NO_PYC]) == set()
    assert store in pyc_files(layouts[cold_start.LIBRARY_PYC])
    assert chalice_app not in pyc_files(layouts[cold_start.LIBRARY_PYC])
    assert {store, chalice_app} <= pyc_files(layouts[cold_start.ALL_PYC])
    assert sorted(p.name for p in layouts[cold_start.NO_PYC].iterdir()) == [
        "app.py", "chalice", "chalicelib"]
    for scenario in cold_start.SCENARIOS:
        if scenario.layout is not None:
            assert cold_start.run_once(scenario, layouts) > 0
    # -B: the runs wrote nothing.
    assert pyc_files(layouts[cold_start.NO_PYC]) == set()


def test_one_round_prints_every_scenario_and_records_p1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results.json"
    assert cold_start.main(["--repeat", "1", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    for scenario in cold_start.SCENARIOS:
        assert re.search(rf"^\| {re.escape(scenario.name)} +\| +\d", out, re.MULTILINE), out
    recorded = json.loads(results.read_text())
    assert recorded["cold_start_ratio"] > 0
    details = recorded["details"]["bench.cold_start"]
    assert details["rounds"] == 1
    for scenario in cold_start.SCENARIOS:
        if scenario.results_key is not None:
            assert details[scenario.results_key] > 0
