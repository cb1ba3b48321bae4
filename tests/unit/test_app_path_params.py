"""Path parameters reach app.py percent-encoded, as API Gateway REST APIs pass them to Lambda:
the app decodes them exactly once (Chalice's test client passes them on encoded, as Lambda does)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client

from chalicelib import ItemNotFoundError, OutcomeNotFoundError
from tests.conftest import AppImport

AWKWARD_ID = "a b/c%d+e ü😀"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, import_app: AppImport) -> ModuleType:
    monkeypatch.setenv("READ_API_AUTH", "none")
    return import_app()


class FakeStore:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_item(self, item_id: str) -> dict[str, Any]:
        self.asked.append(item_id)
        if item_id != AWKWARD_ID:
            raise ItemNotFoundError(f"item {item_id!r} does not exist")
        return {"id": item_id, "version": 1}

    def get_outcome(self, request_id: str) -> dict[str, Any]:
        self.asked.append(request_id)
        raise OutcomeNotFoundError(request_id)


@pytest.mark.parametrize("item_id", [AWKWARD_ID, "plus+stays", "100%", "x%2541"])
def test_item_ids_are_decoded_exactly_once(app: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                           item_id: str) -> None:
    store = FakeStore()
    monkeypatch.setattr(app, "store", store)
    with Client(app.app) as client:
        response = client.http.get(f"/items/{quote(item_id, safe='')}")
    assert store.asked == [item_id]  # "x%2541" stays "x%2541": decoding twice would give "xA"
    assert response.status_code == (200 if item_id == AWKWARD_ID else 404)


def test_request_ids_are_decoded_too(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeStore()
    monkeypatch.setattr(app, "store", store)
    with Client(app.app) as client:
        response = client.http.get("/requests/ab%2Bcd%3D")
    assert store.asked == ["ab+cd="]
    assert response.status_code == 404
    assert json.loads(response.body)["requestId"] == "ab+cd="
