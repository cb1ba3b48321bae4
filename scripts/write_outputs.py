"""Copy a standalone stack's outputs into .chalice/config.json for `chalice deploy`.

    python -m scripts.write_outputs --stack-name sqs-manager-prod1 [--stage prod1]

Sets stage `environment_variables` TABLE_NAME, QUEUE_NAME and the change path's STREAM_ARN (a
literal when app.py is imported: Chalice registers the stream mapping with it), EVENT_BUS_NAME,
HISTORY_TABLE_NAME, HISTORY_QUEUE_NAME, HISTORY_RETENTION_DAYS; `manage_iam_role` false and the
functions' `iam_role_arn` (handle_messages: ConsumerRoleArn; publish_changes: PublisherRoleArn;
record_history: HistoryRoleArn; api_handler and the stage default: ReadApiRoleArn). Honours
AWS_ENDPOINT_URL / --endpoint-url (moto in the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".chalice" / "config.json"
REQUIRED = ("TableName", "QueueName", "ConsumerRoleArn", "ReadApiRoleArn", "StreamArn",
            "EventBusName", "HistoryTableName", "HistoryQueueName", "HistoryRetentionDays",
            "PublisherRoleArn", "HistoryRoleArn")
# Stage environment variable <- stack output.
ENVIRONMENT = {"TABLE_NAME": "TableName", "QUEUE_NAME": "QueueName", "STREAM_ARN": "StreamArn",
               "EVENT_BUS_NAME": "EventBusName", "HISTORY_TABLE_NAME": "HistoryTableName",
               "HISTORY_QUEUE_NAME": "HistoryQueueName",
               "HISTORY_RETENTION_DAYS": "HistoryRetentionDays"}
# Function -> the stack output naming its role.
ROLES = {"handle_messages": "ConsumerRoleArn", "api_handler": "ReadApiRoleArn",
         "publish_changes": "PublisherRoleArn", "record_history": "HistoryRoleArn"}


def stack_outputs(stack_name: str, endpoint_url: str | None = None,
                  region: str | None = None) -> dict[str, str]:
    client = boto3.client("cloudformation", endpoint_url=endpoint_url, region_name=region)
    stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = stacks[0].get("Outputs", [])
    return {item["OutputKey"]: item["OutputValue"] for item in outputs}


def apply_outputs(config: dict[str, Any], outputs: dict[str, str], stage: str) -> dict[str, Any]:
    """Write the outputs into `config` (in place) and return it."""
    missing = [key for key in REQUIRED if not outputs.get(key)]
    if missing:
        raise KeyError(f"stack outputs missing: {', '.join(missing)}")
    stage_config = config.setdefault("stages", {}).setdefault(stage, {})
    env = stage_config.setdefault("environment_variables", {})
    env.update({name: outputs[output] for name, output in ENVIRONMENT.items()})
    stage_config["manage_iam_role"] = False
    stage_config["iam_role_arn"] = outputs["ReadApiRoleArn"]
    functions = stage_config.setdefault("lambda_functions", {})
    for function, output in ROLES.items():
        functions.setdefault(function, {})["iam_role_arn"] = outputs[output]
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--stage", default="prod1")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    outputs = stack_outputs(args.stack_name, args.endpoint_url, args.region)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    apply_outputs(config, outputs, args.stage)
    args.config.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"wrote stack {args.stack_name} outputs into {args.config} (stage {args.stage})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
