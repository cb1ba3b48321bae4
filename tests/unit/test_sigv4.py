"""scripts/sigv4.py: one SigV4 signer for the smoke test, the load tool and local auth, any
method, and the local verifier recomputing a signature with the same code."""

from __future__ import annotations

import re

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from devstack.auth import LocalAuth
from scripts import sigv4
from tests.conftest import REGION

HOST = "127.0.0.1:8123"
AUTH = LocalAuth(api_key="k" * 40, region=REGION)
LOCAL = Credentials(AUTH.access_key, AUTH.secret_key)
AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/"
                           r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
                           r"Signature=[0-9a-f]{64}")


def sent(path: str, method: str = "GET", body: bytes = b"",
         credentials: Credentials = LOCAL) -> dict[str, str]:
    """What a client sends: the signer's headers, plus Host and Content-Type as HTTP adds them."""
    extra = {"Content-Type": "application/json"} if body else {}
    headers = sigv4.Signer(REGION, credentials).headers(f"http://{HOST}{path}", method, body,
                                                        extra)
    return {"Host": HOST, **extra, **headers}


def test_a_post_with_a_body_is_signed_and_verified() -> None:
    body = b'{"operation": "create", "id": "1", "item": {}}'
    headers = sent("/SQSManager", "POST", body)
    found = AUTHORIZATION.fullmatch(headers["Authorization"])
    assert found is not None, headers["Authorization"]
    assert (found["region"], found["service"]) == (REGION, "execute-api")
    assert "content-type" in found["signed"].split(";")
    assert AUTH.check_signature("POST", "/SQSManager", headers, body) is None
    changed = AUTH.check_signature("POST", "/SQSManager", headers, body.replace(b"1", b"2"))
    assert changed is not None and changed.response_type == "INVALID_SIGNATURE"


def test_a_get_with_a_query_is_verified() -> None:
    path = "/items?limit=2&cursor=YWJj"
    assert AUTH.check_signature("GET", path, sent(path)) is None


def test_another_secret_is_refused_with_the_canonical_request() -> None:
    refusal = AUTH.check_signature("GET", "/items", sent(
        "/items", credentials=Credentials(AUTH.access_key, "not-the-secret")))
    assert refusal is not None and refusal.response_type == "INVALID_SIGNATURE"
    assert "The Canonical String for this request should have been\n'GET\n/items\n" in (
        refusal.message)


def test_temporary_credentials_send_their_token() -> None:
    headers = sigv4.Signer(REGION, Credentials("AKID", "secret", "tok")).headers(
        f"http://{HOST}/items")
    assert headers["X-Amz-Security-Token"] == "tok"
    assert "host" not in {name.lower() for name in headers}  # the HTTP client sets it


def test_without_credentials_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(RuntimeError, match="no AWS credentials"):
        sigv4.Signer(REGION)


# Independent of the local verifier: botocore recomputes the signature from scratch.
URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod1/requests/r%2Bid%3D1"
FULL_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/"
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


def test_a_read_verifies_with_botocores_own_computation() -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok")
    headers = sigv4.Signer("eu-west-1", credentials).headers(URL)
    found = FULL_AUTHORIZATION.fullmatch(headers["Authorization"])
    assert found, headers["Authorization"]
    assert (found["key"], found["region"], found["service"]) == ("AKIDEXAMPLE", "eu-west-1",
                                                                 "execute-api")
    assert headers["X-Amz-Date"].startswith(found["date"])
    assert headers["X-Amz-Security-Token"] == "tok"
    assert "host" in found["signed"].split(";")
    assert found["signature"] == expected_signature(credentials, headers)
    other = Credentials("AKIDEXAMPLE", "another-secret")
    assert found["signature"] != expected_signature(other, headers)
