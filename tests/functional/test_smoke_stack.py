"""`make smoke --stack-name`: the URLs and the ingest mode come from a real CloudFormation answer
(the standalone stack deployed into moto). moto skips AWS::ApiGateway::ApiKey, so where the mode
needs a key it must be given, and the smoke script says so; the key lookup itself is covered in
tests/unit."""

from __future__ import annotations

import boto3
import pytest

from devstack.emulator import MotoServer
from scripts.smoke_target import stack_target
from scripts.standalone_template import write as write_standalone
from tests.conftest import REGION
from tests.moto_stacks import create_stack

READ_URL = "https://def456.execute-api.us-west-2.amazonaws.com/Prod1/"


@pytest.fixture(scope="module")
def body(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_standalone(tmp_path_factory.mktemp("smoke") / "standalone.json").read_text()


@pytest.fixture(scope="module")
def stack_name(moto_server: MotoServer, body: str) -> str:
    create_stack(moto_server, "sqs-manager-smoke", body)  # IngestAuthorization AWS_IAM
    return "sqs-manager-smoke"


@pytest.fixture
def session(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    return boto3.Session(region_name=REGION)


def test_the_ingest_url_comes_from_the_stack(session: boto3.Session, stack_name: str) -> None:
    target = stack_target(session, stack_name, REGION, READ_URL, "given-key")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in session.client(
        "cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]}
    assert target.ingest_url == outputs["IngestUrl"]
    assert target.ingest_url.endswith(".execute-api.us-west-2.amazonaws.com/Prod1/SQSManager")
    assert (target.read_url, target.api_key) == (READ_URL.rstrip("/"), "given-key")


def test_the_default_stack_signs_its_writes_and_needs_no_key(session: boto3.Session,
                                                             stack_name: str) -> None:
    target = stack_target(session, stack_name, REGION, READ_URL)
    assert (target.ingest_mode, target.ingest.iam, target.ingest.api_key, target.api_key) == (
        "AWS_IAM", True, False, "")


def test_where_the_mode_needs_a_key_without_its_output_it_must_be_given(
        moto_server: MotoServer, session: boto3.Session, body: str) -> None:
    create_stack(moto_server, "sqs-manager-smoke-key", body, {"IngestAuthorization": "API_KEY"})
    with pytest.raises(SystemExit, match="--api-key"):
        stack_target(session, "sqs-manager-smoke-key", REGION, READ_URL)


def test_an_unknown_stack_is_an_error(session: boto3.Session) -> None:
    with pytest.raises(Exception, match="does not exist"):
        stack_target(session, "no-such-stack", REGION, READ_URL, "k")
