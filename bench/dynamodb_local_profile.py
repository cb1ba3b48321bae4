"""Where DynamoDB Local spends its CPU on the consumer's transaction: the rest of P2's ratio.

    .venv/bin/python -m bench.dynamodb_local_profile      # --warmup 1000 --transactions 600

bench.batch finds the consumer's 10-message transaction, sent alone, at about 2 round trips where
a PutItem is 1. This script asks DynamoDB Local why. It builds the TransactWriteItems the
consumer sends for 10-message batches (creates and updates in turn, built beforehand, as
bench.batch's "transaction alone"), starts DynamoDB Local as devstack does, sends it --warmup of
them so that its JIT settles, then records the next --transactions with Java Flight Recorder
(`jcmd JFR.start`, settings=profile) and prints the share of DynamoDB Local's CPU samples in each
part of its request handling, and the slowest frames by their own time. It also times the
transaction against a PutItem, directly, without the proxy. It needs a JDK's `jcmd` and `jfr`
next to the `java` on PATH (openjdk-17-jdk-headless has them).
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
from pathlib import Path
from typing import Any

from bench.batch import BATCH, QUEUE_ARN, REGION, CapturingClient, batch_messages
from bench.consumer import lambda_record
from bench.stats import machine, median, table, use_emulator_environment

# Parts of DynamoDB Local's request handling, by a frame in the sampled stack (inclusive: a
# sample counts for every part on its stack, so the rows overlap).
PARTS = (
    ("handling a request (the base)", "LocalDynamoDBServerHandler.handle"),
    ("TransactWriteItems", "TransactWriteItemsDispatcher."),
    ("  parsing expressions (ANTLR)", "org.antlr."),
    ("  sizing the items before the write", "TransactWriteItemsFunction.getItemPayloadSize"),
    ("  writing under the table lock", "TransactWriteItemsFunction.doWrite"),
    ("  SQLite", "com.almworks.sqlite4java."),
    ("PutItem", "PutItemDispatcher."),
)
FRAME = re.compile(r"^\s+([\w.$<>]+)\(", re.MULTILINE)


def jdk_tool(name: str) -> str | None:
    """A JDK tool next to the `java` on PATH (Debian's /usr/bin holds links to a JRE's too)."""
    java = shutil.which("java")
    if java is not None:
        beside = Path(os.path.realpath(java)).with_name(name)
        if beside.exists():
            return str(beside)
    return shutil.which(name)


def build_transactions(count: int) -> list[dict[str, Any]]:
    from chalicelib import BatchProcessor, ItemStore, Settings

    settings = Settings(table_name="bench-profile", queue_name="bench-profile-queue",
                        report_batch_item_failures=True)
    capturing = CapturingClient()
    builder = BatchProcessor(ItemStore(capturing, settings), settings)
    clock_ms = [int(time.time() * 1000)]
    with contextlib.redirect_stdout(io.StringIO()):  # the consumer's EMF lines
        for number in range(count):
            builder.process([lambda_record(m, QUEUE_ARN)
                             for m in batch_messages("profile", number, BATCH, clock_ms)])
    return capturing.transactions


def stacks(recording: Path, jfr: str) -> list[list[str]]:
    """Each CPU sample's frames, innermost first."""
    printed = subprocess.run([jfr, "print", "--stack-depth", "200", "--events",
                              "jdk.ExecutionSample", str(recording)],
                             capture_output=True, text=True, check=True).stdout
    return [frames for event in printed.split("jdk.ExecutionSample")
            if (frames := FRAME.findall(event))]


def report(samples: list[list[str]]) -> None:
    handling = sum(1 for frames in samples if any(PARTS[0][1] in f for f in frames))
    rows = []
    for name, marker in PARTS:
        count = sum(1 for frames in samples if any(marker in f for f in frames))
        rows.append([name, count, 100 * count / handling if handling else float("nan")])
    print(f"\n## DynamoDB Local's CPU samples ({len(samples)} in all, {handling} handling "
          f"requests)\n")
    print(table(["part", "samples", "% of request handling"], rows))
    own = Counter(frames[0] for frames in samples
                  if any(PARTS[0][1] in f for f in frames))
    print("\n## Frames with the most samples of their own (request handling)\n")
    print(table(["frame", "samples"], [[frame, n] for frame, n in own.most_common(12)]))


def timed(action: Any, count: int) -> float:
    seconds = []
    for _ in range(count):
        began = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - began)
    return median(seconds) * 1e3


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
    built = iter(build_transactions(warmup + transactions + 2 * 50))
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

            def put() -> None:
                client.put_item(TableName="bench-profile",
                                Item={"pk": {"S": f"item#put-{next(puts)}"}, "n": {"N": "1"}})

            for _ in range(warmup):
                transaction()
                put()
            print(f"DynamoDB Local {emulator.endpoint_url}, warmed with {warmup} transactions "
                  f"and PutItems; directly, without the proxy: the consumer's 10-message "
                  f"transaction {timed(transaction, 50):.1f} ms, a PutItem "
                  f"{timed(put, 50):.1f} ms (medians of 50)")
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
