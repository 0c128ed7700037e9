# One target per habit. Everything installs itself (local/bootstrap.sh) and is cached per machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
SAM_VENV := .venv-sam
CHECKOV := .venv-checkov/bin/checkov
PY := $(VENV)/bin/python
SAM_PY := $(SAM_VENV)/bin/python
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
CONFIG_ENV ?= dev
# sam build looks for python3.13 on PATH: put the one bootstrap found first. Expanded when used
# (`=`, not `:=`), so that on a fresh clone it sees the virtualenv that `build: venv` just made.
BUILD_PATH = $(dir $(shell readlink -f $(VENV)/bin/python3.13 2>/dev/null)):$(PATH)

export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help deps world-deps status fire-schedule venv sam checkov dynamodb chromium gnucash lint format test test-fast build bench up down demo invoke contract fuzz deploy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## install everything the project needs (cached per machine)
	@local/bootstrap.sh venv sam checkov dynamodb chromium gnucash

world-deps: # what the local world needs (no browser)
	@local/bootstrap.sh venv sam dynamodb

venv:
	@local/bootstrap.sh venv
sam:
	@local/bootstrap.sh sam
checkov:
	@local/bootstrap.sh checkov
dynamodb:
	@local/bootstrap.sh dynamodb
chromium:
	@local/bootstrap.sh chromium
gnucash:
	@local/bootstrap.sh gnucash

lint: venv sam checkov ## ruff, ruff format --check, mypy, cfn-lint, sam validate --lint, checkov
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/shared/pleo_connector admin/pleo_connector_admin functions local bench contract tests
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml
	@# Fails on any finding; each check that does not fit is skipped in template.yaml, with its
	@# reason. --skip-download: the scan runs offline (no guidelines fetched from the vendor).
	$(CHECKOV) -f template.yaml --framework cloudformation --quiet --compact --skip-download

format: venv ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Branch coverage of the layer, printed by every `make test`; the suite reaches 93 %, the floor is 90 %.
COVERAGE := --cov=layers/shared/pleo_connector --cov-branch --cov-report=term:skip-covered \
	--cov-fail-under=90

test: deps lint ## the whole suite: lint, unit, integration, e2e, browser; prints coverage
	$(PY) -m pytest $(COVERAGE)

test-fast: venv ## unit tests only
	$(PY) -m pytest -m unit

fuzz: venv ## the property tests with many random examples (hypothesis "fuzz" profile)
	$(PY) -m pytest tests/unit -m hypothesis --hypothesis-profile=fuzz

build: venv sam ## sam build, then compile the bytecode Lambda cannot write itself
	PATH="$(BUILD_PATH)" $(SAM) build --template template.yaml
	$(PY) -m compileall -q --invalidation-mode unchecked-hash .aws-sam/build

bench: build dynamodb ## every benchmark, printed as `bench: <name> = <value> <unit>`
	$(PY) -m bench

up: world-deps ## start the local world and leave it running: GnuCash and the demo book (ADAPTER=json: the snapshot adapter; make down stops it)
	$(SAM_PY) -m local.world up

down: ## stop the local world
	@if [ -x $(SAM_PY) ]; then $(SAM_PY) -m local.world down; fi

demo: world-deps ## set up, start the local world, run the whole GnuCash story (about 40 s), stop
	$(SAM_PY) -m local.demo

status: ## what the running local world serves, health-checked
	$(SAM_PY) -m local.world status

fire-schedule: ## run the scheduled sync now, in the running local world
	$(SAM_PY) -m local.world fire-schedule

invoke: world-deps ## make invoke FUNCTION=HealthFunction EVENT=events/health.json
	$(SAM_PY) -m local.world invoke $(FUNCTION) -e $(EVENT)

contract: venv ## make contract SOURCE="DIR-or-URL ...": rebuild contract/pleo-openapi/
	@if [ -z "$(SOURCE)" ]; then echo 'usage: make contract SOURCE="folder-or-URL ..."' >&2; exit 2; fi
	$(PY) contract/regenerate.py $(SOURCE)

deploy: build ## sam deploy --config-env $(CONFIG_ENV)
	$(SAM) deploy --config-env $(CONFIG_ENV)

clean: ## remove build output and test caches
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache test-output
