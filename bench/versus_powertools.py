"""bench.versus's Powertools consumer, as Powertools' documentation combines its batch processor
and idempotency ("Idempotency: batch integration"): `BatchProcessor(EventType.SQS)` +
`process_partial_response`, the seed's CRUD (bench/versus_seed.py) under `idempotent_function`
with `DynamoDBPersistenceLayer`, keyed on the SQS message id as its SQS example does, its
records in their own table (partition key `id`, TTL on `expiration`). Importing it creates its
clients, as a Lambda cold start does.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from bench.versus_seed import Handler, apply_command


def make_handler(client: Any, table_name: str, idempotency_table: str) -> Handler:
    processor = BatchProcessor(event_type=EventType.SQS)
    persistence = DynamoDBPersistenceLayer(table_name=idempotency_table, boto3_client=client)
    config = IdempotencyConfig(event_key_jmespath="messageId")

    @idempotent_function(data_keyword_argument="record", config=config,
                         persistence_store=persistence)
    def record_handler(record: SQSRecord) -> dict[str, Any]:
        apply_command(client, table_name, json.loads(record.body))
        return {"messageId": record.message_id}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        config.register_lambda_context(context)
        return dict(process_partial_response(event=event, record_handler=record_handler,
                                             processor=processor, context=context))
    return handler


handler = make_handler(boto3.client("dynamodb"), os.environ.get("TABLE_NAME", "bench-table"),
                       os.environ.get("IDEMPOTENCY_TABLE", "bench-idempotency"))
