"""Stacks other than the default one in moto's CloudFormation over HTTP (tests/moto_stacks.py):
updates that switch the ingest mode or change the ingest method publish a new Deployment, and a
FIFO stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.emulator import MotoServer
from scripts.cfn_yaml import load_template
from scripts.deployment_hash import DEPLOYMENT, EXTENSION
from scripts.standalone_template import standalone
from tests.moto_stacks import (
    STACK,
    client,
    create_stack,
    ingest_method,
    outputs,
    package_deploy_path,
    settled,
)
from tests.waiting import wait_until

# The clients name the endpoint themselves (tests/functional/conftest.py).
pytestmark = pytest.mark.usefixtures("no_endpoint_override")


def test_switching_the_mode_publishes_a_new_deployment(moto: MotoServer,
                                                       template_body: str) -> None:
    """A stage serves a snapshot: the switch must create the new mode's Deployment."""
    name = f"{STACK}-switch"
    create_stack(moto, name, template_body, {"IngestAuthorization": "API_KEY"})
    [before] = deployments(moto, name)
    cloudformation = client(moto, "cloudformation")
    cloudformation.update_stack(
        StackName=name, TemplateBody=template_body, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "IngestAuthorization", "ParameterValue": "AWS_IAM"}])
    assert wait_until(lambda: settled(cloudformation, name), 30)["StackStatus"] == (
        "UPDATE_COMPLETE")
    assert before.startswith("IngestDeploymentApiKey")
    # moto keeps a resource whose condition turned false (CloudFormation deletes it): only the
    # new one is asserted.
    [after] = [d for d in deployments(moto, name) if d != before]
    assert after.startswith("IngestDeploymentAwsIam") and not after.startswith(
        "IngestDeploymentAwsIamAnd")


def deployments(moto: MotoServer, stack_name: str) -> list[str]:
    cloudformation = client(moto, "cloudformation")
    described = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    return [r["LogicalResourceId"] for r in described if r.get("ResourceType") == DEPLOYMENT]


def test_a_changed_method_is_deployed_anew(moto: MotoServer, template_body: str) -> None:
    name = f"{STACK}-redeploy"
    create_stack(moto, name, template_body)
    [first] = deployments(moto, name)
    assert first.startswith("IngestDeploymentAwsIam") and first != "IngestDeploymentAwsIam"
    # The source template again (unhashed names), with the method changed.
    changed = load_template(EXTENSION)
    method = changed["Resources"]["SendMessageMethod"]["Properties"]
    method["Integration"]["RequestTemplates"]["application/json"]["Fn::Sub"][0] += (
        "&MessageAttribute.3.Name=x")
    cloudformation = client(moto, "cloudformation")
    cloudformation.update_stack(StackName=name, TemplateBody=json.dumps(standalone(changed)),
                                Capabilities=["CAPABILITY_IAM"])
    assert wait_until(lambda: settled(cloudformation, name), 30)["StackStatus"] == (
        "UPDATE_COMPLETE")
    [second] = deployments(moto, name)
    assert second.startswith("IngestDeploymentAwsIam") and second != first


def test_a_fifo_stack_has_fifo_queues_and_deploys_without_a_batching_window(
        moto: MotoServer, template_body: str, tmp_path: Path) -> None:
    """QueueType=fifo: a FIFO queue and DLQ named <stack>-queue.fifo / -dlq.fifo, deduplicated
    by the request id only; the `chalice deploy` path then asks Lambda for no batching window
    (which Lambda refuses on FIFO queues)."""
    name = f"{STACK}-fifo"
    found = outputs(create_stack(moto, name, template_body, {"QueueType": "fifo"}))
    assert (found["QueueName"], found["DeadLetterQueueName"]) == (f"{name}-queue.fifo",
                                                                  f"{name}-dlq.fifo")
    sqs = client(moto, "sqs")
    queue = sqs.get_queue_attributes(QueueUrl=found["QueueUrl"],
                                     AttributeNames=["All"])["Attributes"]
    assert queue["FifoQueue"] == "true" and queue["ContentBasedDeduplication"] == "false"
    assert json.loads(queue["RedrivePolicy"])["deadLetterTargetArn"] == found[
        "DeadLetterQueueArn"]
    dlq = sqs.get_queue_attributes(QueueUrl=found["DeadLetterQueueUrl"],
                                   AttributeNames=["All"])["Attributes"]
    assert dlq["FifoQueue"] == "true"
    assert ingest_method(moto, {"Outputs": [{"OutputKey": k, "OutputValue": v}
                                            for k, v in found.items()]})[
        "methodIntegration"]["uri"].endswith(f"/{name}-queue.fifo")
    event = package_deploy_path(found, tmp_path)["Resources"]["HandleMessages"]["Properties"][
        "Events"]["HandleMessagesSqsEventSource"]["Properties"]
    assert event["MaximumBatchingWindowInSeconds"] == 0
    assert event["Queue"]["Fn::Sub"].endswith(f":{name}-queue.fifo")
