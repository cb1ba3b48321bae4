"""bench.cold_start's as-on-Lambda scenarios: the package's files, with the .pyc each deploy path
ships, imported for real in a fresh interpreter."""

from __future__ import annotations

from pathlib import Path

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
    for scenario in cold_start.scenarios():
        if scenario.layout is not None:
            seconds, _, _ = cold_start.run_once(scenario, None, layouts)
            assert seconds > 0
    # -B: the runs wrote nothing.
    assert pyc_files(layouts[cold_start.NO_PYC]) == set()
