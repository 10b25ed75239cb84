# Kefu: `make run` sets up and serves with demo data; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench e2e demo clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch node_modules/.installed

setup: $(STAMP) node_modules/.installed
	$(BIN)/python manage.py compiletranslations

run: setup
	$(BIN)/kefu run

demo: setup
	$(BIN)/kefu migrate --verbosity 0 && $(BIN)/kefu demo

# The whole suite: unit, integration and browser journeys (these skip without Chromium
# unless KEFU_E2E_REQUIRED=1). KEFU_TEST_DATABASE_URL=postgres://... runs it on PostgreSQL.
test: setup
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check

e2e: setup
	KEFU_E2E_REQUIRED=1 $(BIN)/pytest -q e2e

bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules var/static
