"""The standalone stack deployed into moto's CloudFormation over HTTP, for the tests: creating
stacks, reading their outputs and ingest method, and `chalice package` of the config
scripts/write_outputs.py writes from their outputs.

moto creates the queues (with redrive), the table, the roles and the RestApi/Resource/Method/
Deployment; it drops a Method's integration details, skips AWS::ApiGateway::Stage, Model,
RequestValidator, GatewayResponse, ApiKey and UsagePlan*, and ignores the table's TTL, PITR
and SSE settings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

from devstack.emulator import MotoServer
from scripts.standalone_template import ROOT
from scripts.write_outputs import apply_outputs
from tests.conftest import REGION
from tests.waiting import wait_until

STACK = "sqs-manager-test"


def client(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def settled(cloudformation: Any, name: str) -> dict[str, Any] | None:
    """The stack once no operation is in progress on it."""
    described: dict[str, Any] = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return None if described["StackStatus"].endswith("_IN_PROGRESS") else described


def create_stack(moto: MotoServer, name: str, body: str,
                 parameters: dict[str, str] | None = None) -> dict[str, Any]:
    cloudformation = client(moto, "cloudformation")
    cloudformation.create_stack(
        StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v}
                    for k, v in (parameters or {}).items()])
    described: dict[str, Any] = wait_until(lambda: settled(cloudformation, name), 30)
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return described


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def ingest_method(moto: MotoServer, stack: dict[str, Any]) -> dict[str, Any]:
    ingest_url = outputs(stack)["IngestUrl"]
    api_id = ingest_url.removeprefix("https://").split(".", 1)[0]
    items = client(moto, "apigateway").get_resources(restApiId=api_id)["items"]
    paths = {r["path"]: r for r in items}
    method: dict[str, Any] = paths["/SQSManager"]["resourceMethods"]["POST"]
    return method


def package_deploy_path(found: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """`chalice package` (no merge) of the config scripts/write_outputs.py writes from `found`:
    what `chalice deploy` would create."""
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    shutil.copy(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    config = apply_outputs(json.loads((ROOT / ".chalice" / "config.json").read_text()),
                           found, "prod1")
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "package", "--stage", "prod1",
         str(tmp_path / "out")],
        cwd=project, env=dict(os.environ), capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    template: dict[str, Any] = json.loads((tmp_path / "out" / "sam.json").read_text())
    return template
