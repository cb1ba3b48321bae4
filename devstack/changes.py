"""The change path's local resources, configured as infra's stack makes them: the table's stream,
the bus (moto's EventBridge) with the history rule and its queue and DLQ (moto's SQS), and the
history table (beside the item table: moto or DynamoDB Local).

Every setting is read from infra/extension.yaml (Table's StreamSpecification, ChangeBus,
HistoryRule, HistoryQueue, HistoryDeadLetterQueue, HistoryTable, StreamFailureQueue: the stream
mapping's on-failure destination); the names derive from the item table's. Idempotent, as
devstack/resources.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from devstack.infra import InfraTemplate
from devstack.resources import client, ensure_queue, ensure_table, queue_attributes, region
from devstack.template_values import resolve

LOG = logging.getLogger("devstack.changes")


class _TableNamePlus:
    """A resource name read as an attribute: the item table's name and a suffix."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def __get__(self, names: ChangeNames, owner: type[ChangeNames] | None = None) -> str:
        return names.table_name + self.suffix


@dataclass(frozen=True)
class ChangeNames:
    """The change path's resource names, from the item table's name."""

    table_name: str

    history_table = _TableNamePlus("-history")
    history_queue = _TableNamePlus("-history-queue")
    history_dlq = _TableNamePlus("-history-dlq")
    bus = _TableNamePlus("-changes")
    stream_failures = _TableNamePlus("-stream-failures")

    def app_env(self) -> dict[str, str]:
        """The app's settings for these resources (chalicelib/settings.py)."""
        return {"EVENT_BUS_NAME": self.bus, "HISTORY_TABLE_NAME": self.history_table,
                "HISTORY_QUEUE_NAME": self.history_queue}


@dataclass(frozen=True)
class ChangeResources:
    stream_arn: str
    bus_name: str
    history_table: str
    history_queue_url: str
    history_queue_arn: str
    history_dlq_url: str
    history_max_receive_count: int
    stream_failure_queue_url: str


def ensure_change_resources(endpoint_url: str, dynamodb_endpoint_url: str | None,
                            names: ChangeNames, infra: InfraTemplate | None = None
                            ) -> ChangeResources:
    infra = infra or InfraTemplate()
    dynamodb = client("dynamodb", dynamodb_endpoint_url or endpoint_url)
    stream_arn = _ensure_stream(dynamodb, names.table_name, infra.properties("Table"))
    sqs = client("sqs", endpoint_url)
    refs: dict[str, Any] = {**infra.parameters(), "AWS::Region": region(),
                            "AWS::StackName": "sqs-manager-local", "AWS::Partition": "aws"}
    conditions = infra.conditions(refs)
    dlq_url, dlq_arn = ensure_queue(sqs, names.history_dlq, queue_attributes(
        infra.properties("HistoryDeadLetterQueue"), refs, conditions))
    refs["HistoryDeadLetterQueue.Arn"] = dlq_arn
    attributes = queue_attributes(infra.properties("HistoryQueue"), refs, conditions)
    queue_url, queue_arn = ensure_queue(sqs, names.history_queue, attributes)
    refs.update({"HistoryQueue.Arn": queue_arn, "ChangeBus.Name": names.bus})
    ensure_table(dynamodb, names.history_table,
                 resolve(infra.properties("HistoryTable"), refs, conditions))
    _ensure_bus(client("events", endpoint_url), names.bus,
                resolve(infra.properties("HistoryRule"), refs, conditions))
    failure_url, _ = ensure_queue(sqs, names.stream_failures, queue_attributes(
        infra.properties("StreamFailureQueue"), refs, conditions))
    redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
    return ChangeResources(stream_arn=stream_arn, bus_name=names.bus,
                           history_table=names.history_table, history_queue_url=queue_url,
                           history_queue_arn=queue_arn, history_dlq_url=dlq_url,
                           history_max_receive_count=int(redrive.get("maxReceiveCount", 0)),
                           stream_failure_queue_url=failure_url)


def _ensure_stream(dynamodb: Any, table: str, props: dict[str, Any]) -> str:
    """The table's stream ARN, turning the stream on where the table predates it."""
    view = props["StreamSpecification"]["StreamViewType"]
    described = dynamodb.describe_table(TableName=table)["Table"]
    if not described.get("StreamSpecification", {}).get("StreamEnabled"):
        dynamodb.update_table(TableName=table, StreamSpecification={
            "StreamEnabled": True, "StreamViewType": view})
        described = dynamodb.describe_table(TableName=table)["Table"]
        LOG.info("stream enabled on table %s", table)
    return str(described["LatestStreamArn"])


def _ensure_bus(events: Any, bus: str, rule: dict[str, Any]) -> None:
    try:
        events.create_event_bus(Name=bus)
        LOG.info("created event bus %s", bus)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    name = f"{bus}-history"
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(rule["EventPattern"]),
                    Description=rule.get("Description", ""), State="ENABLED")
    # moto's EventBridge keeps a target's Arn and Id; retries and its DLQ are AWS's part.
    events.put_targets(Rule=name, EventBusName=bus, Targets=[
        {"Id": target["Id"], "Arn": target["Arn"]} for target in rule["Targets"]])
