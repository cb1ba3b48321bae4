"""`python -m devstack` as users run it: a plain message, not a traceback, if it cannot start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devstack.emulator import free_port
from devstack.process import PROJECT_DIR
from tests.e2e.conftest import PipelineProcess

pytestmark = pytest.mark.e2e


def test_a_port_in_use_is_reported_plainly(pipeline: PipelineProcess) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "devstack", "--port", str(pipeline.port),
         "--emulator-port", str(free_port())],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "cannot start the pipeline" in second.stderr
    assert "Address already in use" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout
    # The running pipeline is unaffected.
    assert pipeline.http.get(f"{pipeline.base_url}/items?limit=1", timeout=5).status_code == 200
