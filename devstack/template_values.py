"""CloudFormation intrinsic functions and Conditions resolved against local values, for the
local pipeline's reading of infra/extension.yaml (devstack/infra.py): Ref, Fn::GetAtt, Fn::Sub,
Fn::Join, Fn::If and AWS::NoValue, as CloudFormation resolves them on deploy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


class TemplateError(ValueError):
    """infra/extension.yaml lacks something the local pipeline needs."""


class _NoValue:
    """`Ref: AWS::NoValue`: the property (or list item) it stands for is left out."""


NO_VALUE = _NoValue()


def resolve(value: Any, refs: Mapping[str, Any],
            conditions: Mapping[str, bool] | None = None) -> Any:
    """Resolve Ref / Fn::GetAtt / Fn::Sub / Fn::Join against `refs` ("X" or "X.Attr" keys), and
    Fn::If against `conditions` (InfraTemplate.conditions); AWS::NoValue drops its property."""
    if isinstance(value, list):
        items = (resolve(item, refs, conditions) for item in value)
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else _lookup(refs, arg)
        if key == "Fn::GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return _lookup(refs, ".".join(str(p) for p in parts))
        if key == "Fn::Sub":
            text, extra = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
            scope = {**refs, **resolve(extra, refs, conditions)}
            return re.sub(r"\$\{([^}!][^}]*)\}", lambda m: str(_lookup(scope, m.group(1))), text)
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(i) for i in resolve(items, refs, conditions))
        if key == "Fn::If":
            name, when_true, when_false = arg
            if conditions is None or name not in conditions:
                raise TemplateError(f"no local value for the condition {name!r}")
            return resolve(when_true if conditions[name] else when_false, refs, conditions)
        if key.startswith("Fn::"):
            raise TemplateError(f"{key} is not supported by the local pipeline")
    resolved = {k: resolve(v, refs, conditions) for k, v in value.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def evaluate_conditions(definitions: Mapping[str, Any],
                        refs: Mapping[str, Any]) -> dict[str, bool]:
    """A template's Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) as booleans."""
    results: dict[str, bool] = {}

    def named(name: str) -> bool:
        if name not in results:
            if name not in definitions:
                raise TemplateError(f"no condition {name!r}")
            results[name] = evaluate(definitions[name])
        return results[name]

    def evaluate(node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Condition":
                return named(str(arg))
            if key == "Fn::Equals":
                left, right = (resolve(side, refs, results) for side in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not evaluate(arg[0])
            if key == "Fn::And":
                return all(evaluate(item) for item in arg)
            if key == "Fn::Or":
                return any(evaluate(item) for item in arg)
        raise TemplateError(f"the condition {node!r} is not supported by the local pipeline")

    for condition in definitions:
        named(condition)
    return results


def _lookup(refs: Mapping[str, Any], name: str) -> Any:
    if name not in refs:
        raise TemplateError(f"no local value for {name!r}")
    return refs[name]
