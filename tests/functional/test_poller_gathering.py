"""The local event source's cost per batch, against moto over HTTP: how often it receives while a
batch gathers, and when it reads outcomes for its log lines (docs/benchmarks.md, decisions)."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import pytest

from devstack.poller import GATHER_PAUSE_SECONDS, SqsPoller
from devstack.resources import Resources
from tests.conftest import REGION
from tests.pipeline_parts import StubHandler, send_bodies


class CountingSqs:
    """The SQS client, counting the calls made through it by name."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sqs, name)

        def counted(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(**kwargs)
        return counted


def gathering_poller(resources: Resources, sqs: Any, window: float, **options: Any) -> SqsPoller:
    return SqsPoller(sqs, resources.queue_url, resources.queue_arn, StubHandler(), REGION,
                     batch_size=10, batching_window=window, visibility_timeout=30, **options)


def test_a_batch_gathers_a_trickle_over_its_window_with_a_receive_per_pause(
        sqs: Any, resources: Resources) -> None:
    counting = CountingSqs(sqs)
    # A window well past the trickle's 0.6 s: a loaded machine (CI, 4 workers on 2 cores) may
    # take twice as long to send it, and the test is about the receives' pace, not the margin.
    window = 3
    poller = gathering_poller(resources, counting, window=window)
    send_bodies(sqs, resources, "m0")
    bodies = [f"m{n}" for n in range(1, 8)]

    def trickle() -> None:  # one message every 80 ms: the batch never fills before the window
        for body in bodies:
            time.sleep(0.08)
            send_bodies(sqs, resources, body)

    sender = threading.Thread(target=trickle)
    sender.start()
    messages = poller.receive_batch()
    sender.join()
    # All of them: the last is sent about 0.6 s into the window, and the window ends with a
    # receive. Receiving again at once, each receive found one message or none (hundreds here).
    assert sorted(m["Body"] for m in messages) == ["m0", *bodies]
    assert counting.calls["receive_message"] <= 1 + math.ceil(window / GATHER_PAUSE_SECONDS) + 1


def test_a_full_batch_is_not_held_for_the_window(sqs: Any, resources: Resources) -> None:
    send_bodies(sqs, resources, *(f"m{n}" for n in range(10)))
    counting = CountingSqs(sqs)
    messages = gathering_poller(resources, counting, window=20).receive_batch()
    assert len(messages) == 10
    assert counting.calls["receive_message"] == 1


class Lookups:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, request_id: str) -> dict[str, Any] | None:
        self.asked.append(request_id)
        return {"status": "rejected", "reason": "why not"}


def test_handled_messages_are_looked_up_for_their_log_line_only_at_debug(
        sqs: Any, resources: Resources, caplog: pytest.LogCaptureFixture) -> None:
    lookups = Lookups()
    poller = gathering_poller(resources, sqs, window=0, outcome_lookup=lookups)
    send_bodies(sqs, resources, "a", "b")
    with caplog.at_level(logging.INFO, logger="devstack.poller"):
        assert poller.poll_once() == 2
    assert lookups.asked == []  # the handler logs its own outcomes: no DynamoDB read per message
    assert "[req-a] handled messageId=" in caplog.text and "reason=" not in caplog.text
    send_bodies(sqs, resources, "c")
    with caplog.at_level(logging.DEBUG, logger="devstack.poller"):
        assert poller.poll_once() == 1
    assert lookups.asked == ["req-c"]
    assert "[req-c] rejected messageId=" in caplog.text and "reason=why not" in caplog.text


def test_after_a_raising_handler_each_message_is_looked_up_at_info(
        sqs: Any, resources: Resources, caplog: pytest.LogCaptureFixture) -> None:
    lookups = Lookups()
    poller = SqsPoller(sqs, resources.queue_url, resources.queue_arn,
                       StubHandler(raise_error=True), REGION, batching_window=0,
                       visibility_timeout=30, outcome_lookup=lookups)
    send_bodies(sqs, resources, "x")
    with caplog.at_level(logging.INFO, logger="devstack.poller"):
        assert poller.poll_once() == 1
    # Rare, and the line must say whether the message was handled before the batch raised.
    assert lookups.asked == ["req-x"]
    assert "(handled, then the batch raised)" in caplog.text
