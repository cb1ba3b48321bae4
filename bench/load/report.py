"""A run's files: results.json (every request's figures) and three PNG plots (headless)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # after choosing the backend

from bench.load.records import LoadRun, RequestRecord

PLOTS = ("latency_histogram.png", "latency_over_time.png", "applied_lag_over_time.png")


def record_figures(record: RequestRecord) -> dict[str, Any]:
    figures = asdict(record)
    for name in ("post_latency", "applied_lag", "resolution", "received_lag", "handled_lag"):
        figures[name] = getattr(record, name)
    return figures


def _finite(value: Any) -> Any:
    """JSON has no NaN: empty statistics become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def write_json(path: Path, run: LoadRun, summary: dict[str, Any],
               settings: dict[str, Any]) -> None:
    document = {
        "units": "seconds since the run's start, unless the name ends in _ms",
        "settings": settings,
        "summary": _finite(summary),
        "requests": [record_figures(r) for r in run.records],
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def write_plots(directory: Path, run: LoadRun, title: str) -> list[Path]:
    accepted = [r for r in run.records if r.http_status == 202 and r.post_latency is not None]
    applied = [r for r in run.records if r.applied_lag is not None]
    paths = [directory / name for name in PLOTS]
    # POST -> applied from the outcome's handledAt where every outcome has one (exact), else
    # from when the outcome was first seen by a poll.
    exact = bool(applied) and all(r.handled_lag is not None for r in applied)
    label = "POST -> applied (handledAt)" if exact else "POST -> outcome seen"

    def lag(record: RequestRecord) -> float:
        return (record.handled_lag if exact else record.applied_lag) or 0.0

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    _histogram(axes[0], [r.post_latency * 1000 for r in accepted if r.post_latency is not None],
               "POST latency (ms)")
    _histogram(axes[1], [lag(r) * 1000 for r in applied], f"{label} (ms)")
    _save(figure, title, paths[0])

    figure, axis = plt.subplots(figsize=(11, 4))
    failed = [r for r in run.records if r.http_status != 202 and r.post_latency is not None]
    axis.scatter([r.due for r in accepted], [(r.post_latency or 0) * 1000 for r in accepted],
                 s=4, label="202")
    if failed:
        axis.scatter([r.due for r in failed], [(r.post_latency or 0) * 1000 for r in failed],
                     s=8, color="red", label="other status / error")
    axis.set(xlabel="due time (s since start)", ylabel="POST latency (ms)")
    axis.legend(loc="upper left")
    _save(figure, title, paths[1])

    figure, axis = plt.subplots(figsize=(11, 4))
    for state, color in (("applied", "tab:green"), ("rejected", "tab:orange")):
        chosen = [r for r in applied if r.outcome == state]
        if chosen:
            axis.scatter([r.due for r in chosen], [lag(r) for r in chosen],
                         s=4, color=color, label=state)
    axis.set(xlabel="due time (s since start)", ylabel=f"{label} (s)")
    if applied:
        axis.legend(loc="upper left")
    _save(figure, title, paths[2])
    return paths


def _histogram(axis: Any, values: list[float], label: str) -> None:
    if values:
        axis.hist(values, bins=min(60, max(10, len(values) // 10)))
    axis.set(xlabel=label, ylabel="requests")


def _save(figure: Any, title: str, path: Path) -> None:
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
