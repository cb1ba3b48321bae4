"""bench/results.json: the targets P1..P4 of issue 8, each written by the script that measured it
(P1..P3 side by side with a baseline), and printed as one table by `python -m bench.results`.

    .venv/bin/python -m bench.results [--path bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.output import table

DEFAULT_PATH = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Target:
    key: str
    meaning: str
    bound: float
    at_most: bool  # True: the value must be <= bound; False: >= bound
    script: str

    def met(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound

    def describe(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.bound:g}"


TARGETS = (
    Target("cold_start_ratio", "import app / (import boto3 + one DynamoDB client)", 1.1, True,
           "bench.cold_start"),
    Target("batch_latency_ratio", "10-message batch / one DynamoDB round trip (+10 ms)", 2.0, True,
           "bench.batch"),
    Target("ddb_calls_per_write", "DynamoDB calls per applied write (common case)", 1.0, True,
           "bench.batch"),
    Target("gateway_latency_ratio", "gateway p50 / direct SendMessage p50", 1.3, True,
           "bench.gateway"),
    Target("gateway_throughput_ratio", "gateway requests/s / direct SendMessage/s", 0.8, False,
           "bench.gateway"),
    Target("applied_p99_ms", "POST -> applied p99 at 100/s, DynamoDB Local (ms)", 1000.0, True,
           "bench.load"),
)
KEYS = tuple(target.key for target in TARGETS)


def load(path: Path = DEFAULT_PATH) -> dict[str, Any]:
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def record(values: dict[str, float], details: dict[str, Any], script: str,
           path: Path = DEFAULT_PATH) -> dict[str, Any]:
    """Merge one script's numbers into the results file (other scripts' keys stay)."""
    unknown = set(values) - set(KEYS)
    if unknown:
        raise ValueError(f"not a results key: {sorted(unknown)}")
    results = load(path)
    results.update({key: round(value, 4) for key, value in values.items()})
    results.setdefault("details", {})[script] = {
        **_rounded(details), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return results


def record_section(key: str, section: dict[str, Any], path: Path = DEFAULT_PATH) -> None:
    """A benchmark without a target (bench.versus) keeps its figures under its own key."""
    results = load(path)
    results[key] = _rounded(section)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def versus_rows(versus: dict[str, Any]) -> list[list[object]]:
    """bench.versus's figures, one row per key, one column per consumer."""
    consumers = [name for name, value in versus.items() if isinstance(value, dict)]
    keys = [key for key, value in versus[consumers[0]].items()
            if isinstance(value, int | float)] if consumers else []
    return [[key, *(versus[c].get(key, math.nan) for c in consumers)] for key in keys]


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
    for target in TARGETS:
        value = results.get(target.key)
        if not isinstance(value, int | float):
            rows.append([target.key, target.meaning, math.nan, target.describe(), "not measured",
                         target.script])
            continue
        rows.append([target.key, target.meaning, float(value), target.describe(),
                     "met" if target.met(float(value)) else "MISSED", target.script])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.results", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    results = load(args.path)
    print(f"\n## Targets ({args.path})\n")
    print(table(["key", "what", "value", "target", "verdict", "measured by"],
                summary_rows(results)))
    versus = results.get("versus")
    if isinstance(versus, dict):
        print(f"\n## bench.versus ({versus.get('requests')} requests, on {versus.get('commit')})\n")
        print(table(["key", *(k for k, v in versus.items() if isinstance(v, dict))],
                    versus_rows(versus)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
