"""infra/extension.yaml's resources, static checks, no network: the queues and the table with the
consumer's timeout, and the ingest method (its SQS integration and the gateway responses)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.clients import CALL_SECONDS, MESSAGE_SECONDS
from tests.infra_files import lambda_setting

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
