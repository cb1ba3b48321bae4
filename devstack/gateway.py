"""The local API Gateway: POST /SQSManager goes straight to SQS, the rest is Chalice's own server.

POST /SQSManager is not a Chalice route: on AWS, API Gateway validates the body against the model,
renders the request template, sends the form to SQS and maps SQS's answer through the integration
responses. `Ingest` (devstack/ingest.py) does the same with infra/extension.yaml's templates.
Every other request is served by `chalice.local` (what `chalice local` runs), so the read API
behaves as it does there. This module is the HTTP server and its request handler.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer

from devstack.auth import LocalAuth, Refusal
from devstack.gateway_responses import HttpResult
from devstack.ingest import Ingest
from devstack.request_body import FramingError, read_body
from scripts.openapi import build as build_openapi

LOG = logging.getLogger("devstack.gateway")

# The OpenAPI 3.0 description of what this gateway serves (not a route of the app).
OPENAPI_PATH = "/openapi.json"


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
                described.append(json.dumps(build_openapi(
                    routes, auth.ingest if auth else None), indent=2).encode("utf-8"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(described[0])))
            self.end_headers()
            self.wfile.write(described[0])

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug("%s - %s", self.address_string(), format % args)

    return GatewayRequestHandler
