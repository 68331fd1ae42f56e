# ebi — every target installs what it needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DURATION ?= 60
RATE ?= 2000
PYTEST_ARGS ?=
# kubeconform validates deploy/k8s offline (deploy/k8s/validate.sh); pinned, built with Go.
KUBECONFORM_VERSION := v0.7.0
KUBECONFORM_STAMP := var/tools/.kubeconform-$(KUBECONFORM_VERSION)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create the virtualenv and install ebi with its dev tools

system-deps: ## install system packages the tests need (Debian: clickhouse-server, prometheus)
	@bash deploy/system-deps.sh

run: venv ## the main job: stack up, worker + sink + simulator with live progress (DURATION=s, RATE=readings/s)
	$(BIN)/ebi run --duration $(DURATION) --rate $(RATE)

test: venv system-deps k8s-tools ## what CI runs: ruff, mypy, schema gate, unit and integration tests, promtool rule tests
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/ebi schemas check --released
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)
	$(BIN)/pytest tests/fuzz -q $(PYTEST_ARGS)
	$(BIN)/pytest tests/integration -q -x $(PYTEST_ARGS)
	bash deploy/prometheus/test-rules.sh

fuzz: venv ## the fuzz suite at length (hypothesis profile "long"; make test runs it bounded)
	EBI_FUZZ_PROFILE=long $(BIN)/pytest tests/fuzz -q $(PYTEST_ARGS)

check: test ## the same as CI: make test

$(KUBECONFORM_STAMP):
	@mkdir -p var/tools/bin
	GOBIN=$(CURDIR)/var/tools/bin GOFLAGS=-mod=mod go install \
	  github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	@touch $@

k8s-tools: $(KUBECONFORM_STAMP) ## kubeconform (Go) into var/tools/bin, for the deploy/k8s validation

k8s-validate: k8s-tools ## validate deploy/k8s offline against deploy/k8s/schemas
	bash deploy/k8s/validate.sh

unit: venv ## unit tests only (no services)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

integration: venv system-deps ## integration tests only (starts real Kafka, Apicurio, ClickHouse)
	$(BIN)/pytest tests/integration -q $(PYTEST_ARGS)

lint: venv ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv system-deps ## benchmarks against a baseline in the same run -> bench/results/latest.json
	$(BIN)/python -m bench

stack-up: venv ## start the local stack (ebi stack up)
	$(BIN)/ebi stack up

stack-down: venv ## stop the local stack (ebi stack down)
	$(BIN)/ebi stack down

clean: ## stop the stack and remove var/ (all local data)
	-@test -x $(BIN)/ebi && $(BIN)/ebi stack down
	rm -rf var

.PHONY: help venv system-deps k8s-tools k8s-validate run test check fuzz unit integration lint \
	bench stack-up stack-down clean
