"""Build the extension template so that every change of the ingest API is published.

CloudFormation does not redeploy an `AWS::ApiGateway::Deployment` whose properties did not
change, so an edited method would stay unpublished. As SAM does (`ServerlessRestApiDeployment`
plus a hash), each Deployment gets a logical id ending in a content hash of what it publishes
(its REST API, resources, methods and their integrations, models, validators, gateway
responses): any change makes a new id, so CloudFormation creates a new deployment and points the
stage at it. Every reference (Ref, GetAtt, Sub, DependsOn) follows the rename. Both deploy paths
use it: `make package` merges the built file, scripts/standalone_template.py applies the same step.

    python -m scripts.deployment_hash build/extension.yaml
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from scripts.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "infra" / "extension.yaml"
DEFAULT_OUTPUT = ROOT / "build" / "extension.yaml"
DEPLOYMENT = "AWS::ApiGateway::Deployment"
# What a deployment snapshots (the stage, keys and usage plans are not part of it).
PUBLISHED = {"AWS::ApiGateway::RestApi", "AWS::ApiGateway::Resource", "AWS::ApiGateway::Method",
             "AWS::ApiGateway::Model", "AWS::ApiGateway::RequestValidator",
             "AWS::ApiGateway::GatewayResponse", "AWS::ApiGateway::Authorizer",
             "AWS::ApiGateway::DocumentationPart"}
HASH_LENGTH = 10


def references(node: Any) -> set[str]:
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
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def _sub_names(text: str) -> set[str]:
    return {name.split(".", 1)[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)}


def published_by(resources: dict[str, Any], deployment: str) -> dict[str, Any]:
    """The deployment and every API Gateway resource of its REST API that it publishes."""
    api_refs = references(resources[deployment].get("Properties", {}).get("RestApiId"))
    return {name: body for name, body in resources.items()
            if name == deployment or (body.get("Type") in PUBLISHED
                                      and (name in api_refs or references(body) & api_refs))}


def content_hash(resources: dict[str, Any], deployment: str) -> str:
    canonical = json.dumps(published_by(resources, deployment), sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _renamed(node: Any, old: str, new: str) -> Any:
    if isinstance(node, list):
        return [_renamed(item, old, new) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "Ref" and value == old:
            value = new
        elif key == "Fn::GetAtt" and isinstance(value, list) and value and value[0] == old:
            value = [new, *value[1:]]
        elif key == "Fn::Sub":
            pattern = re.compile(r"\$\{" + re.escape(old) + r"(?=[.}])")
            if isinstance(value, str):
                value = pattern.sub("${" + new, value)
            elif isinstance(value, list) and value and isinstance(value[0], str):
                value = [pattern.sub("${" + new, value[0]), *value[1:]]
        elif key == "DependsOn" and (value == old or isinstance(value, list)):
            value = new if value == old else [new if v == old else v for v in value]
        result[key] = _renamed(value, old, new)
    return result


def with_deployment_hash(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of `template` whose Deployments are named <id><hash>, references included."""
    result = copy.deepcopy(template)
    resources: dict[str, Any] = result.get("Resources", {})
    for name in [n for n, body in resources.items() if body.get("Type") == DEPLOYMENT]:
        new = name + content_hash(resources, name)
        resources = {new if key == name else key: body for key, body in resources.items()}
        result["Resources"] = resources
        result = _renamed(result, name, new)
        resources = result["Resources"]
    return result


def dump_yaml(template: dict[str, Any], path: Path | None = None) -> str:
    # Long form, plain YAML: what `chalice package --merge-template` reads (a .yaml input
    # makes it write sam.yaml).
    return yaml.safe_dump(template, sort_keys=False, allow_unicode=True, width=1_000_000)


Transform = Callable[[dict[str, Any]], dict[str, Any]]


def write_built(output: Path, source: Path, transform: Transform,
                dump: Callable[[dict[str, Any], Path], str]) -> Path:
    """Write `transform(source)` to `output` (shared with scripts/standalone_template.py)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(dump(transform(load_template(source)), output), encoding="utf-8")
    return output


def cli(argv: list[str] | None, doc: str | None, default_output: Path,
        write_to: Callable[[Path, Path], Path]) -> int:
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", type=Path, default=default_output)
    parser.add_argument("--source", type=Path, default=EXTENSION)
    args = parser.parse_args(argv)
    print(write_to(args.output, args.source))
    return 0


def write(output: Path, source: Path = EXTENSION) -> Path:
    return write_built(output, source, with_deployment_hash, dump_yaml)


def main(argv: list[str] | None = None) -> int:
    return cli(argv, __doc__, DEFAULT_OUTPUT, write)


if __name__ == "__main__":
    sys.exit(main())
