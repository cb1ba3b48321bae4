"""infra/extension.yaml as a whole, static checks, no network: the YAML loader, cfn-lint on the
extension and on the standalone template, the command model kept in sync with the schema, and no
account ids anywhere in the repo. Its parts: test_infra_resources.py (queues, table, the ingest
method), test_infra_iam.py (least privilege), test_chalice_config.py (the Chalice overrides, the
outputs, .chalice/config.json) and test_infra_operations.py (alarms, dashboard, logs, tracing)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from scripts import cfn_yaml, standalone_template, sync_schema
from tests.conftest import REGION
from tests.infra_files import EXTENSION, ROOT, SCHEMA

CHALICE_OVERRIDES = {"HandleMessages", "APIHandler", "PublishChanges", "RecordHistory",
                     "RestAPI"}


# ---------------------------------------------------------------- the YAML loader


def test_cfn_yaml_turns_short_tags_into_long_form() -> None:
    loaded = cfn_yaml.loads(
        "a: !Ref X\n"
        "b: !GetAtt Queue.Arn\n"
        "c: !Sub 'x-${AWS::Region}'\n"
        "d: !If [Cond, !Ref A, !Ref AWS::NoValue]\n"
        "e: !Equals [!Ref P, 'true']\n"
        "f: !Join ['', [a, !GetAtt [T, Arn]]]\n"
        "g: !Condition C\n"
    )
    assert loaded == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Queue", "Arn"]},
        "c": {"Fn::Sub": "x-${AWS::Region}"},
        "d": {"Fn::If": ["Cond", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]},
        "e": {"Fn::Equals": [{"Ref": "P"}, "true"]},
        "f": {"Fn::Join": ["", ["a", {"Fn::GetAtt": ["T", "Arn"]}]]},
        "g": {"Condition": "C"},
    }


def test_cfn_yaml_leaves_the_global_safe_loader_alone() -> None:
    import yaml

    assert "!Ref" in cfn_yaml.CfnLoader.yaml_constructors
    assert "!Ref" not in yaml.SafeLoader.yaml_constructors


# ---------------------------------------------------------------- lint


def _lint(text: str) -> list[str]:
    matches = lint(text, config=ManualArgs(regions=[REGION], include_checks=["I"]))
    return [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches
            # The Chalice-only overrides have no Type on their own: they are merged.
            if not (m.rule.id == "E3001" and m.path[:1] == ["Resources"]
                    and m.path[1] in CHALICE_OVERRIDES)]


# cfn-lint follows both branches of every condition; linting with each QueueType as the
# default also checks the values it resolves (FIFO names, the FIFO request template).
QUEUE_TYPES = pytest.mark.parametrize("queue_type", ["standard", "fifo"])


@QUEUE_TYPES
def test_extension_template_is_cfn_lint_clean(queue_type: str) -> None:
    text = EXTENSION.read_text(encoding="utf-8")
    assert text.count("    Default: standard\n") == 1
    assert _lint(text.replace("    Default: standard\n", f"    Default: {queue_type}\n")) == []


@QUEUE_TYPES
def test_standalone_template_is_cfn_lint_clean(template: dict[str, Any], queue_type: str) -> None:
    standalone = standalone_template.standalone(template)
    standalone["Parameters"]["QueueType"]["Default"] = queue_type
    # The Deployment is renamed by content hash (tests/unit/test_deployment_hash.py).
    renamed = {"IngestDeploymentAwsIam", "IngestDeploymentApiKey",
               "IngestDeploymentAwsIamAndApiKey"}
    assert set(template["Resources"]) - set(standalone["Resources"]) == CHALICE_OVERRIDES | renamed
    assert len(standalone["Resources"]) == len(template["Resources"]) - len(CHALICE_OVERRIDES)
    assert all("Type" in body for body in standalone["Resources"].values())
    text = json.dumps(standalone)
    assert _lint(text) == []
    assert len(text) < 51_200, "aws cloudformation deploy --template-file limit without S3"


def test_standalone_refuses_dangling_references() -> None:
    broken = {"Resources": {"A": {"Type": "AWS::SQS::Queue"}, "B": {"Properties": {}}},
              "Outputs": {"X": {"Value": {"Fn::Sub": "${B.Arn}"}}}}
    with pytest.raises(ValueError, match="B"):
        standalone_template.standalone(broken)


def test_overrides_are_the_last_resources(template: dict[str, Any]) -> None:
    names = list(template["Resources"])
    assert set(names[-len(CHALICE_OVERRIDES):]) == CHALICE_OVERRIDES


# ---------------------------------------------------------------- the API Gateway model


def test_command_model_schema_is_command_schema_json(resources: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert resources["CommandModel"]["Properties"]["Schema"] == schema


def test_sync_schema_check_passes_and_render_is_idempotent() -> None:
    assert sync_schema.main(["--check"]) == 0
    text = EXTENSION.read_text(encoding="utf-8")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert sync_schema.render(text, schema) == text


def test_sync_schema_rewrites_only_the_marked_block(tmp_path: Path) -> None:
    stale = tmp_path / "extension.yaml"
    original = EXTENSION.read_text(encoding="utf-8")
    stale.write_text(sync_schema.render(original, {"type": "object"}), encoding="utf-8")
    assert sync_schema.main(["--check", "--template", str(stale)]) == 1
    assert sync_schema.main(["--template", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == original


# ---------------------------------------------------------------- account ids


ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


@pytest.mark.parametrize("folder", ["infra", ".chalice", "scripts", "chalicelib", "devstack",
                                    "bench", "postman", "tests", "."])
def test_no_account_ids(folder: str) -> None:
    paths = (ROOT / folder).glob("*") if folder == "." else (ROOT / folder).rglob("*")
    for path in paths:
        if path.is_file() and path.suffix in {".yaml", ".yml", ".json", ".py", ".md", ".txt"}:
            if path.name in ("package-lock.json", "constraints.txt"):
                continue  # version numbers and hashes, not ours
            found = ACCOUNT_ID.findall(path.read_text(encoding="utf-8"))
            assert not found, f"{path}: {found}"
