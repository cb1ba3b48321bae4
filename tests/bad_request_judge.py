"""An independent judge of bad POST /SQSManager requests, and the shape of such a request.

`contract_verdict` decides from the contract alone (Content-Type, UTF-8, strict JSON,
chalicelib/command.schema.json with Python's `json` and `jsonschema`, not the gateway's code)
whether a request is valid, bad, or undecidable here. tests/bad_request_generator.py makes the
requests it judges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "chalicelib" / "command.schema.json"
VALIDATOR = Draft4Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
MIB = 1024 * 1024
API_GATEWAY_PAYLOAD_LIMIT = 10 * MIB  # AWS "Amazon API Gateway quotas": 10 MB payload
JSON = "application/json"
NO_CONTENT_TYPE = ""  # the header is left out (API Gateway then assumes application/json)


@dataclass(frozen=True)
class Request:
    kind: str
    body: bytes
    content_type: str = JSON
    extra_headers: dict[str, str] = field(default_factory=dict)
    query: str = ""  # appended to the path, as sent

    def headers(self) -> dict[str, str]:
        found = dict(self.extra_headers)
        if self.content_type != NO_CONTENT_TYPE:
            found["Content-Type"] = self.content_type
        return found


VALID = "valid"
BAD = "bad"
UNDECIDED = "undecided"  # e.g. nested deeper than Python's json can parse here


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def contract_verdict(request: Request) -> str:
    """VALID if the contract accepts the request, BAD if it must be refused, else UNDECIDED."""
    mime = (request.content_type or JSON).split(";")[0].strip().lower()
    if mime != JSON or len(request.body) > API_GATEWAY_PAYLOAD_LIMIT:
        return BAD
    try:
        document = json.loads(request.body.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        return UNDECIDED
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        return BAD
    return VALID if VALIDATOR.is_valid(document) else BAD
