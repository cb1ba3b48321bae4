"""`make smoke`: check a deployed stack end to end, and print what was verified.

    python -m scripts.smoke --stack-name sqs-manager-prod1 [--stage prod1]
    python -m scripts.smoke --ingest-url URL --read-url URL [--ingest-authorization MODE]
                            [--api-key KEY]

With a stack name, the ingest URL, how ingest authorizes and the API key come from the stack's
outputs (`IngestUrl`, `IngestAuthorization`, `ApiKeyId`), the read API's URL from Chalice's
`EndpointURL` output (`chalice package` path) or `.chalice/deployed/<stage>.json` (`chalice
deploy` path); the options override them. Reads, and POSTs where IngestAuthorization uses IAM
(AWS_IAM, the default, or AWS_IAM_AND_API_KEY), are SigV4-signed with the default AWS
credentials (environment, profile) for `execute-api`; the key goes on POSTs where it is needed.

What only a real stack can show is checked here: writes applied through the queue and the
consumer, their changes in the item's history (stream, bus, rule, history consumer), text and
ids that need escaping or percent-encoding on their way through API Gateway, Lambda and
DynamoDB, the 400 body built from `validationErrorString` being valid JSON, SQS's refusal of an
oversized message mapped to 413, and the stage's authentication enforced: unsigned reads
refused, and for ingest what its IngestAuthorization asks (an unsigned write and one signed with
a wrong secret refused where it uses IAM; a write without the key refused where it needs one).
Each run writes items named `smoke-<random>...` and deletes the main one. Exit status 1 on any
miss.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import requests
from botocore.credentials import Credentials

from devstack.infra import INGEST_AUTHORIZATION, InfraTemplate, MethodAuth
from scripts import sigv4
from scripts.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra" / "extension.yaml"
# Text that breaks an un-encoded form body or a careless escaper, and an id that needs
# percent-encoding in GET /items/{id}: a space, "/", "%", "+" and non-ASCII.
AWKWARD_TEXT = "& + % ü 😀 = ? # \" ' \\ end"
AWKWARD_ID_SUFFIX = " a/b%c+d ü😀"
FORBIDDEN = {"message": "Forbidden"}
MISSING_TOKEN = {"message": "Missing Authentication Token"}
SIGNATURE_MISMATCH = "The request signature we calculated does not match"


@dataclass(frozen=True)
class Target:
    ingest_url: str  # .../SQSManager
    read_url: str  # the read API's base URL, without a trailing slash
    api_key: str  # "" where ingest needs none
    region: str
    ingest_mode: str = "AWS_IAM"  # the stack's IngestAuthorization

    @property
    def ingest(self) -> MethodAuth:
        """What the mode makes POST /SQSManager require, as the template resolves it."""
        return InfraTemplate(INFRA).method_auth(self.ingest_mode)


@dataclass
class Check:
    name: str
    ok: bool = False
    detail: str = ""


class SmokeFailure(Exception):
    """A check's expectation was not met: the message says what was seen."""


def queue_message_limit(infra: Path = INFRA) -> int:
    """The queue's MaximumMessageSize, from infra (one source of truth)."""
    queue = load_template(infra)["Resources"]["Queue"]["Properties"]
    return int(queue["MaximumMessageSize"])


def read_url_from_deployed(stage: str, project_dir: Path = ROOT) -> str | None:
    """The read API's URL that `chalice deploy` recorded for the stage, if any."""
    path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    if not path.exists():
        return None
    for resource in json.loads(path.read_text(encoding="utf-8")).get("resources", []):
        if resource.get("resource_type") == "rest_api" and resource.get("rest_api_url"):
            return str(resource["rest_api_url"])
    return None


def target_from_stack(outputs: dict[str, str], api_key_value: Callable[[str], str],
                      region: str, read_url: str | None = None,
                      api_key: str | None = None, ingest_mode: str | None = None) -> Target:
    """The stack's URLs, ingest mode and key from its outputs; explicit values win."""
    mode = ingest_mode or outputs.get(INGEST_AUTHORIZATION) or "AWS_IAM"
    ingest = outputs.get("IngestUrl")
    read = read_url or outputs.get("EndpointURL")
    if not ingest:
        raise SystemExit("the stack has no IngestUrl output: is it sqs-manager's stack?")
    if not read:
        raise SystemExit("no read API URL: deploy with `chalice deploy` from this directory, "
                         "or pass --read-url (Chalice prints it as the Rest API URL)")
    key = api_key or (api_key_value(outputs["ApiKeyId"]) if outputs.get("ApiKeyId") else "")
    target = Target(ingest, read.rstrip("/"), key, region, mode)
    if target.ingest.api_key and not key:
        raise SystemExit(f"no API key: {INGEST_AUTHORIZATION} {mode} needs one, and the stack "
                         f"has no ApiKeyId output; pass --api-key")
    return target


