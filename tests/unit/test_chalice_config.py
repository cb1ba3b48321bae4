"""What Chalice gets from infra/, static checks, no network: the overrides merged into its
functions, the template's outputs, .chalice/config.json's stages, and scripts/write_outputs.py
writing the outputs into the config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.settings import LOCAL_QUEUE, LOCAL_TABLE
from scripts import write_outputs
from tests.infra_files import CONSUMER_NAME, lambda_setting

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
