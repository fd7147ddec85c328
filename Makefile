# Kassa — `make run` starts the platform, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@# No system PostgreSQL? The pgserver wheel brings its own binaries.
	@command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
		|| $(BIN)/python -m pip install -q pgserver==0.1.4
	@# The JetStream relay's tests need Debian's nats-server; install it when we may.
	@command -v nats-server >/dev/null || { [ "$$(id -u)" = 0 ] \
		&& (apt-get update -qq && apt-get install -y -qq nats-server) >/dev/null 2>&1; } \
		|| echo "note: nats-server not installed; the relay tests will be skipped"
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	@$(BIN)/kassa up

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .kassa .mypy_cache .ruff_cache .pytest_cache
