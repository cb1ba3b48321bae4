"""`make package` run for real: the built extension (scripts/deployment_hash.py) merged by
`chalice package --merge-template`, the SAM template that path 2 deploys."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from scripts import bytecode, deployment_hash
from scripts.cfn_yaml import load_template
from tests import iam_policies
from tests.conftest import REGION, AppImport

ROOT = Path(__file__).resolve().parents[2]
CHALICE = Path(sys.executable).parent / "chalice"
# "Condition" is also a resource and output attribute, so only these are checked.
INTRINSICS = {"Ref"}


def run_chalice_package(project: Path, outdir: Path, *extra: str) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION,
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
    assert bytecode.compile_for_lambda()  # as `make package` does, before and after
    run_chalice_package(ROOT, outdir, "--merge-template", str(built))
    assert bytecode.add_to_package(outdir / "deployment.zip") == [
        "chalice/__pycache__/__init__.cpython-311.pyc", "chalice/__pycache__/app.cpython-311.pyc"]
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


@pytest.mark.parametrize("queue_type", ["standard", "fifo"])
def test_merged_template_is_cfn_lint_clean(merged: dict[str, Any], queue_type: str) -> None:
    template = {**merged, "Parameters": {**merged["Parameters"], "QueueType": {
        **merged["Parameters"]["QueueType"], "Default": queue_type}}}
    text = json.dumps(template)
    matches = lint(text, config=ManualArgs(regions=[REGION], include_checks=["I"]))
    assert [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches] == []


def test_merge_produced_no_mixed_intrinsics(merged: dict[str, Any]) -> None:
    assert double_intrinsics(merged) == []


def test_consumer_reports_batch_item_failures_from_our_queue(
        merged: dict[str, Any], monkeypatch: pytest.MonkeyPatch, import_app: AppImport) -> None:
    function = merged["Resources"]["HandleMessages"]
    assert function["Type"] == "AWS::Serverless::Function"
    props = function["Properties"]
    event = props["Events"]["HandleMessagesSqsEventSource"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["Queue"] == {"Fn::Sub": "${Queue.Arn}"}
    assert event["Properties"]["BatchSize"] == 10
    # app.py's window for a standard queue; none for FIFO, which Lambda refuses a window for.
    monkeypatch.setenv("QUEUE_NAME", "standard-queue")
    window = import_app().BATCHING_WINDOW_SECONDS
    assert window == 1
    assert event["Properties"]["MaximumBatchingWindowInSeconds"] == {"Fn::If": ["IsFifo", 0,
                                                                                 window]}
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
    assert roles == {"ApiGatewaySqsRole", "ConsumerRole", "ReadApiRole", "ApiGatewayLogsRole",
                     "PublisherRole", "HistoryRole"}
    assert all("Type" in body for body in resources.values())


def test_the_ingest_deployments_are_named_by_content_hash(merged: dict[str, Any]) -> None:
    resources = merged["Resources"]
    built = deployment_hash.with_deployment_hash(load_template(deployment_hash.EXTENSION))
    names = {n for n, body in resources.items() if body["Type"] == "AWS::ApiGateway::Deployment"
             and body["Properties"]["RestApiId"] == {"Ref": "IngestApi"}}
    assert len(names) == 3  # one per IngestAuthorization mode
    assert names <= set(built["Resources"]) and "IngestDeploymentAwsIam" not in names
    assert resources["Stage"]["Properties"]["DeploymentId"] == built["Resources"]["Stage"][
        "Properties"]["DeploymentId"]


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
    assert len(functions) == 4 and all("Policies" not in f["Properties"] for f in functions)


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


def test_the_package_carries_a_checked_hash_pyc_of_every_module_but_app(
        packaged: Path) -> None:
    # Lambda cannot write .pyc files in /var/task: without these it compiles chalice/app.py and
    # chalicelib at every cold start (scripts/bytecode.py). Each must match the source shipped
    # beside it, and be readable by Lambda's runtime user.
    with zipfile.ZipFile(packaged / "deployment.zip") as package:
        names = set(package.namelist())
        modules = sorted(n for n in names if n.endswith(".py") and n != "app.py")
        assert {"chalicelib/store.py", "chalice/app.py"} <= set(modules)
        for module in modules:
            pyc_path = bytecode.pyc_name(module)
            assert (package.getinfo(pyc_path).external_attr >> 16) & 0o444 == 0o444, pyc_path
            pyc = package.read(pyc_path)
            assert pyc[:4] == importlib.util.MAGIC_NUMBER, module
            flags = int.from_bytes(pyc[4:8], "little")
            assert flags == 0b11, f"{module}: not a checked-hash .pyc (flags {flags:#b})"
            assert pyc[8:16] == importlib.util.source_hash(package.read(module)), module


def test_unpacked_as_lambda_does_python_uses_those_pyc_files(packaged: Path,
                                                             tmp_path: Path) -> None:
    # extractall gives every file a new time, which a timestamp-checked .pyc would not survive;
    # -B: nothing can be written, as in /var/task. -v says where each module's code came from.
    with zipfile.ZipFile(packaged / "deployment.zip") as package:
        package.extractall(tmp_path)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TABLE_NAME": "t",
           "QUEUE_NAME": "q", "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-B", "-v", "-c", "import app"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    for module in ("chalice/app.py", "chalicelib/store.py", "chalicelib/batch.py"):
        assert f"code object from '{tmp_path / bytecode.pyc_name(module)}'" in result.stderr, (
            module)


def matches(pattern: Any, event: Any) -> bool:
    """Lambda's filter rule syntax, the part the stream filter uses: nested keys, a list of
    allowed values, `{"prefix": ...}` ("Filter rule syntax", Lambda Developer Guide)."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(
            key in event and matches(value, event[key]) for key, value in pattern.items())
    return any(event.startswith(rule["prefix"]) if isinstance(rule, dict) else event == rule
               for rule in pattern)


