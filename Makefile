# Targets are what CI runs: `make test` is exactly what .ci/run does.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help demo test lint slurm-up slurm-down slurm-status clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: this build is on local disk; a range would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## create the environment if needed and run the tones recipe locally
	$(BIN)/launch egs3/tones/asr1

test: $(STAMP) slurm-up  ## create the environment, start the local SLURM cluster, run all tests
	$(BIN)/ruff check .
	. slurm/env && $(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .

.PHONY: bench
bench: $(STAMP) slurm-up  ## benchmarks against hand-written baselines (~25 min): bench/RESULTS.md
	. slurm/env && $(BIN)/python bench/run.py $(BENCH_ARGS)

.PHONY: gpu-check
gpu-check: $(STAMP)  ## on a machine with NVIDIA GPUs (<5 min): bf16, FSDP resume, DDP, B1: bench/GPU_RESULTS.md
	$(BIN)/python bench/gpu_check.py $(GPU_CHECK_ARGS)

slurm-up:  ## install and start the local SLURM cluster (root, Debian)
	bash slurm/up

slurm-down:  ## stop the local SLURM cluster
	bash slurm/down

slurm-status:  ## is the local SLURM cluster healthy?
	bash slurm/status

clean:  ## remove the environment and caches (run folders under exp/ are kept)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
