"""Choosing the store: Java detection for DynamoDB Local, and moto as the default."""

from __future__ import annotations

import pytest

from devstack.__main__ import parse_args
from devstack.dynamodb_local import parse_java_major


@pytest.mark.parametrize("output, major", [
    ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
    ('openjdk version "21" 2023-09-19', 21),
    ('java version "1.8.0_292"\nJava(TM) SE Runtime Environment', 8),
    ('openjdk version "11.0.2" 2019-01-15', 11),
    ('Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version "25-ea" 2025-09-16', 25),
    ("bash: java: command not found", None),
    ("", None),
])
def test_java_major_version_is_read_from_java_version_output(output: str,
                                                            major: int | None) -> None:
    assert parse_java_major(output) == major


def test_moto_is_the_default_store_and_dynamodb_local_is_chosen_by_name() -> None:
    assert parse_args([]).store == "moto"
    assert parse_args(["--store", "dynamodb-local"]).store == "dynamodb-local"
    with pytest.raises(SystemExit):
        parse_args(["--store", "dynalite"])
