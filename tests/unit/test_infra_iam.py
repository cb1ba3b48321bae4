"""infra/extension.yaml's IAM, static checks, no network: every role grants least privilege (its
own resources, no wildcards), and the check that says so finds wide grants."""

from __future__ import annotations

from typing import Any

import pytest

from tests import iam_policies
from tests.iam_policies import as_list
from tests.infra_files import statements

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
