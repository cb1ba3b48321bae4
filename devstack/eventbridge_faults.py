"""What EventBridge answers when PutEvents fails, for the fault proxy (devstack/faults.py).

A whole call fails as any EventBridge action does (PutEvents, "Errors", and "Common Errors",
EventBridge API Reference): InternalException (HTTP 500) or ThrottlingException (HTTP 400), in
the JSON 1.1 protocol. And a call that succeeds may fail entry by entry: "if an individual entry
within a request fails, EventBridge continues processing the rest", the answer's Entries are in
request order, as many as were sent, a failed one with ErrorCode and ErrorMessage and no EventId,
and FailedEntryCount counts them ("Sending events with PutEvents", EventBridge User Guide). The
retryable entry codes are InternalFailure and ThrottlingException (PutEventsResultEntry,
EventBridge API Reference). A failed entry was not delivered: the proxy forwards only the others.
"""

from __future__ import annotations

import json
from typing import Any

EVENTS_TARGET_PREFIX = "AWSEvents."  # X-Amz-Target of every EventBridge action
CONTENT_TYPE = "application/x-amz-json-1.1"
# kind (devstack/faults.py) -> (HTTP status, __type, message) of a whole call that failed.
WHOLE_CALL_ANSWERS: dict[str, tuple[int, str, str]] = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "500": (500, "InternalException", "Internal error (injected)"),
    "500-after": (500, "InternalException", "Internal error (injected after the events were "
                                            "put)"),
}
ENTRY_ERRORS = (("InternalFailure", "Internal failure (injected)"),
                ("ThrottlingException", "Request throttled (injected)"))


def is_eventbridge(target: str) -> bool:
    return target.startswith(EVENTS_TARGET_PREFIX)


def entry_count(body: bytes) -> int:
    try:
        entries = json.loads(body).get("Entries")
    except (ValueError, AttributeError):
        return 0
    return len(entries) if isinstance(entries, list) else 0


def without_entries(body: bytes, failing: set[int]) -> bytes:
    """The PutEvents request with only the entries that do not fail."""
    request = json.loads(body)
    request["Entries"] = [e for i, e in enumerate(request["Entries"]) if i not in failing]
    return json.dumps(request).encode()


def merged_answer(count: int, failing: dict[int, int], forwarded: bytes | None) -> bytes:
    """The answer to the whole request: the failing positions (index -> which ENTRY_ERRORS)
    failed, the others as the bus answered for them (in order)."""
    delivered: dict[str, Any] = json.loads(forwarded) if forwarded else {"Entries": []}
    answers = iter(delivered.get("Entries", []))
    entries = []
    for index in range(count):
        if index in failing:
            code, message = ENTRY_ERRORS[failing[index] % len(ENTRY_ERRORS)]
            entries.append({"ErrorCode": code, "ErrorMessage": message})
        else:
            entries.append(next(answers, {"ErrorCode": "InternalFailure",
                                          "ErrorMessage": "no answer from the bus"}))
    failed = sum(1 for entry in entries if entry.get("ErrorCode"))
    return json.dumps({"FailedEntryCount": failed, "Entries": entries}).encode()
