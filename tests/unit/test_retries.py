"""chalicelib/retries.py: the pacing of retries, and the promises its constants are sized for."""

from __future__ import annotations

import random

import pytest

from chalicelib import metrics
from chalicelib.errors import RetryCause
from chalicelib.retries import (
    JITTER,
    MAX_RECEIVE_COUNT,
    PACE_SECONDS,
    SLOW_PACE_SECONDS,
    Retry,
    backoff_seconds,
    curve_seconds,
    outage_cause,
    survivable_outage_seconds,
    visibilities,
)
from devstack.infra import InfraTemplate

MINUTE = 60.0


def record(message_id: str, receive: int = 1) -> dict[str, object]:
    return {"messageId": message_id, "receiptHandle": f"h-{message_id}",
            "attributes": {"ApproximateReceiveCount": str(receive)}}


def test_infra_redrive_policy_is_the_one_the_curve_is_sized_for() -> None:
    queue = InfraTemplate().resources["Queue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVE_COUNT


def test_the_curve_doubles_from_one_second_then_keeps_a_pace() -> None:
    assert [curve_seconds(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 20, 20]
    assert curve_seconds(13) == curve_seconds(40) == SLOW_PACE_SECONDS
    # An outage skips the short steps: they are for blips.
    assert [curve_seconds(n, outage=True) for n in (1, 5, 12, 13)] == [20, 20, 20, 50]


def test_backoff_is_jittered_within_the_curve_and_rounded_up() -> None:
    rng = random.Random(3)
    drawn = {backoff_seconds(6, rng=rng) for _ in range(200)}
    assert min(drawn) >= (1 - JITTER) * PACE_SECONDS and max(drawn) <= PACE_SECONDS
    assert len(drawn) > 1  # jittered: a hot item's writers do not come back in step
    assert backoff_seconds(9, scale=0) == 0


def _time_to_receive(receive: int, outage: bool = False) -> float:
    """The earliest a message that keeps failing is received the `receive`th time."""
    return sum((1 - JITTER) * curve_seconds(n, outage) for n in range(1, receive))


def test_a_two_minute_outage_recovers_within_30_seconds() -> None:
    # The slow pace starts only once a message has failed for over 2 minutes: until then it is
    # back at most PACE_SECONDS after each failure (+ a poll and a batch, well under 10 s).
    first_slow = next(n for n in range(1, 100) if curve_seconds(n) == SLOW_PACE_SECONDS)
    assert _time_to_receive(first_slow) > 2 * MINUTE
    assert PACE_SECONDS + 10 <= 30


def test_a_ten_minute_outage_sends_nothing_to_the_dlq_and_recovers_within_a_minute() -> None:
    assert survivable_outage_seconds() == pytest.approx(_time_to_receive(MAX_RECEIVE_COUNT))
    assert survivable_outage_seconds() >= 10 * MINUTE + 2 * MINUTE  # with margin
    assert max(curve_seconds(n) for n in range(1, MAX_RECEIVE_COUNT)) + 10 <= MINUTE
    # The naive pacing (the queue's visibility timeout, 360 s) would spend receives faster at
    # first but recover in up to 6 minutes; 5 receives at 1 s would survive 5 s.
    assert survivable_outage_seconds(5) < MINUTE


def test_an_outage_is_a_whole_batch_failing_alike() -> None:
    throttled = [Retry(record(f"m{n}"), RetryCause.THROTTLED) for n in range(3)]
    assert outage_cause(throttled, succeeded=0) is RetryCause.THROTTLED
    assert outage_cause(throttled, succeeded=1) is None  # the store answered someone
    assert outage_cause(throttled[:1], succeeded=0) is None  # one message says little
    mixed = [*throttled[:2], Retry(record("c"), RetryCause.CONFLICT)]
    assert outage_cause(mixed, succeeded=0) is None
    conflicts = [Retry(record(f"c{n}"), RetryCause.CONFLICT) for n in range(3)]
    assert outage_cause(conflicts, succeeded=0) is None  # a hot item, not an outage
    deferred = [*throttled[:2], Retry(record("d"), RetryCause.DEFERRED)]
    assert outage_cause(deferred, succeeded=0) is RetryCause.THROTTLED


def test_visibilities_by_cause() -> None:
    retries = [Retry(record("t", receive=2), RetryCause.THROTTLED),
               Retry(record("w", receive=3), RetryCause.WAITING),
               Retry(record("g"), RetryCause.GROUP_STOPPED, follows="t"),
               Retry(record("d"), RetryCause.DEFERRED)]
    seconds = visibilities(retries, succeeded=1, condition_delay_seconds=2,
                           rng=random.Random(1))
    assert seconds["t"] == 2 and seconds["w"] == 8
    assert seconds["g"] == seconds["t"]  # a FIFO group comes back together, in order
    assert seconds["d"] == 1  # out of time in a batch that also failed: paced too
    assert visibilities([Retry(record("d"), RetryCause.DEFERRED)], succeeded=3,
                        condition_delay_seconds=2) == {"d": 0}


def test_an_outage_batch_waits_the_pace_from_its_first_failure() -> None:
    retries = [Retry(record(f"m{n}"), RetryCause.UNAVAILABLE) for n in range(4)]
    seconds = visibilities(retries, succeeded=0, condition_delay_seconds=2)
    assert all((1 - JITTER) * PACE_SECONDS <= s <= PACE_SECONDS for s in seconds.values())


def test_every_retry_cause_has_a_metric() -> None:
    assert set(metrics.RETRY_CAUSES) == {cause.value for cause in RetryCause}
    batch = metrics.MetricsBatch()
    batch.retried(2, RetryCause.THROTTLED.value)
    batch.retried(1, RetryCause.WAITING.value)
    assert batch.counts[metrics.RETRIED] == 3
    assert batch.counts["RetriedThrottled"] == 2 and batch.counts["RetriedWaiting"] == 1
    with pytest.raises(ValueError, match="cause"):
        batch.retried(1, "bored")
