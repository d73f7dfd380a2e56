# `make demo`, `make test` and `make bench` each set up .venv from nothing, then run.
# Two stamps: `make demo` installs only what dorsimeter needs to run; `make test` (and bench,
# lint) add the test toolchain on top (pytest, bumble, dbus-fast, pandas, ruff, ...).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint system-deps clean

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

system-deps:
	./scripts/system-deps.sh

demo: $(RUNTIME)
	$(BIN)/dorsimeter demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench firmware_bridge

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest

# quick loop for development: lint and every test not marked slow (`make test` runs them all)
.PHONY: check
check: $(STAMP)
	$(BIN)/ruff check src tests bench firmware_bridge
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV)
