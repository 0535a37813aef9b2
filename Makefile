# The two commands of a new user: `make run` (the main job end to end) and `make test` (the suite).
# Each bootstraps .venv from pyproject.toml when it is missing or older than pyproject.toml.
PYTHON ?= python3
SHELL := /bin/bash
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format bench bench-data bench-pipeline clean stack-up stack-down ops-report ui-check

# On a machine without an NVIDIA driver, TensorFlow's CUDA probe prints notes and a cuInit error
# that say only "no GPU here"; `make run` leaves out exactly those lines (with a driver they
# would mean something, and are kept). Prefect keeps its colours when stderr is a terminal.
NO_GPU_NOISE := cudart_stub\.cc:[0-9]+\] Could not find cuda drivers|cuda_platform\.cc:[0-9]+\] failed call to cuInit|^WARNING: All log messages before absl::InitializeLog
NO_GPU_FILTER := $(if $(wildcard /proc/driver/nvidia/version),,2> >(grep --line-buffered -v -E '$(NO_GPU_NOISE)' >&2))

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -m pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c "import estimator_core, tensorflow, prefect, mlflow"
	touch $(STAMP)

# Parameters as options: make run ARGS='--data.source my.csv --data.label y' (--help lists them).
run: $(STAMP)
	@[ -t 2 ] && export FORCE_COLOR=1; \
	$(PY) -m flows.training_pipeline $(ARGS) $(NO_GPU_FILTER)

# What `make run` left, in a real browser: MLflow UI, Prefect UI, TensorBoard (ops/ui_check.py);
# screenshots in runs/ui/. Needs Debian's chromium (apt-get install -y chromium).
ui-check: $(STAMP)
	$(PY) -m ops.ui_check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP)
	$(PY) -m bench.run_bench

bench-data: $(STAMP)
	$(PY) -m bench.data_bench

bench-pipeline: $(STAMP)
	$(PY) -m bench.pipeline_bench

# A Prefect server and an MLflow tracking server on PostgreSQL, with a CPU and a GPU pool worker
# (docs/operations.md).
stack-up: $(STAMP)
	bash ops/stack.sh start

stack-down:
	bash ops/stack.sh stop

# The fault, fuzz and load tests, and the figures they prove (faults tried, inputs fuzzed, runs
# under load, records lost).
ops-report: $(STAMP)
	$(PY) -m ops.report

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
