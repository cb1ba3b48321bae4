"""The Postman collection, run by newman against the pipeline as a real process.

postman/sqs-manager.postman_collection.json is what clients run against a deployed stage
(postman/prod1.postman_environment.json); here it runs against `python -m devstack`, started on
free ports by the shared `pipeline` fixture (tests/e2e/conftest.py). newman comes from npm
(package.json, pinned in package-lock.json): `npm ci` installs it (`make test` does).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PipelineProcess

pytestmark = pytest.mark.e2e

PROJECT_DIR = Path(__file__).resolve().parents[2]
NEWMAN = PROJECT_DIR / "node_modules" / ".bin" / "newman"
COLLECTION = PROJECT_DIR / "postman" / "sqs-manager.postman_collection.json"
ENVIRONMENT = PROJECT_DIR / "postman" / "local.postman_environment.json"
MIN_ASSERTIONS = 30
RUN_TIMEOUT_SECONDS = 240


def newman_command(base_url: str, report: Path) -> list[str]:
    return [
        str(NEWMAN), "run", str(COLLECTION), "-e", str(ENVIRONMENT),
        "--env-var", f"baseUrl={base_url}", "--env-var", f"ingestUrl={base_url}",
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


def test_postman_collection_passes_against_the_pipeline(pipeline: PipelineProcess,
                                                         tmp_path: Path) -> None:
    if not NEWMAN.exists():
        pytest.fail(f"{NEWMAN.relative_to(PROJECT_DIR)} is missing: run `npm ci` in "
                    f"{PROJECT_DIR} first (package-lock.json pins newman)", pytrace=False)
    report_path = tmp_path / "newman-report.json"
    result = subprocess.run(newman_command(pipeline.base_url, report_path), cwd=PROJECT_DIR,
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS + 30,
                            check=False)
    output = f"{result.stdout}\n{result.stderr}"
    assert report_path.exists(), (
        f"newman wrote no JSON report (exit {result.returncode}):\n{output}")
    report = json.loads(report_path.read_text(encoding="utf-8"))
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
