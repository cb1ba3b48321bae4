"""What `make smoke` checks: the stage's URLs, API key and IngestAuthorization, from a stack's
outputs (or `.chalice/deployed/<stage>.json`), explicit options winning."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3

from devstack.infra import INGEST_AUTHORIZATION, InfraTemplate, MethodAuth

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra" / "extension.yaml"


@dataclass(frozen=True)
class Target:
    ingest_url: str  # .../SQSManager
    read_url: str  # the read API's base URL, without a trailing slash
    api_key: str  # "" where ingest needs none
    region: str
    ingest_mode: str = "AWS_IAM"  # the stack's IngestAuthorization

    @property
    def ingest(self) -> MethodAuth:
        """What the mode makes POST /SQSManager require, as the template resolves it."""
        return InfraTemplate(INFRA).method_auth(self.ingest_mode)


def read_url_from_deployed(stage: str, project_dir: Path = ROOT) -> str | None:
    """The read API's URL that `chalice deploy` recorded for the stage, if any."""
    path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    if not path.exists():
        return None
    for resource in json.loads(path.read_text(encoding="utf-8")).get("resources", []):
        if resource.get("resource_type") == "rest_api" and resource.get("rest_api_url"):
            return str(resource["rest_api_url"])
    return None


def target_from_stack(outputs: dict[str, str], api_key_value: Callable[[str], str],
                      region: str, read_url: str | None = None,
                      api_key: str | None = None, ingest_mode: str | None = None) -> Target:
    """The stack's URLs, ingest mode and key from its outputs; explicit values win."""
    mode = ingest_mode or outputs.get(INGEST_AUTHORIZATION) or "AWS_IAM"
    ingest = outputs.get("IngestUrl")
    read = read_url or outputs.get("EndpointURL")
    if not ingest:
        raise SystemExit("the stack has no IngestUrl output: is it sqs-manager's stack?")
    if not read:
        raise SystemExit("no read API URL: deploy with `chalice deploy` from this directory, "
                         "or pass --read-url (Chalice prints it as the Rest API URL)")
    key = api_key or (api_key_value(outputs["ApiKeyId"]) if outputs.get("ApiKeyId") else "")
    target = Target(ingest, read.rstrip("/"), key, region, mode)
    if target.ingest.api_key and not key:
        raise SystemExit(f"no API key: {INGEST_AUTHORIZATION} {mode} needs one, and the stack "
                         f"has no ApiKeyId output; pass --api-key")
    return target


def stack_target(session: boto3.Session, stack_name: str, region: str,
                 read_url: str | None = None, api_key: str | None = None,
                 ingest_mode: str | None = None) -> Target:
    """The stack's outputs (CloudFormation) and its API key's value (API Gateway)."""
    described = session.client("cloudformation").describe_stacks(
        StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    def key_value(key_id: str) -> str:
        value: str = session.client("apigateway").get_api_key(
            apiKey=key_id, includeValue=True)["value"]
        return value

    return target_from_stack(outputs, key_value, region, read_url, api_key, ingest_mode)
