"""What each module adds to a cold start, from `python -X importtime` (fresh process per run).

The baseline is `import boto3; boto3.client("dynamodb")`: a module the app imports that the
baseline also imports costs the app nothing extra. For the others, the median over runs of their
"self" time (the module's own body, without the modules it imports) says where the rest goes;
the app module's own body (Chalice(), the settings, its DynamoDB client, the decorators) is one of
them.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

from bench.stats import median

BASELINE_CODE = 'import boto3; boto3.client("dynamodb")'
APP_CODE = "import app"


def parse(stderr: str) -> dict[str, int]:
    """module -> self time in µs, from -X importtime's lines
    (`import time:  self [us] | cumulative | imported package`)."""
    found: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:"):].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        found[fields[2].strip()] = found.get(fields[2].strip(), 0) + int(fields[0])
    return found


def importtime_run(code: str, cwd: Path, env: Mapping[str, str], timeout: float = 60.0) -> str:
    completed = subprocess.run([sys.executable, "-E", "-s", "-X", "importtime", "-c", code],
                               cwd=cwd, env=dict(env), capture_output=True, text=True,
                               timeout=timeout, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{completed.stderr[-2000:]}")
    return completed.stderr


def added_modules(runs: int, cwd: Path, env: Mapping[str, str],
                  run: Callable[[str, Path, Mapping[str, str]], str] = importtime_run,
                  ) -> list[tuple[str, float, int]]:
    """(module, median self ms, runs seen) for the modules `import app` loads and the baseline
    does not, slowest first; runs alternate app and baseline."""
    baseline: set[str] = set()
    app: dict[str, list[int]] = defaultdict(list)
    for _ in range(runs):
        baseline.update(parse(run(BASELINE_CODE, cwd, env)))
        for module, micros in parse(run(APP_CODE, cwd, env)).items():
            app[module].append(micros)
    rows = [(module, median(times) / 1000, len(times)) for module, times in app.items()
            if module not in baseline]
    return sorted(rows, key=lambda row: -row[1])


def by_package(rows: list[tuple[str, float, int]]) -> dict[str, float]:
    """Median self ms summed per top-level package (chalice, chalicelib, app, ...)."""
    totals: dict[str, float] = defaultdict(float)
    for module, millis, _ in rows:
        totals[module.split(".")[0]] += millis
    return dict(sorted(totals.items(), key=lambda item: -item[1]))
