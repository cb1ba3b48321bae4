"""scripts/openapi.py: a valid OpenAPI 3.0 document, built from the schema, infra and app.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from devstack.infra import InfraTemplate
from scripts import openapi, openapi_ingest, openapi_read, openapi_schema
from scripts.cfn_yaml import load_template


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build(openapi.app_routes(), InfraTemplate().method_auth())


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_the_document_is_valid_openapi_3_0(document: dict[str, Any]) -> None:
    openapi.validate(document)
    assert document["openapi"].startswith("3.0.")
    assert "$schema" not in _keys(document)


def test_the_validator_would_catch_a_broken_document(document: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(document))
    broken["paths"]["/SQSManager"]["post"]["responses"]["202"].pop("description")
    with pytest.raises(OpenAPIValidationError):
        openapi.validate(broken)


def test_the_request_body_is_the_command_schema(document: dict[str, Any]) -> None:
    schema = json.loads(openapi.SCHEMA.read_text(encoding="utf-8"))
    schema.pop("$schema")
    assert document["components"]["schemas"]["Command"] == schema
    body = document["paths"]["/SQSManager"]["post"]["requestBody"]
    assert body["content"] == {"application/json": {"schema": {
        "$ref": "#/components/schemas/Command"}}}


def test_ingest_responses_are_infras(document: dict[str, Any]) -> None:
    resources = load_template(openapi.TEMPLATE)["Resources"]
    declared = {r["StatusCode"] for r in resources["SendMessageMethod"]["Properties"][
        "MethodResponses"]}
    responses = document["paths"]["/SQSManager"]["post"]["responses"]
    # The method's responses, plus what API Gateway answers itself: 403 (API key), 413
    # (payload limit), 415 (infra's UNSUPPORTED_MEDIA_TYPE), 429 (stage throttling).
    assert set(responses) == declared | {"403", "413", "415", "429"}
    for status, response in responses.items():
        name = "Accepted" if status == "202" else "ErrorMessage"
        assert response["content"]["application/json"]["schema"]["$ref"].endswith(name)
    error = document["components"]["schemas"]["ErrorMessage"]
    assert error["required"] == ["message"] and error["properties"]["message"]["type"] == "string"


def test_every_read_route_of_the_app_is_described(document: dict[str, Any]) -> None:
    routes = openapi.app_routes()
    described = {(path, method.upper()) for path, item in document["paths"].items()
                 for method in item}
    expected = {(path, method) for path, methods in routes.items() for method in methods
                if not path.startswith("/debug/")}
    assert described - {("/SQSManager", "POST")} == expected
    with pytest.raises(ValueError, match="not described"):
        openapi_read.read_paths({**routes, "/new": ["GET"]})


def test_draft_04_is_converted_or_refused() -> None:
    assert openapi_schema.to_openapi_schema({"$schema": "x", "type": ["string", "null"],
                                      "items": {"type": ["integer"]}}) == {
        "type": "string", "nullable": True, "items": {"type": "integer"}}
    with pytest.raises(ValueError, match="patternProperties"):
        openapi_schema.to_openapi_schema({"properties": {"a": {"patternProperties": {}}}})
    with pytest.raises(ValueError, match="one type"):
        openapi_schema.to_openapi_schema({"type": ["string", "integer"]})


def test_the_cli_writes_a_valid_document(tmp_path: Path, document: dict[str, Any]) -> None:
    target = tmp_path / "openapi.json"
    assert openapi.main([str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8")) == document


@pytest.mark.parametrize(("mode", "security"), [
    ("AWS_IAM", [{"SigV4": []}]),
    ("API_KEY", [{"ApiKey": []}]),
    ("AWS_IAM_AND_API_KEY", [{"SigV4": [], "ApiKey": []}]),
])
def test_the_ingest_security_says_which_mode_the_stage_uses(
        mode: str, security: list[dict[str, list[str]]]) -> None:
    auth = InfraTemplate().method_auth(mode)
    built = openapi.build(openapi.app_routes(), auth)
    assert built["paths"]["/SQSManager"]["post"]["security"] == security
    assert set(security[0]) <= set(built["components"]["securitySchemes"])


def test_the_default_mode_is_iam_and_an_open_local_gateway_says_so() -> None:
    assert InfraTemplate().method_auth() == InfraTemplate().method_auth("AWS_IAM")
    assert openapi_ingest.ingest_security(None)[-1] == {}  # nothing required
