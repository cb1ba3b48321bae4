"""sqs-manager: API Gateway -> SQS -> Lambda -> DynamoDB, wired with Chalice.

This module only wires decorators to chalicelib/. POST /SQSManager is not a Chalice route: API
Gateway sends it straight to SQS (infra/extension.yaml); this app consumes the queue and serves
the read API.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from chalice import BadRequestError, Chalice, IAMAuthorizer, NotFoundError, Response

from chalicelib import (
    BatchProcessor,
    InvalidQueryError,
    ItemNotFoundError,
    ItemStore,
    OutcomeNotFoundError,
    Settings,
    dumps,
    single_message_event,
)

# What the imports made lives as long as the container: the collector need not scan it again.
# Creating the DynamoDB client below sets off collections, which otherwise walk all of it:
# about 35 ms of every cold start (BENCHMARKS.md, section 1).
gc.freeze()

app = Chalice(app_name="sqs-manager")

settings = Settings.from_environ()
# Clients are created once per container; nothing else runs at import (cold start).
store = ItemStore.from_settings(settings)
processor = BatchProcessor(store, settings)

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


# Items and outcomes are the users' data: reads need IAM (SigV4) unless the stage opts out.
read_auth = IAMAuthorizer() if settings.read_api_auth == "iam" else None


def _json(body: Any, status_code: int = 200) -> Response:
    # dumps() keeps DynamoDB numbers exact (Decimal), which Chalice's own encoder would not.
    return Response(body=dumps(body), status_code=status_code,
                    headers={"Content-Type": "application/json"})


def _path_parameter(value: str) -> str:
    """Decode a path parameter exactly once. API Gateway REST APIs hand Lambda-proxy
    pathParameters still percent-encoded (AWS-recorded captures in LocalStack's
    tests/aws/services/apigateway/test_apigateway_lambda.snapshot.json: "test%2Balias@gmail.com")
    and Chalice passes them on as they are (chalice#511). `unquote`, not `unquote_plus`: a "+"
    in a path is a plus, not a space."""
    return unquote(value)


@app.route("/items/{item_id}", methods=["GET"], authorizer=read_auth)
def get_item(item_id: str) -> Response:
    item_id = _path_parameter(item_id)
    try:
        return _json(store.get_item(item_id))
    except ItemNotFoundError as error:
        raise NotFoundError(str(error)) from error


@app.route("/items", methods=["GET"], authorizer=read_auth)
def list_items() -> Response:
    request = app.current_request
    params: Mapping[str, str] = (request.query_params if request else None) or {}
    try:
        page = store.list_items(limit=params.get("limit"), cursor=params.get("cursor"))
    except InvalidQueryError as error:
        raise BadRequestError(str(error)) from error
    return _json(page)


@app.route("/requests/{request_id}", methods=["GET"], authorizer=read_auth)
def get_request(request_id: str) -> Response:
    request_id = _path_parameter(request_id)
    try:
        return _json(store.get_outcome(request_id))
    except OutcomeNotFoundError as error:
        return _json({"requestId": request_id, "status": "pending", "message": str(error)}, 404)


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
