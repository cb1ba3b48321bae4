"""The load tool's SigV4 headers for the read API verify with botocore's own computation."""

from __future__ import annotations

import re

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.load.signing import ReadSigner

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod1/requests/r%2Bid%3D1"
AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/"
                           r"(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
                           r"SignedHeaders=(?P<signed>[^,]+), "
                           r"Signature=(?P<signature>[0-9a-f]{64})")


def expected_signature(credentials: Credentials, headers: dict[str, str]) -> str:
    """Recompute the signature from scratch for the same request and timestamp."""
    request = AWSRequest(method="GET", url=URL, headers={
        k: v for k, v in headers.items() if k != "Authorization"})
    request.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(credentials, "execute-api", "eu-west-1")
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    signature: str = auth.signature(string_to_sign, request)
    return signature


def test_read_requests_are_signed_for_execute_api_in_the_region() -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok")
    headers = ReadSigner("eu-west-1", credentials).headers(URL)
    found = AUTHORIZATION.fullmatch(headers["Authorization"])
    assert found, headers["Authorization"]
    assert (found["key"], found["region"], found["service"]) == ("AKIDEXAMPLE", "eu-west-1",
                                                                 "execute-api")
    assert headers["X-Amz-Date"].startswith(found["date"])
    assert headers["X-Amz-Security-Token"] == "tok"
    assert "host" in found["signed"].split(";")
    assert found["signature"] == expected_signature(credentials, headers)
    other = Credentials("AKIDEXAMPLE", "another-secret")
    assert found["signature"] != expected_signature(other, headers)
