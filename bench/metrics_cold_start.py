"""Cold start: what the consumer's metrics cost on top of `import app` (boto3 already loaded).

    .venv/bin/python -m bench.metrics_cold_start [--repeat 15]

Compares chalicelib/metrics.py (standard library, one EMF line per batch) with Powertools for
AWS Lambda (Python) `Logger` + `Metrics`, the ecosystem's standard. Each run is a fresh
interpreter (`python -E -s`, Lambda-like environment from bench/cold_start.py) that imports
`app` first, untimed, then times only the scenario; one discarded warm-up round, scenarios
round-robin. Powertools is not a project dependency: it is installed with
`pip install --no-deps --target` outside the venv (its dependencies, jmespath and
typing_extensions, are in the venv already) and put on sys.path only for its scenario.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.cold_start import DEFAULT_DEPS_DIR, PROJECT_DIR, SUBPROCESS_TIMEOUT, lambda_environment
from bench.stats import machine, median, percentile, table

POWERTOOLS_PIN = "aws-lambda-powertools==3.37.0"
RUNNER = r"""
import json, sys, time
import app
started = time.perf_counter()
exec(compile(sys.argv[1], "<scenario>", "exec"), {"__name__": "__scenario__"})
print(json.dumps(time.perf_counter() - started))
"""


def scenarios(powertools_dir: Path) -> dict[str, str]:
    return {
        "nothing more": "pass",
        "chalicelib.metrics (stdlib EMF)":
            "from chalicelib.metrics import MetricsBatch\nMetricsBatch.from_environ()",
        "Powertools Logger + Metrics":
            f"import sys; sys.path.append({str(powertools_dir)!r})\n"
            "from aws_lambda_powertools import Logger, Metrics\n"
            "Logger(service='consumer'); Metrics(namespace='sqs-manager', service='consumer')",
    }


def install_powertools(deps_dir: Path) -> Path:
    target = deps_dir / "powertools"
    if not (target / "aws_lambda_powertools").is_dir():
        print(f"installing {POWERTOOLS_PIN} into {target} (not the venv)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--no-deps", "--target", str(target),
                        POWERTOOLS_PIN], check=True, timeout=300)
    return target


def installed_megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--deps-dir", type=Path, default=DEFAULT_DEPS_DIR)
    args = parser.parse_args(argv)
    powertools = install_powertools(args.deps_dir)
    cases = scenarios(powertools)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for round_number in range(args.repeat + 1):
        for name, code in cases.items():
            completed = subprocess.run(
                [sys.executable, "-E", "-s", "-c", RUNNER, code], cwd=PROJECT_DIR,
                env=lambda_environment(), capture_output=True, text=True, check=True,
                timeout=SUBPROCESS_TIMEOUT)
            if round_number:  # the first round only warms the .pyc files
                samples[name].append(json.loads(completed.stdout) * 1000)
    print(machine())
    print(f"after `import app`, {args.repeat} fresh interpreters each, ms\n")
    print(table(["scenario", "median", "p90"],
                [[name, median(v), percentile(v, 0.9)] for name, v in samples.items()]))
    print(f"\nPowertools installed size: {installed_megabytes(powertools):.1f} MB "
          f"(chalicelib/metrics.py: {(PROJECT_DIR / 'chalicelib' / 'metrics.py').stat().st_size}"
          " bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
