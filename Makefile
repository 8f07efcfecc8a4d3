# Provenant — the README names these targets.
#   make run    set up what is missing, then start the whole local system (Ctrl-C stops it)
#   make test   set up what is missing, then run the Hardhat tests and the pytest suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
NPM_STAMP := node_modules/.provenant-installed
PY_STAMP  := $(VENV)/.provenant-installed

.PHONY: setup build web api-client browser run stop test test-contracts test-python lint example clean

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
	npx vite build --config frontend/vite.config.mts --logLevel warn

# The web app's typed API client, regenerated from the service's OpenAPI document (a test
# fails when the checked-in one drifts from the service).
api-client: setup
	$(BIN)/python -m backend.web.openapi frontend/openapi.json
	npx openapi-typescript frontend/openapi.json -o frontend/app/src/api/schema.d.ts

# Debian's Chromium for the browser tests (never a browser download).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x $(CHROMIUM) || (export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y --no-install-recommends chromium || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium))

run: build
	$(BIN)/provenant up

stop:
	$(BIN)/provenant down

test: build browser test-contracts test-python

test-contracts: build
	npx hardhat test

test-python: build
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check backend workers tests examples migrations
	$(BIN)/mypy backend workers
	npx tsc -p frontend/tsconfig.json

example: setup
	$(BIN)/python examples/consent_flow.py

clean:
	rm -rf .provenant artifacts cache frontend/dist test-artifacts
