"""Where DynamoDB Local spends its CPU on the consumer's transaction: the rest of P2's ratio.

    .venv/bin/python -m bench.dynamodb_local_profile      # --warmup 1000 --transactions 600

bench.batch finds the consumer's 10-message transaction, sent alone, at about 2 round trips where
a PutItem is 1. This script asks DynamoDB Local why. It builds the TransactWriteItems the
consumer sends for 10-message batches (creates and updates in turn, built beforehand, as
bench.batch's "transaction alone"), starts DynamoDB Local as devstack does, sends it --warmup of
them so that its JIT settles, then records the next --transactions with Java Flight Recorder
(`jcmd JFR.start`, settings=profile) and prints the share of DynamoDB Local's CPU samples in each
part of its request handling, and the slowest frames by their own time. Before that it times,
directly (no proxy), the transaction against a PutItem and against the same actions without
their conditions. It needs a JDK's `jcmd` and `jfr` next to the `java` on PATH
(openjdk-17-jdk-headless has them).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.batch import BATCH, QUEUE_ARN, REGION, CapturingClient, batch_messages
from bench.consumer import lambda_record
from bench.stats import machine, median, table, use_emulator_environment

# Parts of DynamoDB Local's request handling: a sample counts for a part when its stack holds
# every frame named (inclusive: a sample counts for every part on its stack, so rows overlap).
BASE = "LocalDynamoDBServerHandler.handle"
PARSING = "org.antlr."
SIZING = "TransactWriteItemsFunction.getItemPayloadSize"
WRITING = "TransactWriteItemsFunction.doWrite"
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("handling a request (the base)", (BASE,)),
    ("TransactWriteItems", ("TransactWriteItemsDispatcher.",)),
    ("  parsing expressions (ANTLR)", (PARSING,)),
    ("  sizing the items before the write", (SIZING,)),
    ("    parsing, to size them", (SIZING, PARSING)),
    ("  writing under the table lock", (WRITING,)),
    ("    parsing, to write them", (WRITING, PARSING)),
    ("  SQLite", ("com.almworks.sqlite4java.",)),
    ("PutItem", ("PutItemDispatcher.",)),
)
TIMED_ROUNDS = 50
FRAME = re.compile(r"^\s+([\w.$<>]+)\(", re.MULTILINE)


def jdk_tool(name: str) -> str | None:
    """A JDK tool next to the `java` on PATH (Debian's /usr/bin holds links to a JRE's too)."""
    java = shutil.which("java")
    if java is not None:
        beside = Path(os.path.realpath(java)).with_name(name)
        if beside.exists():
            return str(beside)
    return shutil.which(name)


def build_transactions(count: int, prefix: str = "profile") -> list[dict[str, Any]]:
    from chalicelib import BatchProcessor, ItemStore, Settings

    settings = Settings(table_name="bench-profile", queue_name="bench-profile-queue",
                        report_batch_item_failures=True)
    capturing = CapturingClient()
    builder = BatchProcessor(ItemStore(capturing, settings), settings)
    clock_ms = [int(time.time() * 1000)]
    with contextlib.redirect_stdout(io.StringIO()):  # the consumer's EMF lines
        for number in range(count):
            builder.process([lambda_record(m, QUEUE_ARN)
                             for m in batch_messages(prefix, number, BATCH, clock_ms)])
    return capturing.transactions


def without_conditions(transaction: dict[str, Any]) -> dict[str, Any]:
    """The same actions with no condition: not an option for the consumer (its conditions make
    writes idempotent and order-safe), timed as the most any shorter condition could save."""
    actions = []
    for action in transaction["TransactItems"]:
        ((kind, body),) = action.items()
        bare = {key: value for key, value in body.items()
                if key not in ("ConditionExpression", "ReturnValuesOnConditionCheckFailure",
                               "ExpressionAttributeNames", "ExpressionAttributeValues")}
        expression = body.get("UpdateExpression", "")
        for key in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            # DynamoDB refuses names and values no expression uses.
            used = {placeholder: value for placeholder, value in body.get(key, {}).items()
                    if re.search(re.escape(placeholder) + r"(?!\w)", expression)}
            if used:
                bare[key] = used
        actions.append({kind: bare})
    return {**transaction, "TransactItems": actions}


def stacks(recording: Path, jfr: str) -> list[list[str]]:
    """Each CPU sample's frames, innermost first."""
    printed = subprocess.run([jfr, "print", "--stack-depth", "200", "--events",
                              "jdk.ExecutionSample", str(recording)],
                             capture_output=True, text=True, check=True).stdout
    return [frames for event in printed.split("jdk.ExecutionSample")
            if (frames := FRAME.findall(event))]


