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


def test_reads_need_iam_unless_the_stage_opts_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("READ_API_AUTH", raising=False)
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    for path in ("/items/{item_id}", "/items", "/requests/{request_id}"):
        assert type(app.app.routes[path]["GET"].authorizer).__name__ == "IAMAuthorizer"
    monkeypatch.setenv("READ_API_AUTH", "none")
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    assert app.app.routes["/items"]["GET"].authorizer is None
    sys.modules.pop("app", None)
