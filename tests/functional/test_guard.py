"""devstack/guard.py, the process that keeps each emulator from outliving its owner, as a real
process: it stops its command on SIGTERM wherever the signal lands, when its owner's pipe closes,
and exits with the command's code when the command ends on its own."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from devstack.emulator import GUARD

# The command prints its pid (so the test knows the guard has started it, with its signal
# handlers in place), then waits to be stopped.
COMMAND = ["sh", "-c", "echo $$; exec sleep 60"]


def start_guard(poll_seconds: float | None = None) -> tuple[subprocess.Popen[str], int]:
    if poll_seconds is None:
        argv = [sys.executable, str(GUARD), "--", *COMMAND]
    else:  # the same main(), polling faster, so a signal lands inside its poll more often
        argv = [sys.executable, "-c",
                f"import sys; sys.path.insert(0, {str(GUARD.parent)!r}); import guard; "
                f"guard.POLL_SECONDS = {poll_seconds!r}; sys.exit(guard.main(sys.argv[1:]))",
                "--", *COMMAND]
    guard = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    assert guard.stdout is not None
    return guard, int(guard.stdout.readline())


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def finish(guard: subprocess.Popen[str] | subprocess.Popen[bytes], within: float) -> int | None:
    try:
        return guard.wait(within)
    except subprocess.TimeoutExpired:
        os.killpg(guard.pid, signal.SIGKILL)  # leave nothing behind, then fail
        guard.wait()
        return None


def test_sigterm_stops_the_command_wherever_it_lands() -> None:
    # A regression test: the guard's handler once set a threading.Event, which deadlocked when
    # the signal landed while the main thread was inside Event.wait (at this poll interval, 4 in
    # 100 runs hung; its owner then SIGKILLed it, orphaning DynamoDB Local).
    rng = random.Random(8)
    for attempt in range(80):
        guard, pid = start_guard(poll_seconds=1e-5)
        time.sleep(rng.uniform(0, 0.02))
        guard.send_signal(signal.SIGTERM)
        assert finish(guard, within=2) == 0, attempt
        assert gone(pid, within=1), attempt


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_guard_and_its_command(signum: int) -> None:
    guard, pid = start_guard()
    started = time.monotonic()
    guard.send_signal(signum)
    assert finish(guard, within=2) == 0
    assert time.monotonic() - started < 1
    assert gone(pid, within=1)


def test_the_owner_closing_its_pipe_stops_the_command() -> None:
    """What the kernel does for an owner that dies, however it dies."""
    guard, pid = start_guard()
    assert guard.stdin is not None
    guard.stdin.close()
    assert finish(guard, within=2) == 0
    assert gone(pid, within=1)


@pytest.mark.parametrize(("script", "code"), [("exit 3", 3), ("kill -9 $$", 128 + 9)])
def test_a_command_that_ends_ends_the_guard_with_its_code(script: str, code: int) -> None:
    # Its pipe stays open (run() would close it at once, and the guard would stop the command).
    guard = subprocess.Popen([sys.executable, str(GUARD), "--", "sh", "-c", f"sleep 0.2; {script}"],
                             stdin=subprocess.PIPE, start_new_session=True)
    assert finish(guard, within=10) == code


def test_without_a_command_it_says_how_to_use_it() -> None:
    result = subprocess.run([sys.executable, str(GUARD)], capture_output=True, text=True,
                            timeout=10)
    assert result.returncode == 2
    assert "usage: guard.py [--pass-fd N]... -- COMMAND" in result.stderr
