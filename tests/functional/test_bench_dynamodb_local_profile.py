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
    took = {name: float(ms) for name, ms in re.findall(
        r"^\| (a PutItem|the consumer's 10-message transaction|the same without its "
        r"conditions[^|]*?) *\| +([\d.]+) \|", out, re.MULTILINE)}
    assert len(took) == 3 and all(ms > 0 for ms in took.values()), out
    counts = {name.strip(): int(samples) for name, samples in re.findall(
        r"^\| ( *[A-Za-z][^|]*?) *\| +(\d+) \|", out, re.MULTILINE)}
    assert set(counts) >= {name.strip() for name, _ in profile.PARTS}, out
    base = counts["handling a request (the base)"]
    # 60 cold transactions take well over a second: some samples, each inside the base.
    assert 0 < counts["TransactWriteItems"] <= base, out
    assert counts["parsing expressions (ANTLR)"] <= counts["TransactWriteItems"] + counts[
        "PutItem"]
    assert counts["parsing, to size them"] <= counts["sizing the items before the write"]
    assert counts["parsing, to write them"] <= counts["writing under the table lock"]


def test_the_transactions_are_the_consumers() -> None:
    built = profile.build_transactions(2)
    assert len(built) == 2
    for transaction in built:
        actions = transaction["TransactItems"]
        assert len(actions) == 20  # an item change and its outcome for each of 10 messages
        assert {next(iter(action)) for action in actions} == {"Update", "Put"}


def test_without_conditions_keeps_only_what_the_update_uses() -> None:
    (transaction,) = profile.build_transactions(2)[1:]  # updates of the items just created
    bare = profile.without_conditions(transaction)
    assert len(bare["TransactItems"]) == len(transaction["TransactItems"])
    for action, original in zip(bare["TransactItems"], transaction["TransactItems"],
                                strict=True):
        ((kind, body),) = action.items()
        assert "ConditionExpression" not in body
        assert "ReturnValuesOnConditionCheckFailure" not in body
        if kind == "Put":  # the outcome record: its only name was the condition's
            assert body == {"TableName": original["Put"]["TableName"],
                            "Item": original["Put"]["Item"]}
            continue
        expression = body["UpdateExpression"]
        assert expression == original["Update"]["UpdateExpression"]
        assert body["Key"] == original["Update"]["Key"]
        for key in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            assert body[key], key
            # Every placeholder kept is used; every one the update uses is kept.
            assert all(placeholder in expression for placeholder in body[key])
            assert {placeholder for placeholder in original["Update"][key]
                    if placeholder in expression} == set(body[key])
