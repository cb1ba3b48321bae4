"""infra/extension.yaml, .chalice/config.json and scripts/: static checks, no network."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from chalicelib import metrics
from chalicelib.settings import LOCAL_QUEUE, LOCAL_TABLE
from chalicelib.store import CALL_SECONDS, MESSAGE_SECONDS
from scripts import cfn_yaml, standalone_template, sync_schema, write_outputs
from tests import iam_policies

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "infra" / "extension.yaml"
CONFIG = ROOT / ".chalice" / "config.json"
SCHEMA = ROOT / "chalicelib" / "command.schema.json"
CHALICE_OVERRIDES = {"HandleMessages", "APIHandler", "RestAPI"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load_template(EXTENSION)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = template["Resources"]
    return resources


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CONFIG.read_text(encoding="utf-8"))
    return data


def lambda_setting(config: dict[str, Any], stage: str, function: str, key: str) -> Any:
    """Chalice's lookup order: stage function, stage, top-level function, top level."""
    stage_config = config["stages"][stage]
    for scope in (stage_config.get("lambda_functions", {}).get(function, {}), stage_config,
                  config.get("lambda_functions", {}).get(function, {}), config):
        if key in scope:
            return scope[key]
    return None


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in resource["Properties"].get("Policies", []):
        found.extend(policy["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


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
    matches = lint(text, config=ManualArgs(regions=["us-west-2"], include_checks=["I"]))
    return [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches
            # The Chalice-only overrides have no Type on their own: they are merged.
            if not (m.rule.id == "E3001" and m.path[:1] == ["Resources"]
                    and m.path[1] in CHALICE_OVERRIDES)]


def test_extension_template_is_cfn_lint_clean() -> None:
    assert _lint(EXTENSION.read_text(encoding="utf-8")) == []


def test_standalone_template_is_cfn_lint_clean(template: dict[str, Any]) -> None:
    standalone = standalone_template.standalone(template)
    # The Deployment is renamed by content hash (tests/unit/test_deployment_hash.py).
    renamed = {"IngestDeployment"}
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
    """batch.py starts a message only with MESSAGE_SECONDS left (plus a delete call in the safe
    mode): a function timeout below that would process one message per batch at best."""
    timeout = lambda_setting(config, "prod1", "handle_messages", "lambda_timeout")
    assert timeout >= 2 * MESSAGE_SECONDS + CALL_SECONDS


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
        assert "QueueName" not in props
        assert "FifoQueue" not in props
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


@pytest.mark.parametrize("role, actions", [
    ("ConsumerRole", {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                      "sqs:GetQueueAttributes",
                      "sqs:GetQueueUrl", "logs:CreateLogGroup", "logs:CreateLogStream",
                      "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}),
    ("ReadApiRole", {"dynamodb:GetItem", "dynamodb:Scan", "logs:CreateLogGroup",
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
        if services == {"dynamodb"}:
            assert targets == [{"Fn::GetAtt": ["Table", "Arn"]}]
        elif services == {"sqs"}:
            assert targets == [{"Fn::GetAtt": ["Queue", "Arn"]}]
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
               "ReadApiRoleArn": "arn:r", "QueueArn": "ignored"}
    updated = write_outputs.apply_outputs(json.loads(json.dumps(config)), outputs, "prod1")
    prod = updated["stages"]["prod1"]
    assert prod["environment_variables"]["TABLE_NAME"] == "t"
    assert prod["environment_variables"]["QUEUE_NAME"] == "q"
    assert prod["environment_variables"]["OUTCOME_TTL_DAYS"] == "7"
    assert prod["lambda_functions"]["handle_messages"]["iam_role_arn"] == "arn:c"
    assert prod["lambda_functions"]["api_handler"]["iam_role_arn"] == "arn:r"
    assert updated["stages"]["local"] == config["stages"]["local"]
    with pytest.raises(KeyError, match="ConsumerRoleArn"):
        write_outputs.apply_outputs({}, {"TableName": "t", "QueueName": "q",
                                         "ReadApiRoleArn": "r"}, "prod1")


# ---------------------------------------------------------------- operations (issue 9)

# chalice deploy names functions <app_name>-<stage>-<function>; the merge gives the package path
# the same names, so one name serves alarms, dashboard and log permissions on both paths.
CONSUMER_NAME = "${ChaliceAppName}-${ChaliceStage}-handle_messages"
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
}


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
        if name != "DeadLetterQueueAlarm":  # any message in the DLQ
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
    assert ours == set(metrics.METRIC_UNITS)
    text = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    assert "${DeadLetterQueue.QueueName}" in text and "${Queue.QueueName}" in text
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
