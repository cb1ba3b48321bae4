"""The smoke test's HTTP side: POSTs and reads signed as the stage needs them (scripts/sigv4.py),
and waiting for a request's outcome, so that the checks read as what they verify."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import requests
from botocore.credentials import Credentials

from scripts import sigv4
from scripts.smoke_target import Target


class SmokeFailure(Exception):
    """A check's expectation was not met: the message says what was seen."""


class SmokeClient:
    def __init__(self, target: Target, credentials: Credentials, timeout: float = 60.0) -> None:
        self.target = target
        self.credentials = credentials
        self.timeout = timeout  # seconds to wait for each outcome
        self.http = requests.Session()

    def post(self, body: str | bytes, api_key: str | None = None,
             credentials: Credentials | None = None, signed: bool | None = None
             ) -> requests.Response:
        """POST as the stage needs it (signed, with the key), unless told otherwise."""
        key = self.target.api_key if api_key is None else api_key
        headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
        data = body.encode("utf-8") if isinstance(body, str) else body
        if self.target.ingest.iam if signed is None else signed:
            headers.update(sigv4.Signer(self.target.region, credentials or self.credentials)
                           .headers(self.target.ingest_url, "POST", data, headers))
        return self.http.post(self.target.ingest_url, data=data, headers=headers, timeout=60)

    def get(self, path: str, credentials: Credentials | None = None,
            signed: bool = True) -> requests.Response:
        url = self.target.read_url + path
        headers: dict[str, str] = {}
        if signed:
            headers = sigv4.Signer(self.target.region, credentials or self.credentials) \
                .headers(url)
        return self.http.get(url, headers=headers, timeout=30)

    def submit(self, command: dict[str, Any]) -> str:
        response = self.post(json.dumps(command, ensure_ascii=False))
        if response.status_code != 202:
            raise SmokeFailure(f"POST answered {response.status_code} {response.text[:300]}")
        request_id: str = response.json()["requestId"]
        return request_id

    def outcome(self, request_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            response = self.get(f"/requests/{request_id}")
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            if response.status_code != 404 or time.monotonic() > deadline:
                raise SmokeFailure(f"GET /requests/{request_id} answered "
                                   f"{response.status_code} {response.text[:300]}")
            time.sleep(0.5)

    def applied(self, command: dict[str, Any]) -> str:
        request_id = self.submit(command)
        found = self.outcome(request_id)
        if found.get("status") != "applied":
            raise SmokeFailure(f"{command['operation']} {request_id}: {found}")
        return request_id

    def item(self, item_id: str) -> tuple[int, Any]:
        response = self.get(f"/items/{quote(item_id, safe='')}")
        return response.status_code, response.json()

    def expect_item(self, item_id: str, expected: dict[str, Any]) -> str:
        status, found = self.item(item_id)
        if status != 200 or found != expected:
            raise SmokeFailure(f"GET /items/{{id}} answered {status} {found}, expected {expected}")
        return f"read back: {json.dumps(found, ensure_ascii=False)[:80]}"


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
