"""`chalice local --stage local`, the real CLI as a real process: its debug route runs the SQS
consumer synchronously on a POSTed command, against the emulator over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.emulator import MotoServer
from devstack.ports import PortReservation
from devstack.resources import DEFAULT_DLQ, ensure_resources

pytestmark = pytest.mark.e2e
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def chalice_local(moto_server: MotoServer, tmp_path: Path) -> Iterator[str]:
    """The project copied as is, except that the local stage points at this test's emulator
    (chalice loads stage variables over the process environment, so it cannot be overridden)."""
    for name in ("app.py", "chalicelib", ".chalice"):
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns(
                "__pycache__", "deployed", "deployments"))
        else:
            shutil.copy(source, tmp_path / name)
    config_path = tmp_path / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    stage = config["stages"]["local"]["environment_variables"]
    stage["AWS_ENDPOINT_URL"] = moto_server.endpoint_url
    config_path.write_text(json.dumps(config))
    ensure_resources(moto_server.endpoint_url, queue_name=stage["QUEUE_NAME"],
                     table_name=stage["TABLE_NAME"], dlq_name=DEFAULT_DLQ)
    # `chalice local --port 0` binds a free port but prints "Serving on http://127.0.0.1:0":
    # the port is reserved here instead, and held until chalice listens on it (devstack/ports.py).
    reservation = PortReservation()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("chalice")), "local", "--stage", "local",
         "--host", "127.0.0.1", "--port", str(reservation.port), "--no-autoreload"],
        cwd=tmp_path, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{reservation.port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base_url}/items?limit=1", timeout=2)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"chalice local did not start:\n{output}")
                time.sleep(0.2)
        reservation.release()
        yield base_url
    finally:
        reservation.release()
        process.terminate()
        process.wait(timeout=10)


def test_debug_route_runs_the_consumer_synchronously(chalice_local: str) -> None:
    item_id = f"debug-{uuid.uuid4()}"
    body = {"operation": "create", "id": item_id, "item": {"n": 0.1, "s": "ü & +"}}
    answer = requests.post(f"{chalice_local}/debug/consume", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    outcome = answer.json()["outcome"]
    assert outcome["status"] == "applied" and outcome["id"] == item_id
    assert answer.json()["batchResponse"] == {"batchItemFailures": []}
    item = requests.get(f"{chalice_local}/items/{item_id}", timeout=10)
    assert item.json() == {"id": item_id, "version": 1, "n": 0.1, "s": "ü & +"}
    request = requests.get(f"{chalice_local}/requests/{outcome['requestId']}", timeout=10)
    assert request.json() == outcome

    again = requests.post(f"{chalice_local}/debug/consume", json=body, timeout=30).json()
    assert again["outcome"]["status"] == "rejected"
    assert "already exists" in again["outcome"]["reason"]


def test_debug_route_rejects_an_invalid_command_with_its_reason(chalice_local: str) -> None:
    answer = requests.post(f"{chalice_local}/debug/consume",
                           json={"operation": "explode", "id": "x"}, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["outcome"]["status"] == "rejected"
    assert "body.operation: must be one of" in answer.json()["outcome"]["reason"]


def test_read_api_errors_are_client_errors(chalice_local: str) -> None:
    missing = requests.get(f"{chalice_local}/items/never-written", timeout=10)
    assert missing.status_code == 404
    assert requests.get(f"{chalice_local}/items?limit=0", timeout=10).status_code == 400
    assert requests.get(f"{chalice_local}/items?cursor=zzz", timeout=10).status_code == 400
    pending = requests.get(f"{chalice_local}/requests/{uuid.uuid4()}", timeout=10)
    assert pending.status_code == 404 and pending.json()["status"] == "pending"

