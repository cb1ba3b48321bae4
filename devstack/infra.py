"""Read what the local pipeline needs from infra/extension.yaml: one source of truth.

The queue, DLQ and table settings, the request/response mapping templates, the request model and
the gateway responses all come from the CloudFormation template that deploys to AWS, so the local
pipeline cannot drift from it. Intrinsic functions are resolved against local values
(devstack/template_values.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.template_values import TemplateError, evaluate_conditions, resolve
from scripts.cfn_yaml import load_template

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = PROJECT_DIR / "infra" / "extension.yaml"


@dataclass(frozen=True)
class IntegrationResponse:
    status_code: int
    selection_pattern: str | None
    templates: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class GatewayResponse:
    status_code: int
    templates: dict[str, str]
    headers: dict[str, str]


# API Gateway's defaults for the gateway responses the local gateway can produce.
_DEFAULT_RESPONSES = {
    "BAD_REQUEST_BODY": GatewayResponse(400, {"application/json":
                                              '{"message":$context.error.messageString}'}, {}),
    "UNSUPPORTED_MEDIA_TYPE": GatewayResponse(415, {"application/json":
                                                    '{"message":$context.error.messageString}'},
                                              {}),
    # What the API key and IAM checks answer (devstack/auth.py), and a payload over 10 MB.
    **{name: GatewayResponse(status, {"application/json":
                                      '{"message":$context.error.messageString}'}, {})
       for name, status in (("INVALID_API_KEY", 403), ("MISSING_AUTHENTICATION_TOKEN", 403),
                            ("INVALID_SIGNATURE", 403), ("REQUEST_TOO_LARGE", 413))},
    "DEFAULT_4XX": GatewayResponse(400, {"application/json":
                                         '{"message":$context.error.messageString}'}, {}),
    "DEFAULT_5XX": GatewayResponse(500, {"application/json":
                                         '{"message":$context.error.messageString}'}, {}),
}


@dataclass(frozen=True)
class GatewaySpec:
    """POST /SQSManager as infra/extension.yaml defines it."""

    resource_path: str
    http_method: str
    request_templates: dict[str, str]
    integration_responses: list[IntegrationResponse]
    model_schema: dict[str, Any]
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)
    # The integration's static `integration.request.header.X: "'value'"` parameters.
    request_headers: dict[str, str] = field(default_factory=dict)

    def gateway_response(self, response_type: str) -> GatewayResponse:
        for name in (response_type, "DEFAULT_4XX" if response_type != "DEFAULT_5XX" else ""):
            if name in self.gateway_responses:
                found = self.gateway_responses[name]
                # A DEFAULT_4XX override keeps the specific type's status code (as on AWS).
                if name != response_type and response_type in _DEFAULT_RESPONSES:
                    return GatewayResponse(_DEFAULT_RESPONSES[response_type].status_code,
                                           found.templates, found.headers)
                return found
        return _DEFAULT_RESPONSES.get(response_type, _DEFAULT_RESPONSES["DEFAULT_4XX"])


# The stack parameter that chooses how POST /SQSManager authorizes, and what `make run
# INGEST_AUTH=...` calls its values.
INGEST_AUTHORIZATION = "IngestAuthorization"
INGEST_AUTH_MODES = {"iam": "AWS_IAM", "api-key": "API_KEY", "iam+api-key": "AWS_IAM_AND_API_KEY"}


@dataclass(frozen=True)
class MethodAuth:
    """What API Gateway requires of a method's callers: SigV4 (AWS_IAM), an API key, or both."""

    iam: bool
    api_key: bool


