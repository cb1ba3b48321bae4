"""Every IAM policy of a CloudFormation/SAM template, and what in them is wider than needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

XRAY_ACTIONS = "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html"
# Actions with no resource type in AWS's Service Authorization Reference: the only Resource a
# statement can name for them is "*". Nothing else may be granted on "*".
ONLY_ON_EVERY_RESOURCE = {
    "xray:PutTraceSegments": XRAY_ACTIONS,
    "xray:PutTelemetryRecords": XRAY_ACTIONS,
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, policy document or unreadable policy) for every permission policy, trust
    policies excluded. A managed policy named by ARN or SAM name cannot be read: it is yielded
    as the string itself, which `violations` reports."""
    for name, body in template.get("Resources", {}).items():
        kind = body.get("Type", "")
        props = body.get("Properties", {})
        if kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{name}/{policy.get('PolicyName')}", policy["PolicyDocument"]
            for arn in props.get("ManagedPolicyArns", []):
                yield f"{name}/ManagedPolicyArns", arn
        elif kind in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            yield name, props["PolicyDocument"]
        elif kind == "AWS::Serverless::Function":
            for policy in as_list(props.get("Policies", [])):
                yield f"{name}/Policies", policy


def statement_violations(where: str, statement: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if "NotAction" in statement or "NotResource" in statement:
        found.append(f"{where}: NotAction/NotResource grant everything else")
    if statement.get("Effect") != "Allow":
        return found
    actions = [str(a) for a in as_list(statement.get("Action", []))]
    for action in actions:
        if "*" in action:
            found.append(f"{where}: wildcard action {action!r}")
    if "*" in as_list(statement.get("Resource", [])):
        wide = [a for a in actions if a not in ONLY_ON_EVERY_RESOURCE]
        if wide:
            found.append(f"{where}: Resource '*' for {wide}, which AWS lets a policy narrow")
    return found


def violations(template: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for where, document in policy_documents(template):
        if not isinstance(document, dict) or "Statement" not in document:
            found.append(f"{where}: a policy this check cannot read ({document!r})")
            continue
        for statement in as_list(document["Statement"]):
            found.extend(statement_violations(where, statement))
    return found


def granted_actions(template: dict[str, Any]) -> set[str]:
    return {str(action) for _, document in policy_documents(template)
            if isinstance(document, dict)
            for statement in as_list(document.get("Statement", []))
            for action in as_list(statement.get("Action", []))}
