"""Requests the gateway must refuse with a JSON 4xx and nothing enqueued: one list for the
functional (in-process gateway) and end-to-end (pipeline process) tiers."""

from __future__ import annotations

VALID = '{"operation": "create", "id": "x", "item": {}}'

BAD_REQUESTS: list[tuple[str, str, int]] = [
    (VALID, "text/plain", 415),
    (VALID, "application/x-www-form-urlencoded", 415),
    ("{not json", "application/json", 400),
    ("", "application/json", 400),
    ('["operation"]', "application/json", 400),
    ('{"operation": "create", "id": "x"}', "application/json", 400),
    ('{"operation": "explode", "id": "x"}', "application/json", 400),
    ('{"operation": "create", "id": "", "item": {}}', "application/json", 400),
    ('{"operation": "create", "id": "x", "item": {"version": 3}}', "application/json", 400),
    ('{"operation": "update", "id": "x", "item": {}}', "application/json", 400),
    ('{"operation": "delete", "id": "x", "extra": true}', "application/json", 400),
    ('{"operation": "create", "id": "x", "item": {"n": NaN}}', "application/json", 400),
    # Decimal raises InvalidOperation (not a ValueError) on this exponent.
    ('{"operation": "put", "id": "e1", "item": {"n": 1e9999999999999999999}}',
     "application/json", 400),
    ("[" * 100_000 + "]" * 100_000, "application/json", 400),
]
