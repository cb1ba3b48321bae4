"""The standalone stack in moto's CloudFormation over HTTP, then scripts/write_outputs.py.

moto creates the queues (with redrive), the table, the roles and the RestApi/Resource/Method/
Deployment; it drops a Method's integration details, skips AWS::ApiGateway::Stage, Model,
RequestValidator, GatewayResponse, ApiKey and UsagePlan*, and ignores the table's TTL, PITR
and SSE settings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.emulator import MotoServer
from scripts.cfn_yaml import load_template
from scripts.deployment_hash import DEPLOYMENT, EXTENSION
from scripts.standalone_template import standalone
from scripts.standalone_template import write as write_standalone
from scripts.write_outputs import apply_outputs
from tests.conftest import REGION
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
STACK = "sqs-manager-test"


@pytest.fixture(scope="module")
def moto(moto_server: MotoServer) -> MotoServer:
    return moto_server


@pytest.fixture(autouse=True)
def no_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dummy credentials and the region come from tests/conftest.py; clients here name the
    # endpoint themselves.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def client(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def template_body(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_standalone(tmp_path_factory.mktemp("standalone") / "standalone.json").read_text()


def settled(cloudformation: Any, name: str) -> dict[str, Any] | None:
    """The stack once no operation is in progress on it."""
    described: dict[str, Any] = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return None if described["StackStatus"].endswith("_IN_PROGRESS") else described


def create_stack(moto: MotoServer, name: str, body: str,
                 parameters: dict[str, str] | None = None) -> dict[str, Any]:
    cloudformation = client(moto, "cloudformation")
    cloudformation.create_stack(
        StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v}
                    for k, v in (parameters or {}).items()])
    described: dict[str, Any] = wait_until(lambda: settled(cloudformation, name), 30)
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return described


@pytest.fixture(scope="module")
def stack(moto: MotoServer, template_body: str) -> dict[str, Any]:
    return create_stack(moto, STACK, template_body)


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


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


def ingest_method(moto: MotoServer, stack: dict[str, Any]) -> dict[str, Any]:
    ingest_url = outputs(stack)["IngestUrl"]
    api_id = ingest_url.removeprefix("https://").split(".", 1)[0]
    items = client(moto, "apigateway").get_resources(restApiId=api_id)["items"]
    paths = {r["path"]: r for r in items}
    method: dict[str, Any] = paths["/SQSManager"]["resourceMethods"]["POST"]
    return method


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


def test_switching_the_mode_publishes_a_new_deployment(moto: MotoServer,
                                                       template_body: str) -> None:
    """A stage serves a snapshot: the switch must create the new mode's Deployment."""
    name = f"{STACK}-switch"
    create_stack(moto, name, template_body, {"IngestAuthorization": "API_KEY"})
    [before] = deployments(moto, name)
    cloudformation = client(moto, "cloudformation")
    cloudformation.update_stack(
        StackName=name, TemplateBody=template_body, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "IngestAuthorization", "ParameterValue": "AWS_IAM"}])
    assert wait_until(lambda: settled(cloudformation, name), 30)["StackStatus"] == (
        "UPDATE_COMPLETE")
    assert before.startswith("IngestDeploymentApiKey")
    # moto keeps a resource whose condition turned false (CloudFormation deletes it): only the
    # new one is asserted.
    [after] = [d for d in deployments(moto, name) if d != before]
    assert after.startswith("IngestDeploymentAwsIam") and not after.startswith(
        "IngestDeploymentAwsIamAnd")


def deployments(moto: MotoServer, stack_name: str) -> list[str]:
    cloudformation = client(moto, "cloudformation")
    described = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    return [r["LogicalResourceId"] for r in described if r.get("ResourceType") == DEPLOYMENT]


def test_a_changed_method_is_deployed_anew(moto: MotoServer, template_body: str) -> None:
    name = f"{STACK}-redeploy"
    create_stack(moto, name, template_body)
    [first] = deployments(moto, name)
    assert first.startswith("IngestDeploymentAwsIam") and first != "IngestDeploymentAwsIam"
    # The source template again (unhashed names), with the method changed.
    changed = load_template(EXTENSION)
    method = changed["Resources"]["SendMessageMethod"]["Properties"]
    method["Integration"]["RequestTemplates"]["application/json"]["Fn::Sub"][0] += (
        "&MessageAttribute.3.Name=x")
    cloudformation = client(moto, "cloudformation")
    cloudformation.update_stack(StackName=name, TemplateBody=json.dumps(standalone(changed)),
                                Capabilities=["CAPABILITY_IAM"])
    assert wait_until(lambda: settled(cloudformation, name), 30)["StackStatus"] == (
        "UPDATE_COMPLETE")
    [second] = deployments(moto, name)
    assert second.startswith("IngestDeploymentAwsIam") and second != first


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


def package_deploy_path(found: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """`chalice package` (no merge) of the config scripts/write_outputs.py writes from `found`:
    what `chalice deploy` would create."""
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    shutil.copy(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    config = apply_outputs(json.loads((ROOT / ".chalice" / "config.json").read_text()),
                           found, "prod1")
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "package", "--stage", "prod1",
         str(tmp_path / "out")],
        cwd=project, env=dict(os.environ), capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    template: dict[str, Any] = json.loads((tmp_path / "out" / "sam.json").read_text())
    return template


def test_dashboard_and_access_log_groups(moto: MotoServer, stack: dict[str, Any]) -> None:
    """moto creates the dashboard (its body with every ${...} resolved) and the log groups; it
    skips AWS::CloudWatch::Alarm and AWS::ApiGateway::Account (checked statically and by
    cfn-lint in tests/unit/test_infra_template.py)."""
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


def test_a_fifo_stack_has_fifo_queues_and_deploys_without_a_batching_window(
        moto: MotoServer, template_body: str, tmp_path: Path) -> None:
    """QueueType=fifo: a FIFO queue and DLQ named <stack>-queue.fifo / -dlq.fifo, deduplicated
    by the request id only; the `chalice deploy` path then asks Lambda for no batching window
    (which Lambda refuses on FIFO queues)."""
    name = f"{STACK}-fifo"
    found = outputs(create_stack(moto, name, template_body, {"QueueType": "fifo"}))
    assert (found["QueueName"], found["DeadLetterQueueName"]) == (f"{name}-queue.fifo",
                                                                  f"{name}-dlq.fifo")
    sqs = client(moto, "sqs")
    queue = sqs.get_queue_attributes(QueueUrl=found["QueueUrl"],
                                     AttributeNames=["All"])["Attributes"]
    assert queue["FifoQueue"] == "true" and queue["ContentBasedDeduplication"] == "false"
    assert json.loads(queue["RedrivePolicy"])["deadLetterTargetArn"] == found[
        "DeadLetterQueueArn"]
    dlq = sqs.get_queue_attributes(QueueUrl=found["DeadLetterQueueUrl"],
                                   AttributeNames=["All"])["Attributes"]
    assert dlq["FifoQueue"] == "true"
    assert ingest_method(moto, {"Outputs": [{"OutputKey": k, "OutputValue": v}
                                            for k, v in found.items()]})[
        "methodIntegration"]["uri"].endswith(f"/{name}-queue.fifo")
    event = package_deploy_path(found, tmp_path)["Resources"]["HandleMessages"]["Properties"][
        "Events"]["HandleMessagesSqsEventSource"]["Properties"]
    assert event["MaximumBatchingWindowInSeconds"] == 0
    assert event["Queue"]["Fn::Sub"].endswith(f":{name}-queue.fifo")
