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
miss. This module runs the checks (scripts/smoke_checks.py) and reports; the stage comes from
scripts/smoke_target.py, the signed HTTP from scripts/smoke_client.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import boto3
import requests
from botocore.credentials import Credentials

from devstack.infra import INGEST_AUTHORIZATION
from scripts.smoke_checks import Smoke
from scripts.smoke_client import SmokeFailure
from scripts.smoke_target import Target, read_url_from_deployed, stack_target


@dataclass
class Check:
    name: str
    ok: bool = False
    detail: str = ""


def run_all(checks: list[tuple[str, Callable[[], str]]]) -> list[Check]:
    """Each check in turn, a failure recorded with what was seen; progress on stderr."""
    results = []
    for name, check in checks:
        result = Check(name)
        try:
            result.detail = check()
            result.ok = True
        except (SmokeFailure, requests.RequestException, ValueError, KeyError) as error:
            result.detail = str(error)
        print(f"  {'ok  ' if result.ok else 'FAIL'} {name}", file=sys.stderr, flush=True)
        results.append(result)
    return results


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
    results = run_all(Smoke(target, credentials, args.timeout).checks())
    print(table(results))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
