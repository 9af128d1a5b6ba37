# Two entry points (see README): `make run` sets up and runs the main job,
# `make test` sets up and runs every check. Both create their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint clean traces-sample

$(VENV)/.run-deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-deps: $(VENV)/.run-deps
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(VENV)/.run-deps
	$(BIN)/planner ingest traces/

# Regenerates the committed example traces (byte-identical with the same library versions).
traces-sample: $(VENV)/.run-deps
	$(BIN)/python traces/generate.py --out traces/ --seed 7

lint: $(VENV)/.test-deps
	$(BIN)/ruff check planner tests benchmarks traces
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

test-fast: lint
	$(BIN)/pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
