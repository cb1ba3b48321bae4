"""One error family. Routes in app.py map these to HTTP; the consumer maps them to outcomes."""

from __future__ import annotations

from enum import StrEnum


class RetryCause(StrEnum):
    """Why a message went back to SQS (retries.py paces it; metrics.py counts it by cause)."""

    THROTTLED = "throttled"  # DynamoDB throttled the call
    UNAVAILABLE = "unavailable"  # a 5xx, a timeout, no connection
    CONFLICT = "conflict"  # another writer of the item (a transaction conflict, repeated merges)
    WAITING = "waiting"  # a failed condition waits for earlier requests (the in-order window)
    DEFERRED = "deferred"  # too little of Lambda's time left to start it
    GROUP_STOPPED = "group_stopped"  # FIFO: an earlier message of its group failed
    UNEXPECTED = "unexpected"  # anything else (a bug, a configuration error): DLQ if it lasts


class SqsManagerError(Exception):
    """Base class of every error sqs-manager raises on purpose."""


class InvalidCommandError(SqsManagerError):
    """The message body is not a valid command: rejected for good, never retried."""

    def __init__(self, message: str, operation: str | None = None,
                 item_id: str | None = None) -> None:
        super().__init__(message)
        # What the body said, where it said it: recorded in the rejected outcome.
        self.operation = operation
        self.item_id = item_id


class ItemTooLargeError(InvalidCommandError):
    """The item would not fit DynamoDB's 400 KB item limit."""


class TransientError(SqsManagerError):
    """Throttling, a 5xx or a timeout: the message goes back to SQS and is retried."""

    def __init__(self, message: str, cause: RetryCause = RetryCause.UNAVAILABLE) -> None:
        super().__init__(message)
        self.cause = cause


class TransactionConflictError(TransientError):
    """Another transaction was writing the same item: retried in the handler first, then by SQS."""

    def __init__(self, message: str) -> None:
        super().__init__(message, RetryCause.CONFLICT)


class ConditionPendingError(SqsManagerError):
    """A write's condition failed while an earlier request to the same item may still be on its
    way (SQS delivers out of order): the message is tried again after a delay, not rejected."""


class NotFoundError(SqsManagerError):
    """A read found nothing."""


class ItemNotFoundError(NotFoundError):
    pass


class OutcomeNotFoundError(NotFoundError):
    """No outcome for the request (yet): GET /requests/{id} answers that it is pending."""

    def __init__(self, request_id: str) -> None:
        super().__init__("no outcome recorded: the request is still queued, or its requestId is "
                         "unknown or its outcome has expired")
        self.request_id = request_id


class InvalidQueryError(SqsManagerError):
    """A list request's cursor or limit is malformed (HTTP 400)."""


class BatchRetryError(SqsManagerError):
    """Raised after deleting a batch's successful messages, so SQS redelivers only the rest."""
