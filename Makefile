# The two commands: `make run` starts the local pipeline, `make test` runs the whole suite.
# Both set up what they need first (a virtualenv with pinned packages, newman from npm).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit functional e2e venv clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m devstack

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy

test: $(STAMP) lint typecheck
	$(PY) -m pytest

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .mypy_cache .ruff_cache
