"""FIFO mode in infra/extension.yaml (QueueType=fifo), resolved and rendered as CloudFormation and
API Gateway would: the request template's MessageGroupId and MessageDeduplicationId, the queues'
properties, the conditions. No I/O."""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import parse_qs, quote_plus

import pytest

from devstack.infra import InfraTemplate
from devstack.template_values import TemplateError, evaluate_conditions, resolve
from devstack.vtl import new_context, render

FIFO = {"QueueType": "fifo"}
# What SQS allows in a MessageGroupId: ASCII letters, digits and punctuation, 1 to 128.
GROUP_ID = re.compile("[" + re.escape(string.ascii_letters + string.digits + string.punctuation)
                      + "]{1,128}")
EXTENDED_ID = "a+b/c+d/ef+/+/g="


@pytest.fixture(scope="module")
def infra() -> InfraTemplate:
    return InfraTemplate()


def send_fields(infra: InfraTemplate, item_id: str, parameters: dict[str, str] | None = None,
                extended_id: str = EXTENDED_ID) -> dict[str, list[str]]:
    template = infra.gateway_spec(parameters=parameters).request_templates["application/json"]
    body = json.dumps({"operation": "update", "id": item_id, "item": {"n": 1}})
    form, _ = render(template, body, new_context(
        requestId="11111111-2222-4333-8444-5555555555ab", extendedRequestId=extended_id,
        requestTimeEpoch=1700000000123))
    return parse_qs(form.strip(), keep_blank_values=True, strict_parsing=True)


def java_url_encode(text: str) -> str:
    """java.net.URLEncoder (UTF-8), what API Gateway's $util.urlEncode is."""
    return quote_plus(text, safe="*").replace("~", "%7E")


IDS = ["a1", "a&b=c?d#e %+/", "ü😀 Ünïcödé", "x" * 255, "%" * 255, "é" * 255,
       "~*'()!", "\t\n", "a" * 127 + "ü"]


@pytest.mark.parametrize("item_id", IDS)
def test_the_group_is_the_url_encoded_id_cut_to_128_characters(infra: InfraTemplate,
                                                              item_id: str) -> None:
    fields = send_fields(infra, item_id, FIFO)
    [group] = fields["MessageGroupId"]
    assert GROUP_ID.fullmatch(group), group
    assert group == java_url_encode(item_id)[:128]
    # The form carried it encoded once more: "%" arrived as "%25", not as an escape.
    assert fields["MessageBody"] == [json.dumps({"operation": "update", "id": item_id,
                                                 "item": {"n": 1}})]


def test_the_deduplication_id_is_the_request_id(infra: InfraTemplate) -> None:
    fields = send_fields(infra, "a1", FIFO)
    assert fields["MessageDeduplicationId"] == fields["MessageAttribute.1.Value.StringValue"]
    assert fields["MessageDeduplicationId"] == ["a-b_c-d_ef-_-_g"]
    assert GROUP_ID.fullmatch(fields["MessageDeduplicationId"][0])


def test_an_item_always_has_one_group_and_a_cut_only_merges_groups(infra: InfraTemplate) -> None:
    def group(item_id: str, extended_id: str = EXTENDED_ID) -> str:
        return send_fields(infra, item_id, FIFO, extended_id)["MessageGroupId"][0]

    assert group("a1") == group("a1", "D4VJDGZOoAMFRmQ=")  # any request to the item
    assert group("a1") != group("a2") and group("a") != group("A")
    # Ids whose first 128 encoded characters agree share a group: stricter, never split.
    assert group("x" * 128 + "1") == group("x" * 128 + "2") == group("x" * 128)
    assert group("ü" * 22 + "a") == group("ü" * 22 + "b")  # 21 x "%C3%BC" = 126, then "%C"


def test_the_fifo_template_is_the_standard_one_plus_two_parameters(infra: InfraTemplate) -> None:
    standard = send_fields(infra, "a&b ü")
    fifo = send_fields(infra, "a&b ü", FIFO)
    assert "MessageGroupId" not in standard and "MessageDeduplicationId" not in standard
    assert {k: v for k, v in fifo.items()
            if k not in ("MessageGroupId", "MessageDeduplicationId")} == standard
    assert infra.gateway_spec().request_templates == infra.gateway_spec(
        parameters={"QueueType": "standard"}).request_templates


