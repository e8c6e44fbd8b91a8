# dora: the commands a person runs. Each sets up what it needs (.venv, redis-server) first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help test lint demo bench chaos fmt clean ensure-redis ensure-chromium

help:
	@echo "make demo   run the bot against a local Kalshi simulator with a live view (Ctrl-C stops)"
	@echo "make test   run the whole test suite"
	@echo "make lint   ruff check, ruff format --check, mypy"
	@echo "make bench  latency, throughput, recovery and backtests: bench/results.json, docs/performance.md"
	@echo "make chaos  the full stack under injected faults with invariants checked (CHAOS_SECONDS=600; CHAOS_ARGS=--cluster on a Redis Cluster)"
	@echo "make fmt    format the code"

# The virtualenv, reused while pyproject.toml is unchanged.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "dora needs Python 3.11 or newer; '$(PYTHON) --version' says: $$($(PYTHON) --version 2>&1)"; exit 1; }
	@if [ ! -x $(BIN)/python ]; then \
		$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
			if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
				apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv && \
				rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); \
			else echo "cannot create a virtualenv: run 'sudo apt-get install -y python3-venv'"; exit 1; fi; }; \
	fi
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

# Kalshi's newest official SDK for the fidelity tests (tests/sdk): it needs Python >= 3.13, so it
# lives in its own virtualenv, made once with a Python >= 3.13 found on this machine (the tests
# that need it skip, saying why, where there is none).
SDK_STAMP := .venv-sdk/.installed
$(SDK_STAMP): tests/support/sdk_venv.py $(STAMP)
	@$(BIN)/python -m tests.support.sdk_venv

ensure-redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing redis-server (Debian package)"; \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; \
		else echo "redis-server is missing: run 'sudo apt-get install -y redis-server'"; exit 1; fi; }

# The dashboard's browser tests drive Debian's chromium through its chromedriver (selenium never
# downloads a browser). Without them those tests are skipped, saying why; nothing else needs them.
ensure-chromium:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium and chromium-driver (Debian packages, for the dashboard's tests)"; \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver || \
				echo "chromium could not be installed: the dashboard's browser tests will be skipped"; \
		else echo "chromium is missing (the dashboard's browser tests will be skipped): run 'sudo apt-get install -y chromium chromium-driver'"; fi; }

demo: $(STAMP) ensure-redis
	$(BIN)/dora demo $(DEMO_ARGS)

test: $(STAMP) $(SDK_STAMP) ensure-redis ensure-chromium
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP) ensure-redis
	$(BIN)/python -m bench.run

chaos: $(STAMP) ensure-redis
	$(BIN)/python -m sim.chaos --seconds $${CHAOS_SECONDS:-600} $${CHAOS_ARGS:-}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy common services sim cli

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .venv-sdk var .pytest_cache .mypy_cache .ruff_cache
