"""The ids API Gateway gives a request ($context.requestId, extendedRequestId), in AWS's shapes,
apart so that the ingest path and its responses name a request the same way."""

from __future__ import annotations

import base64
import os
import re

# A client may choose $context.requestId by sending a UUID in this header (AWS "Access logging
# for REST APIs"); anything else is ignored and API Gateway makes one up.
CLIENT_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


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
