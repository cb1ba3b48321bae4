"""devstack/auth.py: the API key and SigV4 checks of `python -m devstack --auth` (no I/O).

Requests are signed by botocore's own client-side signer (as boto3, `scripts/smoke.py` and, with
the same canonical form, Postman's aws4 do), then checked as API Gateway would check them.
"""

from __future__ import annotations

import datetime
import json
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from devstack.auth import LocalAuth, Refusal, auth_banner
from devstack.gateway_responses import substitute
from devstack.infra import InfraTemplate
from tests.conftest import REGION

HOST = "127.0.0.1:8123"
AUTH = LocalAuth(api_key="k" * 40, region=REGION)


def signed(path: str, access_key: str = AUTH.access_key, secret_key: str = AUTH.secret_key,
           region: str = REGION, service: str = "execute-api", method: str = "GET",
           body: bytes = b"") -> dict[str, str]:
    request = AWSRequest(method=method, url=f"http://{HOST}{path}", data=body)
    SigV4Auth(Credentials(access_key, secret_key), service, region).add_auth(request)
    return {"Host": HOST, **dict(request.headers)}


def check(path: str, headers: dict[str, str], method: str = "GET", body: bytes = b"",
          now: datetime.datetime | None = None) -> Refusal | None:
    return AUTH.check_signature(method, path, headers, body, now)


@pytest.mark.parametrize("path", [
    "/items?limit=1",
    "/items",
    "/requests/AbC-_09",
    # A percent-encoded id: SigV4 encodes the path again (double encoding, as for every service
    # but S3), botocore and Postman's aws4 alike.
    "/items/" + quote("x a/b%c+d ü😀", safe=""),
    "/items?limit=100&cursor=" + quote("abc==", safe=""),
])
def test_a_request_signed_with_the_local_credentials_passes(path: str) -> None:
    assert check(path, signed(path)) is None


def test_a_signed_body_counts() -> None:
    headers = signed("/debug/consume", method="POST", body=b'{"a": 1}')
    assert check("/debug/consume", headers, "POST", b'{"a": 1}') is None
    refusal = check("/debug/consume", headers, "POST", b'{"a": 2}')
    assert refusal is not None and refusal.response_type == "INVALID_SIGNATURE"


def test_query_values_compare_in_canonical_form() -> None:
    # Signed as botocore sends it (encoded); a client may send "=" raw: same canonical query.
    headers = signed("/items?cursor=" + quote("abc==", safe=""))
    assert check("/items?cursor=abc==", headers) is None


def test_no_signature_is_missing_authentication_token() -> None:
    refusal = check("/items", {"Host": HOST})
    assert refusal is not None
    assert (refusal.status, refusal.response_type, refusal.message) == (
        403, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
    assert refusal.headers == {"x-amzn-ErrorType": "MissingAuthenticationTokenException"}


def test_a_wrong_secret_is_a_signature_mismatch_with_the_canonical_string() -> None:
    refusal = check("/items?limit=1", signed("/items?limit=1", secret_key="wrong"))
    assert refusal is not None
    assert (refusal.status, refusal.response_type) == (403, "INVALID_SIGNATURE")
    assert refusal.message.startswith(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method. Consult the service documentation for "
        "details.\n\nThe Canonical String for this request should have been\n'GET\n/items\n"
        "limit=1\nhost:127.0.0.1:8123\n")
    assert "\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n" in refusal.message


def test_an_unknown_access_key_is_an_invalid_security_token() -> None:
    refusal = check("/items", signed("/items", access_key="AKIDSOMEONEELSE"))
    assert refusal is not None
    assert (refusal.status, refusal.message) == (
        403, "The security token included in the request is invalid.")


@pytest.mark.parametrize("changed", [
    {"path": "/items/b"},  # signed for /items/a
    {"method": "DELETE"},
])
def test_a_request_changed_after_signing_is_refused(changed: dict[str, str]) -> None:
    headers = signed("/items/a")
    refusal = check(changed.get("path", "/items/a"), headers, changed.get("method", "GET"))
    assert refusal is not None and refusal.response_type == "INVALID_SIGNATURE"


def test_a_signature_for_another_region_or_service_is_refused() -> None:
    for headers in (signed("/items", region="eu-west-1"), signed("/items", service="s3")):
        refusal = check("/items", headers)
        assert refusal is not None and refusal.status == 403
        assert refusal.response_type == "INVALID_SIGNATURE"


def test_a_signature_dated_over_15_minutes_away_is_refused() -> None:
    headers = signed("/items")
    signed_at = datetime.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.UTC)
    assert check("/items", headers, now=signed_at + datetime.timedelta(minutes=14)) is None
    refusal = check("/items", headers, now=signed_at + datetime.timedelta(minutes=16))
    assert refusal is not None and refusal.message.startswith("Signature expired: ")
    refusal = check("/items", headers, now=signed_at - datetime.timedelta(minutes=16))
    assert refusal is not None and refusal.message.startswith("Signature not yet current: ")
    assert check("/items", {k: v for k, v in headers.items() if k != "X-Amz-Date"}) is not None


def test_a_malformed_authorization_header_is_refused() -> None:
    refusal = check("/items", {"Host": HOST, "Authorization": "Bearer abc"})
    assert refusal is not None and refusal.status == 403


def test_the_api_key_must_be_the_printed_one() -> None:
    assert AUTH.check_api_key({"x-api-key": AUTH.api_key}) is None
    assert AUTH.check_api_key({"X-Api-Key": AUTH.api_key}) is None
    for headers in ({}, {"x-api-key": ""}, {"x-api-key": AUTH.api_key + "x"}):
        refusal = AUTH.check_api_key(headers)
        assert refusal is not None
        assert (refusal.status, refusal.response_type, refusal.message) == (
            403, "INVALID_API_KEY", "Forbidden")


def test_generated_keys_are_random_and_printed_with_the_credentials_where_needed() -> None:
    first, second = (LocalAuth.generate(REGION, ingest_mode="API_KEY") for _ in range(2))
    assert first.api_key != second.api_key and len(first.api_key) >= 20
    assert LocalAuth.generate(REGION, "chosen-key").api_key == "chosen-key"
    banner = auth_banner(first, "http://127.0.0.1:8000")
    for value in (first.api_key, first.access_key, first.secret_key, REGION, "execute-api",
                  "IngestAuthorization API_KEY"):
        assert value in banner
    # The default, AWS_IAM: no key to print (printed_api_key finds none).
    iam = auth_banner(LocalAuth.generate(REGION), "http://127.0.0.1:8000")
    assert "IngestAuthorization AWS_IAM" in iam and "api key:" not in iam


# IngestAuthorization, as POST /SQSManager sees it: each mode's stack, from the template.
MODES = {mode: LocalAuth.generate(REGION, "k" * 40, mode)
         for mode in ("AWS_IAM", "API_KEY", "AWS_IAM_AND_API_KEY")}
BODY = b'{"operation": "read", "id": "x"}'


def ingest(mode: str, signature: bool, key: str | None,
           secret_key: str = AUTH.secret_key) -> Refusal | None:
    headers = (signed("/SQSManager", method="POST", body=BODY, secret_key=secret_key)
               if signature else {"Host": HOST})
    if key is not None:
        headers["x-api-key"] = key
    return MODES[mode].check_ingest("/SQSManager", headers, BODY)


@pytest.mark.parametrize(("mode", "signature", "key", "refused_as"), [
    # AWS_IAM (the default): a signature, no key.
    ("AWS_IAM", True, None, None),
    ("AWS_IAM", False, "k" * 40, "Missing Authentication Token"),
    # API_KEY: the key; a signature is not looked at.
    ("API_KEY", False, "k" * 40, None),
    ("API_KEY", True, None, "Forbidden"),
    ("API_KEY", False, "wrong", "Forbidden"),
    # Both: the signature first (unsigned without a key: the signature's answer), then the key.
    ("AWS_IAM_AND_API_KEY", True, "k" * 40, None),
    ("AWS_IAM_AND_API_KEY", False, None, "Missing Authentication Token"),
    ("AWS_IAM_AND_API_KEY", True, None, "Forbidden"),
    ("AWS_IAM_AND_API_KEY", True, "wrong", "Forbidden"),
])
def test_ingest_needs_what_its_ingest_authorization_says(mode: str, signature: bool,
                                                         key: str | None,
                                                         refused_as: str | None) -> None:
    refusal = ingest(mode, signature, key)
    assert (refusal.message if refusal else None) == refused_as
    if refusal is not None:
        assert refusal.status == 403


def test_ingest_signatures_are_checked_as_the_read_apis() -> None:
    for mode in ("AWS_IAM", "AWS_IAM_AND_API_KEY"):
        refusal = ingest(mode, True, "k" * 40, secret_key="not-the-secret")
        assert refusal is not None and refusal.response_type == "INVALID_SIGNATURE"
        assert refusal.message.startswith("The request signature we calculated does not match")
    # The signed body counts: another body under the same signature is refused.
    headers = signed("/SQSManager", method="POST", body=BODY)
    refusal = MODES["AWS_IAM"].check_ingest("/SQSManager", headers, BODY + b" ")
    assert refusal is not None and refusal.response_type == "INVALID_SIGNATURE"


def test_an_expired_ingest_signature_is_refused() -> None:
    headers = signed("/SQSManager", method="POST", body=BODY)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=16)
    refusal = MODES["AWS_IAM"].check_signature("POST", "/SQSManager", headers, BODY, later)
    assert refusal is not None and refusal.message.startswith("Signature expired: ")


def test_generated_keys_are_40_letters_and_digits_as_api_gateways_are() -> None:
    # A key from token_urlsafe began with "-" once in 64 runs, and `--api-key KEY` then read it
    # as an option (scripts.smoke's test failed in a clean-clone run that way).
    keys = [LocalAuth.generate(REGION).api_key for _ in range(2000)]
    assert all(len(key) == 40 and key.isascii() and key.isalnum() for key in keys)
    assert len(set(keys)) == len(keys)


def test_the_ingest_api_answers_a_missing_key_through_infras_gateway_responses() -> None:
    # infra overrides DEFAULT_4XX only: INVALID_API_KEY keeps its 403 and takes that template.
    spec = InfraTemplate().gateway_spec()
    response = spec.gateway_response("INVALID_API_KEY")
    template = response.templates["application/json"]
    context = {"error": {"messageString": json.dumps("Forbidden")}}
    assert response.status_code == 403
    assert json.loads(substitute(template, context)) == {"message": "Forbidden"}