def test_the_stream_mapping_retries_bisects_and_keeps_what_fails(merged: dict[str, Any]) -> None:
    """cfn-lint does not check SAM event properties: their structure, checked here."""
    resources = merged["Resources"]
    props = resources["PublishChanges"]["Properties"]
    event = props["Events"]["PublishChangesDynamodbEventSource"]
    assert event["Type"] == "DynamoDB"
    mapping = event["Properties"]
    assert mapping["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON" and mapping["BatchSize"] == 100
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    # Lambda's limits (CreateEventSourceMapping): retries 0-10000, record age 60-604800 s; the
    # age must stay under the stream's 24 h retention so the runbook can read records back.
    assert 0 < mapping["MaximumRetryAttempts"] <= 10_000
    assert 60 <= mapping["MaximumRecordAgeInSeconds"] < 86_400
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {
        "Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}}
    [rule] = mapping["FilterCriteria"]["Filters"]
    pattern = json.loads(rule["Pattern"])
    item = {"dynamodb": {"Keys": {"pk": {"S": "item#a"}}, "NewImage": {}}}
    outcome = {"dynamodb": {"Keys": {"pk": {"S": "request#r"}}}}
    assert matches(pattern, item) and not matches(pattern, outcome)
    assert props["Role"] == {"Fn::GetAtt": ["PublisherRole", "Arn"]}
    assert props["Environment"]["Variables"]["STREAM_REPORT_BATCH_ITEM_FAILURES"] == "true"
    assert props["Environment"]["Variables"]["EVENT_BUS_NAME"] == {
        "Fn::GetAtt": ["ChangeBus", "Name"]}
    assert props["FunctionName"] == {"Fn::Sub": "${ChaliceAppName}-${ChaliceStage}-"
                                                "publish_changes"}


def test_the_history_consumer_reads_the_rules_queue(merged: dict[str, Any]) -> None:
    resources = merged["Resources"]
    props = resources["RecordHistory"]["Properties"]
    event = props["Events"]["RecordHistorySqsEventSource"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::Sub": "${HistoryQueue.Arn}"}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["Role"] == {"Fn::GetAtt": ["HistoryRole", "Arn"]}
    assert resources["HistoryQueue"]["Properties"]["VisibilityTimeout"] >= 6 * props["Timeout"]
    [target] = resources["HistoryRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["HistoryQueue", "Arn"]}
    assert resources["HistoryRule"]["Properties"]["EventPattern"]["source"] == ["sqs-manager"]
