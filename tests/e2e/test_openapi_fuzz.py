"""schemathesis against the running pipeline, from the OpenAPI document the gateway serves.

Every operation of GET /openapi.json (the ingest API and the read API) gets schema-valid and
schema-violating requests; each answer must be below 500, match a documented status code with a
body of the documented shape, and every error of POST /SQSManager must be JSON {"message": str}.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import positive_data_acceptance

from scripts import openapi
from tests.e2e.conftest import PipelineProcess
from tests.e2e.report import report

# Examples per operation: 4 operations, each example one request (about 5-30 ms here).
MAX_EXAMPLES = 60
SEED = 20261127


# Requests sent per operation, and ingest errors checked: reported at the end of the module.
SENT: collections.Counter[str] = collections.Counter()


@schemathesis.check
def error_has_message(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every ingest error is JSON {"message": "..."} (API Gateway's shape, infra's ErrorModel)."""
    if case.operation.path != "/SQSManager" or response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str), body
    SENT["ingest errors with a message"] += 1
    return True


@pytest.fixture(scope="module", autouse=True)
def report_examples(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report(request.config, f"\nschemathesis: {sum(v for k, v in SENT.items() if ' /' in k)} "
                           f"requests {dict(SENT)}")


# The document as scripts/openapi.py builds it from app.py, infra and the schema for an open local
# gateway (`make run`: signing and the key optional); the first test checks that the gateway
# serves exactly this.
DOCUMENT = openapi.build(openapi.app_routes(), None)
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.seed = SEED
schema.config.generation.update(max_examples=MAX_EXAMPLES)


def test_gateway_serves_the_generated_description(pipeline: PipelineProcess) -> None:
    response = pipeline.http.get(f"{pipeline.base_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == DOCUMENT


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_description(case: Case, pipeline: PipelineProcess) -> None:
    # A cursor is opaque: only one this API returned is valid, so a generated one is rightly 400.
    SENT[case.operation.label] += 1
    opaque = case.operation.path in ("/items", "/items/{item_id}/history") and "cursor" in (
        case.query or {})
    case.call_and_validate(base_url=pipeline.base_url, session=pipeline.http, timeout=30,
                           excluded_checks=[positive_data_acceptance] if opaque else [])
