"""bench/results.json: the targets P1..P4, each written by the script that measured it (P1..P3
side by side with a baseline), bench.versus's comparison under "versus"; `python -m
bench.results` prints them.

    .venv/bin/python -m bench.results [--path bench/results.json]
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from bench.output import parser, table

DEFAULT_PATH = Path(__file__).resolve().parent / "results.json"


class Target(NamedTuple):
    key: str
    meaning: str
    bound: float
    at_most: bool  # True: the value must be <= bound; False: >= bound
    script: str


TARGETS = (
    Target("cold_start_ratio", "import app / (import boto3 + one DynamoDB client)", 1.1, True,
           "bench.cold_start"),
    Target("batch_latency_ratio", "10-message batch / one DynamoDB round trip (+10 ms)", 2.0, True,
           "bench.versus"),
    Target("ddb_calls_per_write", "DynamoDB calls per applied write", 1.0, True, "bench.versus"),
    Target("gateway_latency_ratio", "gateway p50 / direct SendMessage p50", 1.3, True,
           "bench.gateway"),
    Target("gateway_throughput_ratio", "gateway requests/s / direct SendMessage/s", 0.8, False,
           "bench.gateway"),
    Target("applied_p99_ms", "POST -> applied p99 at 100/s, DynamoDB Local (ms)", 1000.0, True,
           "bench.load"),
)
KEYS = tuple(target.key for target in TARGETS)


def load(path: Path = DEFAULT_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def record(values: dict[str, float], details: dict[str, Any], script: str,
           path: Path = DEFAULT_PATH) -> dict[str, Any]:
    """Merge one script's targets, and its details, into the results file (others' keys stay)."""
    if unknown := set(values) - set(KEYS):
        raise ValueError(f"not a results key: {sorted(unknown)}")
    results = load(path)
    results.update({key: round(value, 4) for key, value in values.items()})
    results.setdefault("details", {})[script] = {
        **_rounded(details), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write(results, path)
    return results


def record_section(key: str, section: dict[str, Any], path: Path = DEFAULT_PATH) -> None:
    """Figures without a target (bench.versus's comparison) under a key of their own."""
    _write({**load(path), key: _rounded(section)}, path)


def _rounded(value: Any) -> Any:
    """Floats to 3 decimals (milliseconds to the microsecond), in dicts and lists too."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def summary_rows(results: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for key, meaning, bound, at_most, script in TARGETS:
        found = results.get(key)
        value = float(found) if isinstance(found, int | float) else math.nan
        measured = not math.isnan(value)
        met = value <= bound if at_most else value >= bound
        rows.append([key, meaning, value,
                     f"{'<=' if at_most else '>='} {bound:g}",
                     "not measured" if not measured else "met" if met else "MISSED", script])
    return rows


def main(argv: list[str] | None = None) -> int:
    cli = parser("bench.results", __doc__)
    cli.add_argument("--path", type=Path, default=DEFAULT_PATH)
    path = cli.parse_args(argv).path
    results = load(path)
    print(f"\n## Targets ({path})\n")
    print(table(["key", "what", "value", "target", "verdict", "measured by"],
                summary_rows(results)))
    versus = results.get("versus", {})
    consumers = [name for name, value in versus.items() if isinstance(value, dict)]
    if consumers:  # one row per figure, one column per consumer
        print(f"\n## bench.versus ({versus.get('requests')} requests, on {versus.get('commit')})\n")
        print(table(["key", *consumers], [
            [key, *(versus[c].get(key, math.nan) for c in consumers)]
            for key, value in versus[consumers[0]].items() if isinstance(value, int | float)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
