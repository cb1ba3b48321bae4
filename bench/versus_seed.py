"""bench.versus's seed consumer, a Lambda handler module as the seed wrote it: one plain
put_item/update_item/delete_item per message, in turn; no condition, version or outcome; an
exception fails the whole batch. Importing it creates its client, as a Lambda cold start does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import boto3

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def apply_command(client: Any, table_name: str, body: dict[str, Any]) -> None:
    """The seed's CRUD for one command (every value stored as a string, as the seed did)."""
    key = {"pk": {"S": "item#" + body["id"]}}
    fields = body.get("item") or {}
    if body["operation"] == "create":
        item = {name: {"S": str(value)} for name, value in fields.items()}
        client.put_item(TableName=table_name, Item={**key, **item})
    elif body["operation"] == "update":
        names = {f"#a{i}": name for i, name in enumerate(fields)}
        values = {f":a{i}": {"S": str(value)} for i, value in enumerate(fields.values())}
        client.update_item(TableName=table_name, Key=key, UpdateExpression="SET " + ", ".join(
            f"#a{i} = :a{i}" for i in range(len(names))), ExpressionAttributeNames=names,
            ExpressionAttributeValues=values)
    elif body["operation"] == "delete":
        client.delete_item(TableName=table_name, Key=key)


def make_handler(client: Any, table_name: str) -> Handler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for record in event["Records"]:
            apply_command(client, table_name, json.loads(record["body"]))
        return {}
    return handler


handler = make_handler(boto3.client("dynamodb"), os.environ.get("TABLE_NAME", "bench-table"))
