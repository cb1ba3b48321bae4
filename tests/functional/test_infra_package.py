"""`make package` run for real: the built extension (scripts/deployment_hash.py) merged by
`chalice package --merge-template`, the SAM template that path 2 deploys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from scripts import deployment_hash
from scripts.cfn_yaml import load_template
from tests import iam_policies

ROOT = Path(__file__).resolve().parents[2]
CHALICE = Path(sys.executable).parent / "chalice"
# "Condition" is also a resource and output attribute, so only these are checked.
INTRINSICS = {"Ref"}


def run_chalice_package(project: Path, outdir: Path, *extra: str) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-west-2",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_PROFILE", None)
    result = subprocess.run(
        [str(CHALICE), "package", "--stage", "prod1", *extra, str(outdir)],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("package")
    built = deployment_hash.write(tmp_path_factory.mktemp("build") / "extension.yaml")
    run_chalice_package(ROOT, outdir, "--merge-template", str(built))
    return outdir


@pytest.fixture(scope="module")
def merged(packaged: Path) -> dict[str, Any]:
    # A YAML merge template makes Chalice write sam.yaml (long form, plain YAML).
    assert sorted(p.name for p in packaged.iterdir()) == ["deployment.zip", "sam.yaml"]
    return load_template(packaged / "sam.yaml")


def double_intrinsics(node: Any, path: str = "") -> list[str]:
    """Dicts holding an intrinsic next to other keys: what a deep merge of two intrinsics makes."""
    found: list[str] = []
    if isinstance(node, dict):
        keys = set(node)
        if len(keys) > 1 and any(k in INTRINSICS or k.startswith("Fn::") for k in keys):
            found.append(f"{path}: {sorted(keys)}")
        for key, value in node.items():
            found.extend(double_intrinsics(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(double_intrinsics(item, f"{path}/{index}"))
    return found


def test_merged_template_is_cfn_lint_clean(packaged: Path) -> None:
    text = (packaged / "sam.yaml").read_text(encoding="utf-8")
    matches = lint(text, config=ManualArgs(regions=["us-west-2"], include_checks=["I"]))
    assert [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches] == []


def test_merge_produced_no_mixed_intrinsics(merged: dict[str, Any]) -> None:
    assert double_intrinsics(merged) == []


def test_consumer_reports_batch_item_failures_from_our_queue(merged: dict[str, Any]) -> None:
    function = merged["Resources"]["HandleMessages"]
    assert function["Type"] == "AWS::Serverless::Function"
    props = function["Properties"]
    event = props["Events"]["HandleMessagesSqsEventSource"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["Queue"] == {"Fn::Sub": "${Queue.Arn}"}
    assert event["Properties"]["BatchSize"] == 10
    assert event["Properties"]["MaximumBatchingWindowInSeconds"] == 1
    assert props["Role"] == {"Fn::GetAtt": ["ConsumerRole", "Arn"]}
    assert props["Timeout"] == 60
    env = props["Environment"]["Variables"]
    assert env["REPORT_BATCH_ITEM_FAILURES"] == "true"
    assert env["TABLE_NAME"] == {"Ref": "Table"}
    assert env["QUEUE_NAME"] == {"Fn::GetAtt": ["Queue", "QueueName"]}
    assert env["OUTCOME_TTL_DAYS"] == "7"
    assert merged["Resources"]["Queue"]["Properties"]["VisibilityTimeout"] >= 6 * props["Timeout"]


def test_api_handler_uses_the_read_role(merged: dict[str, Any]) -> None:
    props = merged["Resources"]["APIHandler"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["ReadApiRole", "Arn"]}
    assert props["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": "Table"}
    assert props["Environment"]["Variables"]["REPORT_BATCH_ITEM_FAILURES"] == "false"


def test_only_our_roles(merged: dict[str, Any]) -> None:
    resources = merged["Resources"]
    assert "DefaultRole" not in resources
    roles = {name for name, body in resources.items() if body["Type"] == "AWS::IAM::Role"}
    assert roles == {"ApiGatewaySqsRole", "ConsumerRole", "ReadApiRole", "ApiGatewayLogsRole"}
    assert all("Type" in body for body in resources.values())


def test_the_ingest_deployment_is_named_by_content_hash(merged: dict[str, Any]) -> None:
    resources = merged["Resources"]
    built = deployment_hash.with_deployment_hash(load_template(deployment_hash.EXTENSION))
    [name] = [n for n, body in resources.items() if body["Type"] == "AWS::ApiGateway::Deployment"
              and body["Properties"]["RestApiId"] == {"Ref": "IngestApi"}]
    assert name in built["Resources"] and name != "IngestDeployment"
    assert resources["Stage"]["Properties"]["DeploymentId"] == {"Ref": name}


def test_both_apis_and_outputs(merged: dict[str, Any]) -> None:
    resources = merged["Resources"]
    assert resources["RestAPI"]["Type"] == "AWS::Serverless::Api"
    assert resources["IngestApi"]["Type"] == "AWS::ApiGateway::RestApi"
    assert {"EndpointURL", "IngestUrl", "QueueUrl", "TableName"} <= set(merged["Outputs"])


def test_every_policy_of_the_package_is_least_privilege(merged: dict[str, Any]) -> None:
    """Chalice's generated policies included: none remain (DefaultRole is gone), and ours
    carry no wildcard action and no "*" resource AWS would let us narrow."""
    assert iam_policies.violations(merged) == []
    granted = iam_policies.granted_actions(merged)
    assert {"sqs:SendMessage", "dynamodb:PutItem", "xray:PutTraceSegments"} <= granted
    functions = [b for b in merged["Resources"].values()
                 if b["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 2 and all("Policies" not in f["Properties"] for f in functions)


def test_both_paths_name_the_functions_alike_and_trace_them(merged: dict[str, Any]) -> None:
    """chalice deploy names functions <app>-<stage>[-<function>]; the merge does the same, so
    the alarms and the dashboard name the consumer on both paths."""
    resources = merged["Resources"]
    handle = resources["HandleMessages"]["Properties"]
    assert handle["FunctionName"] == {
        "Fn::Sub": "${ChaliceAppName}-${ChaliceStage}-handle_messages"}
    assert resources["APIHandler"]["Properties"]["FunctionName"] == {
        "Fn::Sub": "${ChaliceAppName}-${ChaliceStage}"}
    assert handle["Tracing"] == resources["APIHandler"]["Properties"]["Tracing"] == "Active"
    assert handle["Environment"]["Variables"]["METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    for alarm in ("ConsumerErrorsAlarm", "ConsumerThrottlesAlarm"):
        [dimension] = resources[alarm]["Properties"]["Dimensions"]
        assert dimension["Value"] == handle["FunctionName"]
    read_api = resources["RestAPI"]["Properties"]
    assert read_api["TracingEnabled"] is True
    assert "${ReadApiAccessLogGroup}" in read_api["AccessLogSetting"]["DestinationArn"]["Fn::Sub"]
