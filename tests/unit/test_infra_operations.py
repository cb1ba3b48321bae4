"""infra/extension.yaml for operators (issue 9): tracing, access logs, alarms, the dashboard and
the checkov skips, checked statically against .chalice/config.json and chalicelib/metrics.py."""

from __future__ import annotations

import json
import re
from typing import Any

from chalicelib import metrics
from tests.infra_files import CONSUMER_NAME, lambda_setting, statements

PUBLISHER_NAME = "${ChaliceAppName}-${ChaliceStage}-publish_changes"
CONTEXT_SAMPLE = {"$context.requestTimeEpoch": "1700000000000"}


def render_access_log(text: str) -> dict[str, Any]:
    """An access log format with every $context variable given a sample value: must be JSON."""
    rendered = re.sub(r"\$context\.[A-Za-z.]+",
                      lambda m: CONTEXT_SAMPLE.get(m.group(0), "x-" + m.group(0)[9:]), text)
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def test_chalice_names_match_the_template_parameters(template: dict[str, Any],
                                                     config: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["ChaliceAppName"]["Default"] == config["app_name"]
    assert parameters["ChaliceStage"]["Default"] in config["stages"]
    assert "handle_messages" in config["lambda_functions"]


def test_tracing_is_on_for_every_hop(resources: dict[str, Any], config: dict[str, Any]) -> None:
    assert resources["Stage"]["Properties"]["TracingEnabled"] is True
    # Chalice's own read API: `chalice deploy` traces it from "xray"; the merge does it for
    # `chalice package`, which sets Tracing only on the functions.
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True
    for function in ("handle_messages", "api_handler"):
        assert lambda_setting(config, "prod1", function, "xray") is True


def test_ingest_access_log_is_json_with_both_request_ids(resources: dict[str, Any]) -> None:
    setting = resources["Stage"]["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:"
                                         "${AWS::AccountId}:log-group:${IngestAccessLogGroup}"}
    line = render_access_log(setting["Format"])
    assert line["extendedRequestId"] == "x-extendedRequestId"  # the 202's requestId, URL-safe
    assert line["requestId"] == "x-requestId"
    assert {"xrayTraceId", "status", "integrationStatus", "errorMessage"} <= set(line)
    group = resources["IngestAccessLogGroup"]
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    read = resources["RestAPI"]["Properties"]["AccessLogSetting"]
    assert "${ReadApiAccessLogGroup}" in read["DestinationArn"]["Fn::Sub"]
    assert {"extendedRequestId", "requestId"} <= set(render_access_log(read["Format"]))


def test_access_logging_waits_for_the_account_logs_role(resources: dict[str, Any]) -> None:
    description = resources["Stage"]["Properties"]["Description"]["Fn::If"]
    assert description[0] == "SetAccountLogsRole"
    assert "${ApiGatewayAccount}" in description[1]["Fn::Sub"]


ALARMS = {
    "DeadLetterQueueAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                             [{"Name": "QueueName",
                               "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]),
    "QueueAgeAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage",
                      [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}]),
    "ConsumerErrorsAlarm": ("AWS/Lambda", "Errors",
                            [{"Name": "FunctionName", "Value": {"Fn::Sub": CONSUMER_NAME}}]),
    "ConsumerThrottlesAlarm": ("AWS/Lambda", "Throttles",
                               [{"Name": "FunctionName", "Value": {"Fn::Sub": CONSUMER_NAME}}]),
    # API Gateway names its metrics by the REST API's Name.
    "Ingest5xxAlarm": ("AWS/ApiGateway", "5XXError",
                       [{"Name": "ApiName", "Value": {"Fn::Sub": "${AWS::StackName}-ingest"}},
                        {"Name": "Stage", "Value": {"Ref": "StageName"}}]),
    # The change path.
    "StreamFailureAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                           [{"Name": "QueueName",
                             "Value": {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]}}]),
    "HistoryDeadLetterQueueAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                    [{"Name": "QueueName", "Value": {
                                        "Fn::GetAtt": ["HistoryDeadLetterQueue", "QueueName"]}}]),
    "StreamIteratorAgeAlarm": ("AWS/Lambda", "IteratorAge",
                               [{"Name": "FunctionName", "Value": {"Fn::Sub": PUBLISHER_NAME}}]),
    "PublishFailuresAlarm": ({"Ref": "MetricsNamespace"}, metrics.PUBLISH_FAILED,
                             [{"Name": "Service", "Value": {"Fn::Sub": PUBLISHER_NAME}}]),
}
# Any message in these queues alarms (threshold 0); the others' thresholds are parameters.
QUEUE_ALARMS = {"DeadLetterQueueAlarm", "StreamFailureAlarm", "HistoryDeadLetterQueueAlarm"}


