"""The faults the proxy injects (devstack/faults.py): their kinds, what DynamoDB answers for
each (DynamoDB API Reference, "Error handling" and TransactWriteItems' CancellationReasons), a
fault matched by a marker in the request, and the seeded random mode. EventBridge's answers are
in devstack/eventbridge_faults.py."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

THROTTLE = "throttle"
SERVER_ERROR = "500"
CONFLICT = "conflict"
INVALID = "invalid"
INVALID_ACTION = "invalid-action"
# A 500 after the request reached the store: the write happened, the caller thinks it failed.
SERVER_ERROR_AFTER = "500-after"
# PutEvents only: some entries fail (FailedEntryCount), the others are put.
ENTRIES = "entries"
KINDS = (THROTTLE, SERVER_ERROR, CONFLICT, INVALID, INVALID_ACTION, SERVER_ERROR_AFTER, ENTRIES)
# What the random mode injects by default: what DynamoDB says when "try again later" is right.
TRANSIENT_KINDS = (THROTTLE, SERVER_ERROR, SERVER_ERROR_AFTER)

DYNAMODB_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"
DYNAMODB_ANSWERS: dict[str, tuple[int, str, str]] = {
    THROTTLE: (400, "ProvisionedThroughputExceededException",
               "The level of configured provisioned throughput for the table was exceeded. "
               "Consider increasing your provisioning level with the UpdateTable API."),
    SERVER_ERROR: (500, "InternalServerError", "Internal server error (injected)"),
    SERVER_ERROR_AFTER: (500, "InternalServerError",
                         "Internal server error (injected after the request was served)"),
    # What concurrent writers of one item get (DynamoDB API reference, TransactWriteItems): one
    # reason per action, in order; the outcome put (second action) did not conflict.
    CONFLICT: (400, "TransactionCanceledException",
               "Transaction cancelled, please refer cancellation reasons for specific reasons "
               "[TransactionConflict, None]"),
    INVALID: (400, "ValidationException", "One or more parameter values were invalid: (injected)"),
    INVALID_ACTION: (400, "TransactionCanceledException",
                     "Transaction cancelled, please refer cancellation reasons for specific "
                     "reasons [ValidationError, None]"),
}
CANCELLATION_REASONS = {
    CONFLICT: [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
               {"Code": "None"}],
    INVALID_ACTION: [{"Code": "ValidationError",
                      "Message": "One or more parameter values were invalid: (injected)"},
                     {"Code": "None"}],
}


@dataclass(eq=False)  # identity: remove() must drop this very fault
class Fault:
    """Answer requests containing `marker` with `kind`; `times=None` means always."""

    marker: str
    kind: str = THROTTLE
    times: int | None = 1
    operation: str | None = None  # e.g. "TransactWriteItems": match X-Amz-Target's suffix
    injected: int = 0

    def matches(self, body: bytes, target: str) -> bool:
        if self.times is not None and self.injected >= self.times:
            return False
        if self.operation and not target.endswith("." + self.operation):
            return False
        return self.marker.encode("utf-8") in body


@dataclass(eq=False)
class RandomFaults:
    """Each request (of `operation`, if given) fails with probability `rate`, with a kind drawn
    uniformly from `kinds`; seeded, so a run's sequence of draws is repeatable. Counts by kind."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = TRANSIENT_KINDS
    operation: str | None = None
    seen: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    failed_entries: int = 0  # PutEvents entries failed by `entries` faults

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"rate must be between 0 and 1, not {self.rate}")
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be some of {', '.join(KINDS)}, not {self.kinds}")
        self._rng = random.Random(self.seed)

    def draw(self, target: str) -> str | None:
        """The kind to inject for this request, or None to forward it (the caller locks)."""
        if self.operation and not target.endswith("." + self.operation):
            return None
        self.seen += 1
        if self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind

    def entries_to_fail(self, count: int) -> dict[int, int]:
        """Which of a PutEvents call's entries fail (each with even odds, at least one), each
        with an index into eventbridge.ENTRY_ERRORS (the caller locks)."""
        failing = {i: self._rng.randrange(2) for i in range(count) if self._rng.random() < 0.5}
        if count and not failing:
            failing = {self._rng.randrange(count): 0}
        self.failed_entries += len(failing)
        return failing

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())
