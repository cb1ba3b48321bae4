"""The local API Gateway: POST /SQSManager goes straight to SQS, the rest is Chalice's own server.

POST /SQSManager is not a Chalice route: on AWS, API Gateway validates the body against the model,
renders the request template, sends the form to SQS and maps SQS's answer through the integration
responses. `Ingest` does the same with infra/extension.yaml's templates. Every other request is
served by `chalice.local` (what `chalice local` runs), so the read API behaves as it does there.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

import boto3
import requests
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer
from jsonschema import Draft4Validator

from devstack.auth import LocalAuth, Refusal
from devstack.emulator import EMULATOR_CREDENTIALS
from devstack.infra import GatewayResponse, GatewaySpec
from devstack.vtl import loads_exact, new_context, override_status, render
from scripts import openapi

LOG = logging.getLogger("devstack.gateway")

# The OpenAPI 3.0 description of what this gateway serves (not a route of the app).
OPENAPI_PATH = "/openapi.json"

# API Gateway's payload limit; larger requests get the REQUEST_TOO_LARGE gateway response.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024


# A client may choose $context.requestId by sending a UUID in this header (AWS "Access logging
# for REST APIs"); anything else is ignored and API Gateway makes one up.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def new_extended_request_id() -> str:
    """$context.extendedRequestId in AWS's shape: 11 random bytes in URL-safe base64, so 16
    characters of letters, digits, "-" and "_", ending in "=" (AWS-recorded: "CzuJMEDMoAMF_MQ=",
    "S-D5rG9QFiAFnVg=")."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode("ascii")


def client_request_id(extended_request_id: str) -> str:
    """The requestId the templates derive from extendedRequestId (its "=" dropped), for the
    gateway's own log lines only (tests/unit/test_vtl_templates.py checks it against the
    rendered templates)."""
    return extended_request_id.replace("+", "-").replace("/", "_").replace("=", "")


