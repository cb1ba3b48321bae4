"""The default standalone stack in moto's CloudFormation over HTTP (deployed once, module-scoped),
then scripts/write_outputs.py. tests/moto_stacks.py says what moto creates and what it skips;
other stacks (ingest mode switches, a changed method, FIFO) are in test_infra_stack_variants.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack.emulator import MotoServer
from tests.conftest import REGION
from tests.moto_stacks import (
    ROOT,
    STACK,
    client,
    create_stack,
    ingest_method,
    outputs,
    package_deploy_path,
)

# The clients name the endpoint themselves (tests/functional/conftest.py).
pytestmark = pytest.mark.usefixtures("no_endpoint_override")


@pytest.fixture(scope="module")
def stack(moto: MotoServer, template_body: str) -> dict[str, Any]:
    return create_stack(moto, STACK, template_body)


def test_stack_outputs(stack: dict[str, Any]) -> None:
    found = outputs(stack)
    assert {"QueueArn", "QueueName", "QueueUrl", "DeadLetterQueueArn", "DeadLetterQueueName",
            "TableName", "ConsumerRoleArn", "ReadApiRoleArn", "IngestUrl"} <= set(found)
    assert "ApiKeyId" not in found  # moto skips the ApiKey resource (so the output too)
    assert found["IngestUrl"].endswith(".execute-api.us-west-2.amazonaws.com/Prod1/SQSManager")
    assert found["QueueName"].startswith(f"{STACK}-Queue-")


def test_queue_and_dead_letter_queue(moto: MotoServer, stack: dict[str, Any]) -> None:
    found = outputs(stack)
    sqs = client(moto, "sqs")
    url = sqs.get_queue_url(QueueName=found["QueueName"])["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": found["DeadLetterQueueArn"], "maxReceiveCount": 30}
    assert attributes["VisibilityTimeout"] == "360"
    assert attributes["MaximumMessageSize"] == "1048576"
    assert attributes["MessageRetentionPeriod"] == str(4 * 86_400)
    assert attributes["SqsManagedSseEnabled"] == "true"
    dlq_url = sqs.get_queue_url(QueueName=found["DeadLetterQueueName"])["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert dlq["QueueArn"] == found["DeadLetterQueueArn"]
    assert dlq["MessageRetentionPeriod"] == str(14 * 86_400)
    assert "RedrivePolicy" not in dlq


def test_table(moto: MotoServer, stack: dict[str, Any]) -> None:
    table = client(moto, "dynamodb").describe_table(TableName=outputs(stack)["TableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_roles_and_ingest_api(moto: MotoServer, stack: dict[str, Any]) -> None:
    found = outputs(stack)
    iam = client(moto, "iam")
    for key in ("ConsumerRoleArn", "ReadApiRoleArn"):
        role_name = found[key].rsplit("/", 1)[1]
        assert iam.get_role(RoleName=role_name)["Role"]["Arn"] == found[key]
    method = ingest_method(moto, stack)
    assert method["httpMethod"] == "POST"
    assert method["methodIntegration"]["uri"].endswith(f"/{found['QueueName']}")


def test_ingest_authorization_modes(moto: MotoServer, stack: dict[str, Any],
                                    template_body: str) -> None:
    """AWS_IAM by default; API_KEY and AWS_IAM_AND_API_KEY on demand (the method as API Gateway
    holds it: authorizationType and apiKeyRequired)."""
    def auth(described: dict[str, Any]) -> tuple[str, bool]:
        method = ingest_method(moto, described)
        return method["authorizationType"], method["apiKeyRequired"]

    assert auth(stack) == ("AWS_IAM", False)
    assert outputs(stack)["IngestAuthorization"] == "AWS_IAM"
    assert "ApiKeyId" not in outputs(stack)
    key_stack = create_stack(moto, f"{STACK}-key", template_body,
                             {"IngestAuthorization": "API_KEY"})
    assert auth(key_stack) == ("NONE", True)
    assert "IngestInvokePolicyArn" not in outputs(key_stack)
    both = create_stack(moto, f"{STACK}-both", template_body,
                        {"IngestAuthorization": "AWS_IAM_AND_API_KEY"})
    assert auth(both) == ("AWS_IAM", True)


def test_the_invoke_policy_grants_exactly_the_ingest_method(moto: MotoServer,
                                                            stack: dict[str, Any]) -> None:
    found = outputs(stack)
    iam = client(moto, "iam")
    policy = iam.get_policy(PolicyArn=found["IngestInvokePolicyArn"])["Policy"]
    document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy[
        "DefaultVersionId"])["PolicyVersion"]["Document"]
    if isinstance(document, str):
        document = json.loads(document)
    api_id = found["IngestApiId"]
    [statement] = document["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    account = client(moto, "sts").get_caller_identity()["Account"]
    assert statement["Resource"] == (
        f"arn:aws:execute-api:{REGION}:{account}:{api_id}/Prod1/POST/SQSManager")


def test_write_outputs_into_a_copy_of_the_config(moto: MotoServer, stack: dict[str, Any],
                                                 tmp_path: Path) -> None:
    found = outputs(stack)
    config = tmp_path / "config.json"
    shutil.copy(ROOT / ".chalice" / "config.json", config)
    before = json.loads(config.read_text())
    env = {**os.environ, "AWS_ENDPOINT_URL": moto.endpoint_url}
    result = subprocess.run(
        [sys.executable, "-m", "scripts.write_outputs", "--stack-name", STACK,
         "--config", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    after = json.loads(config.read_text())
    prod = after["stages"]["prod1"]
    assert prod["environment_variables"] == {
        **before["stages"]["prod1"]["environment_variables"],
        "TABLE_NAME": found["TableName"], "QUEUE_NAME": found["QueueName"],
        "STREAM_ARN": found["StreamArn"], "EVENT_BUS_NAME": found["EventBusName"],
        "HISTORY_TABLE_NAME": found["HistoryTableName"],
        "HISTORY_QUEUE_NAME": found["HistoryQueueName"],
        "HISTORY_RETENTION_DAYS": found["HistoryRetentionDays"]}
    assert found["StreamArn"].startswith("arn:aws:dynamodb:")
    assert prod["manage_iam_role"] is False
    assert prod["lambda_functions"]["handle_messages"]["iam_role_arn"] == found["ConsumerRoleArn"]
    assert prod["lambda_functions"]["api_handler"]["iam_role_arn"] == found["ReadApiRoleArn"]
    assert after["stages"]["local"] == before["stages"]["local"]
    assert {k: v for k, v in after.items() if k != "stages"} == {
        k: v for k, v in before.items() if k != "stages"}


def test_written_config_packages_with_the_stack_resources(moto: MotoServer,
                                                          stack: dict[str, Any],
                                                          tmp_path: Path) -> None:
    """The `chalice deploy` path's config, checked through `chalice package` (no merge)."""
    found = outputs(stack)
    template = package_deploy_path(found, tmp_path)
    handle = template["Resources"]["HandleMessages"]["Properties"]
    assert handle["Role"] == found["ConsumerRoleArn"]
    assert handle["Environment"]["Variables"]["QUEUE_NAME"] == found["QueueName"]
    assert handle["Environment"]["Variables"]["REPORT_BATCH_ITEM_FAILURES"] == "false"
    event = handle["Events"]["HandleMessagesSqsEventSource"]["Properties"]
    assert event["Queue"]["Fn::Sub"].endswith(f":{found['QueueName']}")
    assert event["MaximumBatchingWindowInSeconds"] == 1
    assert "FunctionResponseTypes" not in event
    assert template["Resources"]["APIHandler"]["Properties"]["Role"] == found["ReadApiRoleArn"]
    assert "DefaultRole" not in template["Resources"]
    # The stream's ARN is a literal at import: the stack's, from its outputs.
    publish = template["Resources"]["PublishChanges"]["Properties"]
    assert publish["Events"]["PublishChangesDynamodbEventSource"]["Properties"]["Stream"] == (
        found["StreamArn"])
    assert publish["Role"] == found["PublisherRoleArn"]
    history = template["Resources"]["RecordHistory"]["Properties"]
    assert history["Events"]["RecordHistorySqsEventSource"]["Properties"]["Queue"][
        "Fn::Sub"].endswith(f":{found['HistoryQueueName']}")


