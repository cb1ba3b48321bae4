"""The Postman collection, run by newman against the pipeline as a real process.

postman/sqs-manager.postman_collection.json is what clients run against a deployed stage
(postman/prod1.postman_environment.json); here it runs against `python -m devstack`, started on
free ports by the shared fixtures (tests/e2e/conftest.py): open with the `local` environment, and
with `--auth` (`make run AUTH=1`) with the `local-auth` environment, so every request goes out
as it would to prod1 (the API key on POSTs, reads and outcome polls signed with Postman's AWS
Signature). newman comes from npm (package.json, pinned in package-lock.json): `npm ci`
installs it (`make test` does).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import AuthPipeline, PipelineProcess

pytestmark = pytest.mark.e2e

PROJECT_DIR = Path(__file__).resolve().parents[2]
NEWMAN = PROJECT_DIR / "node_modules" / ".bin" / "newman"
COLLECTION = PROJECT_DIR / "postman" / "sqs-manager.postman_collection.json"
ENVIRONMENT = PROJECT_DIR / "postman" / "local.postman_environment.json"
AUTH_ENVIRONMENT = PROJECT_DIR / "postman" / "local-auth.postman_environment.json"
MIN_ASSERTIONS = 30
RUN_TIMEOUT_SECONDS = 240


def newman_command(base_url: str, report: Path, environment: Path = ENVIRONMENT,
                   **variables: str) -> list[str]:
    extra = [part for name, value in variables.items()
             for part in ("--env-var", f"{name.replace('_', '-')}={value}")]
    return [
        str(NEWMAN), "run", str(COLLECTION), "-e", str(environment),
        "--env-var", f"baseUrl={base_url}", "--env-var", f"ingestUrl={base_url}", *extra,
        "--reporters", "cli,json", "--reporter-json-export", str(report),
        "--color", "off", "--disable-unicode",
        "--timeout-request", "30000", "--timeout", str(RUN_TIMEOUT_SECONDS * 1000),
    ]


def failures(report: dict[str, Any]) -> list[str]:
    """One line per failed assertion or script error, with the request it belongs to."""
    lines = []
    for failure in report["run"].get("failures", []):
        source = (failure.get("source") or {}).get("name", "?")
        error = failure.get("error") or {}
        lines.append(f"{source}: {error.get('test') or error.get('name')}: "
                     f"{error.get('message')}")
    return lines


def run_newman(pipeline: PipelineProcess, tmp_path: Path, environment: Path = ENVIRONMENT,
               **variables: str) -> dict[str, Any]:
    """Run the collection; assert it passed; return newman's JSON report."""
    if not NEWMAN.exists():
        pytest.fail(f"{NEWMAN.relative_to(PROJECT_DIR)} is missing: run `npm ci` in "
                    f"{PROJECT_DIR} first (package-lock.json pins newman)", pytrace=False)
    report_path = tmp_path / "newman-report.json"
    command = newman_command(pipeline.base_url, report_path, environment, **variables)
    result = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_SECONDS + 30, check=False)
    output = f"{result.stdout}\n{result.stderr}"
    assert report_path.exists(), (
        f"newman wrote no JSON report (exit {result.returncode}):\n{output}")
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    stats = report["run"]["stats"]
    problems = failures(report)
    assert result.returncode == 0, (
        f"newman exited {result.returncode}:\n" + "\n".join(problems) +
        f"\n\n{output[-20000:]}\n\npipeline log (end):\n{pipeline.log()[-5000:]}")
    assert stats["assertions"]["failed"] == 0, "\n".join(problems)
    assert stats["assertions"]["total"] >= MIN_ASSERTIONS, stats["assertions"]
    assert stats["requests"]["failed"] == 0, stats["requests"]
    scripts_failed = stats["testScripts"]["failed"] + stats["prerequestScripts"]["failed"]
    assert scripts_failed == 0, "\n".join(problems)
    return report


def assertions(report: dict[str, Any], request_name: str) -> list[str]:
    """The names of the assertions that ran for a request (over all its executions)."""
    return [assertion["assertion"] for execution in report["run"]["executions"]
            if execution["item"]["name"] == request_name
            for assertion in execution.get("assertions", [])]


@pytest.mark.long
def test_postman_collection_passes_against_the_pipeline(pipeline: PipelineProcess,
                                                         tmp_path: Path) -> None:
    report = run_newman(pipeline, tmp_path)
    # Open stage (ingestAuth NONE): the auth requests took their "open" branch.
    assert "no key needed: 400 for the invalid body, nothing enqueued" in assertions(
        report, "Without the API key: 403 Forbidden where the stage requires one")
    assert "no signature needed: 400 for the invalid body, nothing enqueued" in assertions(
        report, "Unsigned write: 403 Missing Authentication Token where ingest needs IAM")


# Each local mode of `make run AUTH=1 [INGEST_AUTH=...]`, as its stack's IngestAuthorization.
AUTH_MODES = {"auth_pipeline": "AWS_IAM", "api_key_pipeline": "API_KEY",
              "iam_and_key_pipeline": "AWS_IAM_AND_API_KEY"}


@pytest.mark.long
@pytest.mark.parametrize("fixture", list(AUTH_MODES))
def test_postman_collection_passes_as_prod1_against_each_auth_mode(
        fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    auth_pipeline: AuthPipeline = request.getfixturevalue(fixture)
    mode = AUTH_MODES[fixture]
    logged_before = len(auth_pipeline.log())
    report = run_newman(auth_pipeline, tmp_path, AUTH_ENVIRONMENT, ingestAuth=mode,
                        x_api_key=auth_pipeline.api_key or "")
    missing_key = assertions(report, "Without the API key: 403 Forbidden where the stage "
                                     "requires one")
    unsigned_write = assertions(report, "Unsigned write: 403 Missing Authentication Token where "
                                        "ingest needs IAM")
    if "API_KEY" in mode:
        assert '403 {"message": "Forbidden"}, as API Gateway answers a missing key' in missing_key
    else:
        assert "no key needed: 400 for the invalid body, nothing enqueued" in missing_key
    if "AWS_IAM" in mode:
        assert ('403 {"message": "Missing Authentication Token"}, as API Gateway answers an '
                'unsigned request') in unsigned_write
    else:
        assert "no signature needed: 400 for the invalid body, nothing enqueued" in unsigned_write
    assert '403 {"message": "Missing Authentication Token"}' in assertions(
        report, "Unsigned read: 403 Missing Authentication Token where reads need IAM")
    # Every other request was signed (and keyed) and accepted: the pipeline refused only the
    # deliberate ones (the unsigned read; the unsigned write and the keyless one where refused).
    refused = [line for line in auth_pipeline.log()[logged_before:].splitlines()
               if "read API refused" in line or any(
                   kind in line for kind in ("INVALID_API_KEY", "MISSING_AUTHENTICATION_TOKEN",
                                             "INVALID_SIGNATURE"))]
    expected = 1 + ("AWS_IAM" in mode) + ("API_KEY" in mode)
    assert len(refused) == expected, "\n".join(refused)