def stack_target(session: boto3.Session, stack_name: str, region: str,
                 read_url: str | None = None, api_key: str | None = None,
                 ingest_mode: str | None = None) -> Target:
    """The stack's outputs (CloudFormation) and its API key's value (API Gateway)."""
    described = session.client("cloudformation").describe_stacks(
        StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    def key_value(key_id: str) -> str:
        value: str = session.client("apigateway").get_api_key(
            apiKey=key_id, includeValue=True)["value"]
        return value

    return target_from_stack(outputs, key_value, region, read_url, api_key, ingest_mode)


class Smoke:
    def __init__(self, target: Target, credentials: Credentials, timeout: float = 60.0) -> None:
        self.target = target
        self.credentials = credentials
        self.timeout = timeout
        self.http = requests.Session()
        self.run = f"smoke-{uuid.uuid4().hex[:12]}"
        self.writes: list[str] = []  # the request ids of the main item's writes, in order

    # --- HTTP ----------------------------------------------------------------------------
    def post(self, body: str | bytes, api_key: str | None = None,
             credentials: Credentials | None = None, signed: bool | None = None
             ) -> requests.Response:
        """POST as the stage needs it (signed, with the key), unless told otherwise."""
        key = self.target.api_key if api_key is None else api_key
        headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
        data = body.encode("utf-8") if isinstance(body, str) else body
        if self.target.ingest.iam if signed is None else signed:
            headers.update(sigv4.Signer(self.target.region, credentials or self.credentials)
                           .headers(self.target.ingest_url, "POST", data, headers))
        return self.http.post(self.target.ingest_url, data=data, headers=headers, timeout=60)

    def get(self, path: str, credentials: Credentials | None = None,
            signed: bool = True) -> requests.Response:
        url = self.target.read_url + path
        headers: dict[str, str] = {}
        if signed:
            headers = sigv4.Signer(self.target.region, credentials or self.credentials) \
                .headers(url)
        return self.http.get(url, headers=headers, timeout=30)

    def submit(self, command: dict[str, Any]) -> str:
        response = self.post(json.dumps(command, ensure_ascii=False))
        if response.status_code != 202:
            raise SmokeFailure(f"POST answered {response.status_code} {response.text[:300]}")
        request_id: str = response.json()["requestId"]
        return request_id

    def outcome(self, request_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            response = self.get(f"/requests/{request_id}")
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            if response.status_code != 404 or time.monotonic() > deadline:
                raise SmokeFailure(f"GET /requests/{request_id} answered "
                                   f"{response.status_code} {response.text[:300]}")
            time.sleep(0.5)

    def applied(self, command: dict[str, Any]) -> str:
        request_id = self.submit(command)
        found = self.outcome(request_id)
        if found.get("status") != "applied":
            raise SmokeFailure(f"{command['operation']} {request_id}: {found}")
        return request_id

    def item(self, item_id: str) -> tuple[int, Any]:
        response = self.get(f"/items/{quote(item_id, safe='')}")
        return response.status_code, response.json()

    def expect_item(self, item_id: str, expected: dict[str, Any]) -> str:
        status, found = self.item(item_id)
        if status != 200 or found != expected:
            raise SmokeFailure(f"GET /items/{{id}} answered {status} {found}, expected {expected}")
        return f"read back: {json.dumps(found, ensure_ascii=False)[:80]}"

    # --- checks --------------------------------------------------------------------------
    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        """Every check that applies to the stage: the auth ones by its IngestAuthorization."""
        ingest = self.target.ingest
        return [
            ("create applied", self.check_create),
            ("update applied", self.check_update),
            ("text & + % ü 😀 round-trips", self.check_text),
            ("id with space / % + ü reads back", self.check_awkward_id),
            ("delete applied", self.check_delete),
            ("changes reach the item's history", self.check_history),
            ("invalid body: 400, JSON body", self.check_invalid_body),
            ("over the queue limit: 413", self.check_too_large),
            *([("unsigned write: 403", self.check_unsigned_write),
               ("write signed with a wrong secret: 403", self.check_write_wrong_secret)]
              if ingest.iam else []),
            *([("no API key: 403", self.check_no_api_key)] if ingest.api_key else []),
            ("unsigned read: 403", self.check_unsigned_read),
            ("read signed with a wrong secret: 403", self.check_wrong_secret),
        ]

    def check_create(self) -> str:
        self.writes.append(self.applied({"operation": "create", "id": self.run, "item": {"n": 1}}))
        return self.expect_item(self.run, {"id": self.run, "version": 1, "n": 1})

    def check_update(self) -> str:
        self.writes.append(self.applied({"operation": "update", "id": self.run,
                                         "item": {"n": 2, "m": "x"}}))
        return self.expect_item(self.run, {"id": self.run, "version": 2, "n": 2, "m": "x"})

    def check_text(self) -> str:
        item_id = f"{self.run}-text"
        self.applied({"operation": "put", "id": item_id, "item": {"text": AWKWARD_TEXT}})
        return self.expect_item(item_id, {"id": item_id, "version": 1, "text": AWKWARD_TEXT})

    def check_awkward_id(self) -> str:
        item_id = self.run + AWKWARD_ID_SUFFIX
        self.applied({"operation": "put", "id": item_id, "item": {"n": 1}})
        return self.expect_item(item_id, {"id": item_id, "version": 1, "n": 1})

    def check_delete(self) -> str:
        self.writes.append(self.applied({"operation": "delete", "id": self.run}))
        status, found = self.item(self.run)
        if status != 404:
            raise SmokeFailure(f"GET after delete answered {status} {found}")
        return "GET /items/{id} now 404"

    def check_history(self) -> str:
        """The stream, the bus, the history rule and its consumer: each applied write of the
        main item is one change in GET /items/{id}/history, in version order."""
        expected = [(n + 1, change, request_id) for n, (change, request_id) in
                    enumerate(zip(["created", "updated", "deleted"], self.writes, strict=False))]
        if len(expected) != 3:
            raise SmokeFailure("the main item's writes did not all apply")
        deadline = time.monotonic() + self.timeout
        while True:
            response = self.get(f"/items/{quote(self.run, safe='')}/history")
            changes = response.json().get("changes", []) if response.status_code == 200 else []
            found = [(c.get("version"), c.get("change"), c.get("requestId")) for c in changes]
            if found == expected:
                return f"{len(found)} changes, versions 1-3, each naming its request"
            if time.monotonic() > deadline:
                raise SmokeFailure(f"GET /items/{{id}}/history answered {response.status_code} "
                                   f"{found}, expected {expected}")
            time.sleep(1)

    def check_invalid_body(self) -> str:
        # An unknown property whose name holds a quote and a backslash: API Gateway's
        # validationErrorString quotes it, and the 400 body must stay valid JSON.
        body = json.dumps({"operation": "create", "id": self.run, "item": {"a": 1},
                           'q"uote\\d': 1})
        response = self.post(body)
        try:
            answer = response.json()
        except ValueError:
            raise SmokeFailure(
                f"{response.status_code}, body not JSON: {response.text[:300]}") from None
        if response.status_code != 400 or not isinstance(answer.get("message"), str):
            raise SmokeFailure(f"answered {response.status_code} {answer}")
        return answer["message"][:80]

    def check_too_large(self) -> str:
        limit = queue_message_limit()
        body = json.dumps({"operation": "put", "id": self.run, "item": {"blob": "x" * limit}})
        response = self.post(body)
        if response.status_code != 413:
            raise SmokeFailure(f"{len(body)} bytes answered {response.status_code} "
                               f"{response.text[:300]}")
        return f"{len(body)} bytes (limit {limit}): {response.text[:60]}"

    def check_no_api_key(self) -> str:
        # An invalid body: even an open ingest API would enqueue nothing.
        response = self.post('{"operation": "smoke-without-key"}', api_key="")
        if response.status_code != 403 or _json(response) != FORBIDDEN:
            raise SmokeFailure(f"answered {response.status_code} {response.text[:300]}")
        return response.text

    def check_unsigned_write(self) -> str:
        # With the key where the stage needs one: only the signature is missing.
        response = self.post('{"operation": "smoke-unsigned"}', signed=False)
        if response.status_code != 403 or _json(response) != MISSING_TOKEN:
            raise SmokeFailure(f"answered {response.status_code} {response.text[:300]}")
        return response.text

    def check_write_wrong_secret(self) -> str:
        response = self.post('{"operation": "smoke-wrong-secret"}', credentials=self._wrong())
        return self._expect_mismatch(response)

    def check_unsigned_read(self) -> str:
        response = self.get("/items?limit=1", signed=False)
        if response.status_code != 403 or _json(response) != MISSING_TOKEN:
            raise SmokeFailure(f"answered {response.status_code} {response.text[:300]}")
        return response.text

    def check_wrong_secret(self) -> str:
        return self._expect_mismatch(self.get("/items?limit=1", credentials=self._wrong()))

    def _wrong(self) -> Credentials:
        return Credentials(self.credentials.access_key, "not-the-secret-key",
                           self.credentials.token)

    @staticmethod
    def _expect_mismatch(response: requests.Response) -> str:
        message = str((_json(response) or {}).get("message", ""))
        if response.status_code != 403 or not message.startswith(SIGNATURE_MISMATCH):
            raise SmokeFailure(f"answered {response.status_code} {response.text[:300]}")
        return message[:60]

    def run_all(self) -> list[Check]:
        results = []
        for name, check in self.checks():
            result = Check(name)
            try:
                result.detail = check()
                result.ok = True
            except (SmokeFailure, requests.RequestException, ValueError, KeyError) as error:
                result.detail = str(error)
            print(f"  {'ok  ' if result.ok else 'FAIL'} {name}", file=sys.stderr, flush=True)
            results.append(result)
        return results


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def table(results: list[Check]) -> str:
    width = max(len(result.name) for result in results)
    lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
    for result in results:
        detail = " ".join(result.detail.split())[:100]
        lines.append(f"{result.name:<{width}}  {'ok' if result.ok else 'FAIL':<6}  {detail}")
    passed = sum(result.ok for result in results)
    lines.append(f"{passed} of {len(results)} checks passed")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", help="read URLs and key from this stack's outputs")
    parser.add_argument("--stage", default="prod1", help="Chalice stage (for its deployed URL)")
    parser.add_argument("--ingest-url", help="IngestUrl: .../Prod1/SQSManager")
    parser.add_argument("--read-url", help="the read API's URL (Chalice's Rest API URL)")
    parser.add_argument("--api-key", default=os.environ.get("SMOKE_API_KEY"))
    parser.add_argument("--ingest-authorization", metavar="MODE",
                        choices=("AWS_IAM", "API_KEY", "AWS_IAM_AND_API_KEY"),
                        help="the stack's IngestAuthorization (default: its output, or AWS_IAM)")
    parser.add_argument("--region", default=None)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for each outcome")
    args = parser.parse_args(argv)
    if not args.stack_name and not (args.ingest_url and args.read_url):
        parser.error("give --stack-name, or --ingest-url and --read-url")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    session = boto3.Session(region_name=args.region)
    region = session.region_name or "us-west-2"
    found = session.get_credentials()
    if found is None:
        print("smoke: no AWS credentials (environment or profile) to sign reads with",
              file=sys.stderr)
        return 2
    frozen = found.get_frozen_credentials()
    credentials = Credentials(frozen.access_key, frozen.secret_key, frozen.token)
    if args.stack_name:
        target = stack_target(session, args.stack_name, region,
                              args.read_url or read_url_from_deployed(args.stage), args.api_key,
                              args.ingest_authorization)
    else:
        ingest = args.ingest_url.rstrip("/")
        ingest = ingest if ingest.endswith("/SQSManager") else ingest + "/SQSManager"
        target = Target(ingest, args.read_url.rstrip("/"), args.api_key or "", region,
                        args.ingest_authorization or "AWS_IAM")
        if target.ingest.api_key and not target.api_key:
            print(f"smoke: {target.ingest_mode} needs --api-key", file=sys.stderr)
            return 2
    print(f"smoke test of {target.ingest_url} ({INGEST_AUTHORIZATION} {target.ingest_mode}) "
          f"and {target.read_url}", file=sys.stderr)
    results = Smoke(target, credentials, args.timeout).run_all()
    print(table(results))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
