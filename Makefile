# Provenant — the README names these targets.
#   make run    set up what is missing, then start the whole local system (Ctrl-C stops it)
#   make test   set up what is missing, then run the Hardhat tests and the pytest suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
NPM_STAMP := node_modules/.provenant-installed
PY_STAMP  := $(VENV)/.provenant-installed

.PHONY: setup build run stop test test-contracts test-python lint example clean

setup: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

build: setup
	npx hardhat compile --quiet

run: build
	$(BIN)/provenant up

stop:
	$(BIN)/provenant down

test: build test-contracts test-python

test-contracts: build
	npx hardhat test

test-python: build
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check backend workers tests examples migrations
	$(BIN)/mypy backend workers

example: setup
	$(BIN)/python examples/consent_flow.py

clean:
	rm -rf .provenant artifacts cache
