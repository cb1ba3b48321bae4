"""P1, cold start: what the Lambda function's `import app` costs against boto3 + one client
(docs/benchmarks.md, "P1").

    .venv/bin/python -m bench.cold_start [--repeat 15] [--results bench/results.json]

Each scenario runs in a fresh `python -E -s` (after one discarded round, so that every scenario
finds its .pyc files), round-robin so that drift in the machine's speed hits them alike, in
Lambda's environment (nothing connects at import). The "as on Lambda" scenarios import the app
from a copy of the deployment package with -B (/var/task is read-only), with the .pyc files each
deploy path ships (scripts/bytecode.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from bench import results as bench_results
from bench.output import PROJECT_DIR, machine, parser, table
from scripts import bytecode

# Times the scenario's code (argv[1]) inside a fresh interpreter; prints seconds.
RUNNER = ("import sys, time; t = time.perf_counter(); exec(sys.argv[1], {'__name__': 's'}); "
          "print(time.perf_counter() - t)")
NO_PYC, LIBRARY_PYC, ALL_PYC = "no-pyc", "chalicelib-pyc", "all-pyc"


@dataclass(frozen=True)
class Scenario:
    name: str
    code: str
    layout: str | None = None  # run in a copy of the deployment package's code: lambda_layout()
    results_key: str | None = None  # its ratio to the baseline, in the results' details


BASELINE = 'boto3.client("dynamodb")'
APP = "import app (as shipped)"
SCENARIOS = (
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
    app.py and __init__.py (sources only), chalicelib/; with the .pyc files that each deploy path
    ships (scripts/bytecode.py): none (Chalice alone), chalicelib's (`make deploy`), or chalice/'s
    too (`make package`)."""
    import chalice  # the installed one, as Chalice's packager copies it

    where.mkdir(parents=True)
    shutil.copy2(PROJECT_DIR / "app.py", where / "app.py")
    (where / "chalice").mkdir()
    for name in ("app.py", "__init__.py"):
        shutil.copy2(Path(chalice.__file__).parent / name, where / "chalice" / name)
    shutil.copytree(PROJECT_DIR / "chalicelib", where / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for directory in {NO_PYC: [], LIBRARY_PYC: ["chalicelib"],
                      ALL_PYC: ["chalicelib", "chalice"]}[pyc]:
        if not bytecode.compile_for_lambda(where / directory):
            raise RuntimeError(f"could not compile {where / directory}")
    return where


def lambda_environment() -> dict[str, str]:
    """What a Lambda container has, minus anything that could reach a real account."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "TABLE_NAME": "bench-table", "QUEUE_NAME": "bench-queue", "OUTCOME_TTL_DAYS": "7",
            "REPORT_BATCH_ITEM_FAILURES": "false", "LOG_LEVEL": "WARNING",
            "AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "us-west-2",
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard port: nothing connects at import
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def run_once(scenario: Scenario, layouts: Mapping[str, Path]) -> float:
    """Seconds the scenario's code took in a fresh interpreter (-B in a Lambda layout: /var/task
    is read-only, so every cold start compiles what has no .pyc)."""
    cwd, flags = PROJECT_DIR, ["-E", "-s"]
    if scenario.layout is not None:
        cwd, flags = layouts[scenario.layout], [*flags, "-B"]
    completed = subprocess.run([sys.executable, *flags, "-c", RUNNER, scenario.code], cwd=cwd,
                               env=lambda_environment(), capture_output=True, text=True,
                               timeout=60, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{scenario.name} failed:\n{completed.stderr}")
    return float(completed.stdout.split()[-1])


def measure(repeat: int, scenarios: Sequence[Scenario] = SCENARIOS) -> dict[str, list[float]]:
    """Each scenario's seconds, `repeat` rounds, round-robin after a discarded one."""
    seconds: dict[str, list[float]] = {s.name: [] for s in scenarios}
    with tempfile.TemporaryDirectory(prefix="sqs-manager-lambda-layout-") as layouts_dir:
        layouts = {pyc: lambda_layout(Path(layouts_dir) / pyc, pyc)
                   for pyc in {s.layout for s in scenarios if s.layout}}
        for number in range(repeat + 1):  # round 0 writes .pyc files, fills the page cache
            for scenario in scenarios:
                taken = run_once(scenario, layouts)
                if number:
                    seconds[scenario.name].append(taken)
    return seconds


def report(seconds: dict[str, list[float]], repeat: int, results_path: Path) -> None:
    base = median(seconds[BASELINE])
    print(f"\n## Import cost in a fresh process ({repeat} runs each; ms)\n")
    print(table(["scenario", "median ms", "ratio to boto3 + client"],
                [[name, median(s) * 1e3, median(s) / base] for name, s in seconds.items()]))
    app = median(seconds[APP])
    paired = median([a / b for a, b in zip(seconds[APP], seconds[BASELINE], strict=True)])
    print(f"\ncold_start_ratio = import app / (import boto3 + one DynamoDB client) = "
          f"{app * 1e3:.1f} / {base * 1e3:.1f} ms = {app / base:.3f} (median of per-round "
          f"ratios, where drift between rounds cancels: {paired:.3f}; target <= 1.1)")
    details: dict[str, object] = {
        "rounds": repeat, "import_app_ms": app * 1e3, "boto3_and_client_ms": base * 1e3,
        "paired_ratio": paired, "load_average_at_end": list(os.getloadavg()),
        **{s.results_key: median(seconds[s.name]) / base for s in SCENARIOS if s.results_key}}
    bench_results.record({"cold_start_ratio": app / base}, details, "bench.cold_start",
                         results_path)
    print(f"written to {results_path}")


def main(argv: list[str] | None = None) -> int:
    cli = parser("bench.cold_start", __doc__)
    cli.add_argument("--repeat", type=int, default=15, choices=range(1, 201), metavar="1..200",
                     help="fresh processes per scenario (15)")
    cli.add_argument("--results", type=Path, default=bench_results.DEFAULT_PATH)
    args = cli.parse_args(argv)
    print(f"machine: {machine()}")
    report(measure(args.repeat), args.repeat, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
