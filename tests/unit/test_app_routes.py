"""What app.py registers, per stage: no I/O (importing it only creates clients)."""

from __future__ import annotations

import pytest

from tests.conftest import AppImport


def test_the_debug_route_exists_only_where_the_stage_enables_it(
        monkeypatch: pytest.MonkeyPatch, import_app: AppImport) -> None:
    monkeypatch.delenv("DEBUG_ROUTES", raising=False)
    app = import_app()
    assert "/debug/consume" not in app.app.routes
    assert "/items/{item_id}" in app.app.routes


def test_the_local_stage_adds_the_debug_route(monkeypatch: pytest.MonkeyPatch,
                                              import_app: AppImport) -> None:
    monkeypatch.setenv("DEBUG_ROUTES", "1")
    app = import_app()
    assert "/debug/consume" in app.app.routes


def test_reads_need_iam_unless_the_stage_opts_out(monkeypatch: pytest.MonkeyPatch,
                                                  import_app: AppImport) -> None:
    monkeypatch.delenv("READ_API_AUTH", raising=False)
    app = import_app()
    for path in ("/items/{item_id}", "/items", "/requests/{request_id}"):
        assert type(app.app.routes[path]["GET"].authorizer).__name__ == "IAMAuthorizer"
    monkeypatch.setenv("READ_API_AUTH", "none")
    app = import_app()
    assert app.app.routes["/items"]["GET"].authorizer is None
