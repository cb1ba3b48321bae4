"""Cold start (P1): what the Lambda function's `import app` costs against boto3 + one client.

    .venv/bin/python -m bench.cold_start [--repeat 15] [--results bench/results.json]

Each scenario runs in a fresh interpreter (`python -E -s`, one discarded warm-up round first,
so that every scenario finds its .pyc files, as Lambda's runtime boto3 does) and times the
scenario's code inside the process, plus the whole process from fork to exit. Scenarios run
round-robin so that drift in the machine's speed hits them alike. The environment is what Lambda
gives: TABLE_NAME, QUEUE_NAME, a region and dummy credentials; AWS_ENDPOINT_URL names a closed
loopback port, and nothing connects at import anyway.

`cold_start_ratio` is `import app` from the project over `import boto3; boto3.client("dynamodb")`.
Three more scenarios import the app as Lambda does: from a copy of what the deployment package
holds, with -B, since /var/task is read-only and nothing compiled there is kept; without any
.pyc of the package's code, and with the checked-hash .pyc that `make deploy` (chalicelib's) and
`make package` (chalicelib's and chalice's) ship (scripts/bytecode.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from bench import results as bench_results
from bench.output import machine, table
from bench.stats import percentile
from scripts import bytecode

PROJECT_DIR = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT = 60.0

# The timed code runs inside this runner, in a fresh interpreter.
RUNNER = r"""
import json, resource, sys, time
code = sys.argv[1]
started = time.perf_counter()
exec(compile(code, "<scenario>", "exec"), {"__name__": "__scenario__"})
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

NO_PYC, LIBRARY_PYC, ALL_PYC = "no-pyc", "chalicelib-pyc", "all-pyc"


@dataclass(frozen=True)
class Scenario:
    name: str
    code: str
    # Run in a copy of the deployment package's code, with -B: see lambda_layout().
    layout: str | None = None
    results_key: str | None = None  # its ratio to the baseline, in the results' details


BASELINE = 'boto3.client("dynamodb")'
APP = "import app (as shipped)"
SCENARIOS = (
    Scenario("empty interpreter (pass)", "pass"),
    Scenario("import boto3", "import boto3"),
    Scenario(BASELINE, 'import boto3; boto3.client("dynamodb")'),
    Scenario(APP, "import app"),
    Scenario("import app, as on Lambda (no .pyc)", "import app", NO_PYC,
             "ratio_as_on_lambda_no_pyc"),
    Scenario("import app, as on Lambda (chalicelib .pyc: make deploy)", "import app",
             LIBRARY_PYC, "ratio_as_on_lambda_make_deploy"),
    Scenario("import app, as on Lambda (all .pyc: make package)", "import app", ALL_PYC,
             "ratio_as_on_lambda_make_package"),
)


