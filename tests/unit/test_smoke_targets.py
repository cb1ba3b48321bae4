"""scripts/smoke.py without a stack: where it finds URLs and key, and how it reports (no I/O).
The checks themselves run against `python -m devstack --auth` in tests/e2e/test_smoke.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from scripts.cfn_yaml import load_template
from scripts.smoke import Check, table
from scripts.smoke_checks import Smoke, queue_message_limit
from scripts.smoke_target import read_url_from_deployed, target_from_stack
from tests.conftest import REGION

INGEST = "https://abc123.execute-api.us-west-2.amazonaws.com/Prod1/SQSManager"
ROOT = Path(__file__).resolve().parents[2]
READ = "https://def456.execute-api.us-west-2.amazonaws.com/Prod1/"


def no_key_lookup(key_id: str) -> str:
    raise AssertionError(f"looked up {key_id} although a key was given")


def test_package_path_stack_has_everything_in_its_outputs() -> None:
    looked_up: list[str] = []

    def key_value(key_id: str) -> str:
        looked_up.append(key_id)
        return "the-key-value"

    target = target_from_stack({"IngestUrl": INGEST, "EndpointURL": READ, "ApiKeyId": "k1",
                                "IngestAuthorization": "AWS_IAM_AND_API_KEY"}, key_value, REGION)
    assert (target.ingest_url, target.read_url, target.api_key) == (
        INGEST, READ.rstrip("/"), "the-key-value")
    assert looked_up == ["k1"]
    assert (target.ingest.iam, target.ingest.api_key) == (True, True)


@pytest.mark.parametrize(("outputs", "checked", "not_checked"), [
    # The default stack (AWS_IAM): no key, no ApiKeyId output; writes must be signed.
    ({"IngestAuthorization": "AWS_IAM"}, {"unsigned write: 403"}, {"no API key: 403"}),
    ({"IngestAuthorization": "API_KEY", "ApiKeyId": "k1"}, {"no API key: 403"},
     {"unsigned write: 403"}),
    ({"IngestAuthorization": "AWS_IAM_AND_API_KEY", "ApiKeyId": "k1"},
     {"unsigned write: 403", "write signed with a wrong secret: 403", "no API key: 403"}, set()),
    # A stack from before IngestAuthorization has no such output: the template's default.
    ({}, {"unsigned write: 403"}, {"no API key: 403"}),
])
def test_the_checks_follow_the_stacks_ingest_authorization(
        outputs: dict[str, str], checked: set[str], not_checked: set[str]) -> None:
    target = target_from_stack({"IngestUrl": INGEST, "EndpointURL": READ, **outputs},
                               lambda key_id: "v", REGION)
    names = {name for name, _ in Smoke(target, Credentials("a", "b")).checks()}
    assert checked <= names and not names & not_checked
    assert {"unsigned read: 403", "read signed with a wrong secret: 403"} <= names


def test_explicit_read_url_and_key_win() -> None:
    target = target_from_stack({"IngestUrl": INGEST, "EndpointURL": READ, "ApiKeyId": "k1"},
                               no_key_lookup, "eu-west-1", "https://other/api/", "given")
    assert (target.read_url, target.api_key, target.region) == (
        "https://other/api", "given", "eu-west-1")


@pytest.mark.parametrize(("outputs", "read_url", "api_key", "says"), [
    ({"EndpointURL": READ, "ApiKeyId": "k"}, None, None, "IngestUrl"),
    ({"IngestUrl": INGEST, "ApiKeyId": "k"}, None, None, "--read-url"),
    ({"IngestUrl": INGEST, "EndpointURL": READ, "IngestAuthorization": "API_KEY"}, None, None,
     "--api-key"),
])
def test_what_is_missing_is_named(outputs: dict[str, str], read_url: str | None,
                                  api_key: str | None, says: str) -> None:
    with pytest.raises(SystemExit, match=says):
        target_from_stack(outputs, lambda key_id: "v", REGION, read_url, api_key)


def test_chalice_deploy_path_reads_the_url_chalice_recorded(tmp_path: Path) -> None:
    deployed = tmp_path / ".chalice" / "deployed"
    deployed.mkdir(parents=True)
    # The shape `chalice deploy` writes to .chalice/deployed/<stage>.json.
    (deployed / "prod1.json").write_text(json.dumps({"resources": [
        {"name": "api_handler", "resource_type": "lambda_function", "lambda_arn": "arn"},
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "def456",
         "rest_api_url": READ}], "schema_version": "2.0", "backend": "api"}))
    assert read_url_from_deployed("prod1", tmp_path) == READ
    assert read_url_from_deployed("other", tmp_path) is None


def test_the_oversized_body_is_sized_from_infras_queue() -> None:
    queue = load_template(ROOT / "infra" / "extension.yaml")["Resources"]["Queue"]["Properties"]
    assert queue_message_limit() == int(queue["MaximumMessageSize"])


def test_the_table_names_every_check_and_counts_the_misses() -> None:
    text = table([Check("create applied", True, "read back"),
                  Check("unsigned read: 403", False, "answered 200\n{}")])
    lines = text.splitlines()
    assert lines[2].split()[:3] == ["create", "applied", "ok"]
    assert "FAIL" in lines[3] and "answered 200 {}" in lines[3]
    assert lines[-1] == "1 of 2 checks passed"
