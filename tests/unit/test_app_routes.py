"""What app.py registers, per stage: no I/O (importing it only creates clients)."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_the_debug_route_exists_only_where_the_stage_enables_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEBUG_ROUTES", raising=False)
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    assert "/debug/consume" not in app.app.routes
    assert "/items/{item_id}" in app.app.routes
    sys.modules.pop("app", None)


def test_the_local_stage_adds_the_debug_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG_ROUTES", "1")
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    assert "/debug/consume" in app.app.routes
    sys.modules.pop("app", None)
