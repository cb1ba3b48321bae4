"""The checks `make smoke` runs against a deployed stage: what only a real stack can show (see
scripts/smoke.py), one method each, and the table of those that apply to the stage."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests
from botocore.credentials import Credentials

from scripts.cfn_yaml import load_template
from scripts.smoke_client import SmokeClient, SmokeFailure, json_or_none
from scripts.smoke_target import INFRA, Target

# Text that breaks an un-encoded form body or a careless escaper, and an id that needs
# percent-encoding in GET /items/{id}: a space, "/", "%", "+" and non-ASCII.
AWKWARD_TEXT = "& + % ü 😀 = ? # \" ' \\ end"
AWKWARD_ID_SUFFIX = " a/b%c+d ü😀"
FORBIDDEN = {"message": "Forbidden"}
MISSING_TOKEN = {"message": "Missing Authentication Token"}
SIGNATURE_MISMATCH = "The request signature we calculated does not match"


def queue_message_limit(infra: Path = INFRA) -> int:
    """The queue's MaximumMessageSize, from infra (one source of truth)."""
    queue = load_template(infra)["Resources"]["Queue"]["Properties"]
    return int(queue["MaximumMessageSize"])


class Smoke(SmokeClient):
    def __init__(self, target: Target, credentials: Credentials, timeout: float = 60.0) -> None:
        super().__init__(target, credentials, timeout)
        self.run = f"smoke-{uuid.uuid4().hex[:12]}"
        self.writes: list[str] = []  # the request ids of the main item's writes, in order

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        """Every check that applies to the stage: the auth ones by its IngestAuthorization."""
        ingest = self.target.ingest
        return [
            ("create applied", self.check_create),
            ("update applied", self.check_update),
            ("text & + % ü 😀 round-trips", self.check_text),
            ("id with space / % + ü reads back", self.check_awkward_id),
            ("delete applied", self.check_delete),
            ("changes reach the item's history", self.check_history),
            ("invalid body: 400, JSON body", self.check_invalid_body),
            ("over the queue limit: 413", self.check_too_large),
            *([("unsigned write: 403", self.check_unsigned_write),
               ("write signed with a wrong secret: 403", self.check_write_wrong_secret)]
              if ingest.iam else []),
            *([("no API key: 403", self.check_no_api_key)] if ingest.api_key else []),
            ("unsigned read: 403", self.check_unsigned_read),
            ("read signed with a wrong secret: 403", self.check_wrong_secret),
        ]

    def check_create(self) -> str:
        self.writes.append(self.applied({"operation": "create", "id": self.run, "item": {"n": 1}}))
        return self.expect_item(self.run, {"id": self.run, "version": 1, "n": 1})

    def check_update(self) -> str:
        self.writes.append(self.applied({"operation": "update", "id": self.run,
                                         "item": {"n": 2, "m": "x"}}))
        return self.expect_item(self.run, {"id": self.run, "version": 2, "n": 2, "m": "x"})

    def check_text(self) -> str:
        item_id = f"{self.run}-text"
        self.applied({"operation": "put", "id": item_id, "item": {"text": AWKWARD_TEXT}})
        return self.expect_item(item_id, {"id": item_id, "version": 1, "text": AWKWARD_TEXT})

    def check_awkward_id(self) -> str:
        item_id = self.run + AWKWARD_ID_SUFFIX
        self.applied({"operation": "put", "id": item_id, "item": {"n": 1}})
        return self.expect_item(item_id, {"id": item_id, "version": 1, "n": 1})

    def check_delete(self) -> str:
        self.writes.append(self.applied({"operation": "delete", "id": self.run}))
        status, found = self.item(self.run)
        if status != 404:
            raise SmokeFailure(f"GET after delete answered {status} {found}")
        return "GET /items/{id} now 404"

    def check_history(self) -> str:
        """The stream, the bus, the history rule and its consumer: each applied write of the
        main item is one change in GET /items/{id}/history, in version order."""
        expected = [(n + 1, change, request_id) for n, (change, request_id) in
                    enumerate(zip(["created", "updated", "deleted"], self.writes, strict=False))]
        if len(expected) != 3:
            raise SmokeFailure("the main item's writes did not all apply")
        deadline = time.monotonic() + self.timeout
        while True:
            response = self.get(f"/items/{quote(self.run, safe='')}/history")
            changes = response.json().get("changes", []) if response.status_code == 200 else []
            found = [(c.get("version"), c.get("change"), c.get("requestId")) for c in changes]
            if found == expected:
                return f"{len(found)} changes, versions 1-3, each naming its request"
            if time.monotonic() > deadline:
                raise SmokeFailure(f"GET /items/{{id}}/history answered {response.status_code} "
                                   f"{found}, expected {expected}")
            time.sleep(1)

    def check_invalid_body(self) -> str:
        # An unknown property whose name holds a quote and a backslash: API Gateway's
        # validationErrorString quotes it, and the 400 body must stay valid JSON.
        body = json.dumps({"operation": "create", "id": self.run, "item": {"a": 1},
                           'q"uote\\d': 1})
        response = self.post(body)
        try:
            answer = response.json()
        except ValueError:
            raise SmokeFailure(
                f"{response.status_code}, body not JSON: {response.text[:300]}") from None
        if response.status_code != 400 or not isinstance(answer.get("message"), str):
            raise SmokeFailure(f"answered {response.status_code} {answer}")
        return answer["message"][:80]

    def check_too_large(self) -> str:
        limit = queue_message_limit()
        body = json.dumps({"operation": "put", "id": self.run, "item": {"blob": "x" * limit}})
        response = self.post(body)
        if response.status_code != 413:
            raise SmokeFailure(f"{len(body)} bytes answered {response.status_code} "
                               f"{response.text[:300]}")
        return f"{len(body)} bytes (limit {limit}): {response.text[:60]}"

    def check_no_api_key(self) -> str:
        # An invalid body: even an open ingest API would enqueue nothing.
        return _expect_403(self.post('{"operation": "smoke-without-key"}', api_key=""),
                           FORBIDDEN)

    def check_unsigned_write(self) -> str:
        # With the key where the stage needs one: only the signature is missing.
        return _expect_403(self.post('{"operation": "smoke-unsigned"}', signed=False),
                           MISSING_TOKEN)

    def check_write_wrong_secret(self) -> str:
        response = self.post('{"operation": "smoke-wrong-secret"}', credentials=self._wrong())
        return self._expect_mismatch(response)

    def check_unsigned_read(self) -> str:
        return _expect_403(self.get("/items?limit=1", signed=False), MISSING_TOKEN)

    def check_wrong_secret(self) -> str:
        return self._expect_mismatch(self.get("/items?limit=1", credentials=self._wrong()))

    def _wrong(self) -> Credentials:
        return Credentials(self.credentials.access_key, "not-the-secret-key",
                           self.credentials.token)

    @staticmethod
    def _expect_mismatch(response: requests.Response) -> str:
        message = str((json_or_none(response) or {}).get("message", ""))
        if response.status_code != 403 or not message.startswith(SIGNATURE_MISMATCH):
            raise SmokeFailure(f"answered {response.status_code} {response.text[:300]}")
        return message[:60]


def _expect_403(response: requests.Response, body: dict[str, str]) -> str:
    """The response text, if API Gateway refused with 403 and exactly this JSON body."""
    if response.status_code != 403 or json_or_none(response) != body:
        raise SmokeFailure(f"answered {response.status_code} {response.text[:300]}")
    return response.text
