"""checkov on the three templates a deployment uses: 0 failed checks, every skip justified.

checkov lives in its own virtualenv (.venv-checkov, `make test` creates it: its boto3 pin
conflicts with ours) and runs offline (scripts/offline_checkov.py, which fails the run if checkov
tries the network). The skips are in the templates themselves (resource Metadata, checkov's
CloudFormation form); tests/unit/test_infra_operations.py checks each carries a reason.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts import deployment_hash, standalone_template
from scripts.cfn_yaml import load_template
from tests.functional.test_infra_package import run_chalice_package

ROOT = Path(__file__).resolve().parents[2]
CHECKOV_PYTHON = ROOT / ".venv-checkov" / "bin" / "python"
EXTENSION = ROOT / "infra" / "extension.yaml"


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    build = tmp_path_factory.mktemp("checkov")
    package = build / "package"
    built = deployment_hash.write(build / "extension.yaml")
    run_chalice_package(ROOT, package, "--merge-template", str(built))
    return {"extension": EXTENSION,
            "standalone": standalone_template.write(build / "standalone.json"),
            "package": package / "sam.yaml"}


def run_checkov(*files: Path) -> subprocess.CompletedProcess[str]:
    if not CHECKOV_PYTHON.exists():
        pytest.fail("no .venv-checkov: run `make checkov-venv` (make test does)")
    args = [str(CHECKOV_PYTHON), "-m", "scripts.offline_checkov", "--framework", "cloudformation",
            "--output", "json", "--compact"]
    for path in files:
        args += ["-f", str(path)]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240,
                          check=False)


@pytest.fixture(scope="module")
def report(templates: dict[str, Path]) -> dict[str, Any]:
    result = run_checkov(*templates.values())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def by_file(report: dict[str, Any], kind: str, path: Path) -> list[dict[str, Any]]:
    return [r for r in report["results"][kind] if Path(r["file_abs_path"]) == path.resolve()]


@pytest.mark.parametrize("which", ["extension", "standalone", "package"])
def test_no_failed_checks(report: dict[str, Any], templates: dict[str, Path], which: str) -> None:
    path = templates[which]
    failed = [f"{r['check_id']} {r['resource']}: {r['check_name']}"
              for r in by_file(report, "failed_checks", path)]
    assert failed == []
    assert len(by_file(report, "passed_checks", path)) >= 30, "checkov read the template"
    assert report["summary"]["parsing_errors"] == 0


@pytest.mark.parametrize("which", ["extension", "standalone", "package"])
def test_skips_are_exactly_the_justified_ones_in_the_template(
        report: dict[str, Any], templates: dict[str, Path], which: str) -> None:
    path = templates[which]
    template = load_template(path) if path.suffix != ".json" else json.loads(path.read_text())
    declared = {(name, skip["id"]): skip["comment"]
                for name, body in template["Resources"].items()
                for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", [])
                if "Type" in body}
    skipped = {(r["resource"].split(".", 1)[1], r["check_id"]):
               r["check_result"]["suppress_comment"]
               for r in by_file(report, "skipped_checks", path)}
    assert skipped == declared
    assert all(len(reason.split()) >= 8 for reason in skipped.values())


def test_package_skips_cover_chalices_own_resources(report: dict[str, Any],
                                                    templates: dict[str, Path]) -> None:
    """The merge carries the Metadata of the overrides into Chalice's functions and read API."""
    resources = {r["resource"].split(".", 1)[1]
                 for r in by_file(report, "skipped_checks", templates["package"])}
    assert {"HandleMessages", "APIHandler", "RestAPI"} <= resources


def test_the_network_guard_refuses_and_reports() -> None:
    if not CHECKOV_PYTHON.exists():
        pytest.fail("no .venv-checkov: run `make checkov-venv` (make test does)")
    code = ("import socket, sys\n"
            "from scripts import offline_checkov as o\n"
            "o.guard()\n"
            "try:\n"
            "    socket.getaddrinfo('pypi.org', 443)\n"
            "except OSError as e:\n"
            "    print(e)\n"
            "socket.getaddrinfo('127.0.0.1', 443)\n"
            "print(o.attempts)\n")
    result = subprocess.run([str(CHECKOV_PYTHON), "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "offline_checkov: network access to 'pypi.org' refused",
        "[\"socket.getaddrinfo 'pypi.org'\"]"]
