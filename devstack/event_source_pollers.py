"""The event source's pollers, made from the app's registrations as deployed: the main queue's
into `handle_messages`, the change path's (the table's stream into `publish_changes`, the
history queue into `record_history`); and how they stop together. devstack/event_source.py runs
them in a process of their own, devstack/pipeline.py in threads of the gateway's."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice
from chalice.config import Config

from devstack.lambda_events import sqs_event_config
from devstack.poller import SqsPoller
from devstack.resources import client, region
from devstack.stream_events import stream_event_config
from devstack.stream_failures import StreamFailureSettings, sqs_destination
from devstack.stream_poller import StreamPoller

if TYPE_CHECKING:
    from devstack.event_source import EventSourceSpec

# The history queue's batches at once: "When messages are available, Lambda starts processing
# five batches at a time with five concurrent invocations of your function", more with a
# backlog ("Configuring scaling behavior for SQS event source mappings", Lambda Developer Guide).
# One poller (the main queue's way) left a backlog of seconds at 100 changes/s. On moto, which
# answers DynamoDB one request at a time (pipeline_settings.poller_concurrency), one: more
# would only wait for each other, and each long-polls the queue every second while idle.
HISTORY_POLLERS = 5

# How long the pollers are given to finish the batch in hand: a long poll (1 s) plus a batch.
POLLERS_STOP_SECONDS = SqsPoller.STOP_SECONDS


def make_pollers(spec: EventSourceSpec, app: Chalice, config: Config | None,
                 app_module: ModuleType) -> list[SqsPoller]:
    """spec.pollers pollers (not started) invoking the app's `handle_messages`."""
    source = sqs_event_config(app)
    # Lambda's timeout for this function, from .chalice/config.json (as deployed).
    timeout = config.scope(spec.stage, source.name).lambda_timeout if config else None
    store = getattr(app_module, "store", None)

    def outcome(request_id: str) -> dict[str, Any] | None:
        if store is None:
            return None
        try:
            found: dict[str, Any] = store.get_outcome(request_id)
            return found
        except Exception:
            return None

    sqs = client("sqs", spec.endpoint_url)  # boto3 clients are thread-safe
    return [SqsPoller(
        sqs, spec.queue_url, spec.queue_arn, app_module.handle_messages, region(),
        batch_size=source.batch_size, batching_window=source.maximum_batching_window_in_seconds,
        honour_batch_item_failures=spec.honour_batch_item_failures,
        visibility_timeout=spec.visibility_timeout, function_name=source.name,
        function_timeout=float(timeout or 60), max_receive_count=spec.max_receive_count,
        outcome_lookup=outcome, name=f"sqs-poller-{n}", crash_every=spec.crash_every)
        for n in range(spec.pollers)]


def make_change_pollers(spec: EventSourceSpec, app: Chalice, config: Config | None,
                        app_module: ModuleType) -> list[SqsPoller | StreamPoller]:
    """The change path's pollers (not started): the table's stream into `publish_changes`, the
    history queue into `record_history` (HISTORY_POLLERS at once, one on moto), each with its
    batch size and window as app.py registers them. None without a stream."""
    if not spec.stream_arn:
        return []
    stream = stream_event_config(app)
    history = sqs_event_config(app, "record_history")

    def timeout(function_name: str) -> float:
        seconds = config.scope(spec.stage, function_name).lambda_timeout if config else None
        return float(seconds or 60)

    streams = client("dynamodbstreams", spec.dynamodb_endpoint_url or spec.endpoint_url)
    sqs = client("sqs", spec.endpoint_url)
    return [
        StreamPoller(streams, spec.stream_arn, app_module.publish_changes, region(),
                     batch_size=stream.batch_size,
                     batching_window=stream.maximum_batching_window_in_seconds,
                     function_name=stream.name, function_timeout=timeout(stream.name),
                     crash_every=spec.stream_crash_every, poll_interval=spec.stream_poll_seconds,
                     failure=StreamFailureSettings(**spec.stream_failure),
                     on_failure=sqs_destination(sqs, spec.stream_failure_queue_url)
                     if spec.stream_failure_queue_url else None),
        *(SqsPoller(sqs, spec.history_queue_url, spec.history_queue_arn,
                    app_module.record_history, region(), batch_size=history.batch_size,
                    batching_window=history.maximum_batching_window_in_seconds,
                    visibility_timeout=spec.visibility_timeout,
                    function_name=history.name, function_timeout=timeout(history.name),
                    max_receive_count=spec.history_max_receive_count,
                    name=f"history-poller-{n}")
          for n in range(HISTORY_POLLERS if spec.dynamodb_endpoint_url else 1))]


def stop_pollers(pollers: Sequence[SqsPoller | StreamPoller],
                 timeout: float = POLLERS_STOP_SECONDS) -> None:
    """All stop after their batch in hand: asked at once, then joined, for `timeout` seconds
    in all."""
    for poller in pollers:
        poller.request_stop()
    deadline = time.monotonic() + timeout
    for poller in pollers:
        poller.stop(max(0.0, deadline - time.monotonic()))
