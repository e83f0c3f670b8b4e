# Hybrid Dialogue: `make run` trains on the built-in corpus, `make test` runs the tests.
# Every target installs the locked environment first when it is missing or stale.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_VERSION ?= 3.11
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.9
INSTALLED := $(VENV)/.installed
INFRA_VENV ?= .venv-infra
CLI := $(BIN)/hybrid-dialogue
DVC := $(BIN)/dvc

# Bring your own data: make run DATA=path/to/file FORMAT=bitext. IMPORT_ARGS
# goes to `hybrid-dialogue corpus import` as extra options, split into words
# by the shell: IMPORT_ARGS="--customer-column question --agent-column answer".
DATA ?=
FORMAT ?= jsonl
IMPORT_ARGS ?=
PYTEST_ARGS ?=

# Local S3-compatible endpoint (moto server) and MLflow tracking server.
S3_HOST ?= 127.0.0.1
S3_PORT ?= 9000
MLFLOW_PORT ?= 5000

.PHONY: help install run corpus import-data repro test lint-infra lock storage-up storage-down mlflow-server clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	python$(PYTHON_VERSION) -m venv $(VENV)

$(INSTALLED): $(BIN)/python requirements/main.lock pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --python $(BIN)/python --compile-bytecode -r requirements/main.lock
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	touch $@

install: $(INSTALLED) ## Create .venv and install the locked dependencies

$(INFRA_VENV)/.installed: requirements/infra.lock
	python$(PYTHON_VERSION) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(INFRA_VENV)/bin/uv pip install --python $(INFRA_VENV)/bin/python -r requirements/infra.lock
	touch $@

corpus: $(INSTALLED) ## Generate the default 100K corpus if data/raw is missing, and check it against data.dvc
	@if [ -n "$(DATA)" ]; then $(MAKE) --no-print-directory import-data; \
	elif [ ! -d data/raw ]; then \
	  $(CLI) corpus synth && $(DVC) commit --force --quiet data.dvc && \
	  if ! git diff --quiet -- data.dvc; then \
	    echo "The generated corpus does not match data.dvc: check the corpus section of params.yaml," \
	         "or run 'git add data.dvc' to version the new corpus." >&2; exit 1; \
	  fi; \
	else echo "data/raw exists: using it (delete it to regenerate the default corpus)."; fi

# The import writes to data/raw.import first, so that a failed import leaves data/raw as it was.
import-data: $(INSTALLED) ## Import DATA (FORMAT=jsonl|csv|bitext|twcs, IMPORT_ARGS) into data/raw, track it with DVC
	@test -n "$(DATA)" || { echo "Set DATA=path/to/file (and FORMAT=...)." >&2; exit 2; }
	rm -rf data/raw.import
	$(CLI) corpus import --format $(FORMAT) "$(DATA)" --output data/raw.import/dialogues.jsonl $(IMPORT_ARGS)
	rm -rf data/raw && mv data/raw.import data/raw
	@echo "Moved the import's files, quarantine file included, from data/raw.import/ to data/raw/."
	$(DVC) commit --force --quiet data.dvc
	@echo "data.dvc now tracks the imported corpus; commit it with: git add data.dvc"

run: corpus ## Install, make or import the corpus, and run the whole pipeline (dvc repro)
	PATH="$(abspath $(BIN)):$$PATH" $(DVC) repro

test: $(INSTALLED) $(INFRA_VENV)/.installed ## Install if needed and run the whole test suite
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

lock: ## Regenerate requirements/*.lock from requirements/*.in
	$(UV) pip compile --python-version $(PYTHON_VERSION) requirements/main.in -o requirements/main.lock
	$(UV) pip compile --python-version $(PYTHON_VERSION) requirements/infra.in -o requirements/infra.lock

clean: ## Remove pipeline outputs (keeps data/raw, .venv and the MLflow store)
	rm -rf data/processed data/quarantine models metrics reports checkpoints

# Local S3 endpoint, MLflow server, DVC remote and infrastructure lint.
# The scripts in infra/scripts and mlflow/ say what each setting does.
S3_STATE_DIR ?= .s3
HYBRID_DIALOGUE_BUCKET ?= hybrid-dialogue
MLFLOW_S3_ENDPOINT_URL ?= http://$(S3_HOST):$(S3_PORT)

.PHONY: dvc-remote

storage-up: $(INSTALLED) ## Start a local S3 endpoint (moto, in memory) and create the bucket
	S3_HOST=$(S3_HOST) S3_PORT=$(S3_PORT) S3_STATE_DIR=$(S3_STATE_DIR) \
	HYBRID_DIALOGUE_BUCKET=$(HYBRID_DIALOGUE_BUCKET) MOTO_SERVER=$(BIN)/moto_server HYBRID_DIALOGUE_CLI=$(CLI) \
	  bash infra/scripts/storage-up.sh

storage-down: ## Stop the local S3 endpoint (its objects are lost)
	S3_STATE_DIR=$(S3_STATE_DIR) bash infra/scripts/storage-down.sh

mlflow-server: $(INSTALLED) ## Run an MLflow server (port MLFLOW_PORT, 5000) with artifacts on S3 (run storage-up first)
	MLFLOW_PORT=$(MLFLOW_PORT) HYBRID_DIALOGUE_BUCKET=$(HYBRID_DIALOGUE_BUCKET) \
	MLFLOW_S3_ENDPOINT_URL=$(MLFLOW_S3_ENDPOINT_URL) MLFLOW=$(BIN)/mlflow HYBRID_DIALOGUE_CLI=$(CLI) \
	  bash mlflow/server.sh

dvc-remote: $(INSTALLED) ## Make s3://BUCKET/dvc the default DVC remote (BUCKET: HYBRID_DIALOGUE_BUCKET)
	HYBRID_DIALOGUE_BUCKET=$(HYBRID_DIALOGUE_BUCKET) MLFLOW_S3_ENDPOINT_URL=$(MLFLOW_S3_ENDPOINT_URL) DVC=$(DVC) \
	  bash infra/scripts/dvc-remote.sh

lint-infra: $(INFRA_VENV)/.installed ## Lint the Dockerfiles and Kubernetes manifests (hadolint, kubernetes-validate, checkov)
	INFRA_BIN=$(INFRA_VENV)/bin bash infra/scripts/lint.sh
