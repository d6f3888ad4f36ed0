# Two entry points: `make run` (set up, fetch models, run the daemon) and `make test`.
# Both create .venv in the repo root when it is missing and install exactly what uv.lock names
# (versions and hashes), re-syncing whenever uv.lock or pyproject.toml changes.
# `make lock` updates uv.lock after pyproject.toml changes (`make lock LOCK_ARGS=--upgrade`: newest); `make test-latest` runs the suite
# against the newest versions those ranges allow, in a throwaway environment.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= configs/default.toml
# uv itself is pinned by requirements/uv.txt (exact version, every platform's wheel hash) and lives
# in its own small environment inside .venv, so that syncing .venv never removes it.
UV_HOME := $(VENV)/.uv
UV := $(UV_HOME)/bin/uv
UV_ENV := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON=$(BIN)/python UV_PYTHON_DOWNLOADS=never \
	UV_NO_PROGRESS=1
SYNC := $(UV_ENV) $(UV) sync --locked --quiet

.PHONY: run test lint typecheck pytest models demo lock test-latest clean

$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)

$(UV): requirements/uv.txt | $(BIN)/python
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		--no-deps -r requirements/uv.txt
	touch $@

$(VENV)/.installed: uv.lock pyproject.toml | $(UV)
	$(SYNC)
	touch $@

$(VENV)/.installed-test: uv.lock pyproject.toml | $(UV)
	$(SYNC) --extra test
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/bgcam models fetch
	$(BIN)/bgcam run --config $(CONFIG)

models: $(VENV)/.installed
	$(BIN)/bgcam models fetch

# No webcam? A before | after clip made from the photo shipped in the package (demo.mp4).
demo: $(VENV)/.installed
	$(BIN)/bgcam models fetch
	$(BIN)/bgcam demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bgcam tests scripts
	$(BIN)/ruff format --check bgcam tests scripts

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

lock: | $(UV)
	$(UV_ENV) $(UV) lock $(LOCK_ARGS)

# Outside the CI gate: the newest versions pyproject.toml allows, in a throwaway environment.
test-latest: | $(UV)
	@set -e; env_dir=$$(mktemp -d); trap 'rm -rf "$$env_dir"' EXIT; \
	$(UV) venv --quiet --python $(BIN)/python "$$env_dir/venv"; \
	VIRTUAL_ENV="$$env_dir/venv" $(UV) pip install --quiet --upgrade --resolution highest \
		-e '.[test]'; \
	VIRTUAL_ENV="$$env_dir/venv" $(UV) pip list --quiet --format freeze \
		| grep -iE '^(numpy|opencv|mediapipe|onnxruntime|mypy|ruff|pydantic|pytest)' || true; \
	"$$env_dir/venv/bin/ruff" check bgcam tests scripts; \
	"$$env_dir/venv/bin/ruff" format --check bgcam tests scripts; \
	"$$env_dir/venv/bin/mypy"; \
	"$$env_dir/venv/bin/python" -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
