# `make demo`, `make test` and `make bench` each set up .venv from nothing, then run.
# Two stamps: `make demo` installs only what dorsimeter needs to run; `make test` (and bench,
# lint) add the test toolchain on top (pytest, bumble, dbus-fast, pandas, ruff, ...).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint typecheck system-deps clean

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

# pyright in basic mode over src/, bench/ and firmware_bridge/ ([tool.pyright] in pyproject.toml); the wheel bundles pyright
# and node, so nothing is fetched at run time (the variable skips its check for a newer release)
typecheck: $(STAMP)
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright --pythonpath $(BIN)/python

# the tests on every core (pytest-xdist); tests sharing one resource run in one worker
# (@pytest.mark.xdist_group, kept together by --dist loadgroup)
PYTEST_PARALLEL := -n auto --dist loadgroup

test: $(STAMP) system-deps lint typecheck
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

# quick loop for development: lint, types and every test not marked slow (`make test` runs all)
.PHONY: check
check: $(STAMP) lint typecheck
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV)
