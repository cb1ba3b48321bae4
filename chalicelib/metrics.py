"""CloudWatch metrics of the consumer as embedded metric format (EMF) log lines.

Lambda sends stdout to CloudWatch Logs, and CloudWatch extracts the metrics of every line that
follows the EMF specification (a `_aws` object declaring the namespace, dimension sets and
metrics, each declared metric's value at the top level). No PutMetricData call, so no IAM
permission and no latency: one line per batch.

    batch = MetricsBatch.from_environ()
    batch.record("applied", duplicate=False, superseded=False)   # once per handled message
    batch.retried(2, "throttled")                               # handed back to SQS, and why
    batch.flush(batch_size=10, duration_ms=84.2)                 # prints the line, resets counts

Dimensions stay low-cardinality: one, `Service`, the function's name (AWS_LAMBDA_FUNCTION_NAME,
which Lambda sets), never an item id or request id. The infra dashboard reads these names
(tests/unit/test_metrics.py checks that it uses only metrics declared here).
Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

DEFAULT_NAMESPACE = "sqs-manager"
LOCAL_SERVICE = "sqs-manager-local"
DIMENSION = "Service"

# Outcome counts are exclusive: each handled message adds 1 to exactly one of them.
APPLIED = "Applied"
REJECTED = "Rejected"  # rejected for any reason but being superseded
SUPERSEDED = "Superseded"  # an older write that arrived after a newer one (rejected, not applied)
DUPLICATE = "Duplicate"  # a redelivered request that already has its outcome: no second effect
RETRIED = "Retried"  # handed back to SQS (transient failure, or out of time)
# Retried, by cause (chalicelib.errors.RetryCause's values; a test checks they agree): one
# metric per cause, since one EMF line holds one value per dimension.
RETRY_CAUSES = ("throttled", "unavailable", "conflict", "waiting", "deferred", "group_stopped",
                "unexpected")
RETRIED_BY_CAUSE = {cause: "Retried" + cause.title().replace("_", "")
                    for cause in RETRY_CAUSES}
BATCH_SIZE = "BatchSize"
HANDLER_DURATION = "HandlerDuration"
OUTCOMES = (APPLIED, REJECTED, SUPERSEDED, DUPLICATE)
COUNTS = (*OUTCOMES, RETRIED, *RETRIED_BY_CAUSE.values())
METRIC_UNITS: dict[str, str] = {
    **{name: "Count" for name in (*COUNTS, BATCH_SIZE)},
    HANDLER_DURATION: "Milliseconds",
}
# The change stream's publisher (chalicelib/publish.py), one line per stream batch.
PUBLISHED = "ChangesPublished"  # events the bus accepted
PUBLISH_FAILED = "ChangesNotPublished"  # records handed back to Lambda (retried from there)
STREAM_METRIC_UNITS: dict[str, str] = {PUBLISHED: "Count", PUBLISH_FAILED: "Count"}


def emf_line(namespace: str, service: str, values: Mapping[str, float],
             units: Mapping[str, str], timestamp_ms: int | None = None) -> dict[str, Any]:
    """One EMF object: `values` as metrics of `units`, under the one `Service` dimension."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[DIMENSION]],
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in units.items()],
            }],
        },
        DIMENSION: service,
        **values,
    }


def print_line(emf: Mapping[str, Any], stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(emf, separators=(",", ":")) + "\n")
    out.flush()


def namespace_and_service(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    return (environ.get("METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
            environ.get("METRICS_SERVICE") or environ.get("AWS_LAMBDA_FUNCTION_NAME")
            or LOCAL_SERVICE)


class MetricsBatch:
    """Counts for one invocation of the consumer, printed as one EMF line by `flush`."""

    def __init__(self, namespace: str = DEFAULT_NAMESPACE, service: str = LOCAL_SERVICE,
                 stream: TextIO | None = None) -> None:
        self.namespace = namespace
        self.service = service
        self._stream = stream
        self.counts: dict[str, int] = dict.fromkeys(COUNTS, 0)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> MetricsBatch:
        namespace, service = namespace_and_service(environ)
        return cls(namespace=namespace, service=service)

    def record(self, outcome_status: str, duplicate: bool = False,
               superseded: bool = False) -> None:
        """One handled message: its outcome's status ("applied" or "rejected"), whether it was
        a redelivery that found its outcome already recorded, whether it was superseded."""
        if duplicate:
            self.counts[DUPLICATE] += 1
        elif superseded:
            self.counts[SUPERSEDED] += 1
        elif outcome_status == "applied":  # outcomes.Status is a StrEnum: its value compares
            self.counts[APPLIED] += 1
        elif outcome_status == "rejected":
            self.counts[REJECTED] += 1
        else:
            raise ValueError(f"unknown outcome status {outcome_status!r}")

    def retried(self, count: int = 1, cause: str | None = None) -> None:
        """Messages handed back to SQS for another delivery, and why (one of RETRY_CAUSES)."""
        if count < 0:
            raise ValueError("count must not be negative")
        if cause is not None and cause not in RETRIED_BY_CAUSE:
            raise ValueError(f"unknown retry cause {cause!r}")
        self.counts[RETRIED] += count
        if cause is not None:
            self.counts[RETRIED_BY_CAUSE[cause]] += count

    def line(self, batch_size: int, duration_ms: float,
             timestamp_ms: int | None = None) -> dict[str, Any]:
        """The EMF object for this batch (what `flush` prints)."""
        values: dict[str, float] = {**self.counts, BATCH_SIZE: batch_size,
                                    HANDLER_DURATION: round(duration_ms, 3)}
        return emf_line(self.namespace, self.service, values, METRIC_UNITS, timestamp_ms)

    def flush(self, batch_size: int, duration_ms: float) -> dict[str, Any]:
        """Print this batch's EMF line to stdout (Lambda's log stream), then start over."""
        emf = self.line(batch_size, duration_ms)
        print_line(emf, self._stream)
        self.counts = dict.fromkeys(self.counts, 0)
        return emf
