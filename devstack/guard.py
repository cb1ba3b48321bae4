"""Run a command for as long as the process that started us lives.

    python devstack/guard.py -- java -jar DynamoDBLocal.jar ...

The emulators run in sessions of their own (Ctrl-C must not reach them before the parts that use
them have stopped), so nothing takes them down if the pipeline dies without cleaning up
(`kill -9`, a crash of the interpreter). The guard closes that hole on Linux and macOS alike: its
standard input is a pipe from the parent (devstack.emulator sets it up), and the kernel closes the
parent's end when the parent dies, however it dies. At end of file the guard stops the command.
SIGTERM and SIGINT to the guard stop the command too, so the owner stops it by stopping the
guard.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType

# A stopped command gets this long to exit on SIGTERM before SIGKILL. moto and DynamoDB Local
# exit in about 0.2 and 0.3 s; short, so that `make run` stops within 2 s even if one hangs
# (they keep their data in memory: a SIGKILL loses nothing).
GRACE_SECONDS = 0.5


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def watch_parent(stop_requested: threading.Event) -> None:
    """Block until stdin reaches end of file (the parent closed it or died)."""
    # The raw descriptor, not sys.stdin: a daemon thread blocked in a buffered read holds its
    # lock, and the interpreter aborts at exit when it cannot take it.
    try:
        while os.read(0, 4096):
            pass  # the parent never writes; anything it does is ignored
    except OSError:
        pass  # no usable stdin: as good as closed
    stop_requested.set()


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "--" or len(argv) < 2:
        print("usage: guard.py -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    # Before the command starts: a signal must never kill the guard and leave the command.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The command's stdin is not the pipe: only the guard watches it.
    child = subprocess.Popen(argv[1:], stdin=subprocess.DEVNULL)
    threading.Thread(target=watch_parent, args=(stop_requested,), name="watch-parent",
                     daemon=True).start()
    # The main thread polls rather than blocking in waitpid: Python runs signal handlers only
    # in the main thread, between bytecodes, and the signal may be delivered to another thread.
    while not stop_requested.wait(0.05):
        if child.poll() is not None:
            return child.returncode
    stop(child)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
