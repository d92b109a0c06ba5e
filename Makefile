# The developer's front door. `make demo` and `make test` are the two commands a fresh
# machine needs; each installs what it needs first (`make setup`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test test-fast demo lint format protos bench clean help

help:  ## list targets
	@grep -E '^[a-zA-Z_-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with the pinned dependencies (torch 2.13.0 CPU)

test: setup  ## run the whole test suite (unit, integration, k8s, e2e)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup  ## unit tests only
	$(BIN)/python -m pytest -m "not slow and not integration and not e2e and not k8s and not distributed" $(PYTEST_ARGS)

demo: setup  ## run the main job on the embedded default
	$(BIN)/pbt demo

lint: setup  ## ruff
	$(BIN)/ruff check pbt services training tests bench
	$(BIN)/ruff format --check pbt services training tests bench

format: setup
	$(BIN)/ruff format pbt services training tests bench
	$(BIN)/ruff check --fix pbt services training tests bench

bench: setup  ## run every benchmark in bench/ (prints ratios against in-run baselines)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
