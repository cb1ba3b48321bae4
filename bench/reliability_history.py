"""R6 (`python -m bench.reliability r6`): the change stream under faults. R1's pipeline with its
EventBridge calls through a second fault proxy and `publish_changes` dying mid-batch; does each
item's history equal its applied versions? docs/reliability.md ("R6") says how it is run.

Every applied write gives the item its next version and exactly one change event, except a
delete of an item already deleted or never created (nothing a reader sees changes: no event).
So each version 1..V (V the stored version, tombstones included) has one history entry, or is a
tombstone-to-tombstone delete; any other version without an entry is `missing`, an applied
request under two versions `twice`, an entry naming no applied write of the item, or past V,
`unknown`; each entry's `old` must be the previous version's `new`, and the last `new` the item
as stored (`chain breaks`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.output import scan
from bench.reliability_stack import Sent, progress, report, stack
from bench.reliability_workload import Accounting, Counts, Snapshot, account, workload
from chalicelib.attributes import loads
from chalicelib.reads import public_item
from devstack.changes import ChangeNames
from devstack.faults import ENTRIES, SERVER_ERROR, SERVER_ERROR_AFTER, THROTTLE, RandomFaults
from devstack.resources import DEFAULT_TABLE

WRITES_PER_ITEM = 8  # 2,000 writes over 250 items

History = dict[str, dict[int, dict[str, Any]]]  # item id -> version -> change event


def read_history(dynamodb: Any, table: str) -> History:
    history: History = {}
    for raw in scan(dynamodb, table):
        history.setdefault(raw["id"]["S"], {})[int(raw["version"]["N"])] = loads(raw["event"]["S"])
    return history


@dataclass
class HistoryAccounting(Counts):
    items: int = 0
    applied_writes: int = 0
    history_entries: int = 0
    tombstone_deletes: int = 0  # versions with rightly no entry
    missing: int = 0
    twice: int = 0
    unknown: int = 0
    chain_breaks: int = 0
    version_not_applied_writes: int = 0  # R1's check: stored version != applied writes
    examples: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return (self.missing == self.twice == self.unknown == self.chain_breaks
                == self.version_not_applied_writes == 0)


def account_history(snapshot: Snapshot, history: History) -> HistoryAccounting:
    result = HistoryAccounting()
    applied: dict[str, set[str]] = {}
    for request_id, outcome in snapshot.outcomes.items():
        if outcome["status"] == "applied" and outcome.get("operation") != "read":
            applied.setdefault(str(outcome["id"]), set()).add(request_id)
    for item_id in sorted(set(applied) | set(snapshot.items) | set(history)):
        result.items += 1
        writes, entries = applied.get(item_id, set()), history.get(item_id, {})
        record = snapshot.items.get(item_id)
        stored = int(record["version"]) if record else 0
        final = public_item(record) if record and not record.get("deleted") else None
        result.applied_writes += len(writes)
        result.history_entries += len(entries)
        if stored != len(writes):
            result.version_not_applied_writes += 1
            result.note(f"{item_id}: version {stored}, {len(writes)} applied writes")
        named = Counter(str(e.get("requestId")) for e in entries.values())
        result.twice += sum(n - 1 for n in named.values() if n > 1)
        strays = [v for v, e in entries.items() if v > stored or e.get("requestId") not in writes]
        result.unknown += len(strays)
        if strays:
            result.note(f"{item_id}: entries {strays} name no applied write")
        state: dict[str, Any] | None = None  # the item as readers saw it after each version
        for version in range(1, stored + 1):
            if version in entries:
                if entries[version]["old"] != state:
                    result.chain_breaks += 1
                    result.note(f"{item_id} v{version}: old {entries[version]['old']}, "
                                f"before it {state}")
                state = entries[version]["new"]
                continue
            later = [v for v in entries if v > version]
            after = entries[min(later)]["old"] if later else final
            if state is None and after is None:
                result.tombstone_deletes += 1
            else:
                result.missing += 1
                result.note(f"{item_id} v{version}: no history entry")
                state = after  # one lost entry, not also a chain break
        if state != final:
            result.chain_breaks += 1
            result.note(f"{item_id}: stored {final}, last history image {state}")
    return result


@dataclass
class R6Result:
    writes: int
    sent: Sent
    dynamodb_faults: RandomFaults
    events_faults: RandomFaults
    stream_crashes: int
    publish_failures: int  # invocations that reported a record not published (partial batch)
    main: Accounting
    history: HistoryAccounting
    history_dlq: int
    stream_failures: int  # batches the stream mapping gave up on (its on-failure queue)
    seconds: dict[str, float]

    @property
    def holds(self) -> bool:
        return (self.history.holds and self.history_dlq == 0 and self.stream_failures == 0
                and self.main.lost == 0 and self.main.dlq_only == 0)

    def report(self) -> None:
        main, events = self.main, self.events_faults
        rows: list[list[Any]] = [
            ["writes sent", self.writes], ["accepted (202)", len(self.sent.accepted)],
            ["applied / rejected", f"{main.applied:,} / {main.rejected:,}"],
            ["lost / in the DLQ only", f"{main.lost:,} / {main.dlq_only:,}"]]
        for name, faults in (("DynamoDB", self.dynamodb_faults), ("PutEvents", events)):
            rows += [[f"{name} calls through the fault proxy", faults.seen],
                     ["  faults injected", faults.total_injected],
                     *[[f"    {kind}", n] for kind, n in sorted(faults.injected.items())]]
        report(f"R6: {self.writes:,} writes, fault rate {self.dynamodb_faults.rate}, seeds "
               f"{self.dynamodb_faults.seed} / {events.seed}", [
                   *rows, ["  PutEvents entries failed one by one", events.failed_entries],
                   ["stream handler crashes mid-batch", self.stream_crashes],
                   ["stream batches handed back (partial batch response)", self.publish_failures],
                   *self.history.rows(), ["in the history DLQ", self.history_dlq],
                   ["in the stream's on-failure queue", self.stream_failures]],
               self.history.examples, self.seconds)


def run_r6(count: int, fault_rate: float, crashes: int, seed: int, threads: int = 4,
           max_backlog: int = 200, drain_timeout: float = 1800.0,
           log_dir: Path | None = None) -> R6Result:
    # Writes only (3% the consumer rejects); creates and expectedVersion on 20% of the items.
    work = workload(count, max(5, count // WRITES_PER_ITEM), seed, prefix="chg-",
                    gateway_invalid=0, reads=0)
    # About `crashes` crashes: at Lambda's pace (4 reads a second) the stream poller takes a batch
    # of 2 or more records about every 8 writes (CI size: 3 to 4 crashes when asked for 3).
    crash_every = max(2, count // (8 * max(1, crashes))) if crashes else 0
    dynamodb_faults = RandomFaults(fault_rate, seed)
    events_faults = RandomFaults(fault_rate, seed + 1, (THROTTLE, SERVER_ERROR,
                                                        SERVER_ERROR_AFTER, ENTRIES), "PutEvents")
    names = ChangeNames(DEFAULT_TABLE)
    with stack(log_dir, "r6", dynamodb_faults, events_faults=events_faults,
               stream_crash_every=crash_every) as target:
        started = time.monotonic()
        sent = target.send(work, threads, target.pacer(max_backlog))
        seconds = {"send": time.monotonic() - started}
        progress(f"sent {count} in {seconds['send']:.0f} s; draining, then the history")
        seconds["drain"] = target.drain(drain_timeout)

        def history(snapshot: Snapshot) -> HistoryAccounting:
            return account_history(snapshot, read_history(target.dynamodb, names.history_table))

        def check() -> tuple[bool, int]:
            found = history(target.table())
            return found.missing == found.chain_breaks == 0, found.history_entries

        seconds["history settled"] = target.drain(drain_timeout, target.url(names.history_queue),
                                                  check, quiet_checks=10)
        snapshot = target.table()
        return R6Result(
            count, sent, dynamodb_faults, events_faults, target.log_count("stream crash #"),
            target.log_count("publish_changes reported a failure"),
            account(sent.accepted, snapshot, target.peek(target.dlq_url)), history(snapshot),
            len(target.peek(target.url(names.history_dlq))),
            len(target.peek(target.url(names.stream_failures))), seconds)
