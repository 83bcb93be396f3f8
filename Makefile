# Every target installs what it needs on a fresh machine: uv from PyPI when missing, then the locked env.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen --no-sync
PORT ?= 8765
# The report's browser test drives Debian's headless Chromium (no browser downloads); `make test`
# installs it with apt-get when missing, through sudo only when not root and sudo exists.
BROWSER_BINS := /usr/bin/chromium /usr/bin/chromedriver
SUDO := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo 2>/dev/null))
# The PostgreSQL store's tests start a throwaway cluster (testing/postgres.py) from Debian's server
# binaries; `make test` installs the `postgresql` package when they are missing (no service is
# started or assumed).
POSTGRES_INITDB := $(wildcard /usr/lib/postgresql/*/bin/initdb)

.PHONY: install browser postgres demo test soak example bench lint fmt

install:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@UV_COMPILE_BYTECODE=1 $(UV) sync --frozen --all-extras

browser:
	@for bin in $(BROWSER_BINS); do [ -x "$$bin" ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing chromium and chromium-driver (Debian packages) for the browser test"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

postgres:
	@if [ -z "$(POSTGRES_INITDB)" ]; then \
		echo "Installing postgresql (Debian package) for the PostgreSQL store's tests"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends postgresql; \
	fi

demo: install
	$(RUN) codat-expenses demo --port $(or $(REPORT_PORT),8501)

test: install browser postgres
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) pytest -q -p no:cacheprovider

# the long property runs (hundreds of random message streams, with and without faults)
soak: install
	$(RUN) pytest -q -p no:cacheprovider -m soak integration_tests/test_exactly_once_properties.py

# examples/pyairbyte_faker.py in its own environments (PyAirbyte and the wheel, from PyPI with uv),
# against a sandbox; checks the sandbox's books
example: install
	$(RUN) pytest -q -p no:cacheprovider -m example integration_tests/test_pyairbyte_example.py

# BENCH_FLAT=1 adds the 300,000-record flatness run (10 minutes or more at main's pace).
# The official SDK's loop runs in its own venv, made with uv on first use (benchmarks/sdk_env.py).
bench: install browser postgres
	$(RUN) python -m benchmarks.startup
	$(RUN) python -m benchmarks.sandbox_throughput
	BENCH_UV="$(UV)" $(RUN) python -m benchmarks.peers --records 20000
	$(RUN) python -m benchmarks.peers --records 20000 --modes latency --state-every 100 --no-sdk
	$(RUN) python -m benchmarks.company_lookups --companies 40 --records 4000
	$(RUN) python -m benchmarks.follow_requests --records 4000
	$(RUN) python -m benchmarks.readers_during_write --records 20000
	$(RUN) python -m benchmarks.store_batch_cost --rows 0,20000,300000
	$(RUN) python -m benchmarks.store_memory --rows 0,300000,600000,1200000
	$(RUN) python -m benchmarks.http_models
	$(if $(BENCH_FLAT),$(RUN) python -m benchmarks.flatness --small 20000 --large 300000)
	$(if $(BENCH_FLAT),$(RUN) python -m benchmarks.flatness --small 20000 --large 300000 --store postgres)
	$(RUN) python -m benchmarks.destination_throughput --records 100000
	$(RUN) python -m benchmarks.fleet_postgres
	$(RUN) python -m benchmarks.report_render --browser

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

fmt: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .
