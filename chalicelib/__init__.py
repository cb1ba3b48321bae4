"""The sqs-manager domain, shipped to Lambda with app.py.

Standard library and boto3 only (boto3 comes with the Lambda runtime), so the deployment package
stays small and a cold start costs little more than creating one DynamoDB client. Local tooling
(devstack/, tests/) imports this package, never the other way round. This module only re-exports.
"""

from chalicelib.attributes import dumps, loads
from chalicelib.batch import BatchProcessor
from chalicelib.clients import events_client
from chalicelib.commands import Command, Stamp, parse_command
from chalicelib.errors import (
    BatchRetryError,
    ConditionPendingError,
    InvalidCommandError,
    InvalidQueryError,
    ItemNotFoundError,
    ItemTooLargeError,
    NotFoundError,
    OutcomeNotFoundError,
    SqsManagerError,
    TransactionConflictError,
    TransientError,
)
from chalicelib.events import single_message_event
from chalicelib.history import HistoryConsumer, HistoryStore
from chalicelib.outcomes import Outcome, Status
from chalicelib.publish import ChangePublisher
from chalicelib.settings import Settings
from chalicelib.store import ItemStore

__all__ = [
    "BatchProcessor",
    "BatchRetryError",
    "ChangePublisher",
    "Command",
    "ConditionPendingError",
    "HistoryConsumer",
    "HistoryStore",
    "InvalidCommandError",
    "InvalidQueryError",
    "ItemNotFoundError",
    "ItemStore",
    "ItemTooLargeError",
    "NotFoundError",
    "Outcome",
    "OutcomeNotFoundError",
    "Settings",
    "SqsManagerError",
    "Stamp",
    "Status",
    "TransactionConflictError",
    "TransientError",
    "dumps",
    "events_client",
    "loads",
    "parse_command",
    "single_message_event",
]
