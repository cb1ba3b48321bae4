"""POST /SQSManager as API Gateway runs it: validation against the model, the request template,
a SigV4-signed form POST to SQS, then the integration or gateway response (gateway_responses)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import requests
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from jsonschema import Draft4Validator

from devstack.auth import LocalAuth
from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.gateway_responses import HttpResult, gateway_error, integration_response
from devstack.infra import GatewaySpec
from devstack.request_body import MAX_PAYLOAD_BYTES
from devstack.request_ids import CLIENT_UUID, client_request_id, new_extended_request_id
from devstack.vtl import loads_exact, new_context, render

LOG = logging.getLogger("devstack.gateway")  # the gateway's log lines, whichever part writes them


def _credentials() -> Credentials:
    found = boto3.Session().get_credentials()
    if found is None:
        return Credentials(EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                           EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOOPBACK_POOL_SIZE = 256  # connections to the emulator kept open for reuse


class Ingest:
    """POST /SQSManager as API Gateway runs it (validation, VTL, SigV4 form POST to SQS)."""

    def __init__(self, spec: GatewaySpec, queue_url: str, region: str, stage: str = "local",
                 timeout: float = 29.0,
                 extended_ids: Callable[[], str] = new_extended_request_id,
                 auth: LocalAuth | None = None) -> None:
        self.spec = spec
        self.auth = auth  # None: open, as the `local` stage; else as its IngestAuthorization
        self.extended_ids = extended_ids
        self.queue_url = queue_url
        self.region = region
        self.stage = stage
        self.timeout = timeout  # API Gateway's integration timeout
        self.validator = Draft4Validator(spec.model_schema)
        self.credentials = _credentials()  # resolved once, as API Gateway's role session is
        self._local = threading.local()  # one requests.Session per gateway thread
        # To an emulator on loopback: one urllib3 pool, shared by the gateway's threads
        # (thread-safe). No proxy or CA settings apply there, and it costs about 0.4 ms less per
        # request than a requests.Session (docs/benchmarks.md, P3). Anything else, AWS say, goes
        # through requests, which honours HTTPS_PROXY and REQUESTS_CA_BUNDLE. The server runs a
        # thread per client connection (the load tool holds up to 64): the pool keeps a
        # connection for each, as a session per thread did, instead of warning and reconnecting.
        target = urlsplit(queue_url)
        self._queue_path = target.path or "/"
        self._loopback_pool = (
            urllib3.HTTPConnectionPool(target.hostname, target.port or 80,
                                       maxsize=LOOPBACK_POOL_SIZE)
            if target.scheme == "http" and target.hostname in _LOOPBACK else None)

    def handle(self, headers: Mapping[str, str], body: bytes, path: str,
               source_ip: str = "127.0.0.1", declared_length: int = 0) -> HttpResult:
        """`declared_length`: the Content-Length, when the body was too large to be read."""
        lower = {k.lower(): v for k, v in headers.items()}
        chosen = lower.get("x-amzn-requestid", "").strip()
        extended_id = self.extended_ids()
        context = new_context(
            requestId=chosen if CLIENT_UUID.fullmatch(chosen) else str(uuid.uuid4()),
            extendedRequestId=extended_id,
            requestTimeEpoch=int(time.time() * 1000), stage=self.stage, httpMethod="POST",
            resourcePath=self.spec.resource_path, path=f"/{self.stage}{urlsplit(path).path}",
            protocol="HTTP/1.1", domainName=lower.get("host", ""), apiId="local",
            identity={"sourceIp": source_ip, "userAgent": lower.get("user-agent", "")},
        )
        try:
            if max(len(body), declared_length) > MAX_PAYLOAD_BYTES:
                return gateway_error(self.spec, context, "REQUEST_TOO_LARGE", "Request Too Long")
            return self._handle(context, lower, headers, body, path)
        except Exception:  # API Gateway answers every request: never drop the connection
            LOG.exception("[%s] gateway failure", client_request_id(extended_id))
            return gateway_error(self.spec, context, "DEFAULT_5XX", "Internal server error")

    def _handle(self, context: dict[str, Any], lower: Mapping[str, str],
                headers: Mapping[str, str], body: bytes, path: str) -> HttpResult:
        request_id = client_request_id(context["extendedRequestId"])
        LOG.info("[%s] received POST %s (%d bytes)", request_id, path, len(body))
        # API Gateway checks the signature and the API key before it looks at the content type
        # or the body.
        refusal = self.auth.check_ingest(path, headers, body) if self.auth is not None else None
        if refusal is not None:
            return gateway_error(self.spec, context, refusal.response_type, refusal.message)
        # API Gateway assumes application/json when Content-Type is absent.
        mime = lower.get("content-type", "application/json").split(";")[0].strip().lower()
        template = self.spec.request_templates.get(mime)
        if template is None:
            return gateway_error(self.spec, context, "UNSUPPORTED_MEDIA_TYPE",
                                 "Unsupported Media Type")
        problem = self._validate(body)
        if problem is not None:
            return gateway_error(self.spec, context, "BAD_REQUEST_BODY",
                                 "Invalid request body", problem)
        params = {"path": {}, "header": dict(headers),
                  "querystring": {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}}
        form, context = render(template, body.decode("utf-8"), context, params)
        try:
            status, answer = self._send(form)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            LOG.error("[%s] rejected: SQS unreachable (%s)", request_id, error)
            return gateway_error(self.spec, context, "DEFAULT_5XX", "Internal server error")
        return integration_response(self.spec, context, status, answer)

    def _validate(self, body: bytes) -> str | None:
        """None if the body matches the model, else API Gateway's validationErrorString."""
        try:
            document = loads_exact(body.decode("utf-8")) if body.strip() else {}
        # Anything at all: e.g. Decimal raises InvalidOperation (not a ValueError) for 1e99999...
        except Exception as error:
            return f"[Invalid JSON: {type(error).__name__}: {error}]"
        messages = sorted(error.message for error in self.validator.iter_errors(document))
        return "[" + ", ".join(messages) + "]" if messages else None

    def _send(self, form: str) -> tuple[int, str]:
        """POST the rendered form to the queue URL, signed as API Gateway's role would sign it."""
        # The integration's static request headers (Content-Type, Accept) as infra declares them.
        headers = dict(self.spec.request_headers)
        data = form.strip().encode("utf-8")
        request = AWSRequest(method="POST", url=self.queue_url, data=data, headers=headers)
        SigV4Auth(self.credentials, "sqs", self.region).add_auth(request)
        if self._loopback_pool is not None:
            # No retries, as requests' default: a failed send is the client's 500 to retry.
            answer = self._loopback_pool.urlopen(
                "POST", self._queue_path, body=data,
                headers=dict(request.headers), retries=False,
                timeout=urllib3.Timeout(total=self.timeout))
            return answer.status, answer.data.decode("utf-8")
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        session: requests.Session = self._local.session
        response = session.post(self.queue_url, data=data, headers=dict(request.headers),
                                timeout=self.timeout)
        return response.status_code, response.text
