# Two commands on a fresh machine (Python 3.11 + Node 20): `make synth` and `make test`.
# Each installs what is missing first: pipenv (in .tools/), the Pipfile.lock packages (in .venv/) and the pinned
# cdktf CLI (in node_modules/).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
PIPENV_VERSION := 2026.10.3

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_VERBOSITY := -1
export PIPENV_NOSPIN := 1
export CHECKPOINT_DISABLE := 1
export BC_SKIP_MAPPING := TRUE
# jsii warns on every run that Node 20 is end-of-life; the CodeBuild image runs Node 22.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 20

# Terraform (which the cdktf CLI calls when it is installed) warns on every run about a missing CLI configuration
# file; an empty configuration is what it would read anyway.
TF_CLI_CONFIG_FILE ?= $(HOME)/.terraformrc
ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
export TF_CLI_CONFIG_FILE := /dev/null
endif

PIPENV := .tools/bin/pipenv
VENV_STAMP := .venv/.synced-$(shell sha256sum Pipfile.lock | cut -c1-12)
NODE_STAMP := node_modules/.installed-$(shell sha256sum package-lock.json | cut -c1-12)
CDKTF := node_modules/.bin/cdktf

PORT ?= 8080

.PHONY: help install synth test lint serve doctor diagram cost bench-synth bench-serving bootstrap destroy destroy-all rehearse clean

help:
	@echo "make synth        install what is missing, then synthesize every stack into cdktf.out/"
	@echo "make test         install what is missing, then run the whole test suite (pytest + checkov)"
	@echo "make lint         ruff over the code"
	@echo "make diagram      one picture per environment (docs/diagrams/<env>.svg and .png) from the synthesized stacks"
	@echo "make cost         monthly USD per environment and of the pipeline (FORMAT=json, BASE=<file or git ref>, PRICES=live)"
	@echo "make doctor       what is ready for the next step (tools, AWS identity, bootstrap, pipeline, environments)"
	@echo "make serve        the model server on the example model at http://127.0.0.1:$(PORT) (PORT=..., API_KEY=...)"
	@echo "make bench-synth  wall time and peak memory of a full synth beside the floor"
	@echo "make bench-serving  requests/s and p99 of the model server beside the HTTP floor (needs wrk)"
	@echo "make bootstrap    once per project, with AWS credentials: the state bucket and lock table, then the pipeline"
	@echo "make destroy ENV=staging [ENDPOINT=a]  take an environment (or one endpoint) down, with AWS credentials"
	@echo "make rehearse     the whole lifecycle against an emulated AWS account (moto), with the real Terraform CLI"
	@echo "make destroy-all  every environment, then the pipeline (the state bucket and lock table stay)"

$(PIPENV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "pipenv==$(PIPENV_VERSION)"

$(VENV_STAMP): Pipfile.lock | $(PIPENV)
	$(PIPENV) sync --categories="packages dev-packages serving monitor"
	rm -f .venv/.synced-*
	touch $@

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV_STAMP) $(NODE_STAMP)

synth: install
	$(CDKTF) synth

test: install
	.venv/bin/pytest

lint: install
	.venv/bin/ruff check .

diagram: synth
	command -v dot >/dev/null || (apt-get update -qq && apt-get install -y -qq graphviz)
	.venv/bin/python -m preview.diagram --out docs/diagrams

bench-synth: install
	.venv/bin/python bench/synth/run.py

bench-serving: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	.venv/bin/python bench/serving/run.py

bootstrap: install
	.venv/bin/python -m pipeline.bootstrap

# What is ready for the next step and what is missing: tools, AWS identity and accounts, bootstrap, pipeline, each
# environment. Without credentials, the local half.
doctor: install
	@.venv/bin/python -m pipeline.doctor

destroy: install
	@test -n "$(ENV)" || { echo "usage: make destroy ENV=<environment> [ENDPOINT=<endpoint>]"; exit 2; }
	.venv/bin/python -m pipeline.teardown --env "$(ENV)" $(if $(ENDPOINT),--endpoint "$(ENDPOINT)")

destroy-all: install
	.venv/bin/python -m pipeline.teardown --all

# From an empty account to teardown (three pushes through the pipeline), against moto's server with the real
# Terraform CLI and the machine's AWS provider mirror, every call authorized as its role, every flow checked against
# the applied network; ECS tasks run as local processes (tests/rehearsal, docs/rehearsal.md). About 30 minutes.
# Monthly cost per environment and of the pipeline, from the synthesized stacks and the dated price snapshot.
# Any NAME=value on the command line passes through: FORMAT=json, BASE=<config file or git ref>, PRICES=live, and
# assumptions such as REQUESTS_PER_MONTH=5000000 (docs/cost.md).
cost: synth
	.venv/bin/python -m preview.cost_report $(MAKEOVERRIDES)

rehearse: install
	.venv/bin/python -m tests.rehearsal

# Local folders stand in for EFS: the bundled example model, and .serve/capture for captured requests.
# API_KEY=<key> (from `python -m serving.auth new`): every route but the health checks needs that key.
serve: $(VENV_STAMP)
	@keys=""; if [ -n "$(API_KEY)" ]; then keys="$$(.venv/bin/python -m serving.auth keyset '$(API_KEY)')" || exit 2; fi; \
	SERVING_API_KEYS="$$keys" SERVING_MODELS_DIR=serving/example/models SERVING_CAPTURE_DIR=.serve/capture \
	SERVING_MODEL_NAME=example SERVING_PORT=$(PORT) SERVING_ENVIRONMENT=local .venv/bin/python -m serving

# The container's pinned, hashed requirements, generated from the lock file's `serving` category.
serving/requirements.txt: Pipfile.lock | $(PIPENV)
	$(PIPENV) requirements --categories serving --hash | grep -v '^-i ' > $@

# The monitor image's requirements, from the lock file's `monitor` category.
pipeline/monitor/requirements.txt: Pipfile.lock | $(PIPENV)
	$(PIPENV) requirements --categories monitor --hash | grep -v '^-i ' > $@

clean:
	rm -rf cdktf.out .pytest_cache .serve
