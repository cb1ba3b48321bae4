"""How long a message handed back to SQS stays away: retries paced by the consumer.

A message the consumer hands back (batchItemFailures, or left undeleted on the `chalice deploy`
path) would return after the queue's visibility timeout, 6x the function timeout (360 s), as AWS
requires of a Lambda-consumed queue. So before handing messages back, the consumer sets each one's
visibility itself (one ChangeMessageVisibilityBatch call per batch, sqs.py), by why it failed:

- transient (throttled, unavailable, a conflict, or unexpected): a jittered backoff that grows
  with ApproximateReceiveCount, `curve_seconds`: 1, 2, 4, 8, 16 s, then 20 s until receive
  SLOW_FROM_RECEIVE, then 50 s;
- an outage (every message of the batch that ran failed alike, throttled or unavailable, at
  least two of them): the same curve, but never under 20 s: the first steps are for blips, and
  an outage does not end in a second, so they would only spend receives;
- waiting for earlier requests (the in-order window): 2, 4, 8 s (settings);
- a FIFO group's later messages: the visibility of the failed message they follow, so that the
  group comes back together and in order; out of Lambda's time: at once, unless the batch also
  failed transiently (DynamoDB is slow), then as a transient failure.

The curve and the queue's maxReceiveCount (MAX_RECEIVE_COUNT, infra/extension.yaml) are sized
together for two promises (docs/operations.md, "Retries and outages", has the arithmetic):
- recovery: a message is tried again at most 20 s after it failed during its first 2 minutes of
  failing (it reaches receive 13 only after 0.75 x (31 + 7 x 20) = 128 s at the earliest), and at
  most 50 s after that: after a 2-minute outage every message is back within 20 s, after a
  10-minute one within 50 s;
- no DLQ: with every delivery failing, a message reaches receive 30 after the delays of its first
  29 receives, at least 0.75 x (31 + 7 x 20 + 17 x 50) = 766 s, `survivable_outage_seconds`
  (1,021 s without jitter; more in an outage, which skips the short steps). A 10-minute outage
  sends nothing to the DLQ, with 2.7 minutes to spare at the worst draw.
A message that fails for good (a bug) still reaches the DLQ, after about 17 minutes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import RetryCause

# The backoff curve (seconds): FIRST_DELAY doubling up to PACE; from receive SLOW_FROM_RECEIVE
# on, SLOW_PACE. Each delay is drawn uniformly from [1 - JITTER, 1] x the curve, so that the
# writers of a hot item, or a whole backlog after an outage, do not come back in step.
FIRST_DELAY_SECONDS = 1.0
PACE_SECONDS = 20.0  # <= 30 s minus a poll and a batch: the 2-minute outage's recovery target
SLOW_PACE_SECONDS = 50.0  # <= 60 s minus a poll and a batch: the 10-minute outage's target
SLOW_FROM_RECEIVE = 13  # reached after 128 s of failing at the earliest (> 2 minutes)
JITTER = 0.25
# infra/extension.yaml's RedrivePolicy maxReceiveCount (tests/unit/test_retries.py checks they
# agree): the least that survives a 10-minute outage with this curve, plus margin.
MAX_RECEIVE_COUNT = 30
# SQS's ceiling on a visibility timeout (12 hours).
MAX_VISIBILITY_SECONDS = 43_200
# A condition waits at most this long between receives.
MAX_WAIT_SECONDS = 60

PACED = frozenset({RetryCause.THROTTLED, RetryCause.UNAVAILABLE, RetryCause.CONFLICT,
                   RetryCause.UNEXPECTED})
# What an outage looks like: the store refusing everyone, not one item's writers colliding.
OUTAGE_CAUSES = frozenset({RetryCause.THROTTLED, RetryCause.UNAVAILABLE})

SqsRecord = dict[str, Any]


@dataclass(frozen=True)
class Retry:
    """A message going back to SQS, and why. `follows`: FIFO, the messageId of the failed
    message of its group that it must come back with."""

    record: SqsRecord
    cause: RetryCause
    follows: str | None = None

    @property
    def message_id(self) -> str:
        return str(self.record.get("messageId"))


def receive_count(record: SqsRecord) -> int:
    count = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    return int(count) if str(count).isdigit() else 1


def curve_seconds(receive: int, outage: bool = False) -> float:
    """The backoff after a transient failure of this receive, before jitter."""
    receive = max(1, receive)
    pace = SLOW_PACE_SECONDS if receive >= SLOW_FROM_RECEIVE else PACE_SECONDS
    step = min(pace, FIRST_DELAY_SECONDS * 2 ** min(receive - 1, 16))
    return max(step, PACE_SECONDS) if outage else step


def backoff_seconds(receive: int, outage: bool = False, scale: float = 1.0,
                    rng: random.Random | None = None) -> int:
    """The visibility to set: the curve, jittered, scaled (tests compress time), in whole
    seconds rounded up (SQS takes integers; up, so that survivable_outage_seconds holds)."""
    top = curve_seconds(receive, outage) * scale
    drawn = (rng or random).uniform((1 - JITTER) * top, top)
    return min(MAX_VISIBILITY_SECONDS, math.ceil(drawn))


def survivable_outage_seconds(max_receive_count: int = MAX_RECEIVE_COUNT,
                              scale: float = 1.0) -> float:
    """The shortest time a message stays out of the DLQ while every delivery fails: the delays
    after its first maxReceiveCount - 1 receives, each at the low end of its jitter, as if the
    outage were never detected, and not counting the time each delivery takes."""
    return sum((1 - JITTER) * curve_seconds(receive) * scale
               for receive in range(1, max_receive_count))


def outage_cause(retries: Sequence[Retry], succeeded: int) -> RetryCause | None:
    """The cause, if this batch failed like an outage: nothing succeeded, and at least two of
    the messages that ran failed, all throttled or all unavailable."""
    ran = [r.cause for r in retries
           if r.cause not in (RetryCause.DEFERRED, RetryCause.GROUP_STOPPED)]
    if succeeded or len(ran) < 2 or len(set(ran)) != 1 or ran[0] not in OUTAGE_CAUSES:
        return None
    return ran[0]


def visibilities(retries: Sequence[Retry], succeeded: int, condition_delay_seconds: float,
                 scale: float = 1.0, rng: random.Random | None = None) -> dict[str, int]:
    """The visibility (s) to set on each message handed back, by messageId."""
    outage = outage_cause(retries, succeeded) is not None
    slow = any(r.cause in PACED for r in retries)
    seconds: dict[str, int] = {}
    for retry in retries:
        receive = receive_count(retry.record)
        if retry.cause is RetryCause.WAITING:
            seconds[retry.message_id] = int(min(
                MAX_WAIT_SECONDS, condition_delay_seconds * 2 ** min(receive - 1, 16)))
        elif retry.cause in PACED or (retry.cause is RetryCause.DEFERRED and slow):
            seconds[retry.message_id] = backoff_seconds(receive, outage, scale, rng)
        elif retry.cause is RetryCause.DEFERRED:
            seconds[retry.message_id] = 0
    for retry in retries:  # FIFO: with the failed message they follow (set above)
        if retry.cause is RetryCause.GROUP_STOPPED:
            seconds[retry.message_id] = seconds.get(retry.follows or "", 0)
    return seconds
