# clipcluster: `make demo` and `make test` set everything up themselves.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
export RAY_USAGE_STATS_ENABLED ?= 0
PYTEST_ARGS ?=

.PHONY: help setup demo run test test-all lint bench clean
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) ## create or refresh the virtualenv in .venv

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

demo: $(STAMP) ## run ingest + analysis on the bundled sample (offline-safe)
	$(PY) -m clustering.devtools.demo --output demo-output

run: $(STAMP) ## ingest then analyse in one command: make run ARGS="--config my.yaml"
	$(PY) jobs/pipeline.py $(ARGS)

test: $(STAMP) ## run the test suite (integration tests too when CI=true)
	@if [ "$$CI" = "true" ]; then marks=""; else marks="not integration"; fi; \
	$(PY) -m pytest -m "$$marks" $(PYTEST_ARGS)

test-all: $(STAMP) ## run every test, integration ones included
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint + format check
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(STAMP) ## run the benchmarks (prints figures)
	$(PY) bench/ingest.py && $(PY) bench/sweep.py

clean: ## remove the virtualenv and generated outputs
	rm -rf $(VENV) demo-output .numba_cache
