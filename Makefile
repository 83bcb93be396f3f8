# Every target installs what it needs on a fresh machine: uv from PyPI when missing, then the locked env.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen --no-sync
PORT ?= 8765

.PHONY: install demo test bench lint fmt

install:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen

demo: install
	@echo "make demo: not built yet (the demo issue wires the whole loop). Try: $(RUN) codat-expenses sandbox --scenario demo --port $(PORT)"

test: install
	$(RUN) ruff check .
	$(RUN) pytest -q -p no:cacheprovider

bench: install
	$(RUN) python -m benchmarks.sandbox_throughput

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

fmt: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .
