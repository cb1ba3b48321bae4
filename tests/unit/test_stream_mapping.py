"""scripts/stream_mapping.py without I/O: the settings come from infra's packaged mapping, are
applied only where the mapping differs, and a mapping left on an old stream (chalice#1882)
stops the deploy. The Lambda client is a stand-in answering as ListEventSourceMappings does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scripts.stream_mapping import StaleMappingError, apply, wanted_settings

STREAM = "arn:aws:dynamodb:us-west-2:111:table/t/stream/2026-01-01T00:00:00.000"
QUEUE = "arn:aws:sqs:us-west-2:111:failures"


class Lambda:
    def __init__(self, mappings: list[dict[str, Any]]) -> None:
        self.mappings = mappings
        self.updates: list[dict[str, Any]] = []

    def list_event_source_mappings(self, FunctionName: str) -> dict[str, Any]:
        return {"EventSourceMappings": self.mappings}

    def update_event_source_mapping(self, **settings: Any) -> None:
        self.updates.append(settings)
        [mapping] = [m for m in self.mappings if m["UUID"] == settings["UUID"]]
        mapping.update({k: v for k, v in settings.items() if k != "UUID"})


def test_the_settings_are_the_packaged_mappings() -> None:
    wanted = wanted_settings(QUEUE)
    assert wanted["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert wanted["BisectBatchOnFunctionError"] is True
    assert wanted["DestinationConfig"] == {"OnFailure": {"Destination": QUEUE}}
    pattern = json.loads(wanted["FilterCriteria"]["Filters"][0]["Pattern"])
    assert pattern == {"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "item#"}]}}}}


def test_applied_once_then_nothing_to_do() -> None:
    client = Lambda([{"UUID": "u1", "EventSourceArn": STREAM, "BatchSize": 100},
                     {"UUID": "u2", "EventSourceArn": "arn:aws:sqs:us-west-2:111:q"}])
    changed = apply(client, "f", STREAM, wanted_settings(QUEUE))
    assert changed == sorted(wanted_settings(QUEUE)) and client.updates[0]["UUID"] == "u1"
    assert apply(client, "f", STREAM, wanted_settings(QUEUE)) == []
    assert len(client.updates) == 1


def test_a_mapping_on_an_old_stream_stops_the_deploy() -> None:
    old = STREAM.replace("2026-01-01", "2025-01-01")
    client = Lambda([{"UUID": "u1", "EventSourceArn": old}])
    with pytest.raises(StaleMappingError, match="chalice#1882"):
        apply(client, "f", STREAM, wanted_settings(QUEUE))
    with pytest.raises(LookupError):
        apply(Lambda([]), "f", STREAM, wanted_settings(QUEUE))
