"""SigV4 for API Gateway's execute-api (IAM authorization), on botocore's SigV4Auth: the one
signer of the smoke test (scripts/smoke.py), the load tool (bench/load) and the local gateway's
auth (devstack/auth.py, which signs for its clients and recomputes a client's signature with
the same code to check it). Any method, with or without a body.

Local and test code only: chalicelib never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials, ReadOnlyCredentials

SERVICE = "execute-api"


class _ExecuteApiAuth(SigV4Auth):
    """botocore's SigV4 for execute-api; with `only`, over exactly those headers (the ones a
    client says it signed, for a verifier) instead of botocore's choice."""

    def __init__(self, credentials: Credentials | ReadOnlyCredentials, region: str,
                 only: list[str] | None = None) -> None:
        super().__init__(credentials, SERVICE, region)
        self.only = only

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        if self.only is None:
            return super().headers_to_sign(request)
        chosen = HTTPHeaders()
        for name in self.only:
            for value in request.headers.get_all(name) or []:
                chosen[name] = value
        return chosen


@dataclass(frozen=True)
class Signature:
    canonical_request: str
    string_to_sign: str
    signature: str


def compute(request: AWSRequest, credentials: Credentials | ReadOnlyCredentials, region: str,
            only: list[str] | None = None) -> Signature:
    """The signature of `request` as signed at request.context["timestamp"] (X-Amz-Date)."""
    auth = _ExecuteApiAuth(credentials, region, only)
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    return Signature(canonical, string_to_sign, auth.signature(string_to_sign, request))


def default_credentials() -> Credentials:
    """The usual chain (environment, profile, ...), as boto3 finds them."""
    found: Credentials | None = botocore.session.get_session().get_credentials()
    if found is None:
        raise RuntimeError("no AWS credentials found (environment, profile, ...) to sign with")
    return found


class Signer:
    """Headers that SigV4-sign a request for execute-api in `region`.

    credentials None: the usual chain (RuntimeError if it has none). Refreshable credentials
    are frozen per request: they may rotate during a long run."""

    def __init__(self, region: str, credentials: Any = None) -> None:
        self.region = region
        self.credentials = credentials if credentials is not None else default_credentials()

    def headers(self, url: str, method: str = "GET", body: bytes = b"",
                headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers to send: `headers` (signed too) plus X-Amz-Date, Authorization and,
        with temporary credentials, X-Amz-Security-Token. Host is left to the HTTP client."""
        frozen = (self.credentials.get_frozen_credentials()
                  if hasattr(self.credentials, "get_frozen_credentials") else self.credentials)
        request = AWSRequest(method=method.upper(), url=url, data=body,
                             headers=dict(headers or {}))
        _ExecuteApiAuth(frozen, self.region).add_auth(request)
        return {k: v for k, v in request.headers.items() if k.lower() != "host"}
