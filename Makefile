# portal-pulse: `make run` starts everything on the embedded default; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint check bench mutate system-deps constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installs are pinned by constraints.txt (see `make constraints`).
PIP_INSTALL := $(BIN)/pip install -q -c constraints.txt

$(VENV)/.runtime: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.runtime

## Start the embedded Valkey (data in var/data), both services and the demo portal.
run: $(VENV)/.runtime
	$(BIN)/portal-pulse up

## Debian packages the tests drive: chromium, prometheus (with promtool), redis-server.
system-deps:
	bash scripts/system-deps.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check portal_pulse tests bench
	$(BIN)/mypy

## Lint, type-check and run the whole suite (pytest's "no tests collected" is an error).
test: $(VENV)/.dev system-deps lint
	$(BIN)/pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

bench: $(VENV)/.dev
	$(PIP_INSTALL) -e '.[dev,bench]'
	bash scripts/system-deps.sh bench
	$(BIN)/python -m bench

## Mutation testing (not part of `make test`; minutes to hours): mutmut 3 over the modules
## and fast tests listed in pyproject.toml [tool.mutmut]. MUTANTS="glob ..." limits the run,
## e.g. MUTANTS="portal_pulse.core.settings* portal_pulse.session.state_machine*".
MUTANTS ?=
mutate: $(VENV)/.dev
	$(PIP_INSTALL) -e '.[dev,mutate]'
	$(BIN)/mutmut run --max-children $(or $(MUTATE_JOBS),2) $(MUTANTS); rc=$$?; \
	$(BIN)/mutmut results; exit $$rc

## Re-pin constraints.txt to what .venv holds (after upgrading a package and passing `make test`).
constraints: $(VENV)/.dev
	$(PIP_INSTALL) -e '.[dev,bench,mutate]'
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants
