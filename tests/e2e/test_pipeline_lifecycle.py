"""`python -m devstack` leaves nothing behind: SIGTERM stops it as quickly as Ctrl-C, a `kill -9`
takes its emulators down with it, and it never starts on top of an emulator it did not start
(which would serve that emulator's old data) unless told to use it. On both stores."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devstack.dynamodb_local import DYNAMODB_LOCAL, DynamoDBLocal
from devstack.emulator import EMULATOR_CREDENTIALS, MotoServer
from devstack.process import PROJECT_DIR, DevstackProcess
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.both_stores]

# What the issue asks: stopped within 2 s of SIGTERM; emulators gone within a few seconds of a
# kill -9 of their owner (the guard notices at once; they get 0.5 s to exit on SIGTERM).
STOP_SECONDS = 2.0
ORPHAN_SECONDS = 5.0


def emulator_ports(stack: DevstackProcess) -> set[int]:
    return {stack.emulator_port, stack.dynamodb_port}


def answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process (ps: Linux and macOS alike)."""
    output = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,stat="], capture_output=True,
                            text=True, check=True).stdout
    table: dict[int, tuple[int, str]] = {}
    for line in output.splitlines():
        pid, ppid, state = line.split(None, 2)
        table[int(pid)] = (int(ppid), state)
    return table


def command_of(pid: int) -> str:
    return subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True,
                          text=True).stdout.strip()


def descendants(pid: int) -> set[int]:
    table = process_table()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those still running (a zombie has exited: only its parent has yet to reap it)."""
    table = process_table()
    return {pid for pid in pids if pid in table and not table[pid][1].startswith("Z")}


@pytest.mark.alone  # a stop time: measured with nothing else running
def test_sigterm_stops_every_part_within_2_s(tmp_path: Path, store_name: str) -> None:
    store = store_name
    stack = DevstackProcess(tmp_path / "devstack.log", store=store).start()
    assert stack.process is not None
    process = stack.process
    children = descendants(process.pid)
    # guard + emulator each, and the event source
    assert len(children) >= 2 * (2 if store == DYNAMODB_LOCAL else 1) + 1
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)  # to the process only, as a service manager does
    code = process.wait(timeout=30)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < STOP_SECONDS, f"stopped after {elapsed:.2f} s"
    log = stack.log()
    assert "stopping..." in log
    assert "polling failed" not in log and "Traceback" not in log
    assert alive(children) == set()
    for port in {stack.port} | emulator_ports(stack):
        assert not answers(port), port


def test_kill_9_of_the_pipeline_takes_its_emulators_down(tmp_path: Path,
                                                         store_name: str) -> None:
    stack = DevstackProcess(tmp_path / "devstack.log", store=store_name).start()
    assert stack.process is not None
    children = descendants(stack.process.pid)
    assert all(answers(port) for port in emulator_ports(stack))
    # The event source (devstack/event_source.py) is one of them: it must go too.
    assert any("devstack.event_source" in command_of(pid) for pid in children)
    try:
        os.kill(stack.process.pid, signal.SIGKILL)
        stack.process.wait(timeout=10)
        wait_until(lambda: not any(answers(port) for port in emulator_ports(stack)),
                   ORPHAN_SECONDS)
        wait_until(lambda: not alive(children), ORPHAN_SECONDS)
    finally:
        stack.stop()
        for pid in alive(children):  # only if the test failed: leave nothing running
            os.kill(pid, signal.SIGKILL)


def run_devstack(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    return subprocess.run(
        [sys.executable, "-m", "devstack", "--host", "127.0.0.1", "--port", "0",
         *args], cwd=PROJECT_DIR, env={**env, **EMULATOR_CREDENTIALS}, capture_output=True,
        text=True, timeout=60)


def assert_refused_plainly(result: subprocess.CompletedProcess[str], port: int,
                           option: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {port} " in result.stderr and "already in use" in result.stderr
    assert f"{option} http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_taken_moto_port_is_refused_not_reused(moto_server: MotoServer) -> None:
    """Another moto (an earlier run's, say) holds the port: its data must not be served."""
    result = run_devstack("--emulator-port", str(moto_server.port))
    assert_refused_plainly(result, moto_server.port, "--endpoint-url")
    # It left the other server alone.
    requests.get(f"{moto_server.endpoint_url}/moto-api/data.json", timeout=5).raise_for_status()


def test_a_taken_dynamodb_local_port_is_refused_not_reused(
        dynamodb_local: DynamoDBLocal) -> None:
    result = run_devstack("--store", DYNAMODB_LOCAL, "--emulator-port", "0",
                          "--dynamodb-port", str(dynamodb_local.port))
    assert_refused_plainly(result, dynamodb_local.port, "--dynamodb-endpoint-url")
    started = re.search(r"starting the moto server on http://127\.0\.0\.1:(\d+)", result.stdout)
    assert started is not None, result.stdout
    assert not answers(int(started.group(1)))  # the moto it had started is stopped again
    assert answers(dynamodb_local.port)


def test_a_taken_port_is_anything_listening() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_devstack("--emulator-port", str(port))
    assert_refused_plainly(result, port, "--endpoint-url")


def test_emulators_given_on_purpose_are_used_and_left_running(
        tmp_path: Path, moto_server: MotoServer, dynamodb_local: DynamoDBLocal) -> None:
    stack = DevstackProcess(tmp_path / "devstack.log", "--endpoint-url", moto_server.endpoint_url,
                            "--dynamodb-endpoint-url", dynamodb_local.endpoint_url,
                            store=DYNAMODB_LOCAL).start()
    try:
        assert stack.process is not None
        # It started no emulator: its only child is its event source.
        started = [command_of(pid) for pid in descendants(stack.process.pid)]
        assert len(started) == 1 and "devstack.event_source" in started[0], started
        response = requests.post(f"{stack.base_url}/SQSManager", timeout=10, json={
            "operation": "put", "id": "on-purpose", "item": {"n": 1}})
        assert response.status_code == 202, response.text
        wait_until(lambda: requests.get(f"{stack.base_url}/items/on-purpose", timeout=10), 20,
                   interval=0.2, what=lambda: stack.log()[-3000:])
    finally:
        stack.stop()
    # The table is in the DynamoDB Local it was given, which is still running.
    assert answers(moto_server.port) and answers(dynamodb_local.port)
    assert "sqs-manager-local-table at " + dynamodb_local.endpoint_url in stack.log()


def test_dynamodb_local_without_java_is_a_plain_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "--store", DYNAMODB_LOCAL, "--port", "0",
         "--emulator-port", "0", "--dynamodb-port", "0"],
        cwd=PROJECT_DIR, env={**os.environ, "PATH": "/nonexistent"}, capture_output=True,
        text=True, timeout=60)
    assert result.returncode == 1
    assert "DynamoDB Local needs Java 17 or later" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout

