"""Local auth as API Gateway does it for the prod1 stage (`python -m devstack --auth`).

On AWS, the read API needs SigV4-signed requests (IAM authorization), and `POST /SQSManager`
needs what the stack's IngestAuthorization says: SigV4 (AWS_IAM, the default), the stack's API
key (API_KEY), or both (AWS_IAM_AND_API_KEY; infra/extension.yaml, resolved by
InfraTemplate.method_auth). `LocalAuth` checks them the same way, against a key and dummy
credentials it prints at start, and names each refusal by API Gateway's gateway response type,
with the message API Gateway sends:

- no or a wrong `x-api-key`: INVALID_API_KEY, 403 `{"message": "Forbidden"}`;
- no SigV4 signature: MISSING_AUTHENTICATION_TOKEN, 403 "Missing Authentication Token";
- a signature by an access key it does not know: 403 "The security token included in the
  request is invalid.";
- a signature that does not match: INVALID_SIGNATURE, 403 "The request signature we calculated
  does not match the signature you provided. ...", followed by the canonical string and the
  string to sign, as API Gateway does;
- a request date more than 15 minutes off: 403 "Signature expired: ...".

Sources: AWS "Gateway response types for API Gateway" (the types and their 403 status codes);
AWS Knowledge Center "Troubleshoot signature mismatch errors with IAM authentication for API
Gateway" (the three IAM messages); an AWS-recorded execute-api answer quoted in public code
(`{"message": "The request signature ... Consult the service documentation for details.\\n\\n
The Canonical String for this request should have been\\n'POST\\n/live/...'\\n\\nThe
String-to-Sign should have been\\n'AWS4-HMAC-SHA256\\n...'\\n"}`); and the SigV4 spec's
15-minute window (AWS "Elements of an AWS API request signature").

Where a method needs both, the signature is checked first, then the key: API Gateway runs a
method's authorization before it validates the API key against the usage plans (AWS "Choose an
API key source": with source AUTHORIZER the key comes from the authorizer's answer; LocalStack's
AWS-validated handler chain runs its authorizers before `api_key_validation_handler`).
"""

from __future__ import annotations

import datetime
import functools
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import requests
import requests.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.infra import INGEST_AUTHORIZATION, InfraTemplate, MethodAuth
from scripts import sigv4

API_KEY_ALPHABET = string.ascii_letters + string.digits

# SigV4 requests are valid for 15 minutes either side of the server's clock.
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
SERVICE = sigv4.SERVICE
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$")
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.")


@dataclass(frozen=True)
class Refusal:
    """Why API Gateway refuses a request: a gateway response type and its message."""

    response_type: str
    message: str
    status: int = 403
    headers: dict[str, str] = field(default_factory=dict)


INVALID_API_KEY = Refusal("INVALID_API_KEY", "Forbidden")
# x-amzn-ErrorType as AWS-recorded answers show it for this refusal.
MISSING_AUTHENTICATION_TOKEN = Refusal(
    "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token",
    headers={"x-amzn-ErrorType": "MissingAuthenticationTokenException"})
# API Gateway has no gateway response type of its own for an unknown access key: DEFAULT_4XX.
UNKNOWN_ACCESS_KEY = Refusal("DEFAULT_4XX",
                             "The security token included in the request is invalid.")


IAM_ONLY = MethodAuth(iam=True, api_key=False)


@functools.cache
def _default_template() -> InfraTemplate:
    return InfraTemplate()


@dataclass(frozen=True)
class LocalAuth:
    """The API key and the credentials the local gateway accepts (dummy, printed at start), and
    what POST /SQSManager requires (`ingest`, as the stack's IngestAuthorization)."""

    api_key: str
    region: str
    access_key: str = EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    secret_key: str = EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    # The stack's IngestAuthorization, and what it makes the method require (the default's).
    ingest_mode: str = "AWS_IAM"
    ingest: MethodAuth = IAM_ONLY

    @classmethod
    def generate(cls, region: str, api_key: str | None = None, ingest_mode: str | None = None,
                 template: InfraTemplate | None = None) -> LocalAuth:
        """`ingest_mode`: an IngestAuthorization value (None: the template's default)."""
        infra = template or _default_template()
        mode = ingest_mode or str(infra.parameters()[INGEST_AUTHORIZATION])
        # API Gateway generates 40 letters and digits ("API keys are alphanumeric string values",
        # AWS CDK's IApiKey); any string of 20+ is allowed. Never a leading "-": a key pasted
        # after `--api-key` would read as an option (token_urlsafe gave one in 64).
        return cls(api_key=api_key or "".join(secrets.choice(API_KEY_ALPHABET)
                                              for _ in range(40)), region=region,
                   ingest_mode=mode, ingest=infra.method_auth(mode))

    def check_ingest(self, raw_path: str, headers: Mapping[str, str],
                     body: bytes = b"") -> Refusal | None:
        """None if a POST /SQSManager meets the method's IngestAuthorization: the signature
        first, then the key (see the module's docstring)."""
        if self.ingest.iam:
            refusal = self.check_signature("POST", raw_path, headers, body)
            if refusal is not None:
                return refusal
        return self.check_api_key(headers) if self.ingest.api_key else None

    def check_api_key(self, headers: Mapping[str, str]) -> Refusal | None:
        sent = {k.lower(): v for k, v in headers.items()}.get("x-api-key", "")
        if hmac.compare_digest(sent.encode("utf-8"), self.api_key.encode("utf-8")):
            return None
        return INVALID_API_KEY

    def check_signature(self, method: str, raw_path: str, headers: Mapping[str, str],
                        body: bytes = b"",
                        now: datetime.datetime | None = None) -> Refusal | None:
        """None if the request is SigV4-signed with these credentials, as API Gateway checks
        it: `raw_path` is the path and query exactly as sent (still percent-encoded)."""
        lower: dict[str, list[str]] = {}
        for name, value in _items(headers):
            lower.setdefault(name.lower(), []).append(value)
        authorization = (lower.get("authorization") or [""])[0].strip()
        if not authorization:
            return MISSING_AUTHENTICATION_TOKEN
        match = _AUTHORIZATION.match(authorization)
        if match is None:
            # API Gateway answers a malformed Authorization header with a message naming what
            # is missing; the shape (403, JSON message) is what matters here.
            return Refusal("MISSING_AUTHENTICATION_TOKEN",
                           f"Authorization header requires 'Credential', 'Signature' and "
                           f"'SignedHeaders' parameters. Authorization={authorization}")
        scope = match["credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return Refusal("INVALID_SIGNATURE", f"Credential should be scoped to a valid region "
                                                f"and service: {match['credential']}")
        access_key, day, region, service = scope[:4]
        if not hmac.compare_digest(access_key.encode("utf-8"), self.access_key.encode("utf-8")):
            return UNKNOWN_ACCESS_KEY
        if region != self.region:
            return Refusal("INVALID_SIGNATURE",
                           f"Credential should be scoped to a valid region, not '{region}'.")
        if service != SERVICE:
            return Refusal("INVALID_SIGNATURE",
                           f"Credential should be scoped to correct service: '{SERVICE}'.")
        stamp = (lower.get("x-amz-date") or [""])[0]
        refusal = _date_refusal(stamp, now or datetime.datetime.now(datetime.UTC))
        if refusal is not None:
            return refusal
        signed = match["signed"].lower().split(";")
        missing = [name for name in signed if name not in lower]
        if day != stamp[:8] or missing or "host" not in signed:
            return self._mismatch("", "")
        # The query is compared in canonical form (decoded, then encoded as SigV4 says), as
        # API Gateway does: clients differ in how they send `=` or `+` in a value.
        path, _, query = raw_path.partition("?")
        request = AWSRequest(method=method.upper(), url=f"http://{lower['host'][0]}{path}",
                             data=body, params=parse_qsl(query, keep_blank_values=True))
        for name in signed:
            for value in lower[name]:
                request.headers.add_header(name, value)
        request.context["timestamp"] = stamp
        # The clients' signer itself, over the headers the client named (scripts/sigv4.py).
        expected = sigv4.compute(request, Credentials(self.access_key, self.secret_key),
                                 self.region, only=signed)
        if hmac.compare_digest(expected.signature, match["signature"].lower()):
            return None
        return self._mismatch(expected.canonical_request, expected.string_to_sign)

    @staticmethod
    def _mismatch(canonical: str, string_to_sign: str) -> Refusal:
        detail = (f"\n\nThe Canonical String for this request should have been\n'{canonical}'"
                  f"\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
                  if canonical else "")
        return Refusal("INVALID_SIGNATURE", _SIGNATURE_MISMATCH + detail)


