"""Write the standalone stack template: infra/extension.yaml without the Chalice-only overrides.

The overrides are the resources with no `Type` (HandleMessages, APIHandler): they only make sense
merged into `chalice package` output. The result is long-form CloudFormation, JSON by default
(YAML when the output path ends in .yaml/.yml), for `aws cloudformation deploy`.

    python -m scripts.standalone_template build/standalone.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from scripts.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "infra" / "extension.yaml"
DEFAULT_OUTPUT = ROOT / "build" / "standalone.json"


def _references(node: Any) -> set[str]:
    """Logical ids named by Ref, Fn::GetAtt and ${X} / ${X.Attr} in Fn::Sub strings."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt" and isinstance(value, list) and value:
                found.add(str(value[0]))
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                if isinstance(text, str):
                    found.update(_sub_names(text))
            found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def _sub_names(text: str) -> set[str]:
    names: set[str] = set()
    start = text.find("${")
    while start != -1:
        end = text.find("}", start)
        if end == -1:
            break
        name = text[start + 2 : end]
        if not name.startswith("!"):
            names.add(name.split(".", 1)[0])
        start = text.find("${", end)
    return names


def standalone(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of `template` without the resources that have no Type."""
    result = copy.deepcopy(template)
    resources: dict[str, Any] = result.get("Resources", {})
    dropped = {name for name, body in resources.items() if "Type" not in body}
    for name in dropped:
        del resources[name]
    dangling = _references({k: v for k, v in result.items() if k != "Resources"} | resources)
    if dangling & dropped:
        raise ValueError(f"the standalone template still references {sorted(dangling & dropped)}")
    return result


def dumps(template: dict[str, Any], path: Path) -> str:
    if path.suffix.lower() in {".yaml", ".yml"}:
        return yaml.safe_dump(template, sort_keys=False, allow_unicode=True)
    return json.dumps(template, indent=1, ensure_ascii=False) + "\n"


def write(output: Path, source: Path = EXTENSION) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(dumps(standalone(load_template(source)), output), encoding="utf-8")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--source", type=Path, default=EXTENSION)
    args = parser.parse_args(argv)
    print(write(args.output, args.source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
