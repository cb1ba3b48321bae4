"""chalicelib/metrics.py: the consumer's EMF lines, parsed against CloudWatch's specification."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from chalicelib import metrics
from chalicelib.metrics import MetricsBatch

# CloudWatch EMF specification ("Specification: Embedded metric format"), MetricDefinition.Unit.
UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
         "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
         "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
         "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
         "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def emf_errors(line: str) -> list[str]:
    """What breaks the EMF specification in one log line (empty: CloudWatch extracts it)."""
    root = json.loads(line)
    if not isinstance(root, dict) or not isinstance(root.get("_aws"), dict):
        return ["no _aws object"]
    meta = root["_aws"]
    errors: list[str] = []
    if not isinstance(meta.get("Timestamp"), int) or meta["Timestamp"] < 0:
        errors.append("_aws.Timestamp must be a non-negative integer (ms since the epoch)")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*errors, "_aws.CloudWatchMetrics must be a non-empty array"]
    for directive in directives:
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= 1024:
            errors.append(f"bad Namespace {namespace!r}")
        for dimension_set in directive.get("Dimensions", []):
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                errors.append(f"bad dimension set {dimension_set!r}")
                continue
            for name in dimension_set:
                if not isinstance(root.get(name), str):
                    errors.append(f"dimension {name!r} has no string value at the top level")
        declared = directive.get("Metrics")
        if not isinstance(declared, list) or not 1 <= len(declared) <= 100:
            errors.append("Metrics must hold 1 to 100 definitions")
            continue
        for definition in declared:
            name = definition.get("Name")
            if not isinstance(name, str) or not 1 <= len(name) <= 255:
                errors.append(f"bad metric name {name!r}")
                continue
            if definition.get("Unit", "None") not in UNITS:
                errors.append(f"{name}: unknown unit {definition.get('Unit')!r}")
            value = root.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors.append(f"{name}: declared but no numeric value at the top level")
    return errors


def flushed(batch: MetricsBatch, batch_size: int, duration_ms: float) -> dict[str, Any]:
    stream = io.StringIO()
    batch._stream = stream
    batch.flush(batch_size, duration_ms)
    [line] = stream.getvalue().splitlines()
    assert emf_errors(line) == []
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_one_batch_is_one_valid_emf_line() -> None:
    batch = MetricsBatch(namespace="ns", service="sqs-manager-prod1-handle_messages")
    for status, duplicate, superseded in [("applied", False, False), ("applied", False, False),
                                          ("rejected", False, False), ("rejected", False, True),
                                          ("applied", True, False)]:
        batch.record(status, duplicate=duplicate, superseded=superseded)
    batch.retried(2, "throttled")
    line = flushed(batch, batch_size=7, duration_ms=12.3456)
    assert line["_aws"]["CloudWatchMetrics"] == [{
        "Namespace": "ns", "Dimensions": [["Service"]],
        "Metrics": [{"Name": name, "Unit": unit} for name, unit in metrics.METRIC_UNITS.items()]}]
    assert line["Service"] == "sqs-manager-prod1-handle_messages"
    assert {name: line[name] for name in metrics.METRIC_UNITS} == {
        "Applied": 2, "Rejected": 1, "Superseded": 1, "Duplicate": 1, "Retried": 2,
        **dict.fromkeys(metrics.RETRIED_BY_CAUSE.values(), 0), "RetriedThrottled": 2,
        "BatchSize": 7, "HandlerDuration": 12.346}
    # Only the dimension, the metrics and _aws: no request ids, no item ids.
    assert set(line) == {"_aws", "Service", *metrics.METRIC_UNITS}


def test_flush_starts_the_next_batch_from_zero() -> None:
    batch = MetricsBatch()
    batch.record("applied")
    flushed(batch, 1, 1.0)
    line = flushed(batch, 0, 0.5)
    assert [line[name] for name in (*metrics.OUTCOMES, metrics.RETRIED)] == [0, 0, 0, 0, 0]


def test_flush_writes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    MetricsBatch().flush(batch_size=3, duration_ms=5)
    [line] = capsys.readouterr().out.splitlines()
    assert emf_errors(line) == []
    assert json.loads(line)["BatchSize"] == 3


def test_namespace_and_service_come_from_the_environment() -> None:
    batch = MetricsBatch.from_environ({"METRICS_NAMESPACE": "custom",
                                       "AWS_LAMBDA_FUNCTION_NAME": "fn"})
    assert (batch.namespace, batch.service) == ("custom", "fn")
    assert MetricsBatch.from_environ({"METRICS_SERVICE": "svc", "AWS_LAMBDA_FUNCTION_NAME": "fn"}
                                     ).service == "svc"
    defaults = MetricsBatch.from_environ({})
    assert (defaults.namespace, defaults.service) == ("sqs-manager", "sqs-manager-local")


def test_unknown_outcomes_and_negative_retries_are_refused() -> None:
    batch = MetricsBatch()
    with pytest.raises(ValueError, match="pending"):
        batch.record("pending")
    with pytest.raises(ValueError):
        batch.retried(-1)


@pytest.mark.parametrize("broken, message", [
    ({"Service": "s", "Applied": 1}, "no _aws"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [["Service"]],
      "Metrics": [{"Name": "Applied", "Unit": "Count"}]}]}, "Service": "s"}, "Applied: declared"),
    ({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [["Service"]],
      "Metrics": [{"Name": "Applied", "Unit": "Count"}]}]}, "Applied": 1}, "dimension 'Service'"),
    ({"_aws": {"Timestamp": "now", "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [],
      "Metrics": [{"Name": "A", "Unit": "Things"}]}], }, "A": 1}, "Timestamp"),
])
def test_the_spec_check_catches_broken_lines(broken: dict[str, Any], message: str) -> None:
    assert any(message in error for error in emf_errors(json.dumps(broken)))
