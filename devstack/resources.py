"""Create the pipeline's queue, DLQ and table in the emulator, configured as infra's stack does.

Every setting is read from infra/extension.yaml (Queue, DeadLetterQueue, Table Properties); only the
names differ. Idempotent: existing resources are reused, so a restart keeps the data.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.settings import FIFO_SUFFIX, LOCAL_DLQ, LOCAL_QUEUE, LOCAL_TABLE
from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.infra import InfraTemplate
from devstack.template_values import resolve

LOG = logging.getLogger("devstack.resources")

DEFAULT_QUEUE, DEFAULT_DLQ, DEFAULT_TABLE = LOCAL_QUEUE, LOCAL_DLQ, LOCAL_TABLE

# CloudFormation AWS::SQS::Queue properties that are SQS queue attributes.
_QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
                     "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "RedrivePolicy",
                     "RedriveAllowPolicy", "SqsManagedSseEnabled", "KmsMasterKeyId",
                     "KmsDataKeyReusePeriodSeconds", "FifoQueue", "ContentBasedDeduplication")


def region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-west-2"


def client(service: str, endpoint_url: str | None) -> Any:
    """A boto3 client for the emulator (dummy credentials) or, without an endpoint, real AWS."""
    credentials: dict[str, str] = {}
    if endpoint_url and "AWS_ACCESS_KEY_ID" not in os.environ:
        credentials = {"aws_access_key_id": EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       "aws_secret_access_key": EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region(), **credentials)


@dataclass(frozen=True)
class Resources:
    queue_name: str
    queue_url: str
    queue_arn: str
    dlq_name: str
    dlq_url: str
    dlq_arn: str
    table_name: str
    max_receive_count: int
    visibility_timeout: int
    maximum_message_size: int


# SQS sets these at creation only (SetQueueAttributes refuses them).
_CREATE_ONLY = ("FifoQueue",)


def fifo_name(name: str) -> str:
    """A queue name as SQS requires it for a FIFO queue (ending in ".fifo")."""
    return name if name.endswith(FIFO_SUFFIX) else name + FIFO_SUFFIX


def queue_attributes(props: dict[str, Any], refs: dict[str, Any],
                     conditions: dict[str, bool] | None = None) -> dict[str, str]:
    """CloudFormation queue Properties -> SetQueueAttributes strings (RedrivePolicy as JSON)."""
    resolved = resolve(props, refs, conditions)
    attributes: dict[str, str] = {}
    for name in _QUEUE_ATTRIBUTES:
        if name not in resolved:
            continue
        value = resolved[name]
        if isinstance(value, dict):
            attributes[name] = json.dumps(value)
        elif isinstance(value, bool):
            attributes[name] = str(value).lower()
        else:
            attributes[name] = str(value)
    return attributes


def ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        # Reuse, but converge on infra's settings (they may have changed since the last run).
        settable = {k: v for k, v in attributes.items() if k not in _CREATE_ONLY}
        if settable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
    except ClientError as error:
        if "NonExistent" not in error.response["Error"]["Code"]:
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        LOG.info("created queue %s", name)
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def ensure_table(dynamodb: Any, name: str, props: dict[str, Any]) -> None:
    try:
        dynamodb.describe_table(TableName=name)
        return
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for optional in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if optional in props:
            kwargs[optional] = props[optional]
    stream = props.get("StreamSpecification") or {}
    if "StreamViewType" in stream:  # CloudFormation's form lacks the API's StreamEnabled
        kwargs["StreamSpecification"] = {"StreamEnabled": True,
                                         "StreamViewType": stream["StreamViewType"]}
    sse = props.get("SSESpecification") or {}
    if "SSEEnabled" in sse:
        kwargs["SSESpecification"] = {"Enabled": bool(sse["SSEEnabled"])}
    dynamodb.create_table(**kwargs)
    dynamodb.get_waiter("table_exists").wait(TableName=name,
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ttl = props.get("TimeToLiveSpecification") or {}
    if ttl.get("Enabled"):
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": ttl["AttributeName"]})
    pitr = props.get("PointInTimeRecoverySpecification") or {}
    if pitr.get("PointInTimeRecoveryEnabled"):
        try:
            dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})
        except ClientError as error:
            # DynamoDB Local has no backups API; nothing local needs it. Anything else is real.
            if error.response["Error"]["Code"] != "UnknownOperationException":
                raise
            LOG.info("point-in-time recovery skipped: this DynamoDB has no backups API")
    LOG.info("created table %s", name)


def ensure_resources(endpoint_url: str | None, infra: InfraTemplate | None = None,
                     queue_name: str = DEFAULT_QUEUE, dlq_name: str = DEFAULT_DLQ,
                     table_name: str = DEFAULT_TABLE,
                     dynamodb_endpoint_url: str | None = None,
                     parameters: dict[str, str] | None = None) -> Resources:
    """The queues at `endpoint_url`, the table there too or at `dynamodb_endpoint_url`, as the
    stack makes them with these parameters (e.g. {"QueueType": "fifo"}; defaults otherwise).
    FIFO queues get ".fifo" appended to their names where missing, as SQS requires."""
    infra = infra or InfraTemplate()
    sqs = client("sqs", endpoint_url)
    refs: dict[str, Any] = {**infra.parameters(parameters), "AWS::Region": region(),
                            "AWS::StackName": "sqs-manager-local", "AWS::Partition": "aws",
                            "Queue": queue_name, "DeadLetterQueue": dlq_name, "Table": table_name}
    conditions = infra.conditions(refs)
    dlq_attributes = queue_attributes(infra.properties("DeadLetterQueue"), refs, conditions)
    if dlq_attributes.get("FifoQueue") == "true":
        dlq_name = fifo_name(dlq_name)
    dlq_url, dlq_arn = ensure_queue(sqs, dlq_name, dlq_attributes)
    refs.update({"DeadLetterQueue.Arn": dlq_arn, "DeadLetterQueue.QueueName": dlq_name,
                 "DeadLetterQueue.QueueUrl": dlq_url})
    attributes = queue_attributes(infra.properties("Queue"), refs, conditions)
    if attributes.get("FifoQueue") == "true":
        queue_name = fifo_name(queue_name)
    queue_url, queue_arn = ensure_queue(sqs, queue_name, attributes)
    table_props = resolve(infra.properties("Table"), refs)
    ensure_table(client("dynamodb", dynamodb_endpoint_url or endpoint_url), table_name,
                  table_props)
    current = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(current.get("RedrivePolicy", "{}"))
    return Resources(
        queue_name=queue_name, queue_url=queue_url, queue_arn=queue_arn,
        dlq_name=dlq_name, dlq_url=dlq_url, dlq_arn=dlq_arn, table_name=table_name,
        max_receive_count=int(redrive.get("maxReceiveCount", 0)),
        visibility_timeout=int(current.get("VisibilityTimeout", 30)),
        maximum_message_size=int(current.get("MaximumMessageSize", 262144)),
    )


def queue_depth(sqs: Any, queue_url: str, in_flight: bool = True) -> int:
    """Messages in a queue: waiting, plus (by default) received and not yet deleted."""
    names = ["ApproximateNumberOfMessages"]
    if in_flight:
        names.append("ApproximateNumberOfMessagesNotVisible")
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)