def test_alarms_watch_the_right_metrics_and_notify_the_topic(template: dict[str, Any],
                                                            resources: dict[str, Any]) -> None:
    found = {name for name, body in resources.items()
             if body.get("Type") == "AWS::CloudWatch::Alarm"}
    assert found == set(ALARMS)
    assert resources["IngestApi"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-ingest"}
    for name, (namespace, metric, dimensions) in ALARMS.items():
        alarm = resources[name]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
            namespace, metric, dimensions), name
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}],
                                                    {"Ref": "AWS::NoValue"}]}, name
        assert alarm["TreatMissingData"] == "notBreaching"
        threshold = alarm["Threshold"]
        if name not in QUEUE_ALARMS:
            parameter = template["Parameters"][threshold["Ref"]]
            assert parameter["Type"] == "Number" and parameter["Default"] >= 1, name
    # The consumer's alarms name the function its role may log for.
    logs = [s for s in statements(resources["ConsumerRole"]) if s.get("Sid") == "Logs"]
    assert {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                       "log-group:/aws/lambda/" + CONSUMER_NAME} in logs[0]["Resource"]


def dashboard_widgets(resources: dict[str, Any]) -> list[dict[str, Any]]:
    text, variables = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", text))
    # Every ${...} is a parameter, a resource attribute, a pseudo parameter or a local variable.
    assert all(n in variables or n.startswith("AWS::") or n.split(".")[0] in resources
               or n in {"StageName", "MetricsNamespace"} for n in names), names
    body: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", text))
    widgets: list[dict[str, Any]] = body["widgets"]
    return widgets


def dashboard_metrics(resources: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric) of every line; "." repeats the line above, as CloudWatch reads it."""
    found: set[tuple[str, str]] = set()
    for widget in dashboard_widgets(resources):
        previous: list[Any] = []
        for line in widget["properties"]["metrics"]:
            fields = [f for f in line if not isinstance(f, dict)]
            fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
            found.add((fields[0], fields[1]))
            previous = fields
    return found


def test_dashboard_shows_the_whole_path(resources: dict[str, Any]) -> None:
    shown = dashboard_metrics(resources)
    assert {("AWS/ApiGateway", "Count"), ("AWS/ApiGateway", "5XXError"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            ("AWS/SQS", "ApproximateAgeOfOldestMessage"), ("AWS/Lambda", "Duration"),
            ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")} <= shown
    # The consumer's outcomes are exactly the EMF metrics chalicelib/metrics.py declares.
    ours = {metric for namespace, metric in shown if namespace == "<MetricsNamespace>"}
    assert ours == set(metrics.METRIC_UNITS) | set(metrics.STREAM_METRIC_UNITS)
    text = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    assert "${DeadLetterQueue.QueueName}" in text and "${Queue.QueueName}" in text
    assert "${HistoryDeadLetterQueue.QueueName}" in text
    assert "${StreamFailureQueue.QueueName}" in text
    assert ("AWS/Lambda", "IteratorAge") in shown
    assert resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][1]["Consumer"] == {
        "Fn::Sub": CONSUMER_NAME}


def test_metrics_namespace_is_the_same_on_both_paths(template: dict[str, Any],
                                                     config: dict[str, Any]) -> None:
    default = template["Parameters"]["MetricsNamespace"]["Default"]
    assert default == metrics.DEFAULT_NAMESPACE
    assert config["stages"]["prod1"]["environment_variables"]["METRICS_NAMESPACE"] == default


def checkov_skips(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.extend(node.get("Metadata", {}).get("checkov", {}).get("skip", []))
        for value in node.values():
            found.extend(checkov_skips(value))
    return found


def test_every_checkov_skip_says_why(resources: dict[str, Any]) -> None:
    skips = checkov_skips(resources)
    assert skips, "the template skips some checkov checks (tests/functional/test_infra_checkov.py)"
    for skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), skip
        assert len(skip.get("comment", "").split()) >= 8, f"{skip['id']}: say why it does not apply"