class InfraTemplate:
    def __init__(self, path: str | Path = DEFAULT_TEMPLATE) -> None:
        self.path = Path(path)
        self.template = load_template(self.path)
        self.resources: dict[str, Any] = self.template.get("Resources", {})

    def properties(self, logical_id: str) -> dict[str, Any]:
        if logical_id not in self.resources:
            raise TemplateError(f"{self.path} has no resource {logical_id}")
        props: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return props

    def parameter_defaults(self) -> dict[str, Any]:
        params = self.template.get("Parameters", {})
        return {name: spec["Default"] for name, spec in params.items() if "Default" in spec}

    def parameters(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The stack's parameter values: the defaults, with `overrides` (e.g. QueueType)."""
        values = {**self.parameter_defaults(), **(overrides or {})}
        specs = self.template.get("Parameters", {})
        unknown = set(values) - set(specs)
        if unknown:
            raise TemplateError(f"{self.path} has no parameter {sorted(unknown)}")
        for name, value in values.items():
            allowed = specs[name].get("AllowedValues")
            if allowed is not None and value not in allowed:
                raise TemplateError(f"{name} must be one of {allowed}, not {value!r}")
        return values

    def conditions(self, refs: Mapping[str, Any]) -> dict[str, bool]:
        """The template's Conditions for these parameter values (`parameters()`)."""
        return evaluate_conditions(self.template.get("Conditions", {}), refs)

    def method_auth(self, mode: str | None = None,
                    method_id: str = "SendMessageMethod") -> MethodAuth:
        """The method's AuthorizationType and ApiKeyRequired for an IngestAuthorization value
        (the parameter's default when None), resolved as CloudFormation would."""
        refs = self.parameters({INGEST_AUTHORIZATION: mode} if mode else None)
        conditions = self.conditions(refs)
        props = self.properties(method_id)
        authorization = resolve(props.get("AuthorizationType", "NONE"), refs, conditions)
        api_key = resolve(props.get("ApiKeyRequired", False), refs, conditions)
        return MethodAuth(iam=authorization == "AWS_IAM", api_key=str(api_key).lower() == "true")

    def gateway_spec(self, method_id: str = "SendMessageMethod",
                     model_id: str = "CommandModel",
                     parameters: Mapping[str, Any] | None = None) -> GatewaySpec:
        """POST /SQSManager as deployed with these stack parameters (defaults otherwise)."""
        method = self.properties(method_id)
        integration = dict(method.get("Integration", {}))
        refs = self.parameters(parameters)
        # The request template depends on parameters (QueueType): resolved as CloudFormation does.
        integration["RequestTemplates"] = resolve(integration.get("RequestTemplates", {}), refs,
                                                  self.conditions(refs))
        responses = [
            IntegrationResponse(
                status_code=int(item["StatusCode"]),
                selection_pattern=item.get("SelectionPattern"),
                templates=dict(item.get("ResponseTemplates") or {}),
                headers=_static_headers(item.get("ResponseParameters") or {}),
            )
            for item in integration.get("IntegrationResponses", [])
        ]
        if "application/json" not in integration.get("RequestTemplates", {}):
            raise TemplateError(f"{method_id} has no application/json request template")
        return GatewaySpec(
            resource_path=self._resource_path(method.get("ResourceId")),
            http_method=str(method.get("HttpMethod", "POST")).upper(),
            request_templates=dict(integration["RequestTemplates"]),
            integration_responses=responses,
            model_schema=self._model_schema(model_id),
            gateway_responses=self._gateway_responses(),
            request_headers=_static_headers(integration.get("RequestParameters") or {},
                                            ("integration.request.header.",)),
        )

    def _resource_path(self, resource_ref: Any) -> str:
        # Walk AWS::ApiGateway::Resource parents up to the root to rebuild the path.
        parts: list[str] = []
        while isinstance(resource_ref, dict) and "Ref" in resource_ref:
            resource = self.resources.get(resource_ref["Ref"], {})
            props = resource.get("Properties", {})
            if "PathPart" not in props:
                break
            parts.insert(0, str(props["PathPart"]))
            resource_ref = props.get("ParentId")
        if not parts:
            raise TemplateError("the ingest method's resource path is not in the template")
        return "/" + "/".join(parts)

    def _model_schema(self, model_id: str) -> dict[str, Any]:
        # The deployed model, not chalicelib's file: a drift between them must show locally too.
        schema = self.properties(model_id).get("Schema") if model_id in self.resources else None
        if isinstance(schema, str):
            schema = json.loads(schema)
        if not isinstance(schema, dict):
            raise TemplateError(f"model {model_id!r} with a Schema is not in the template")
        return schema

    def _gateway_responses(self) -> dict[str, GatewayResponse]:
        found: dict[str, GatewayResponse] = {}
        for resource in self.resources.values():
            if resource.get("Type") != "AWS::ApiGateway::GatewayResponse":
                continue
            props = resource.get("Properties", {})
            response_type = str(props["ResponseType"])
            default = _DEFAULT_RESPONSES.get(response_type, _DEFAULT_RESPONSES["DEFAULT_4XX"])
            found[response_type] = GatewayResponse(
                status_code=int(props.get("StatusCode", default.status_code)),
                templates=dict(props.get("ResponseTemplates") or default.templates),
                headers=_static_headers(props.get("ResponseParameters") or {}),
            )
        return found


_RESPONSE_HEADER_PREFIXES = ("method.response.header.", "gatewayresponse.header.")


def _static_headers(parameters: Mapping[str, Any],
                    prefixes: tuple[str, ...] = _RESPONSE_HEADER_PREFIXES) -> dict[str, str]:
    """`method.response.header.X: "'value'"` -> {"X": "value"}; non-literal mappings skipped."""
    headers: dict[str, str] = {}
    for key, value in parameters.items():
        text = str(value)
        for prefix in prefixes:
            if key.startswith(prefix) and len(text) >= 2 and text[0] == text[-1] == "'":
                headers[key[len(prefix):]] = text[1:-1]
    return headers
