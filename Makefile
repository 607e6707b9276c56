# darkstack developer entry points. `make demo` and `make test` are the README's quickstart.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo

.PHONY: install demo test test-all lint typecheck bench clean

# A virtual environment with darkstack (editable) and its dev tools, rebuilt when pyproject changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The main job on the embedded default: quick mock universe -> ingest -> summary.
demo: install
	$(BIN)/darkstack demo --out $(DEMO)

# The test suite (slow end-to-end tests excluded; `make test-all` runs them too).
test: install
	$(BIN)/python -m pytest -m "not slow"

test-all: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/python tools/typecheck.py

bench: install
	$(BIN)/python benchmarks/bench_universe.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_observe.py

clean:
	rm -rf $(VENV) $(DEMO) build dist
