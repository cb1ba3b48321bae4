"""`python -m devstack` as users run it: a plain message, not a traceback, if it cannot start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.process import PROJECT_DIR, DevstackProcess
from tests.e2e.conftest import PipelineProcess

pytestmark = pytest.mark.e2e


def test_a_port_in_use_is_reported_plainly(pipeline: PipelineProcess) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "devstack", "--port", str(pipeline.port),
         "--emulator-port", "0"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "cannot start the pipeline" in second.stderr
    assert "Address already in use" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout
    # The running pipeline is unaffected.
    assert pipeline.http.get(f"{pipeline.base_url}/items?limit=1", timeout=5).status_code == 200


def test_ctrl_c_stops_every_part_cleanly(tmp_path: Path) -> None:
    stack = DevstackProcess(tmp_path / "devstack.log").start()
    assert stack.process is not None
    process = stack.process
    # What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=30) == 0
    log = stack.log()
    assert "stopping..." in log
    assert "polling failed" not in log and "Traceback" not in log
    for port in (stack.port, stack.emulator_port):  # the gateway and the emulator are gone
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))
