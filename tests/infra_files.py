"""The infrastructure's files as the unit tests read them: infra/extension.yaml and
.chalice/config.json, and the lookups several test modules make in them."""

from __future__ import annotations

import json
from typing import Any

from scripts import cfn_yaml
from scripts.standalone_template import EXTENSION, ROOT
from scripts.sync_schema import SCHEMA
from scripts.write_outputs import CONFIG

__all__ = ["CONFIG", "CONSUMER_NAME", "EXTENSION", "ROOT", "SCHEMA", "config", "lambda_setting",
           "statements", "template"]
# chalice deploy names functions <app_name>-<stage>-<function>; the merge gives the package path
# the same names, so one name serves alarms, dashboard and log permissions on both paths.
CONSUMER_NAME = "${ChaliceAppName}-${ChaliceStage}-handle_messages"


def template() -> dict[str, Any]:
    """infra/extension.yaml, its short tags (!Ref, !Sub...) in long form."""
    return cfn_yaml.load_template(EXTENSION)


def config() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CONFIG.read_text(encoding="utf-8"))
    return data


def lambda_setting(config: dict[str, Any], stage: str, function: str, key: str) -> Any:
    """Chalice's lookup order: stage function, stage, top-level function, top level."""
    stage_config = config["stages"][stage]
    for scope in (stage_config.get("lambda_functions", {}).get(function, {}), stage_config,
                  config.get("lambda_functions", {}).get(function, {}), config):
        if key in scope:
            return scope[key]
    return None


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of a role's inline policies."""
    found: list[dict[str, Any]] = []
    for policy in resource["Properties"].get("Policies", []):
        found.extend(policy["PolicyDocument"]["Statement"])
    return found