def holds(frames: list[str], markers: tuple[str, ...]) -> bool:
    return all(any(marker in frame for frame in frames) for marker in markers)


def report(samples: list[list[str]]) -> None:
    handling = sum(1 for frames in samples if holds(frames, (BASE,)))
    rows = []
    for name, markers in PARTS:
        count = sum(1 for frames in samples if holds(frames, markers))
        rows.append([name, count, 100 * count / handling if handling else float("nan")])
    print(f"\n## DynamoDB Local's CPU samples ({len(samples)} in all, {handling} handling "
          f"requests)\n")
    print(table(["part", "samples", "% of request handling"], rows))
    own = Counter(frames[0] for frames in samples
                  if holds(frames, (BASE,)))
    print("\n## Frames with the most samples of their own (request handling)\n")
    print(table(["frame", "samples"], [[frame, n] for frame, n in own.most_common(12)]))


def timed(actions: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Median ms of each action, taking turns."""
    seconds: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(rounds):
        for name, action in actions.items():
            began = time.perf_counter()
            action()
            seconds[name].append(time.perf_counter() - began)
    return {name: median(values) * 1e3 for name, values in seconds.items()}


def run(warmup: int, transactions: int) -> int:
    import boto3

    from chalicelib.store import client_config
    from devstack.dynamodb_local import DynamoDBLocal, unavailable_reason
    from devstack.emulator import MotoServer, free_port
    from devstack.resources import ensure_resources

    jcmd, jfr = jdk_tool("jcmd"), jdk_tool("jfr")
    reason = unavailable_reason() or (None if jcmd and jfr else
                                      "no JDK: `jcmd` and `jfr` are not next to `java`")
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 1
    assert jcmd is not None and jfr is not None
    print(f"machine: {machine()}")
    built = iter(build_transactions(warmup + transactions + TIMED_ROUNDS))
    bare = iter([without_conditions(transaction)
                 for transaction in build_transactions(warmup + TIMED_ROUNDS, "bare")])
    emulator = DynamoDBLocal(port=free_port())
    # Java itself, not under devstack's guard: the recording is dumped before it stops.
    java = subprocess.Popen(emulator.command(), cwd=emulator.working_directory(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with MotoServer(port=free_port()) as moto, tempfile.TemporaryDirectory() as scratch:
            emulator.process = java  # for wait_ready's checks
            emulator.wait_ready()
            ensure_resources(moto.endpoint_url, queue_name="bench-profile-q",
                             dlq_name="bench-profile-dlq", table_name="bench-profile",
                             dynamodb_endpoint_url=emulator.endpoint_url)
            client = boto3.client("dynamodb", endpoint_url=emulator.endpoint_url,
                                  config=client_config())
            puts = iter(range(10**9))

            def transaction() -> None:
                client.transact_write_items(**next(built))

            def bare_transaction() -> None:
                client.transact_write_items(**next(bare))

            def put() -> None:
                client.put_item(TableName="bench-profile",
                                Item={"pk": {"S": f"item#put-{next(puts)}"}, "n": {"N": "1"}})

            for _ in range(warmup):
                transaction()
                bare_transaction()
                put()
            print(f"DynamoDB Local {emulator.endpoint_url}, warmed with {warmup} of each "
                  f"call below\n\n## Directly, without the proxy (median of {TIMED_ROUNDS}, "
                  f"taking turns)\n")
            took = timed({"a PutItem": put,
                          "the consumer's 10-message transaction": transaction,
                          "the same without its conditions (not an option: the most "
                          "shorter conditions could save)": bare_transaction}, TIMED_ROUNDS)
            print(table(["call", "ms", "/ PutItem"],
                        [[name, ms, ms / took["a PutItem"]] for name, ms in took.items()]))
            recording = Path(scratch) / "dynamodb-local.jfr"
            subprocess.run([jcmd, str(java.pid), "JFR.start", "name=profile",
                            "settings=profile"], check=True, capture_output=True)
            for _ in range(transactions):
                transaction()
                put()
            subprocess.run([jcmd, str(java.pid), "JFR.dump", "name=profile",
                            f"filename={recording}"], check=True, capture_output=True)
            report(stacks(recording, jfr))
    finally:
        emulator.process = None
        java.terminate()
        java.wait(30)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dynamodb_local_profile",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=1000,
                        help="transactions (and PutItems) sent first, not recorded (default 1000)")
    parser.add_argument("--transactions", type=int, default=600,
                        help="transactions (and PutItems) recorded (default 600)")
    args = parser.parse_args(argv)
    if args.warmup < 0 or args.transactions < 1:
        parser.error("--warmup must be >= 0 and --transactions >= 1")
    use_emulator_environment(REGION, "WARNING")
    return run(args.warmup, args.transactions)


if __name__ == "__main__":
    sys.exit(main())
