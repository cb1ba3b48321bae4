"""Write the standalone stack template: infra/extension.yaml without the Chalice-only overrides.

The overrides are the resources with no `Type` (HandleMessages, APIHandler): they only make sense
merged into `chalice package` output. The ingest API's Deployment gets its content-hash name
(scripts/deployment_hash.py). The result is long-form CloudFormation, JSON by default
(YAML when the output path ends in .yaml/.yml), for `aws cloudformation deploy`.

    python -m scripts.standalone_template build/standalone.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from scripts.deployment_hash import cli, references, with_deployment_hash, write_built

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "infra" / "extension.yaml"
DEFAULT_OUTPUT = ROOT / "build" / "standalone.json"


def standalone(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of `template` without the resources that have no Type, its Deployment named by
    content hash as on the `chalice package` path (scripts/deployment_hash.py)."""
    result = with_deployment_hash(template)
    resources: dict[str, Any] = result.get("Resources", {})
    dropped = {name for name, body in resources.items() if "Type" not in body}
    for name in dropped:
        del resources[name]
    dangling = references({k: v for k, v in result.items() if k != "Resources"} | resources)
    if dangling & dropped:
        raise ValueError(f"the standalone template still references {sorted(dangling & dropped)}")
    return result


def dumps(template: dict[str, Any], path: Path) -> str:
    if path.suffix.lower() in {".yaml", ".yml"}:
        return yaml.safe_dump(template, sort_keys=False, allow_unicode=True)
    return json.dumps(template, indent=1, ensure_ascii=False) + "\n"


def write(output: Path, source: Path = EXTENSION) -> Path:
    return write_built(output, source, standalone, dumps)


def main(argv: list[str] | None = None) -> int:
    return cli(argv, __doc__, DEFAULT_OUTPUT, write)


if __name__ == "__main__":
    sys.exit(main())
