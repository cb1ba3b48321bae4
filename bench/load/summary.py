"""What a load run amounts to: latency statistics, throughput, how requests ended."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from statistics import median
from typing import Any

from bench.load.records import LoadRun, RequestRecord
from bench.output import table
from bench.stats import percentile

STATISTICS = ("count", "avg", "p50", "p95", "p99", "max")


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """count, avg, p50, p95, p99 (interpolated, bench.stats) and max, in milliseconds; NaN when
    empty."""
    if not seconds:
        return {"count": 0, **{name: math.nan for name in STATISTICS[1:]}}
    ms = [value * 1000 for value in seconds]
    return {"count": len(ms), "avg": sum(ms) / len(ms), "p50": percentile(ms, 0.50),
            "p95": percentile(ms, 0.95), "p99": percentile(ms, 0.99), "max": max(ms)}


def ending(record: RequestRecord, polled: bool) -> str:
    """How one request ended: applied, rejected, no outcome, HTTP <status> or the error."""
    if record.http_status != 202 or record.request_id is None:
        if record.http_status is None:
            return f"error {record.error or 'unanswered'}"
        return f"HTTP {record.http_status}"
    if not polled:
        return "accepted (not polled)"
    return record.outcome or "no outcome"


def summarize(run: LoadRun) -> dict[str, Any]:
    records = run.records
    post = [r.post_latency for r in records if r.post_latency is not None
            and r.http_status == 202]
    applied = [r.applied_lag for r in records if r.applied_lag is not None]
    handled = [r.handled_lag for r in records if r.handled_lag is not None]
    received = [r.received_lag for r in records if r.received_lag is not None]
    resolution = [r.resolution for r in records if r.resolution is not None]
    answered = sum(1 for r in records if r.answered is not None)
    accepted = sum(1 for r in records if r.http_status == 202)
    outcome_seen = [r.outcome_seen for r in records if r.outcome_seen is not None]
    endings = Counter(ending(r, run.config.poll) for r in records)
    return {
        "requests": len(records),
        "endings": dict(sorted(endings.items())),
        "post_latency_ms": latency_summary(post),
        "applied_latency_ms": latency_summary(applied),
        "received_latency_ms": latency_summary(received),
        "handled_latency_ms": latency_summary(handled),
        "poll_resolution_ms": {"p50": median(resolution) * 1000 if resolution else math.nan,
                               "max": max(resolution) * 1000 if resolution else math.nan},
        "polls": sum(r.polls for r in records),
        "poll_errors": dict(run.poll_errors),
        "send_seconds": run.send_seconds,
        "total_seconds": run.total_seconds,
        "post_throughput": answered / run.send_seconds if run.send_seconds else math.nan,
        "accepted_throughput": accepted / run.send_seconds if run.send_seconds else math.nan,
        "applied_throughput": (len(outcome_seen) / max(outcome_seen)
                               if outcome_seen else math.nan),
        # By the stack's own record: outcomes per second from time 0 until the last handledAt.
        "handled_throughput": (len(handled) / max(r.handled or 0.0 for r in records)
                               if handled else math.nan),
    }


def summary_text(summary: dict[str, Any]) -> str:
    rows = []
    for label, key in (("POST (202s)", "post_latency_ms"),
                       ("POST -> outcome seen", "applied_latency_ms"),
                       ("POST -> received (requestTimeEpoch)", "received_latency_ms"),
                       ("POST -> applied (handledAt)", "handled_latency_ms")):
        stats = summary.get(key)
        if stats is not None and (stats["count"] or key in ("post_latency_ms",
                                                            "applied_latency_ms")):
            rows.append([label, *(stats[name] for name in STATISTICS)])
    lines = [table(["latency (ms)", *STATISTICS], rows), ""]
    lines.append(table(["ended", "requests"], sorted(summary["endings"].items())))
    resolution = summary["poll_resolution_ms"]
    lines += [
        "",
        f"throughput: {summary['post_throughput']:.1f} POSTs/s answered, "
        f"{summary['accepted_throughput']:.1f}/s accepted over {summary['send_seconds']:.1f} s; "
        f"{summary['applied_throughput']:.1f} outcomes/s until the last was seen "
        f"({summary['total_seconds']:.1f} s in all)"
        + (f"; {summary['handled_throughput']:.1f} applied/s by handledAt"
           if not math.isnan(summary.get("handled_throughput", math.nan)) else ""),
        f"outcome polls: {summary['polls']:,} GETs; first-seen resolution p50 "
        f"{resolution['p50']:.0f} ms, max {resolution['max']:.0f} ms (time since the last "
        f"pending answer){_errors(summary['poll_errors'])}",
    ]
    return "\n".join(lines)


def _errors(errors: dict[str, int]) -> str:
    if not errors:
        return ""
    return "; poll errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(errors.items()))
