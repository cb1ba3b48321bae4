"""SigV4 for the read API (IAM-authorized on AWS): botocore's signer, the usual credential chain."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

SERVICE = "execute-api"


class ReadSigner:
    """Headers that sign a GET of `url` for API Gateway's execute-api in `region`."""

    def __init__(self, region: str, credentials: Any = None) -> None:
        if credentials is None:
            credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise RuntimeError("--sigv4: no AWS credentials found (environment, profile, ...)")
        self.region = region
        self.credentials = credentials

    def headers(self, url: str) -> dict[str, str]:
        # Frozen per request: refreshable credentials may rotate during a long run.
        request = AWSRequest(method="GET", url=url, headers={})
        SigV4Auth(self.credentials.get_frozen_credentials(), SERVICE, self.region) \
            .add_auth(request)
        return {k: v for k, v in request.headers.items() if k.lower() != "host"}
