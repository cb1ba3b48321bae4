"""bench.dynamodb_local_profile end to end, in a few transactions: it starts DynamoDB Local, sends
it the consumer's transactions, records them with Flight Recorder and attributes the samples."""

from __future__ import annotations

import re

import pytest

from bench import dynamodb_local_profile as profile
from tests.stores import skip_unless_dynamodb_local_runs


def test_a_short_profile_attributes_samples_to_the_transaction(
        capsys: pytest.CaptureFixture[str]) -> None:
    skip_unless_dynamodb_local_runs()
    if profile.jdk_tool("jcmd") is None or profile.jdk_tool("jfr") is None:
        pytest.skip("no JDK next to java: jcmd and jfr are missing")
    assert profile.main(["--warmup", "20", "--transactions", "60"]) == 0
    out = capsys.readouterr().out
    timing = re.search(r"transaction ([\d.]+) ms, a PutItem ([\d.]+) ms", out)
    assert timing is not None, out
    counts = {name.strip(): int(samples) for name, samples in re.findall(
        r"^\| ( *[A-Za-z][^|]*?) *\| +(\d+) \|", out, re.MULTILINE)}
    assert set(counts) >= {name.strip() for name, _ in profile.PARTS}, out
    base = counts["handling a request (the base)"]
    # 60 cold transactions take well over a second: some samples, each inside the base.
    assert 0 < counts["TransactWriteItems"] <= base, out
    assert counts["parsing expressions (ANTLR)"] <= counts["TransactWriteItems"] + counts[
        "PutItem"]


def test_the_transactions_are_the_consumers() -> None:
    built = profile.build_transactions(2)
    assert len(built) == 2
    for transaction in built:
        actions = transaction["TransactItems"]
        assert len(actions) == 20  # an item change and its outcome for each of 10 messages
        assert {next(iter(action)) for action in actions} == {"Update", "Put"}
