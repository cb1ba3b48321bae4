"""Run a command for as long as the process that started us lives.

    python devstack/guard.py -- java -jar DynamoDBLocal.jar ...
    python devstack/guard.py --pass-fd 5 -- python moto_server.py --fd 5

(--pass-fd: a descriptor the command inherits, a listening socket to serve on.)

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
import select
import signal
import subprocess
import sys
from types import FrameType

# A stopped command gets this long to exit on SIGTERM before SIGKILL. moto and DynamoDB Local
# exit in about 0.2 and 0.3 s; short, so that `make run` stops within 2 s even if one hangs
# (they keep their data in memory: a SIGKILL loses nothing).
GRACE_SECONDS = 0.5
# How soon the guard notices the command exiting on its own (signals and the parent's pipe wake
# it at once).
POLL_SECONDS = 0.05


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def parent_closed() -> bool:
    """Read what the parent sent (it never writes; anything it does is ignored): True at end
    of file, or when stdin is not usable at all (as good as closed)."""
    try:
        return not os.read(0, 4096)
    except OSError:
        return True


def main(argv: list[str]) -> int:
    passed: list[int] = []
    while len(argv) >= 2 and argv[0] == "--pass-fd" and argv[1].isdigit():
        passed.append(int(argv[1]))
        argv = argv[2:]
    if not argv or argv[0] != "--" or len(argv) < 2:
        print("usage: guard.py [--pass-fd N]... -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    signalled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Only a list append: Python runs the handler in the main thread between any two
        # bytecodes, so it must take no lock the main thread may hold. (It once set a
        # threading.Event; when the signal came while the main thread was inside Event.wait,
        # set() blocked on the Event's own lock for ever, and the owner had to SIGKILL us.)
        signalled.append(signum)

    # The wakeup pipe makes a signal end the select below at once; before the command starts,
    # so that a signal never kills the guard and leaves the command.
    wakeup, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The command's stdin is not the pipe: only the guard watches it.
    child = subprocess.Popen(argv[1:], stdin=subprocess.DEVNULL, pass_fds=passed)
    for fd in passed:
        os.close(fd)  # the command's now: if it dies, its socket must not outlive it here
    watched = [0, wakeup]
    # One thread, no locks: select on the parent's pipe and the wakeup pipe.
    while not signalled:
        try:
            ready, _, _ = select.select(watched, [], [], POLL_SECONDS)
        except (OSError, ValueError):
            break  # stdin is not a descriptor select takes: as good as closed
        if 0 in ready and parent_closed():
            break
        if child.poll() is not None:  # it ended on its own: say how, as a shell would
            code = child.returncode
            return 128 - code if code < 0 else code
    stop(child)
    return 0  # stopped as asked


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
