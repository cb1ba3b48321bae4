"""One error family. Routes in app.py map these to HTTP; the consumer maps them to outcomes."""

from __future__ import annotations


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


class TransactionConflictError(TransientError):
    """Another transaction was writing the same item: retried in the handler first, then by SQS."""


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