def lambda_layout(where: Path, pyc: str) -> Path:
    """What `chalice package` puts in the zip and Lambda unpacks into /var/task: app.py, chalice/
    app.py and __init__.py (sources only), chalicelib/. With the .pyc files that each deploy
    path ships (scripts/bytecode.py): none (Chalice alone), chalicelib's (`make deploy`), or
    chalice/'s too (`make package`). The scenario runs with -B there: /var/task is read-only,
    so every cold start compiles what has no .pyc."""
    import chalice  # the installed one, as Chalice's packager copies it

    where.mkdir(parents=True)
    shutil.copy2(PROJECT_DIR / "app.py", where / "app.py")
    (where / "chalice").mkdir()
    for name in ("app.py", "__init__.py"):
        shutil.copy2(Path(chalice.__file__).parent / name, where / "chalice" / name)
    shutil.copytree(PROJECT_DIR / "chalicelib", where / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    compiled = {NO_PYC: [], LIBRARY_PYC: ["chalicelib"], ALL_PYC: ["chalicelib", "chalice"]}[pyc]
    for directory in compiled:
        if not bytecode.compile_for_lambda(where / directory):
            raise RuntimeError(f"could not compile {where / directory}")
    return where


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    process_seconds: list[float] = field(default_factory=list)
    maxrss_kb: list[int] = field(default_factory=list)


def lambda_environment() -> dict[str, str]:
    """What a Lambda container has, minus anything that could reach a real account."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TABLE_NAME": "bench-table",
        "QUEUE_NAME": "bench-queue",
        "OUTCOME_TTL_DAYS": "7",
        "REPORT_BATCH_ITEM_FAILURES": "false",
        "LOG_LEVEL": "WARNING",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_REGION": "us-west-2",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard port: nothing may connect at import
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }


def run_once(scenario: Scenario, layouts: Mapping[str, Path]) -> tuple[float, float, int]:
    """(seconds inside the process, seconds of the whole process, max RSS in kB)."""
    cwd, flags = PROJECT_DIR, ["-E", "-s"]
    if scenario.layout is not None:
        cwd, flags = layouts[scenario.layout], [*flags, "-B"]
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *flags, "-c", RUNNER, scenario.code], cwd=cwd,
        env=lambda_environment(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
        check=False)
    process_seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{scenario.name} failed:\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), process_seconds, int(result["maxrss_kb"])


def measure(repeat: int, max_seconds: float) -> tuple[dict[str, Samples], int]:
    samples = {s.name: Samples() for s in SCENARIOS}
    with tempfile.TemporaryDirectory(prefix="sqs-manager-lambda-layout-") as layouts_dir:
        layouts = {pyc: lambda_layout(Path(layouts_dir) / pyc, pyc)
                   for pyc in (NO_PYC, LIBRARY_PYC, ALL_PYC)}
        for scenario in SCENARIOS:  # warm-up: writes .pyc files, fills the page cache
            run_once(scenario, layouts)
        deadline = time.monotonic() + max_seconds
        rounds = 0
        for _ in range(repeat):
            if time.monotonic() > deadline:
                print(f"stopped after {rounds} rounds: --max-seconds reached")
                break
            for scenario in SCENARIOS:
                seconds, process_seconds, maxrss = run_once(scenario, layouts)
                sample = samples[scenario.name]
                sample.seconds.append(seconds)
                sample.process_seconds.append(process_seconds)
                sample.maxrss_kb.append(maxrss)
            rounds += 1
    return samples, rounds


def ratios(seconds: list[float], base: list[float]) -> tuple[float, float]:
    """Of the medians, and the median of each round's own ratio (the machine's drift between
    rounds cancels in it)."""
    return median(seconds) / median(base), median([a / b for a, b in zip(seconds, base,
                                                                          strict=True)])


def report(samples: dict[str, Samples], rounds: int, results_path: Path) -> None:
    print(f"\n## Import cost in a fresh process ({rounds} runs each; ms)\n")
    print(table(["scenario", "median", "p90", "whole process median", "max RSS MB"], [
        [name, median(s.seconds) * 1e3, percentile(s.seconds, 0.9) * 1e3,
         median(s.process_seconds) * 1e3, max(s.maxrss_kb) / 1024]
        for name, s in samples.items()]))
    base = samples[BASELINE].seconds
    app = samples[APP].seconds
    ratio, paired = ratios(app, base)
    print(f"\ncold_start_ratio = import app / (import boto3 + one DynamoDB client) = "
          f"{median(app) * 1e3:.1f} / {median(base) * 1e3:.1f} ms = {ratio:.3f} "
          f"(median of per-round ratios {paired:.3f}; target <= 1.1)")
    details: dict[str, object] = {
        "rounds": rounds, "import_app_ms": median(app) * 1e3,
        "boto3_and_client_ms": median(base) * 1e3, "paired_ratio": paired}
    # On Lambda the package's code has no .pyc unless it ships one.
    for scenario in SCENARIOS:
        if scenario.results_key is not None:
            on_lambda, on_lambda_paired = ratios(samples[scenario.name].seconds, base)
            details[scenario.results_key] = on_lambda
            print(f"{scenario.name} / (import boto3 + one DynamoDB client) = {on_lambda:.3f} "
                  f"(median of per-round ratios {on_lambda_paired:.3f})")
    details["load_average_at_end"] = list(os.getloadavg())
    bench_results.record({"cold_start_ratio": ratio}, details, "bench.cold_start", results_path)
    print(f"written to {results_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15,
                        help="fresh processes per scenario (default 15), after one warm-up")
    parser.add_argument("--results", type=Path, default=bench_results.DEFAULT_PATH,
                        help="merge cold_start_ratio into this JSON file")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="stop starting new rounds after this long (default 300)")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 200:
        parser.error("--repeat must be 1..200")
    print(f"machine: {machine()}")
    samples, rounds = measure(args.repeat, args.max_seconds)
    report(samples, rounds, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
