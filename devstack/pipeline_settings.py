"""What the local pipeline (devstack/pipeline.py) runs the app's functions with, as the deploy
paths set them: their environment variables, and how many batches its event source runs at
once."""

from __future__ import annotations

import logging
import os

from devstack.changes import ChangeNames
from devstack.resources import region
from devstack.stream_poller import POLL_INTERVAL_SECONDS

# The pipeline's own settings: what it says of them is in its log.
LOG = logging.getLogger("devstack.pipeline")

# Lambda runs several batches of one queue at once (its SQS pollers scale out); locally a few
# pollers do, where the store takes concurrent transactions.
DEFAULT_POLLER_CONCURRENCY = 3


def poller_concurrency(table_on_moto: bool, requested: int | None) -> int:
    """How many batches the local event source runs at once: on moto one, always. moto's own
    transactions lose updates under concurrent ones, so patched moto answers DynamoDB
    one request at a time: more batches would only wait for each other."""
    if requested is not None and requested < 1:
        raise ValueError(f"poller concurrency must be at least 1, not {requested}")
    if table_on_moto:
        if requested is not None and requested > 1:
            LOG.warning("--concurrency %d ignored: the table is on moto, which answers DynamoDB "
                        "one request at a time; one batch at a time", requested)
        return 1
    return requested or DEFAULT_POLLER_CONCURRENCY


def stream_poll_seconds() -> float:
    """How often the stream poller reads an idle shard: Lambda's 4 times a second, or
    $DEVSTACK_STREAM_POLL_SECONDS. Those polls are most of what an idle pipeline costs (3.5% of
    a core on moto, 1.9% at one a second): the test suite, which keeps dozens of pipelines
    waiting between their tests, reads once a second (tests/conftest.py)."""
    seconds = float(os.environ.get("DEVSTACK_STREAM_POLL_SECONDS", POLL_INTERVAL_SECONDS))
    if not seconds > 0:
        raise ValueError(f"DEVSTACK_STREAM_POLL_SECONDS must be positive, not {seconds}")
    return seconds


def app_environment(table_name: str, queue_name: str, endpoint_url: str,
                    dynamodb_endpoint_url: str | None, honour_batch_item_failures: bool,
                    change_names: ChangeNames) -> dict[str, str]:
    """The app's environment variables for the pipeline's resources (`load_app` sets them)."""
    # The handler's mode follows the (simulated) event source mapping's setting, as the two
    # deploy paths set it: a mismatch would lose failed messages.
    report = "true" if honour_batch_item_failures else "false"
    env = {"TABLE_NAME": table_name, "QUEUE_NAME": queue_name,
           "AWS_ENDPOINT_URL": endpoint_url, "REPORT_BATCH_ITEM_FAILURES": report,
           "STREAM_REPORT_BATCH_ITEM_FAILURES": "true", "AWS_DEFAULT_REGION": region(),
           **change_names.app_env()}
    if dynamodb_endpoint_url is not None:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = (os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
                                            or dynamodb_endpoint_url)
    else:
        # moto answers DynamoDB one request at a time (devstack/moto_patches/): the
        # consumer writes a batch's items one at a time there. Amazon's engine (and
        # DynamoDB) take the default, a thread per item.
        env.setdefault("BATCH_CONCURRENCY", os.environ.get("BATCH_CONCURRENCY", "1"))
    return env
