"""Cold start: what the Lambda function imports, and what validating a command costs.

    .venv/bin/python -m bench.cold_start [--repeat 15] [--no-install]

Part 1 runs each scenario in a fresh interpreter (`python -E -s`, cwd = the project, one discarded
warm-up run first so every scenario finds its .pyc files, as Lambda's runtime boto3 does) and
times the scenario's code inside the process, plus the whole process from fork to exit. Scenarios
run round-robin so that drift in the machine's speed hits them alike. The environment is what
Lambda gives: TABLE_NAME, QUEUE_NAME, a region and dummy credentials; AWS_ENDPOINT_URL names a
closed loopback port, and nothing connects at import anyway. Three more scenarios import the
app as Lambda does: from a copy of what the deployment package holds, with -B, since /var/task
is read-only and nothing compiled there is kept; without any .pyc of the package's code (Chalice
alone), and with the checked-hash .pyc that `make deploy` and `make package` ship
(scripts/bytecode.py).

Part 2 times validating one typical command (already parsed, as the consumer does) with
chalicelib.schema.errors, jsonschema's Draft4Validator and a fastjsonschema compiled validator.

fastjsonschema is not a project dependency. If the venv lacks it, the script installs
fastjsonschema==2.22.3 with `pip install --no-deps --target <deps dir>` outside the venv (and says
so), and only the scenarios that need it put that directory on sys.path; --no-install skips them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import importtime
from bench import results as bench_results
from bench.stats import machine, median, percentile, table
from scripts import bytecode

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCHEMA_PATH = PROJECT_DIR / "chalicelib" / "command.schema.json"
SCHEMA_MODULE = PROJECT_DIR / "chalicelib" / "schema.py"
FASTJSONSCHEMA_PIN = "fastjsonschema==2.22.3"
DEFAULT_DEPS_DIR = Path("/tmp/sqs-manager-bench-deps")
SUBPROCESS_TIMEOUT = 60.0

# A typical command as the consumer sees it once parsed (chalicelib.attributes.loads).
TYPICAL_BODY = ('{"operation": "create", "id": "order-000123", "item": {"name": "widget", '
                '"price": 12.50, "quantity": 3, "tags": ["blue", "large"], '
                '"dimensions": {"w": 10, "h": 4}}}')
UPDATE_BODY = '{"operation": "update", "id": "order-000123", "item": {"quantity": 4}, ' \
              '"expectedVersion": 1}'
INVALID_BODY = '{"operation": "update", "id": "order-000123"}'

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

_READ_SCHEMA = f"import json; schema = json.load(open({str(SCHEMA_PATH)!r}))\n"
_DOC = f"from decimal import Decimal; doc = json.loads({TYPICAL_BODY!r}, parse_float=Decimal)\n"
_CHALICELIB_SCHEMA = (
    "import importlib.util\n"
    f"spec = importlib.util.spec_from_file_location('command_schema', {str(SCHEMA_MODULE)!r})\n"
    "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
    "mod.check_schema(schema); assert not mod.errors(schema, doc)\n")
_JSONSCHEMA = ("from jsonschema import Draft4Validator\n"
               "validator = Draft4Validator(schema); assert validator.is_valid(doc)\n")
_FASTJSONSCHEMA = ("import fastjsonschema\n"
                   "validate = fastjsonschema.compile(schema); validate(doc)\n")


AS_ON_LAMBDA = "import app, as on Lambda (no .pyc)"
AS_ON_LAMBDA_PATH_1 = "import app, as on Lambda (chalicelib .pyc: make deploy)"
AS_ON_LAMBDA_PATH_2 = "import app, as on Lambda (all .pyc: make package)"
NO_PYC, LIBRARY_PYC, ALL_PYC = "no-pyc", "chalicelib-pyc", "all-pyc"


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


@dataclass(frozen=True)
class Scenario:
    name: str
    code: str
    needs_fastjsonschema: bool = False
    # Run in a copy of the deployment package's code, with -B: see lambda_layout().
    layout: str | None = None


def scenarios() -> list[Scenario]:
    return [
        Scenario("empty interpreter (pass)", "pass"),
        Scenario("import boto3", "import boto3"),
        Scenario('boto3.client("dynamodb")', 'import boto3; boto3.client("dynamodb")'),
        Scenario('boto3.resource("dynamodb")', 'import boto3; boto3.resource("dynamodb")'),
        Scenario("import app (as shipped)", "import app"),
        Scenario(AS_ON_LAMBDA, "import app", layout=NO_PYC),
        Scenario(AS_ON_LAMBDA_PATH_1, "import app", layout=LIBRARY_PYC),
        Scenario(AS_ON_LAMBDA_PATH_2, "import app", layout=ALL_PYC),
        Scenario("validator: chalicelib/schema.py", _READ_SCHEMA + _DOC + _CHALICELIB_SCHEMA),
        Scenario("validator: jsonschema Draft4Validator", _READ_SCHEMA + _DOC + _JSONSCHEMA),
        Scenario("validator: fastjsonschema.compile", _READ_SCHEMA + _DOC + _FASTJSONSCHEMA,
                 needs_fastjsonschema=True),
        Scenario("import app + jsonschema validator",
                 "import app\n" + _READ_SCHEMA + _DOC + _JSONSCHEMA),
        Scenario("import app + fastjsonschema validator",
                 "import app\n" + _READ_SCHEMA + _DOC + _FASTJSONSCHEMA,
                 needs_fastjsonschema=True),
    ]


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


def run_once(scenario: Scenario, deps_dir: Path | None,
             layouts: Mapping[str, Path] | None = None) -> tuple[float, float, int]:
    code = scenario.code
    if scenario.needs_fastjsonschema and deps_dir is not None:
        # Appended, so it is searched last and costs the other imports nothing.
        code = f"import sys; sys.path.append({str(deps_dir)!r})\n" + code
    cwd, flags = PROJECT_DIR, ["-E", "-s"]
    if scenario.layout is not None:
        if layouts is None or scenario.layout not in layouts:
            raise ValueError(f"{scenario.name}: no {scenario.layout} layout was built")
        cwd, flags = layouts[scenario.layout], [*flags, "-B"]
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *flags, "-c", RUNNER, code], cwd=cwd,
        env=lambda_environment(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
        check=False)
    process_seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{scenario.name} failed:\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), process_seconds, int(result["maxrss_kb"])


# -- fastjsonschema, without making it a project dependency -------------------------------------

def fastjsonschema_location(deps_dir: Path, install: bool) -> tuple[Path | None, bool, str]:
    """(directory to add to sys.path or None if the venv has it, available, how it was found)."""
    if importlib.util.find_spec("fastjsonschema") is not None:
        return None, True, f"fastjsonschema {metadata.version('fastjsonschema')} from the venv"
    if (deps_dir / "fastjsonschema").is_dir():
        return deps_dir, True, f"fastjsonschema from {deps_dir} (outside the venv)"
    if not install:
        return None, False, "fastjsonschema absent and --no-install given: its rows are skipped"
    print(f"installing {FASTJSONSCHEMA_PIN} into {deps_dir} (outside the venv; "
          f"the venv is not changed)", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "--no-deps", "--target", str(deps_dir),
                    FASTJSONSCHEMA_PIN], check=True, timeout=300)
    return deps_dir, True, f"{FASTJSONSCHEMA_PIN} installed into {deps_dir} by this run"


# -- part 2: per-message validation -----------------------------------------------------------

def load_chalicelib_schema() -> Any:
    spec = importlib.util.spec_from_file_location("command_schema", SCHEMA_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_call(function: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over `repeat` rounds of about 0.2 s each."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return median([total / number for total in timer.repeat(repeat=repeat, number=number)])


def _all_errors(validator: Any, document: Any) -> list[Any]:
    return list(validator.iter_errors(document))


def validation_rows(fast_available: bool, repeat: int) -> list[list[object]]:
    from jsonschema import Draft4Validator

    own = load_chalicelib_schema()
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    draft4 = Draft4Validator(schema)
    fast: Callable[[Any], Any] | None = None
    fast_error: type[Exception] = Exception
    if fast_available:
        fastjsonschema = importlib.import_module("fastjsonschema")  # not a project dependency
        fast = fastjsonschema.compile(schema)
        fast_error = fastjsonschema.JsonSchemaValueException

    def fast_ok(document: Any) -> bool:
        assert fast is not None
        try:
            fast(document)
        except fast_error:
            return False
        return True

    rows: list[list[object]] = []
    for label, body in (("typical create", TYPICAL_BODY), ("update", UPDATE_BODY),
                        ("invalid (update, no item)", INVALID_BODY)):
        document = json.loads(body, parse_float=Decimal)
        candidates: list[tuple[str, Callable[[], object], bool]] = [
            ("chalicelib.schema.errors", partial(own.errors, schema, document),
             not own.errors(schema, document)),
            ("jsonschema iter_errors (all)", partial(_all_errors, draft4, document),
             draft4.is_valid(document)),
            ("jsonschema is_valid", partial(draft4.is_valid, document),
             draft4.is_valid(document)),
        ]
        if fast is not None:
            candidates.append(("fastjsonschema (first error)", partial(fast_ok, document),
                               fast_ok(document)))
        for name, call, valid in candidates:
            rows.append([label, name, "valid" if valid else "invalid",
                         time_call(call, repeat) * 1e6])
    return rows


def versions() -> str:
    found = []
    for name in ("boto3", "botocore", "chalice", "jsonschema", "fastjsonschema"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


BASELINE_SCENARIO, APP_SCENARIO = 'boto3.client("dynamodb")', "import app (as shipped)"


def report_ratio(samples: dict[str, Samples], rounds: int, results_path: Path) -> None:
    """import app against import boto3 + one DynamoDB client, measured in the same rounds."""
    app, base = samples[APP_SCENARIO].seconds, samples[BASELINE_SCENARIO].seconds
    if not app or not base:
        return
    ratio = median(app) / median(base)
    # Each round's own ratio too: the machine's drift between rounds cancels in it.
    paired = median([a / b for a, b in zip(app, base, strict=True)])
    print(f"\ncold_start_ratio = import app / (import boto3 + one DynamoDB client) = "
          f"{median(app) * 1e3:.1f} / {median(base) * 1e3:.1f} ms = {ratio:.3f} "
          f"(median of per-round ratios {paired:.3f}; target <= 1.1)")
    # On Lambda the package's code has no .pyc unless it ships one: the same ratio as there.
    as_on_lambda = {}
    for name in (AS_ON_LAMBDA, AS_ON_LAMBDA_PATH_1, AS_ON_LAMBDA_PATH_2):
        if samples.get(name) and samples[name].seconds:
            seconds = samples[name].seconds
            as_on_lambda[name] = median(seconds) / median(base)
            print(f"{name} / (import boto3 + one DynamoDB client) = "
                  f"{median(seconds) * 1e3:.1f} / {median(base) * 1e3:.1f} ms = "
                  f"{as_on_lambda[name]:.3f} (median of per-round ratios "
                  f"{median([a / b for a, b in zip(seconds, base, strict=True)]):.3f})")
    bench_results.record({"cold_start_ratio": ratio}, {
        "rounds": rounds, "import_app_ms": median(app) * 1e3,
        "boto3_and_client_ms": median(base) * 1e3, "paired_ratio": paired,
        "ratio_as_on_lambda_no_pyc": as_on_lambda.get(AS_ON_LAMBDA),
        "ratio_as_on_lambda_make_deploy": as_on_lambda.get(AS_ON_LAMBDA_PATH_1),
        "ratio_as_on_lambda_make_package": as_on_lambda.get(AS_ON_LAMBDA_PATH_2),
        "load_average_at_end": list(os.getloadavg())}, "bench.cold_start", results_path)


def report_modules(runs: int) -> None:
    rows = importtime.added_modules(runs, PROJECT_DIR, lambda_environment())
    print(f"\n## What `import app` adds to boto3 + one DynamoDB client (python -X importtime, "
          f"{runs} runs each; median self ms)\n")
    print(table(["module", "self ms", "runs"], [list(row) for row in rows]))
    totals = importtime.by_package(rows)
    print("\nper package: " + ", ".join(f"{name} {millis:.1f} ms"
                                         for name, millis in totals.items())
          + f"; total {sum(totals.values()):.1f} ms (`app` is the module's own body: Chalice(), "
            "settings, the DynamoDB client, decorators)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15,
                        help="fresh processes per scenario (default 15), after one warm-up")
    parser.add_argument("--timing-repeat", type=int, default=5,
                        help="timeit rounds per validator (default 5)")
    parser.add_argument("--deps-dir", type=Path, default=DEFAULT_DEPS_DIR,
                        help=f"where fastjsonschema is installed if the venv lacks it "
                             f"(default {DEFAULT_DEPS_DIR})")
    parser.add_argument("--no-install", action="store_true",
                        help="never install fastjsonschema; skip its scenarios if absent")
    parser.add_argument("--importtime-runs", type=int, default=7,
                        help="fresh `-X importtime` processes of app and of the baseline "
                             "(default 7; 0 skips the per-module table)")
    parser.add_argument("--results", type=Path, default=bench_results.DEFAULT_PATH,
                        help="merge cold_start_ratio into this JSON file")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="stop starting new rounds after this long (default 300)")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 200:
        parser.error("--repeat must be 1..200")

    deps_dir, fast_available, how = fastjsonschema_location(args.deps_dir, not args.no_install)
    if fast_available and deps_dir is not None and str(deps_dir) not in sys.path:
        sys.path.append(str(deps_dir))
    print(f"machine: {machine()}")
    print(f"versions: {versions()}; {how}")

    chosen = [s for s in scenarios() if fast_available or not s.needs_fastjsonschema]
    samples = {s.name: Samples() for s in chosen}
    layouts_dir = Path(tempfile.mkdtemp(prefix="sqs-manager-lambda-layout-"))
    layouts = {pyc: lambda_layout(layouts_dir / pyc, pyc) for pyc in (NO_PYC, LIBRARY_PYC, ALL_PYC)}
    for scenario in chosen:  # warm-up: writes .pyc files, fills the page cache
        run_once(scenario, deps_dir, layouts)
    deadline = time.monotonic() + args.max_seconds
    rounds = 0
    for _ in range(args.repeat):
        if time.monotonic() > deadline:
            print(f"stopped after {rounds} rounds: --max-seconds reached")
            break
        for scenario in chosen:
            seconds, process_seconds, maxrss = run_once(scenario, deps_dir, layouts)
            sample = samples[scenario.name]
            sample.seconds.append(seconds)
            sample.process_seconds.append(process_seconds)
            sample.maxrss_kb.append(maxrss)
        rounds += 1

    print(f"\n## Import cost in a fresh process ({rounds} runs each; ms)\n")
    rows = []
    for scenario in chosen:
        sample = samples[scenario.name]
        rows.append([scenario.name, median(sample.seconds) * 1e3,
                     percentile(sample.seconds, 0.9) * 1e3,
                     median(sample.process_seconds) * 1e3,
                     max(sample.maxrss_kb) / 1024])
    print(table(["scenario", "median", "p90", "whole process median", "max RSS MB"], rows))
    shutil.rmtree(layouts_dir, ignore_errors=True)
    report_ratio(samples, rounds, args.results)
    if args.importtime_runs > 0:
        report_modules(args.importtime_runs)

    print("\n## Validating one parsed command (µs per call, median of timeit rounds)\n")
    print(table(["command", "validator", "verdict", "µs/call"],
                validation_rows(fast_available, args.timing_repeat)))
    if fast_available and importlib.util.find_spec("fastjsonschema") is not None \
            and deps_dir is not None:
        print(f"\nfastjsonschema came from {deps_dir}, not the venv: to make it a dev "
              f"dependency add {FASTJSONSCHEMA_PIN} to requirements-dev.txt.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
