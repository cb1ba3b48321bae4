"""After `chalice deploy`: give the change stream's event source mapping what Chalice cannot set.

    python -m scripts.stream_mapping --stack-name sqs-manager-prod1 [--stage prod1]

Chalice's deployer sends a DynamoDB mapping only its ARN, batch size, window and starting
position. The rest of what the packaged stack sets (infra/extension.yaml, PublishChanges'
PublishChangesDynamodbEventSource: partial batch responses, bisect, the retry cap, the record
age, the on-failure queue, the item-only filter) is read from there and applied here, only where
the mapping differs: running it again changes nothing. Later deploys keep these settings (Chalice
updates only its own fields).

Chalice keeps a mapping on the old stream when the stream ARN changes (chalice#1882: the table
was replaced, or its stream turned off and on). This script then stops with the fix rather than
leave changes unpublished: delete that mapping and its record in .chalice/deployed/<stage>.json,
and deploy again (docs/deployment.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import boto3

from scripts.cfn_yaml import load_template
from scripts.write_outputs import ROOT, stack_outputs

FUNCTION, OVERRIDE = "publish_changes", "PublishChanges"
EVENT = "PublishChangesDynamodbEventSource"
EXTENSION = ROOT / "infra" / "extension.yaml"
SETTINGS = ("FunctionResponseTypes", "BisectBatchOnFunctionError", "MaximumRetryAttempts",
            "MaximumRecordAgeInSeconds", "DestinationConfig", "FilterCriteria")


class StaleMappingError(RuntimeError):
    """The function reads a stream that is no longer the table's."""


def wanted_settings(failure_queue_arn: str, template: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The packaged mapping's settings Chalice does not set, as UpdateEventSourceMapping takes
    them (the on-failure queue's ARN in place of its !GetAtt)."""
    template = template or load_template(EXTENSION)
    event = template["Resources"][OVERRIDE]["Properties"]["Events"][EVENT]["Properties"]
    wanted = {name: event[name] for name in SETTINGS}
    queue = {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    if wanted["DestinationConfig"]["OnFailure"]["Destination"] != queue:
        raise ValueError(f"{OVERRIDE}'s on-failure destination is no longer StreamFailureQueue")
    wanted["DestinationConfig"] = {"OnFailure": {"Destination": failure_queue_arn}}
    return wanted


def differences(mapping: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """What `mapping` (GetEventSourceMapping's answer) lacks of `wanted`."""
    return {name: value for name, value in wanted.items() if mapping.get(name) != value}


def apply(client: Any, function_name: str, stream_arn: str, wanted: dict[str, Any]
          ) -> list[str]:
    """Update the function's mapping on `stream_arn`; what changed (empty: nothing to do)."""
    mappings = client.list_event_source_mappings(FunctionName=function_name).get(
        "EventSourceMappings", [])
    streams = [m for m in mappings if ":dynamodb:" in m.get("EventSourceArn", "")]
    stale = [m for m in streams if m["EventSourceArn"] != stream_arn]
    if stale:
        raise StaleMappingError(
            f"{function_name} reads {', '.join(m['EventSourceArn'] for m in stale)}, not the "
            f"table's stream {stream_arn} (chalice#1882). Delete it (aws lambda "
            f"delete-event-source-mapping --uuid {stale[0]['UUID']}), remove its entry from "
            f".chalice/deployed/<stage>.json, then deploy again.")
    if not streams:
        raise LookupError(f"{function_name} has no mapping on {stream_arn}: run chalice deploy")
    [mapping] = streams
    changes = differences(mapping, wanted)
    if changes:
        client.update_event_source_mapping(UUID=mapping["UUID"], **changes)
    return sorted(changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--stage", default="prod1")
    parser.add_argument("--app-name", default="sqs-manager")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    outputs = stack_outputs(args.stack_name, args.endpoint_url, args.region)
    client = boto3.client("lambda", endpoint_url=args.endpoint_url, region_name=args.region)
    function_name = f"{args.app_name}-{args.stage}-{FUNCTION}"
    try:
        changed = apply(client, function_name, outputs["StreamArn"],
                        wanted_settings(outputs["StreamFailureQueueArn"]))
    except (StaleMappingError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"function": function_name, "updated": changed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
