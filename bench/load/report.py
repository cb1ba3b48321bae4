"""What a load run amounts to (latency statistics, throughput, how requests ended), printed, and
its files: results.json (every request's figures) and three PNG plots (headless)."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from statistics import mean, median
from typing import Any

import matplotlib
import numpy

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # after choosing the backend

from bench.load.records import LoadRun, RequestRecord
from bench.output import table

PLOTS = ("latency_histogram.png", "latency_over_time.png", "applied_lag_over_time.png")
STATISTICS = ("count", "avg", "p50", "p95", "p99", "max")
LATENCIES = {"post_latency": "POST (202s)", "applied_lag": "POST -> outcome seen",
             "received_lag": "POST -> received (requestTimeEpoch)",
             "handled_lag": "POST -> applied (handledAt)"}


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """count, avg, p50, p95, p99 (interpolated: numpy's default) and max, in ms; NaN if empty."""
    if not seconds:
        return {"count": 0, **{name: math.nan for name in STATISTICS[1:]}}
    ms = [value * 1000 for value in seconds]
    p50, p95, p99 = (float(v) for v in numpy.percentile(ms, [50, 95, 99]))
    return {"count": len(ms), "avg": mean(ms), "p50": p50, "p95": p95, "p99": p99,
            "max": max(ms)}


def ending(record: RequestRecord, polled: bool) -> str:
    """How one request ended: applied, rejected, no outcome, HTTP <status> or the error."""
    if record.http_status is None:
        return f"error {record.error or 'unanswered'}"
    if record.http_status != 202 or record.request_id is None:
        return f"HTTP {record.http_status}"
    return (record.outcome or "no outcome") if polled else "accepted (not polled)"


def summarize(run: LoadRun) -> dict[str, Any]:
    records, sending = run.records, run.send_seconds
    lags = [(r, r.lags()) for r in records]

    def values(name: str) -> list[float]:
        return [value for r, lag in lags if (value := lag[name]) is not None
                and (name != "post_latency" or r.http_status == 202)]

    resolution = values("resolution")
    seen = [r.outcome_seen for r in records if r.outcome_seen is not None]
    handled = [r.handled for r in records if r.handled is not None]
    return {
        "requests": len(records),
        "endings": dict(sorted(Counter(ending(r, run.config.poll) for r in records).items())),
        **{f"{name.split('_')[0]}_latency_ms": latency_summary(values(name)) for name in LATENCIES},
        "poll_resolution_ms": {"p50": median(resolution) * 1000 if resolution else math.nan,
                               "max": max(resolution) * 1000 if resolution else math.nan},
        "polls": sum(r.polls for r in records),
        "poll_errors": dict(run.poll_errors),
        "send_seconds": sending,
        "total_seconds": run.total_seconds,
        "post_throughput": (sum(1 for r in records if r.answered is not None) / sending
                            if sending else math.nan),
        "accepted_throughput": (sum(1 for r in records if r.http_status == 202) / sending
                                if sending else math.nan),
        "applied_throughput": len(seen) / max(seen) if seen else math.nan,
        # By the stack's own record: outcomes per second from time 0 until the last handledAt.
        "handled_throughput": len(handled) / max(handled) if handled else math.nan,
    }


def summary_text(summary: dict[str, Any]) -> str:
    rows = [[label, *(stats[name] for name in STATISTICS)] for name, label in LATENCIES.items()
            if (stats := summary[f"{name.split('_')[0]}_latency_ms"])["count"]
            or name in ("post_latency", "applied_lag")]
    resolution, errors = summary["poll_resolution_ms"], summary["poll_errors"]
    handled = summary["handled_throughput"]
    return "\n".join([
        table(["latency (ms)", *STATISTICS], rows), "",
        table(["ended", "requests"], sorted(summary["endings"].items())), "",
        f"throughput: {summary['post_throughput']:.1f} POSTs/s answered, "
        f"{summary['accepted_throughput']:.1f}/s accepted over {summary['send_seconds']:.1f} s; "
        f"{summary['applied_throughput']:.1f} outcomes/s until the last was seen "
        f"({summary['total_seconds']:.1f} s in all)"
        + ("" if math.isnan(handled) else f"; {handled:.1f} applied/s by handledAt"),
        f"outcome polls: {summary['polls']:,} GETs; first-seen resolution p50 "
        f"{resolution['p50']:.0f} ms, max {resolution['max']:.0f} ms (time since the last "
        "pending answer)" + ("; poll errors: " + ", ".join(
            f"{k} x{v}" for k, v in sorted(errors.items())) if errors else "")])


def _finite(value: Any) -> Any:
    """JSON has no NaN: empty statistics become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return {k: _finite(v) for k, v in value.items()} if isinstance(value, dict) else value


def write_json(path: Path, run: LoadRun, summary: dict[str, Any],
               settings: dict[str, Any]) -> None:
    path.write_text(json.dumps({
        "units": "seconds since the run's start, unless the name ends in _ms",
        "settings": settings, "summary": _finite(summary),
        "requests": [{**asdict(r), **r.lags()} for r in run.records]}, indent=1) + "\n",
        encoding="utf-8")


def write_plots(directory: Path, run: LoadRun, title: str) -> list[Path]:
    lags = [(r, r.lags()) for r in run.records if r.answered is not None]
    accepted = [(r, lag) for r, lag in lags if r.http_status == 202]
    failed = [(r, lag) for r, lag in lags if r.http_status != 202]
    applied = [(r, lag) for r, lag in lags if lag["applied_lag"] is not None]
    # POST -> applied from the outcome's handledAt where every outcome has one (exact), else
    # from when the outcome was first seen by a poll.
    exact = bool(applied) and all(lag["handled_lag"] is not None for _, lag in applied)
    lag_name = "handled_lag" if exact else "applied_lag"
    label = LATENCIES[lag_name]

    def ms(chosen: list[tuple[RequestRecord, dict[str, Any]]], name: str) -> list[float]:
        return [lag[name] * 1000 for _, lag in chosen]

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, values, what in ((axes[0], ms(accepted, "post_latency"), "POST latency (ms)"),
                               (axes[1], ms(applied, lag_name), f"{label} (ms)")):
        if values:
            axis.hist(values, bins=min(60, max(10, len(values) // 10)))
        axis.set(xlabel=what, ylabel="requests")
    figures = [figure]

    figure, axis = plt.subplots(figsize=(11, 4))
    axis.scatter([r.due for r, _ in accepted], ms(accepted, "post_latency"), s=4, label="202")
    if failed:
        axis.scatter([r.due for r, _ in failed], ms(failed, "post_latency"), s=8, color="red",
                     label="other status / error")
    axis.set(xlabel="due time (s since start)", ylabel="POST latency (ms)")
    axis.legend(loc="upper left")
    figures.append(figure)

    figure, axis = plt.subplots(figsize=(11, 4))
    for state, color in (("applied", "tab:green"), ("rejected", "tab:orange")):
        if chosen := [(r, lag) for r, lag in applied if r.outcome == state]:
            axis.scatter([r.due for r, _ in chosen], [lag[lag_name] or 0.0 for _, lag in chosen],
                         s=4, color=color, label=state)
    axis.set(xlabel="due time (s since start)", ylabel=f"{label} (s)")
    if applied:
        axis.legend(loc="upper left")
    figures.append(figure)

    paths = [directory / name for name in PLOTS]
    for figure, path in zip(figures, paths, strict=True):
        figure.suptitle(title, fontsize=9)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
    return paths