def test_queues_are_fifo_and_named_dot_fifo_only_in_fifo_mode(infra: InfraTemplate) -> None:
    def queues(parameters: dict[str, str] | None) -> dict[str, Any]:
        refs = {**infra.parameters(parameters), "AWS::StackName": "st",
                "DeadLetterQueue.Arn": "arn:dlq"}
        conditions = infra.conditions(refs)
        return {name: resolve(infra.properties(name), refs, conditions)
                for name in ("Queue", "DeadLetterQueue")}

    standard, fifo = queues(None), queues(FIFO)
    for name in ("Queue", "DeadLetterQueue"):
        assert not {"FifoQueue", "QueueName", "ContentBasedDeduplication"} & set(standard[name])
        assert fifo[name]["FifoQueue"] is True
        assert fifo[name]["QueueName"].endswith(".fifo")
        rest = {k: v for k, v in fifo[name].items()
                if k not in ("FifoQueue", "QueueName", "ContentBasedDeduplication")}
        assert rest == standard[name]  # nothing else differs
    assert fifo["Queue"]["QueueName"] == "st-queue.fifo"
    assert fifo["DeadLetterQueue"]["QueueName"] == "st-dlq.fifo"
    # The request's id deduplicates, never the body: two requests with one body are two.
    assert fifo["Queue"]["ContentBasedDeduplication"] is False


def test_the_package_path_turns_the_batching_window_off_for_fifo(infra: InfraTemplate) -> None:
    source = infra.resources["HandleMessages"]["Properties"]["Events"][
        "HandleMessagesSqsEventSource"]["Properties"]
    for queue_type, window in (("standard", 1), ("fifo", 0)):
        refs = infra.parameters({"QueueType": queue_type})
        assert resolve(source["MaximumBatchingWindowInSeconds"], refs,
                       infra.conditions(refs)) == window


def test_conditions_follow_parameters(infra: InfraTemplate) -> None:
    assert infra.conditions(infra.parameters())["IsFifo"] is False
    assert infra.conditions(infra.parameters(FIFO))["IsFifo"] is True
    # IngestAuthorization: (IAM, API key) for each mode.
    for mode, expected in {"AWS_IAM": (True, False), "API_KEY": (False, True),
                           "AWS_IAM_AND_API_KEY": (True, True)}.items():
        conditions = infra.conditions(infra.parameters({"IngestAuthorization": mode}))
        assert (conditions["IngestUsesIam"], conditions["ApiKeyRequired"]) == expected
    assert infra.conditions(infra.parameters())["IngestUsesIam"] is True  # the default
    with pytest.raises(TemplateError, match="no parameter"):
        infra.parameters({"QueueTyp": "fifo"})
    with pytest.raises(TemplateError, match="QueueType must be one of"):
        infra.parameters({"QueueType": "FIFO"})


def test_condition_functions() -> None:
    definitions = {
        "A": {"Fn::Equals": [{"Ref": "P"}, "x"]},
        "NotA": {"Fn::Not": [{"Condition": "A"}]},
        "Both": {"Fn::And": [{"Condition": "A"}, {"Fn::Equals": ["1", 1]}]},
        "Either": {"Fn::Or": [{"Condition": "NotA"}, {"Condition": "A"}]},
    }
    assert evaluate_conditions(definitions, {"P": "x"}) == {
        "A": True, "NotA": False, "Both": True, "Either": True}
    assert evaluate_conditions(definitions, {"P": "y"})["Both"] is False
    with pytest.raises(TemplateError):
        evaluate_conditions({"Bad": {"Fn::Contains": []}}, {})
    value = {"Fn::If": ["A", {"Ref": "AWS::NoValue"}, 2]}
    assert resolve({"k": value, "l": [value, 3]}, {}, {"A": True}) == {"l": [3]}
    with pytest.raises(TemplateError, match="condition"):
        resolve(value, {})
