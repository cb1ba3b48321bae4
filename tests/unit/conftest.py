"""Fixtures of the unit tests of infra/ and .chalice/ (tests/infra_files.py reads them).

`resources` here is the template's Resources; it shadows tests/conftest.py's emulator
resources, which unit tests (no I/O) never use. They are read-only, read once per worker: several
modules check the same files (test_infra_template.py, test_infra_resources.py, ...)."""

from __future__ import annotations

from typing import Any

import pytest

from tests import infra_files


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return infra_files.template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = template["Resources"]
    return resources


@pytest.fixture(scope="session")
def config() -> dict[str, Any]:
    return infra_files.config()
