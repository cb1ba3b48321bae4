"""sqs-manager: API Gateway -> SQS -> Lambda -> DynamoDB, wired with Chalice.

This module only wires decorators to chalicelib/. POST /SQSManager is not a Chalice route: API
Gateway sends it straight to SQS (infra/extension.yaml); this app consumes the queue and serves
the read API.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from chalice import BadRequestError, Chalice, IAMAuthorizer, NotFoundError, Response

from chalicelib import (
    BatchProcessor,
    BatchRetryError,
    ChangePublisher,
    HistoryConsumer,
    HistoryStore,
    InvalidQueryError,
    ItemNotFoundError,
    ItemStore,
    OutcomeNotFoundError,
    Settings,
    dumps,
    events_client,
    single_message_event,
)

# What the imports made lives as long as the container: the collector need not scan it again.
# Creating the DynamoDB client below sets off collections, which otherwise walk all of it:
# about 35 ms of every cold start (docs/benchmarks.md, "Decisions settled by a measurement").
gc.freeze()

app = Chalice(app_name="sqs-manager")

settings = Settings.from_environ()
# Clients are created once per container; nothing else runs at import (cold start).
store = ItemStore.from_settings(settings)
processor = BatchProcessor(store, settings)
history = HistoryStore(store.client, settings.history_table_name,
                       settings.history_retention_seconds)

# Lambda's batching: up to 10 messages, or whatever arrived within 1 s. Lambda refuses a
# batching window on a FIFO queue (infra/extension.yaml sets the same on the package path).
BATCH_SIZE = 10
BATCHING_WINDOW_SECONDS = 0 if settings.fifo else 1


@app.on_sqs_message(
    queue=settings.queue_name,
    batch_size=BATCH_SIZE,
    maximum_batching_window_in_seconds=BATCHING_WINDOW_SECONDS,
)
def handle_messages(event: Any) -> dict[str, Any]:
    # event.context is Lambda's context: its remaining time bounds the batch.
    return processor.process([record.to_dict() for record in event], event.context)


@functools.cache
def publisher() -> ChangePublisher:
    # Created on the stream handler's first batch: the other functions never pay for the client.
    return ChangePublisher(events_client(), settings.event_bus_name)


# The table's stream, each item change to the bus (chalicelib/publish.py). Chalice needs the ARN
# at import: STREAM_ARN comes from the stage (scripts/write_outputs.py) or, packaged, the merge
# template replaces it with the table's StreamArn (infra/extension.yaml).
@app.on_dynamodb_record(stream_arn=settings.stream_arn, batch_size=100,
                        starting_position="TRIM_HORIZON")
def publish_changes(event: Any) -> dict[str, Any]:
    result = publisher().publish([record.to_dict() for record in event])
    if result.failed and not settings.stream_report_batch_item_failures:
        # Without ReportBatchItemFailures on the mapping, Lambda would ignore the response and
        # move on: fail the whole batch instead (retried; subscribers deduplicate).
        raise BatchRetryError(f"{len(result.failed)} stream record(s) not published")
    return result.batch_response()


# A worked subscriber of the bus: each item's history (chalicelib/history.py).
@app.on_sqs_message(queue=settings.history_queue_name, batch_size=10)
def record_history(event: Any) -> dict[str, Any]:
    return HistoryConsumer(history, settings.report_batch_item_failures).process(
        [record.to_dict() for record in event])


# Items and outcomes are the users' data: reads need IAM (SigV4) unless the stage opts out.
read_auth = IAMAuthorizer() if settings.read_api_auth == "iam" else None


def _json(body: Any, status_code: int = 200) -> Response:
    # dumps() keeps DynamoDB numbers exact (Decimal), which Chalice's own encoder would not.
    return Response(body=dumps(body), status_code=status_code,
                    headers={"Content-Type": "application/json"})


def read_route(path: str) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """A GET route of the read API: its answer as JSON, and the error family as HTTP, here only
    (Chalice's middleware would see only ChaliceUnhandledError: Chalice answers 500 for the rest
    first). Path parameters arrive percent-encoded (API Gateway REST APIs, AWS-recorded
    "test%2Balias@gmail.com"; Chalice passes them on, chalice#511): decoded exactly once, with
    `unquote`, not `unquote_plus` (a "+" in a path is a plus)."""
    def register(view: Callable[..., Any]) -> Callable[..., Response]:
        @functools.wraps(view)
        def answer(**parameters: str) -> Response:
            try:
                return _json(view(**{k: unquote(v) for k, v in parameters.items()}))
            except ItemNotFoundError as error:
                raise NotFoundError(str(error)) from error
            except InvalidQueryError as error:
                raise BadRequestError(str(error)) from error
            except OutcomeNotFoundError as error:  # not an error to the caller: not yet there
                return _json({"requestId": error.request_id, "status": "pending",
                              "message": str(error)}, 404)
        return app.route(path, methods=["GET"], authorizer=read_auth)(answer)
    return register


@read_route("/items/{item_id}")
def get_item(item_id: str) -> dict[str, Any]:
    return store.get_item(item_id)


@read_route("/items")
def list_items() -> dict[str, Any]:
    request = app.current_request
    params: Mapping[str, str] = (request.query_params if request else None) or {}
    return store.list_items(limit=params.get("limit"), cursor=params.get("cursor"))


@read_route("/items/{item_id}/history")
def get_history(item_id: str) -> dict[str, Any]:
    request = app.current_request
    params: Mapping[str, str] = (request.query_params if request else None) or {}
    return history.page(item_id, limit=params.get("limit"), cursor=params.get("cursor"))


@read_route("/requests/{request_id}")
def get_request(request_id: str) -> dict[str, Any]:
    return store.get_outcome(request_id)


if settings.debug_routes:
    # Only the `local` stage sets DEBUG_ROUTES: `chalice local --stage local` then runs the SQS
    # consumer synchronously on a POSTed command, so a breakpoint in handle_messages is hit.
    @app.route("/debug/consume", methods=["POST"], content_types=["application/json"])
    def debug_consume() -> Response:
        body = app.current_request.raw_body if app.current_request else b""
        event = single_message_event(body.decode("utf-8") if isinstance(body, bytes) else body,
                                     settings)
        result = handle_messages(event, None)
        request_id = event["Records"][0]["messageAttributes"]["requestId"]["stringValue"]
        try:
            outcome = store.get_outcome(request_id)
        except OutcomeNotFoundError:
            outcome = {"requestId": request_id, "status": "pending"}
        return _json({"outcome": outcome, "batchResponse": result})