def _date_refusal(stamp: str, now: datetime.datetime) -> Refusal | None:
    """A missing X-Amz-Date, or one more than 15 minutes from `now`."""
    try:
        signed_at = datetime.datetime.strptime(stamp, _AMZ_DATE).replace(tzinfo=datetime.UTC)
    except ValueError:
        return Refusal("DEFAULT_4XX", "Authorization header requires existence of either a "
                                      "'X-Amz-Date' or a 'Date' header.")
    if signed_at < now - MAX_CLOCK_SKEW:
        return Refusal("INVALID_SIGNATURE", f"Signature expired: {stamp} is now earlier than "
                                            f"{(now - MAX_CLOCK_SKEW).strftime(_AMZ_DATE)} "
                                            f"({now.strftime(_AMZ_DATE)} - 15 min.)")
    if signed_at > now + MAX_CLOCK_SKEW:
        return Refusal("INVALID_SIGNATURE", f"Signature not yet current: {stamp} is still later "
                                            f"than {(now + MAX_CLOCK_SKEW).strftime(_AMZ_DATE)} "
                                            f"({now.strftime(_AMZ_DATE)} + 15 min.)")
    return None


def _items(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    # http.client's HTTPMessage keeps repeated headers: take them all where it can.
    get_all = getattr(headers, "get_all", None)
    if callable(get_all):
        return [(name, value) for name in dict.fromkeys(headers.keys())
                for value in (get_all(name) or [])]
    return list(headers.items())


def auth_banner(auth: LocalAuth, base_url: str) -> str:
    """What `python -m devstack --auth` prints: the dummy credentials to sign with, the key
    where ingest needs one, and what each request needs."""
    sign = (f'curl --aws-sigv4 "aws:amz:{auth.region}:{SERVICE}" '
            f"--user '{auth.access_key}:{auth.secret_key}'")
    needs = [part for part, wanted in (("SigV4", auth.ingest.iam),
                                       (f"-H 'x-api-key: {auth.api_key}'", auth.ingest.api_key))
             if wanted]
    key_line = f"\n  api key:    {auth.api_key}" if auth.ingest.api_key else ""
    return f"""auth (as the prod1 stage on AWS):{key_line}
  access key: {auth.access_key}
  secret key: {auth.secret_key}
  region:     {auth.region} (service {SERVICE})
  POST needs  {" and ".join(needs) or "nothing"} (IngestAuthorization {auth.ingest_mode})
  reads need  SigV4
  e.g.        {sign} {base_url}/items
  (dummy credentials of the local emulator, never real ones)"""



def printed_api_key(output: str) -> str | None:
    """The API key from `python -m devstack --auth`'s banner (None: ingest needs none)."""
    match = re.search(r"^\s*api key:\s+(\S+)\s*$", output, re.MULTILINE)
    return match.group(1) if match else None


class SigV4RequestAuth(requests.auth.AuthBase):
    """requests auth that signs every request for execute-api with the default credentials,
    as `curl --aws-sigv4` or Postman's AWS Signature do (for clients of the local read API)."""

    def __init__(self, region: str) -> None:
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode("utf-8") if isinstance(request.body, str) else request.body
        # The credentials as they are now (a test's environment sets them per test).
        request.headers.update(sigv4.Signer(self.region).headers(
            request.url or "", request.method or "GET", body or b"",
            {k: v for k, v in request.headers.items() if k.lower() == "content-type"}))
        return request
