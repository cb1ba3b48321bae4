"""`python -m devstack --auth` (`make run AUTH=1`) answers as the prod1 stage does on AWS, and
`make smoke` (scripts/smoke.py, as a process) verifies it end to end."""

from __future__ import annotations

import json
import os
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
CHECKS = ("create applied", "update applied", "text & + % ü 😀 round-trips",
          "id with space / % + ü reads back", "delete applied", "invalid body: 400, JSON body",
          "over the queue limit: 413", "no API key: 403", "unsigned read: 403",
          "read signed with a wrong secret: 403")


def run_smoke(pipeline: AuthPipeline, api_key: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({**EMULATOR_CREDENTIALS, "AWS_DEFAULT_REGION": REGION,
                "PYTHONIOENCODING": "utf-8"})
    return subprocess.run(
        [sys.executable, "-m", "scripts.smoke", "--ingest-url", pipeline.base_url,
         "--read-url", pipeline.base_url, "--api-key", api_key, "--timeout", "30"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, encoding="utf-8",
        timeout=300, check=False)


def rows(output: str) -> dict[str, str]:
    """check name -> "ok" / "FAIL", from the printed table."""
    found = {}
    for line in output.splitlines():
        for name in CHECKS:
            if line.startswith(name + " "):
                found[name] = line[len(name):].split()[0]
    return found


def test_smoke_verifies_every_check_against_the_auth_pipeline(
        auth_pipeline: AuthPipeline) -> None:
    result = run_smoke(auth_pipeline, auth_pipeline.api_key)
    assert result.returncode == 0, (f"{result.stdout}\n{result.stderr}\n"
                                    f"{auth_pipeline.log()[-3000:]}")
    assert rows(result.stdout) == {name: "ok" for name in CHECKS}, result.stdout
    assert f"{len(CHECKS)} of {len(CHECKS)} checks passed" in result.stdout


def test_smoke_fails_and_names_the_checks_a_wrong_api_key_breaks(
        auth_pipeline: AuthPipeline) -> None:
    result = run_smoke(auth_pipeline, "not-the-key-of-this-stack")
    assert result.returncode == 1, result.stdout
    found = rows(result.stdout)
    # Every write is refused with 403; what needs no key still passes.
    assert found["create applied"] == "FAIL" and found["invalid body: 400, JSON body"] == "FAIL"
    assert "POST answered 403" in result.stdout
    assert found["no API key: 403"] == "ok" and found["unsigned read: 403"] == "ok"


def test_ingest_needs_the_printed_api_key(auth_pipeline: AuthPipeline) -> None:
    assert "api key:" in auth_pipeline.log() and len(auth_pipeline.api_key) >= 20
    command = json.dumps({"operation": "create", "id": unique("auth"), "item": {"a": 1}})
    for headers in ({"x-api-key": ""}, {"x-api-key": auth_pipeline.api_key + "x"}):
        response = requests.post(f"{auth_pipeline.base_url}/SQSManager", data=command,
                                 headers={"Content-Type": "application/json", **headers},
                                 timeout=30)
        assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})
    request_id = auth_pipeline.submit(json.loads(command))  # with the key, signed reads
    assert auth_pipeline.outcome(request_id)["status"] == "applied"


def test_reads_need_a_sigv4_signature_by_the_printed_credentials(
        auth_pipeline: AuthPipeline) -> None:
    unsigned = requests.get(f"{auth_pipeline.base_url}/items?limit=1", timeout=10)
    assert (unsigned.status_code, unsigned.json()) == (
        403, {"message": "Missing Authentication Token"})
    assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    signed = auth_pipeline.http.get(f"{auth_pipeline.base_url}/items?limit=1", timeout=10)
    assert signed.status_code == 200 and "items" in signed.json()
