"""scripts/deployment_hash.py: the ingest API's Deployment is renamed by what it publishes."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scripts import deployment_hash, standalone_template
from scripts.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "infra" / "extension.yaml"


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load_template(EXTENSION)


# One Deployment per IngestAuthorization mode (infra/extension.yaml says why).
DEPLOYMENTS = ("IngestDeploymentAwsIam", "IngestDeploymentApiKey",
               "IngestDeploymentAwsIamAndApiKey")


def deployment_ids(template: dict[str, Any]) -> dict[str, str]:
    """Each Deployment's logical id in the built template, by its id in the source."""
    built = deployment_hash.with_deployment_hash(template)
    names = [n for n, body in built["Resources"].items()
             if body.get("Type") == "AWS::ApiGateway::Deployment"]
    return {source: next(n for n in names if re.fullmatch(source + "[0-9a-f]{10}", n))
            for source in DEPLOYMENTS}


def deployment_id(template: dict[str, Any]) -> str:
    return deployment_ids(template)["IngestDeploymentAwsIam"]


def edited(template: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(template)
    change(copied["Resources"])
    return copied


def test_the_deployment_is_named_by_hash_and_every_reference_follows(
        source: dict[str, Any]) -> None:
    built = deployment_hash.with_deployment_hash(source)
    names = deployment_ids(source)
    assert len(set(names.values())) == len(DEPLOYMENTS)  # each mode's description differs
    for old in DEPLOYMENTS:
        assert old not in built["Resources"]
        assert f'"{old}"' not in json.dumps(built)
        assert source["Resources"][old] == built["Resources"][names[old]]
    assert built["Resources"]["Stage"]["Properties"]["DeploymentId"] == {"Fn::If": [
        "IngestAuthIsAwsIam", {"Ref": names["IngestDeploymentAwsIam"]},
        {"Fn::If": ["IngestAuthIsApiKey", {"Ref": names["IngestDeploymentApiKey"]},
                    {"Ref": names["IngestDeploymentAwsIamAndApiKey"]}]}]}
    # Nothing else changed, and the order of resources is kept.
    back = {new: old for old, new in names.items()}
    assert [back.get(n, n) for n in built["Resources"]] == list(source["Resources"])


def test_each_mode_has_its_own_deployment(source: dict[str, Any]) -> None:
    """Switching IngestAuthorization must publish a new snapshot: the stage follows the mode."""
    resources = source["Resources"]
    assert {resources[name]["Condition"] for name in DEPLOYMENTS} == {
        "IngestAuthIsAwsIam", "IngestAuthIsApiKey", "IngestAuthIsAwsIamAndApiKey"}
    assert source["Parameters"]["IngestAuthorization"]["AllowedValues"] == [
        "AWS_IAM", "API_KEY", "AWS_IAM_AND_API_KEY"]


def test_the_hash_is_stable_when_nothing_published_changes(source: dict[str, Any]) -> None:
    name = deployment_id(source)
    assert deployment_id(copy.deepcopy(source)) == name

    def other_resources(resources: dict[str, Any]) -> None:
        resources["Queue"]["Properties"]["VisibilityTimeout"] = 300
        resources["Table"]["Properties"]["BillingMode"] = "PROVISIONED"
        resources["Stage"]["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] = 5
        resources["UsagePlan"]["Properties"]["Description"] = "x"

    assert deployment_id(edited(source, other_resources)) == name


def _method_template(resources: dict[str, Any]) -> None:
    templates = resources["SendMessageMethod"]["Properties"]["Integration"]["RequestTemplates"]
    templates["application/json"]["Fn::Sub"][0] += "&MessageAttribute.3.Name=x"


def _response_template(resources: dict[str, Any]) -> None:
    integration = resources["SendMessageMethod"]["Properties"]["Integration"]
    integration["IntegrationResponses"][0]["ResponseTemplates"]["application/json"] += " "


def _gateway_response(resources: dict[str, Any]) -> None:
    templates = resources["Default5xxResponse"]["Properties"]["ResponseTemplates"]
    templates["application/json"] = '{"message": "down"}'


def _model(resources: dict[str, Any]) -> None:
    resources["CommandModel"]["Properties"]["Schema"]["properties"]["id"]["maxLength"] = 100


def _validator(resources: dict[str, Any]) -> None:
    resources["BodyValidator"]["Properties"]["ValidateRequestParameters"] = True


def _resource(resources: dict[str, Any]) -> None:
    resources["IngestResource"]["Properties"]["PathPart"] = "commands"


def _header(resources: dict[str, Any]) -> None:
    parameters = resources["SendMessageMethod"]["Properties"]["Integration"]["RequestParameters"]
    parameters["integration.request.header.Accept"] = "'application/xml'"


@pytest.mark.parametrize("change", [_method_template, _response_template, _gateway_response,
                                    _model, _validator, _resource, _header])
def test_the_hash_changes_with_what_the_deployment_publishes(
        source: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    assert deployment_id(edited(source, change)) != deployment_id(source)


def test_references_of_every_kind_are_renamed() -> None:
    template = {"Resources": {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}},
        "Dep": {"Type": "AWS::ApiGateway::Deployment", "Properties": {"RestApiId": {"Ref": "Api"}}},
        "Depx": {"Type": "AWS::SQS::Queue", "DependsOn": "Dep"},
        "Stage": {"Type": "AWS::ApiGateway::Stage", "DependsOn": ["Depx", "Dep"],
                  "Properties": {"DeploymentId": {"Ref": "Dep"},
                                 "Description": {"Fn::Sub": "${Dep} ${Dep.X} ${Depx} ${Api}"},
                                 "Variables": {"a": {"Fn::Sub": ["${Dep}", {"v": "1"}]},
                                               "b": {"Fn::GetAtt": ["Dep", "Y"]}}}}},
        "Outputs": {"D": {"Value": {"Ref": "Dep"}}}}
    built = deployment_hash.with_deployment_hash(template)
    [new] = [n for n in built["Resources"] if n.startswith("Dep") and n != "Depx"]
    stage = built["Resources"]["Stage"]
    assert stage["DependsOn"] == ["Depx", new]
    assert built["Resources"]["Depx"]["DependsOn"] == new
    assert stage["Properties"]["DeploymentId"] == {"Ref": new}
    assert stage["Properties"]["Description"] == {"Fn::Sub": f"${{{new}}} ${{{new}.X}} ${{Depx}} "
                                                              "${Api}"}
    assert stage["Properties"]["Variables"] == {"a": {"Fn::Sub": [f"${{{new}}}", {"v": "1"}]},
                                                "b": {"Fn::GetAtt": [new, "Y"]}}
    assert built["Outputs"]["D"]["Value"] == {"Ref": new}


def test_the_built_file_and_the_standalone_template_agree(source: dict[str, Any],
                                                          tmp_path: Path) -> None:
    built = load_template(deployment_hash.write(tmp_path / "extension.yaml"))
    assert built == deployment_hash.with_deployment_hash(source)
    assert set(deployment_ids(source).values()) <= set(
        standalone_template.standalone(source)["Resources"])