def test_dashboard_and_access_log_groups(moto: MotoServer, stack: dict[str, Any]) -> None:
    """moto creates the dashboard (its body with every ${...} resolved) and the log groups; it
    skips AWS::CloudWatch::Alarm and AWS::ApiGateway::Account (checked statically in
    tests/unit/test_infra_operations.py, test_infra_resources.py and test_infra_iam.py, and by
    cfn-lint in test_infra_template.py)."""
    found = outputs(stack)
    dashboard = client(moto, "cloudwatch").get_dashboard(DashboardName=found["DashboardName"])
    body = json.loads(dashboard["DashboardBody"])
    assert "${" not in dashboard["DashboardBody"]
    lines = [line for widget in body["widgets"] for line in widget["properties"]["metrics"]]
    dimensions = {(line[2], line[3]) for line in lines if len(line) > 3 and line[2] != "."}
    assert ("QueueName", found["QueueName"]) in dimensions
    assert ("QueueName", found["DeadLetterQueueName"]) in dimensions
    assert ("FunctionName", found["ConsumerFunctionName"]) in dimensions
    assert ("Service", found["ConsumerFunctionName"]) in dimensions
    assert ("ApiName", f"{STACK}-ingest") in dimensions
    assert found["ConsumerFunctionName"] == "sqs-manager-prod1-handle_messages"
    assert {widget["properties"]["region"] for widget in body["widgets"]} == {REGION}
    groups = client(moto, "logs").describe_log_groups()["logGroups"]
    access = [g for g in groups if g["logGroupName"] == found["IngestAccessLogGroupName"]]
    assert [g.get("retentionInDays") for g in access] == [365]
