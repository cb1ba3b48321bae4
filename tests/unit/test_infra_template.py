"""infra/extension.yaml, .chalice/config.json and scripts/: static checks, no network.
The operations part (alarms, dashboard, logs, tracing) is in test_infra_operations.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from chalicelib.clients import CALL_SECONDS, MESSAGE_SECONDS
from chalicelib.settings import LOCAL_QUEUE, LOCAL_TABLE
from scripts import cfn_yaml, standalone_template, sync_schema, write_outputs
from tests import iam_policies
from tests.conftest import REGION
from tests.iam_policies import as_list
from tests.infra_files import CONSUMER_NAME, EXTENSION, ROOT, SCHEMA, lambda_setting, statements

CHALICE_OVERRIDES = {"HandleMessages", "APIHandler", "PublishChanges", "RecordHistory",
                     "RestAPI"}


# ---------------------------------------------------------------- the YAML loader


def test_cfn_yaml_turns_short_tags_into_long_form() -> None:
    loaded = cfn_yaml.loads(
        "a: !Ref X\n"
        "b: !GetAtt Queue.Arn\n"
        "c: !Sub 'x-${AWS::Region}'\n"
        "d: !If [Cond, !Ref A, !Ref AWS::NoValue]\n"
        "e: !Equals [!Ref P, 'true']\n"
        "f: !Join ['', [a, !GetAtt [T, Arn]]]\n"
        "g: !Condition C\n"
    )
    assert loaded == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Queue", "Arn"]},
        "c": {"Fn::Sub": "x-${AWS::Region}"},
        "d": {"Fn::If": ["Cond", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]},
        "e": {"Fn::Equals": [{"Ref": "P"}, "true"]},
        "f": {"Fn::Join": ["", ["a", {"Fn::GetAtt": ["T", "Arn"]}]]},
        "g": {"Condition": "C"},
    }


def test_cfn_yaml_leaves_the_global_safe_loader_alone() -> None:
    import yaml

    assert "!Ref" in cfn_yaml.CfnLoader.yaml_constructors
    assert "!Ref" not in yaml.SafeLoader.yaml_constructors


# ---------------------------------------------------------------- lint


def _lint(text: str) -> list[str]:
    matches = lint(text, config=ManualArgs(regions=[REGION], include_checks=["I"]))
    return [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches
            # The Chalice-only overrides have no Type on their own: they are merged.
            if not (m.rule.id == "E3001" and m.path[:1] == ["Resources"]
                    and m.path[1] in CHALICE_OVERRIDES)]


# cfn-lint follows both branches of every condition; linting with each QueueType as the
# default also checks the values it resolves (FIFO names, the FIFO request template).
QUEUE_TYPES = pytest.mark.parametrize("queue_type", ["standard", "fifo"])


@QUEUE_TYPES
def test_extension_template_is_cfn_lint_clean(queue_type: str) -> None:
    text = EXTENSION.read_text(encoding="utf-8")
    assert text.count("    Default: standard\n") == 1
    assert _lint(text.replace("    Default: standard\n", f"    Default: {queue_type}\n")) == []


@QUEUE_TYPES
def test_standalone_template_is_cfn_lint_clean(template: dict[str, Any], queue_type: str) -> None:
    standalone = standalone_template.standalone(template)
    standalone["Parameters"]["QueueType"]["Default"] = queue_type
    # The Deployment is renamed by content hash (tests/unit/test_deployment_hash.py).
    renamed = {"IngestDeploymentAwsIam", "IngestDeploymentApiKey",
               "IngestDeploymentAwsIamAndApiKey"}
    assert set(template["Resources"]) - set(standalone["Resources"]) == CHALICE_OVERRIDES | renamed
    assert len(standalone["Resources"]) == len(template["Resources"]) - len(CHALICE_OVERRIDES)
    assert all("Type" in body for body in standalone["Resources"].values())
    text = json.dumps(standalone)
    assert _lint(text) == []
    assert len(text) < 51_200, "aws cloudformation deploy --template-file limit without S3"


def test_standalone_refuses_dangling_references() -> None:
    broken = {"Resources": {"A": {"Type": "AWS::SQS::Queue"}, "B": {"Properties": {}}},
              "Outputs": {"X": {"Value": {"Fn::Sub": "${B.Arn}"}}}}
    with pytest.raises(ValueError, match="B"):
        standalone_template.standalone(broken)


def test_overrides_are_the_last_resources(template: dict[str, Any]) -> None:
    names = list(template["Resources"])
    assert set(names[-len(CHALICE_OVERRIDES):]) == CHALICE_OVERRIDES


# ---------------------------------------------------------------- the API Gateway model


def test_command_model_schema_is_command_schema_json(resources: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert resources["CommandModel"]["Properties"]["Schema"] == schema


def test_sync_schema_check_passes_and_render_is_idempotent() -> None:
    assert sync_schema.main(["--check"]) == 0
    text = EXTENSION.read_text(encoding="utf-8")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert sync_schema.render(text, schema) == text


def test_sync_schema_rewrites_only_the_marked_block(tmp_path: Path) -> None:
    stale = tmp_path / "extension.yaml"
    original = EXTENSION.read_text(encoding="utf-8")
    stale.write_text(sync_schema.render(original, {"type": "object"}), encoding="utf-8")
    assert sync_schema.main(["--check", "--template", str(stale)]) == 1
    assert sync_schema.main(["--template", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == original


# ---------------------------------------------------------------- queues, table, timeouts


def test_queue_visibility_timeout_is_six_times_the_consumer_timeout(
        resources: dict[str, Any], config: dict[str, Any]) -> None:
    timeout = lambda_setting(config, "prod1", "handle_messages", "lambda_timeout")
    assert timeout == 60
    assert resources["Queue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_the_consumer_timeout_fits_messages_and_the_safe_mode_delete(
        config: dict[str, Any]) -> None:
    """batch.py starts a message only with MESSAGE_SECONDS left (plus the visibility change, and
    a delete call in the safe mode): a function timeout below that would process one message per
    batch at best."""
    timeout = lambda_setting(config, "prod1", "handle_messages", "lambda_timeout")
    assert timeout >= 2 * MESSAGE_SECONDS + 2 * CALL_SECONDS


def test_queues(resources: dict[str, Any]) -> None:
    queue = resources["Queue"]["Properties"]
    dlq = resources["DeadLetterQueue"]["Properties"]
    # AWS: "set the maxReceiveCount on the source queue's redrive policy to at least 5" for
    # Lambda consumers (Lambda developer guide, "Using Lambda with Amazon SQS").
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    for props in (queue, dlq):
        assert props["MaximumMessageSize"] == 1_048_576
        assert props["SqsManagedSseEnabled"] is True
        # Standard queues keep CloudFormation's generated names (no clash on replacement); only
        # FIFO mode names them, as ".fifo" requires (tests/unit/test_fifo_templates.py).
        for fifo_only in ("QueueName", "FifoQueue"):
            assert props[fifo_only]["Fn::If"][0] == "IsFifo"
            assert props[fifo_only]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    # Moved messages keep their enqueue time: the DLQ must keep them longer.
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert queue["MessageRetentionPeriod"] == 4 * 86_400
    assert dlq["MessageRetentionPeriod"] == 14 * 86_400


def test_messages_in_the_dlq_raise_an_alarm(resources: dict[str, Any]) -> None:
    alarm = resources["DeadLetterQueueAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName",
                                    "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"


def test_table(resources: dict[str, Any]) -> None:
    table = resources["Table"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert "TableName" not in table


ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


@pytest.mark.parametrize("folder", ["infra", ".chalice", "scripts", "chalicelib", "devstack",
                                    "bench", "postman", "tests", "."])
def test_no_account_ids(folder: str) -> None:
    paths = (ROOT / folder).glob("*") if folder == "." else (ROOT / folder).rglob("*")
    for path in paths:
        if path.is_file() and path.suffix in {".yaml", ".yml", ".json", ".py", ".md", ".txt"}:
            if path.name in ("package-lock.json", "constraints.txt"):
                continue  # version numbers and hashes, not ours
            found = ACCOUNT_ID.findall(path.read_text(encoding="utf-8"))
            assert not found, f"{path}: {found}"


# ---------------------------------------------------------------- IAM


def test_api_gateway_role_may_only_send_to_the_queue(resources: dict[str, Any]) -> None:
    role = resources["ApiGatewaySqsRole"]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "apigateway.amazonaws.com"}]
    assert statements(role) == [{"Effect": "Allow", "Action": "sqs:SendMessage",
                                 "Resource": {"Fn::GetAtt": ["Queue", "Arn"]}}]
    assert "ManagedPolicyArns" not in role["Properties"]


# The one resource each role's statements may name, per statement.
OWN_RESOURCES = {
    "ConsumerRole": [[{"Fn::GetAtt": ["Table", "Arn"]}], [{"Fn::GetAtt": ["Queue", "Arn"]}]],
    "ReadApiRole": [[{"Fn::GetAtt": ["Table", "Arn"]}],
                    [{"Fn::GetAtt": ["HistoryTable", "Arn"]}]],
    "PublisherRole": [[{"Fn::GetAtt": ["Table", "StreamArn"]}],
                      [{"Fn::GetAtt": ["ChangeBus", "Arn"]}],
                      [{"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}]],
    "HistoryRole": [[{"Fn::GetAtt": ["HistoryTable", "Arn"]}],
                    [{"Fn::GetAtt": ["HistoryQueue", "Arn"]}]],
}


@pytest.mark.parametrize("role, actions", [
    ("ConsumerRole", {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                      "sqs:GetQueueAttributes",
                      "sqs:GetQueueUrl", "logs:CreateLogGroup", "logs:CreateLogStream",
                      "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}),
    ("ReadApiRole", {"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query",
                     "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                     "xray:PutTraceSegments", "xray:PutTelemetryRecords"}),
    ("PublisherRole", {"dynamodb:DescribeStream", "dynamodb:GetRecords",
                       "dynamodb:GetShardIterator", "dynamodb:ListStreams", "events:PutEvents",
                       "sqs:SendMessage", "logs:CreateLogGroup", "logs:CreateLogStream",
                       "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}),
    ("HistoryRole", {"dynamodb:BatchWriteItem", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                     "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "logs:CreateLogGroup",
                     "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
                     "xray:PutTelemetryRecords"}),
])
def test_lambda_roles_are_least_privilege(resources: dict[str, Any], role: str,
                                          actions: set[str]) -> None:
    body = resources[role]
    trust = body["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    assert "ManagedPolicyArns" not in body["Properties"]
    granted: set[str] = set()
    for statement in statements(body):
        assert statement["Effect"] == "Allow"
        statement_actions = as_list(statement["Action"])
        granted.update(statement_actions)
        services = {action.split(":")[0] for action in statement_actions}
        assert len(services) == 1, "one service per statement"
        targets = as_list(statement["Resource"])
        if services in ({"dynamodb"}, {"sqs"}, {"events"}):
            assert targets in OWN_RESOURCES[role], (role, statement)
        elif services == {"xray"}:
            assert targets == ["*"]  # the only resource these actions take (iam_policies)
        else:
            assert services == {"logs"}
            for target in targets:
                assert target["Fn::Sub"].startswith(
                    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                    "/aws/lambda/")
    assert granted == actions


def test_no_wildcard_actions_or_resources(template: dict[str, Any]) -> None:
    assert iam_policies.violations(template) == []
    assert {"sqs:SendMessage", "xray:PutTraceSegments", "logs:PutLogEvents"} <= (
        iam_policies.granted_actions(template))


@pytest.mark.parametrize("statement, problem", [
    ({"Effect": "Allow", "Action": "*", "Resource": "arn:x"}, "wildcard action '*'"),
    ({"Effect": "Allow", "Action": ["sqs:*"], "Resource": "arn:x"}, "wildcard action 'sqs:*'"),
    ({"Effect": "Allow", "Action": ["logs:Put*"], "Resource": "arn:x"}, "wildcard action"),
    ({"Effect": "Allow", "Action": ["sqs:SendMessage", "xray:PutTraceSegments"],
      "Resource": "*"}, "['sqs:SendMessage']"),
    ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:x"}, "NotAction"),
])
def test_the_least_privilege_check_finds_wide_grants(statement: dict[str, Any],
                                                     problem: str) -> None:
    template = {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {
        "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [statement]}}]}}}}
    [found] = iam_policies.violations(template)
    assert problem in found


def test_the_least_privilege_check_reads_every_kind_of_policy() -> None:
    allowed = {"Effect": "Allow", "Action": "xray:PutTelemetryRecords", "Resource": "*"}
    template = {"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {
            "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]}},
        "Inline": {"Type": "AWS::IAM::Policy", "Properties": {
            "PolicyDocument": {"Statement": [allowed]}}},
        "Fn": {"Type": "AWS::Serverless::Function", "Properties": {
            "Policies": ["AWSLambdaBasicExecutionRole", {"Statement": allowed}]}},
    }}
    assert [v.split(":")[0] for v in iam_policies.violations(template)] == [
        "Role/ManagedPolicyArns", "Fn/Policies"]


def test_api_gateway_logs_role_writes_only_this_regions_logs(resources: dict[str, Any]) -> None:
    role = resources["ApiGatewayLogsRole"]
    assert role["Condition"] == "SetAccountLogsRole"
    # The account setting must never name a deleted role.
    assert (role["DeletionPolicy"], role["UpdateReplacePolicy"]) == ("Retain", "Retain")
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "apigateway.amazonaws.com"}]
    [statement] = statements(role)
    assert {a.split(":")[0] for a in statement["Action"]} == {"logs"}
    assert not {"logs:GetLogEvents", "logs:FilterLogEvents"} & set(statement["Action"])
    assert statement["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:"
                                                 "${AWS::AccountId}:log-group:*"}]
    account = resources["ApiGatewayAccount"]
    assert account["Condition"] == "SetAccountLogsRole"
    assert account["Properties"]["CloudWatchRoleArn"] == {
        "Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]}


# ---------------------------------------------------------------- the ingest method


def test_send_message_integration(resources: dict[str, Any]) -> None:
    method = resources["SendMessageMethod"]["Properties"]
    assert method["HttpMethod"] == "POST"
    assert method["ApiKeyRequired"] == {"Fn::If": ["ApiKeyRequired", True, False]}
    assert method["AuthorizationType"] == {"Fn::If": ["IngestUsesIam", "AWS_IAM", "NONE"]}
    assert method["RequestModels"] == {"application/json": {"Ref": "CommandModel"}}
    assert resources["BodyValidator"]["Properties"]["ValidateRequestBody"] is True
    assert resources["IngestResource"]["Properties"]["PathPart"] == "SQSManager"
    integration = method["Integration"]
    assert integration["Type"] == "AWS"
    assert integration["PassthroughBehavior"] == "NEVER"
    assert integration["Credentials"] == {"Fn::GetAtt": ["ApiGatewaySqsRole", "Arn"]}
    assert integration["Uri"] == {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:"
                                             "sqs:path/${AWS::AccountId}/${Queue.QueueName}"}
    assert list(integration["RequestTemplates"]) == ["application/json"]
    assert integration["RequestParameters"] == {
        "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'",
        "integration.request.header.Accept": "'application/json'"}
    codes = {r["StatusCode"]: r.get("SelectionPattern")
             for r in integration["IntegrationResponses"]}
    assert codes == {"202": None, "400": r"4\d{2}", "503": r"5\d{2}"}
    assert {r["StatusCode"] for r in method["MethodResponses"]} == {"202", "400", "413", "500",
                                                                    "503"}


def test_gateway_responses(resources: dict[str, Any]) -> None:
    responses = {body["Properties"]["ResponseType"]: body["Properties"]
                 for body in resources.values()
                 if body.get("Type") == "AWS::ApiGateway::GatewayResponse"}
    assert set(responses) == {"BAD_REQUEST_BODY", "UNSUPPORTED_MEDIA_TYPE", "DEFAULT_4XX",
                              "DEFAULT_5XX"}
    assert responses["BAD_REQUEST_BODY"]["StatusCode"] == "400"
    assert responses["UNSUPPORTED_MEDIA_TYPE"]["StatusCode"] == "415"
    # Simple substitution only: with sample values the bodies must be JSON.
    values = {"$context.error.validationErrorString":
              r"[object has missing required properties ([\"id\"])]",
              "$context.error.messageString": '"Forbidden"'}
    for props in responses.values():
        body = props["ResponseTemplates"]["application/json"]
        for variable, value in values.items():
            body = body.replace(variable, value)
        assert "message" in json.loads(body)


# The mapping templates themselves are rendered with API Gateway's semantics in
# tests/unit/test_vtl_templates.py (devstack.vtl), not here.


# ---------------------------------------------------------------- overrides, outputs, config


def test_chalice_overrides(resources: dict[str, Any]) -> None:
    handle = resources["HandleMessages"]["Properties"]
    assert handle["Role"] == {"Fn::GetAtt": ["ConsumerRole", "Arn"]}
    assert handle["Environment"]["Variables"] == {
        "TABLE_NAME": {"Ref": "Table"},
        "QUEUE_NAME": {"Fn::GetAtt": ["Queue", "QueueName"]},
        "REPORT_BATCH_ITEM_FAILURES": "true",
        "METRICS_NAMESPACE": {"Ref": "MetricsNamespace"},
    }
    assert handle["FunctionName"] == {"Fn::Sub": CONSUMER_NAME}
    event = handle["Events"]["HandleMessagesSqsEventSource"]["Properties"]
    # Same key as Chalice's own {"Fn::Sub": ...}, so the deep merge replaces it.
    assert event["Queue"] == {"Fn::Sub": "${Queue.Arn}"}
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    api = resources["APIHandler"]["Properties"]
    assert api["Role"] == {"Fn::GetAtt": ["ReadApiRole", "Arn"]}
    assert api["FunctionName"] == {"Fn::Sub": "${ChaliceAppName}-${ChaliceStage}"}
    assert api["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": "Table"}


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(write_outputs.REQUIRED) <= set(outputs)
    assert {"IngestUrl", "QueueArn", "QueueName", "QueueUrl", "DeadLetterQueueArn",
            "DeadLetterQueueName", "TableName", "ConsumerRoleArn", "ReadApiRoleArn",
            "ApiKeyId"} <= set(outputs)
    assert outputs["ApiKeyId"]["Condition"] == "ApiKeyRequired"
    assert outputs["IngestInvokePolicyArn"] == {
        "Condition": "IngestUsesIam", "Value": {"Ref": "IngestInvokePolicy"},
        "Description": outputs["IngestInvokePolicyArn"]["Description"]}
    assert outputs["IngestUrl"]["Value"]["Fn::Sub"].endswith("/${StageName}/SQSManager")


def test_config_prod1_stage(config: dict[str, Any]) -> None:
    assert config["app_name"] == "sqs-manager"
    assert config["version"] == "2.0"
    prod = config["stages"]["prod1"]
    assert prod["api_gateway_stage"] == "Prod1"
    assert prod["manage_iam_role"] is False
    assert prod.get("autogen_policy") is not True
    assert "iam_policy_file" not in prod
    env = prod["environment_variables"]
    assert env["REPORT_BATCH_ITEM_FAILURES"] == "false"
    assert env["OUTCOME_TTL_DAYS"] == "7"
    for function in ("handle_messages", "api_handler"):
        assert lambda_setting(config, "prod1", function, "iam_role_arn")
        assert lambda_setting(config, "prod1", function, "manage_iam_role") is False


def test_config_local_stage(config: dict[str, Any]) -> None:
    env = config["stages"]["local"]["environment_variables"]
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env["TABLE_NAME"] == LOCAL_TABLE
    assert env["QUEUE_NAME"] == LOCAL_QUEUE
    assert env["DEBUG_ROUTES"] == "1"
    assert env["REPORT_BATCH_ITEM_FAILURES"] == "true"


def test_apply_outputs(config: dict[str, Any]) -> None:
    outputs = {"TableName": "t", "QueueName": "q", "ConsumerRoleArn": "arn:c",
               "ReadApiRoleArn": "arn:r", "QueueArn": "ignored", "StreamArn": "arn:s",
               "EventBusName": "b", "HistoryTableName": "h", "HistoryQueueName": "hq",
               "HistoryRetentionDays": "90", "PublisherRoleArn": "arn:p", "HistoryRoleArn": "arn:h"}
    updated = write_outputs.apply_outputs(json.loads(json.dumps(config)), outputs, "prod1")
    prod = updated["stages"]["prod1"]
    assert prod["environment_variables"]["TABLE_NAME"] == "t"
    assert prod["environment_variables"]["QUEUE_NAME"] == "q"
    assert prod["environment_variables"]["OUTCOME_TTL_DAYS"] == "7"
    assert prod["lambda_functions"]["handle_messages"]["iam_role_arn"] == "arn:c"
    assert prod["lambda_functions"]["api_handler"]["iam_role_arn"] == "arn:r"
    assert prod["lambda_functions"]["publish_changes"]["iam_role_arn"] == "arn:p"
    assert prod["lambda_functions"]["record_history"]["iam_role_arn"] == "arn:h"
    assert {k: prod["environment_variables"][k] for k in (
        "STREAM_ARN", "EVENT_BUS_NAME", "HISTORY_TABLE_NAME", "HISTORY_QUEUE_NAME")} == {
        "STREAM_ARN": "arn:s", "EVENT_BUS_NAME": "b", "HISTORY_TABLE_NAME": "h",
        "HISTORY_QUEUE_NAME": "hq"}
    assert updated["stages"]["local"] == config["stages"]["local"]
    with pytest.raises(KeyError, match="ConsumerRoleArn"):
        write_outputs.apply_outputs({}, {"TableName": "t", "QueueName": "q",
                                         "ReadApiRoleArn": "r"}, "prod1")