@dataclass
class HttpResult:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def sqs_answer_as_json(text: str) -> Any:
    """SQS answers API Gateway in JSON; moto answers in XML: convert to the same JSON shape."""
    stripped = text.strip()
    if not stripped.startswith("<"):
        return json.loads(stripped) if stripped else {}
    root = ET.fromstring(stripped)

    def convert(element: ET.Element) -> Any:
        children = list(element)
        if not children:
            return element.text
        return {_local_name(child.tag): convert(child) for child in children}

    if _local_name(root.tag) == "ErrorResponse":
        return convert(root)  # {"Error": {...}, "RequestId": ...} as SQS's JSON errors
    return {_local_name(root.tag): convert(root)}


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


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
            requestId=chosen if _UUID.fullmatch(chosen) else str(uuid.uuid4()),
            extendedRequestId=extended_id,
            requestTimeEpoch=int(time.time() * 1000), stage=self.stage, httpMethod="POST",
            resourcePath=self.spec.resource_path, path=f"/{self.stage}{urlsplit(path).path}",
            protocol="HTTP/1.1", domainName=lower.get("host", ""), apiId="local",
            identity={"sourceIp": source_ip, "userAgent": lower.get("user-agent", "")},
        )
        try:
            if max(len(body), declared_length) > MAX_PAYLOAD_BYTES:
                return self._gateway_error(context, "REQUEST_TOO_LARGE", "Request Too Long")
            return self._handle(context, lower, headers, body, path)
        except Exception:  # API Gateway answers every request: never drop the connection
            LOG.exception("[%s] gateway failure", client_request_id(extended_id))
            return self._gateway_error(context, "DEFAULT_5XX", "Internal server error")

    def _handle(self, context: dict[str, Any], lower: Mapping[str, str],
                headers: Mapping[str, str], body: bytes, path: str) -> HttpResult:
        request_id = client_request_id(context["extendedRequestId"])
        LOG.info("[%s] received POST %s (%d bytes)", request_id, path, len(body))
        # API Gateway checks the signature and the API key before it looks at the content type
        # or the body.
        refusal = self.auth.check_ingest(path, headers, body) if self.auth is not None else None
        if refusal is not None:
            return self._gateway_error(context, refusal.response_type, refusal.message)
        # API Gateway assumes application/json when Content-Type is absent.
        mime = lower.get("content-type", "application/json").split(";")[0].strip().lower()
        template = self.spec.request_templates.get(mime)
        if template is None:
            return self._gateway_error(context, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type")
        problem = self._validate(body)
        if problem is not None:
            return self._gateway_error(context, "BAD_REQUEST_BODY", "Invalid request body",
                                       problem)
        params = {"path": {}, "header": dict(headers),
                  "querystring": {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}}
        form, context = render(template, body.decode("utf-8"), context, params)
        try:
            status, answer = self._send(form)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            LOG.error("[%s] rejected: SQS unreachable (%s)", request_id, error)
            return self._gateway_error(context, "DEFAULT_5XX", "Internal server error")
        return self._integration_response(context, status, answer)

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

    def _integration_response(self, context: dict[str, Any], status: int,
                              answer: str) -> HttpResult:
        request_id = client_request_id(context["extendedRequestId"])
        chosen = None
        for candidate in self.spec.integration_responses:
            pattern = candidate.selection_pattern
            if pattern and re.fullmatch(pattern, str(status)):
                chosen = candidate
                break
            if not pattern and chosen is None:
                chosen = candidate  # the default response, unless a pattern matches
        if chosen is None:
            LOG.error("[%s] rejected: no integration response for SQS status %d", request_id,
                      status)
            return self._gateway_error(context, "DEFAULT_5XX", "Internal server error")
        try:
            document = json.dumps(sqs_answer_as_json(answer))
        except (ET.ParseError, ValueError):
            document = json.dumps({"raw": answer})
        template = chosen.templates.get("application/json") or next(
            iter(chosen.templates.values()), None)
        output, context = (render(template, document, context) if template is not None
                           else (document, context))
        final = override_status(context, chosen.status_code)
        if 200 <= status < 300:
            message_id = json.loads(document).get("SendMessageResponse", {}).get(
                "SendMessageResult", {}).get("MessageId")
            LOG.info("[%s] enqueued messageId=%s -> %d", request_id, message_id, final)
        else:
            LOG.warning("[%s] rejected: SQS answered %d (%s) -> %d", request_id, status,
                        _sqs_error(document), final)
        headers = {"Content-Type": "application/json", **chosen.headers}
        return HttpResult(final, output.encode("utf-8"), self._headers(context, headers))

    def _gateway_error(self, context: dict[str, Any], response_type: str, message: str,
                       validation: str = "") -> HttpResult:
        response: GatewayResponse = self.spec.gateway_response(response_type)
        context["error"] = {
            "message": message, "messageString": json.dumps(message),
            "responseType": response_type,
            # Escaped so that a template may embed it in a JSON string, as AWS's value allows.
            "validationErrorString": json.dumps(validation)[1:-1] if validation else "",
        }
        template = response.templates.get("application/json") or next(
            iter(response.templates.values()), '{"message":$context.error.messageString}')
        output = substitute(template, context)
        status = response.status_code
        LOG.warning("[%s] rejected at the gateway: %s %s -> %d",
                    client_request_id(context["extendedRequestId"]), response_type,
                    validation or message, status)
        headers = {"Content-Type": "application/json", **response.headers}
        return HttpResult(status, output.encode("utf-8"), self._headers(context, headers))

    @staticmethod
    def _headers(context: Mapping[str, Any], headers: dict[str, str]) -> dict[str, str]:
        # As API Gateway: $context.requestId and $context.extendedRequestId, unchanged.
        headers["x-amzn-RequestId"] = context["requestId"]
        headers["x-amz-apigw-id"] = context["extendedRequestId"]
        overrides = (context.get("responseOverride") or {}).get("header") or {}
        headers.update({str(k): str(v) for k, v in overrides.items()})
        return headers


_VARIABLE = re.compile(r"\$(?:\{([A-Za-z][\w.]*)\}|([A-Za-z][\w]*(?:\.[A-Za-z_][\w]*)*))")


def substitute(template: str, context: Mapping[str, Any]) -> str:
    """Gateway response templates: plain `$context.x.y` substitution, no VTL (as on AWS)."""

    def value(match: re.Match[str]) -> str:
        path = (match.group(1) or match.group(2)).split(".")
        if path[0] != "context":
            return ""
        current: Any = context
        for part in path[1:]:
            current = current.get(part) if isinstance(current, Mapping) else None
        return "" if current is None or isinstance(current, Mapping) else str(current)

    return _VARIABLE.sub(value, template)


def _sqs_error(document: str) -> str:
    answer = json.loads(document)
    error = answer.get("Error") or (answer.get("ErrorResponse") or {}).get("Error") or {}
    return f"{error.get('Code', '?')}: {error.get('Message', '')}"


class FramingError(ValueError):
    """The request's body cannot be delimited (Content-Length or chunked encoding broken)."""


def read_body(headers: Mapping[str, str], stream: BinaryIO,
              limit: int = MAX_PAYLOAD_BYTES) -> tuple[bytes, int]:
    """The request body and its length as declared. A body declared over `limit` is not read
    (the answer is 413 anyway); chunked bodies are read up to `limit` + 1 bytes."""
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        return _read_chunked(stream, limit)
    declared = (headers.get("content-length") or "0").strip()
    if not declared.isdigit():
        raise FramingError(f"Content-Length {declared[:40]!r}")
    length = int(declared)
    return (stream.read(length) if 0 < length <= limit else b""), length


def _read_chunked(stream: BinaryIO, limit: int) -> tuple[bytes, int]:
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1026)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise FramingError(f"chunk size line {line[:40]!r}") from error
        if size < 0:
            raise FramingError(f"chunk size {size}")
        if size == 0:
            while stream.readline(65537).strip():  # trailer fields, up to the blank line
                pass
            return b"".join(parts), total
        if total + size > limit:
            return b"", total + size  # too large: the rest stays unread
        chunk = stream.read(size)
        if len(chunk) != size or stream.read(2) != b"\r\n":
            raise FramingError("chunk shorter than its size")
        parts.append(chunk)
        total += size


