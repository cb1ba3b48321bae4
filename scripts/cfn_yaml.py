"""Load CloudFormation YAML, short-form tags included, into plain long-form dicts (PyYAML only).

`!Ref X` -> {"Ref": "X"}, `!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]}, `!Sub s` -> {"Fn::Sub": s},
`!If [c, a, b]` -> {"Fn::If": [...]}, `!Condition C` -> {"Condition": "C"}; every other
`!Name` -> {"Fn::Name": value}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Tags whose long form is not simply "Fn::<Tag>".
_SPECIAL = {"Ref": "Ref", "Condition": "Condition"}
_TAGS = (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAtt", "GetAZs", "If", "ImportValue",
    "Join", "Length", "Not", "Or", "Select", "Split", "Sub", "ToJsonString", "Transform",
    "Condition", "Ref",
)


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that also understands CloudFormation's short-form intrinsic functions."""


def _construct(loader: yaml.SafeLoader, tag: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"bad !{tag}", node.start_mark)
    if tag == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {_SPECIAL.get(tag, f"Fn::{tag}"): value}


def _register(tag: str) -> None:
    def constructor(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return _construct(loader, tag, node)

    CfnLoader.add_constructor(f"!{tag}", constructor)


for _tag in _TAGS:
    _register(_tag)


def loads(text: str) -> dict[str, Any]:
    data = yaml.load(text, Loader=CfnLoader)  # a SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError("a CloudFormation template must be a mapping")
    return data


def load_template(path: str | Path) -> dict[str, Any]:
    """Read a CloudFormation template (YAML or JSON) into long-form dicts."""
    return loads(Path(path).read_text(encoding="utf-8"))
