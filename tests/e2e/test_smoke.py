"""`python -m devstack --auth` (`make run AUTH=1`) answers as the prod1 stage does on AWS, and
`make smoke` (scripts/smoke.py, as a process) verifies it end to end."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devstack.emulator import EMULATOR_CREDENTIALS
from tests.conftest import REGION
from tests.e2e.conftest import AuthPipeline, unique

pytestmark = pytest.mark.e2e

PROJECT_DIR = Path(__file__).resolve().parents[2]
BASE_CHECKS = ("create applied", "update applied", "text & + % ü 😀 round-trips",
               "id with space / % + ü reads back", "delete applied",
               "changes reach the item's history", "invalid body: 400, JSON body",
               "over the queue limit: 413")
READ_CHECKS = ("unsigned read: 403", "read signed with a wrong secret: 403")
IAM_CHECKS = ("unsigned write: 403", "write signed with a wrong secret: 403")
KEY_CHECKS = ("no API key: 403",)
# What make smoke checks for each IngestAuthorization.
CHECKS = {"AWS_IAM": (*BASE_CHECKS, *IAM_CHECKS, *READ_CHECKS),
          "API_KEY": (*BASE_CHECKS, *KEY_CHECKS, *READ_CHECKS),
          "AWS_IAM_AND_API_KEY": (*BASE_CHECKS, *IAM_CHECKS, *KEY_CHECKS, *READ_CHECKS)}


def run_smoke(pipeline: AuthPipeline, mode: str,
              api_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({**EMULATOR_CREDENTIALS, "AWS_DEFAULT_REGION": REGION,
                "PYTHONIOENCODING": "utf-8"})
    key = ["--api-key", api_key] if api_key else []
    return subprocess.run(
        [sys.executable, "-m", "scripts.smoke", "--ingest-url", pipeline.base_url,
         "--read-url", pipeline.base_url, "--ingest-authorization", mode, *key,
         "--timeout", "30"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, encoding="utf-8",
        timeout=300, check=False)


def rows(output: str) -> dict[str, str]:
    """check name -> "ok" / "FAIL", from the printed table."""
    names = {name for checks in CHECKS.values() for name in checks}
    found = {}
    for line in output.splitlines():
        for name in names:
            if line.startswith(name + " "):
                found[name] = line[len(name):].split()[0]
    return found


def test_smoke_verifies_every_check_against_the_default_iam_stage(
        auth_pipeline: AuthPipeline) -> None:
    """IngestAuthorization AWS_IAM (the default): unsigned writes are refused."""
    result = run_smoke(auth_pipeline, "AWS_IAM")
    checks = CHECKS["AWS_IAM"]
    assert result.returncode == 0, (f"{result.stdout}\n{result.stderr}\n"
                                    f"{auth_pipeline.log()[-3000:]}")
    assert rows(result.stdout) == {name: "ok" for name in checks}, result.stdout
    assert f"{len(checks)} of {len(checks)} checks passed" in result.stdout


def test_smoke_verifies_every_check_against_a_stage_needing_both(
        iam_and_key_pipeline: AuthPipeline) -> None:
    result = run_smoke(iam_and_key_pipeline, "AWS_IAM_AND_API_KEY", iam_and_key_pipeline.key)
    checks = CHECKS["AWS_IAM_AND_API_KEY"]
    assert result.returncode == 0, (f"{result.stdout}\n{result.stderr}\n"
                                    f"{iam_and_key_pipeline.log()[-3000:]}")
    assert rows(result.stdout) == {name: "ok" for name in checks}, result.stdout


def test_smoke_fails_and_names_the_checks_a_wrong_api_key_breaks(
        api_key_pipeline: AuthPipeline) -> None:
    result = run_smoke(api_key_pipeline, "API_KEY", "not-the-key-of-this-stack")
    assert result.returncode == 1, result.stdout
    found = rows(result.stdout)
    assert set(found) == set(CHECKS["API_KEY"])
    # Every write is refused with 403; what needs no key still passes.
    assert found["create applied"] == "FAIL" and found["invalid body: 400, JSON body"] == "FAIL"
    assert "POST answered 403" in result.stdout
    assert found["no API key: 403"] == "ok" and found["unsigned read: 403"] == "ok"


def test_ingest_needs_the_printed_api_key(api_key_pipeline: AuthPipeline) -> None:
    assert "api key:" in api_key_pipeline.log() and len(api_key_pipeline.key) >= 20
    command = json.dumps({"operation": "create", "id": unique("auth"), "item": {"a": 1}})
    for headers in ({"x-api-key": ""}, {"x-api-key": api_key_pipeline.key + "x"}):
        response = requests.post(f"{api_key_pipeline.base_url}/SQSManager", data=command,
                                 headers={"Content-Type": "application/json", **headers},
                                 timeout=30)
        assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
    request_id = api_key_pipeline.submit(json.loads(command))  # with the key, signed reads
    assert api_key_pipeline.outcome(request_id)["status"] == "applied"


def test_ingest_needs_a_signature_by_default(auth_pipeline: AuthPipeline) -> None:
    """IngestAuthorization AWS_IAM: an unsigned POST gets API Gateway's answer, a signed one is
    applied; no key is printed or needed."""
    assert auth_pipeline.api_key is None
    command = json.dumps({"operation": "create", "id": unique("iam"), "item": {"a": 1}})
    unsigned = requests.post(f"{auth_pipeline.base_url}/SQSManager", data=command,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert (unsigned.status_code, unsigned.json()) == (
        403, {"message": "Missing Authentication Token"})
    request_id = auth_pipeline.submit(json.loads(command))  # signed
    assert auth_pipeline.outcome(request_id)["status"] == "applied"


def test_reads_need_a_sigv4_signature_by_the_printed_credentials(
        auth_pipeline: AuthPipeline) -> None:
    unsigned = requests.get(f"{auth_pipeline.base_url}/items?limit=1", timeout=10)
    assert (unsigned.status_code, unsigned.json()) == (
        403, {"message": "Missing Authentication Token"})
    assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    signed = auth_pipeline.http.get(f"{auth_pipeline.base_url}/items?limit=1", timeout=10)
    assert signed.status_code == 200 and "items" in signed.json()


def test_the_documented_botocore_signing_writes_to_an_iam_stage(
        auth_pipeline: AuthPipeline) -> None:
    """docs/deployment.md's boto3/botocore example, run as written against the local AWS_IAM
    stage (only its URL and region filled in): the write is accepted and gets an outcome."""
    text = (PROJECT_DIR / "docs" / "deployment.md").read_text(encoding="utf-8")
    [snippet] = re.findall(r"```python\n(.*?)```", text, re.S)
    code = snippet.replace(
        '"https://<IngestApiId>.execute-api.<region>.amazonaws.com/Prod1/SQSManager"',
        repr(f"{auth_pipeline.base_url}/SQSManager")).replace('"<region>"', repr(REGION))
    assert "<" not in code, code  # every placeholder filled
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(EMULATOR_CREDENTIALS)
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    answer = ast.literal_eval(result.stdout.strip())  # print() of the JSON answer
    assert set(answer) == {"requestId", "messageId"}, answer
    assert auth_pipeline.outcome(answer["requestId"])["status"] in {"applied", "rejected"}