class GatewayHTTPServer(ThreadedHTTPServer):
    """Chalice's local server (a thread per connection) with a listen backlog fit for a load
    tool. socketserver's default of 5 let the kernel drop connection attempts when more clients
    connected at once than the accept loop took in, and each dropped SYN costs the client a 1 s
    retransmit: 7 listen overflows and a 1.18 s POST in a 150/s run (docs/benchmarks.md, P4). API
    Gateway does not turn connections away like that."""

    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up before its answer is written (a probe that timed out, a load
        # tool stopped mid-run) is no fault of the gateway's: one line, not socketserver's
        # traceback on stderr, which reads like a crash in the pipeline's log.
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError)):
            LOG.info("client %s closed the connection before its answer was written (%s)",
                     ":".join(map(str, client_address[:2])), type(error).__name__)
            return
        super().handle_error(request, client_address)


def handler_class(ingest: Ingest, auth: LocalAuth | None = None) -> type[ChaliceRequestHandler]:
    """Chalice's local request handler, with POST <resource path> taken over by `ingest`; with
    `auth`, every other request (the read API) must be SigV4-signed, as IAM authorization
    requires on AWS (whatever the stage's READ_API_AUTH says)."""

    described: list[bytes] = []  # GET /openapi.json, built on first use

    class GatewayRequestHandler(ChaliceRequestHandler):
        # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed
        # ACK held every response about 40 ms.
        disable_nagle_algorithm = True
        rfile: BinaryIO  # replaced while a signed request's body is checked

        # Path parameters stay percent-encoded, as API Gateway passes them to Lambda: app.py
        # decodes them (chalice.local does not decode either).

        def do_POST(self) -> None:
            if urlsplit(self.path).path.rstrip("/") != ingest.spec.resource_path:
                self._generic_handle()
                return
            try:
                body, declared = read_body(self.headers, self.rfile)
                # Unread bytes would be taken for the next request: close after answering.
                if declared != len(body):
                    self.close_connection = True
                result = ingest.handle(dict(self.headers), body, self.path,
                                       self.client_address[0], declared_length=declared)
            except FramingError as error:  # the client's HTTP is broken: 400, as a front end
                LOG.warning("unreadable request: %s", error)
                self.close_connection = True
                result = HttpResult(400, b'{"message": "Bad Request"}',
                                    {"Content-Type": "application/json"})
            except Exception:  # handle() answers its own failures; this is the last resort
                LOG.exception("ingest failed")
                self.close_connection = True  # the body may be unread: the stream is lost
                result = HttpResult(500, b'{"message": "Internal server error"}',
                                    {"Content-Type": "application/json"})
            self.send_response(result.status)
            for name, value in result.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(result.body)))
            self.end_headers()
            self.wfile.write(result.body)

        def _generic_handle(self) -> None:
            if auth is None:
                super()._generic_handle()
                return
            stream = self.rfile
            try:
                self._checked_handle(auth)
            finally:
                self.rfile = stream  # the connection's next request comes from the socket

        def _checked_handle(self, auth: LocalAuth) -> None:
            refusal = self._signature_refusal(auth)
            if refusal is None:
                super()._generic_handle()
                return
            LOG.warning("read API refused %s %s: %s", self.command, self.path,
                        refusal.message.split("\n", 1)[0])
            # API Gateway's default gateway response: {"message":$context.error.messageString}
            body = json.dumps({"message": refusal.message}).encode("utf-8")
            self.send_response(refusal.status)
            for name, value in {"Content-Type": "application/json", **refusal.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        # chalice.local binds do_PUT etc. to its own _generic_handle: point them at this one.
        do_PUT = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def _signature_refusal(self, auth: LocalAuth) -> Refusal | None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            self.rfile = io.BytesIO(body)  # Chalice's handler reads the body again (restored)
            return auth.check_signature(self.command, self.path, self.headers, body)

        def __getattr__(self, name: str) -> Any:
            # BaseHTTPRequestHandler answers a method it has no do_X for (TRACE, CONNECT, any
            # token) with a 501 HTML page; API Gateway answers them as it answers any method a
            # resource lacks (a JSON 403), and so does Chalice's router.
            if name.startswith("do_"):
                return self._generic_handle
            raise AttributeError(name)

        def do_GET(self) -> None:
            if urlsplit(self.path).path != OPENAPI_PATH:
                self._generic_handle()
                return
            if not described:  # this app's routes, infra and the schema (scripts/openapi.py)
                routes = self.local_gateway._app_object.routes
                described.append(json.dumps(openapi.build(
                    routes, auth.ingest if auth else None), indent=2).encode("utf-8"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(described[0])))
            self.end_headers()
            self.wfile.write(described[0])

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug("%s - %s", self.address_string(), format % args)

    return GatewayRequestHandler
