# Two entry points: `make run` (set up, fetch models, run the daemon) and `make test`.
# Both create .venv in the repo root when it is missing and re-install when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= configs/default.toml

.PHONY: run test lint typecheck pytest models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/bgcam models fetch
	$(BIN)/bgcam run --config $(CONFIG)

models: $(VENV)/.installed
	$(BIN)/bgcam models fetch

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bgcam tests scripts
	$(BIN)/ruff format --check bgcam tests scripts

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
