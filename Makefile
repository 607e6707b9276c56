# darkstack developer entry points. `make demo` and `make test` are the README's quickstart.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Installed before darkstack so its `torch>=2.4` is already met: a bare `torch` from PyPI is a
# CUDA build of several GB. On a GPU machine use e.g. TORCH_SPEC="torch --index-url ...".
TORCH_SPEC ?= torch==2.13.0
DEMO ?= demo

.PHONY: install demo test test-all lint typecheck golden bench print-torch-spec clean

# A virtual environment with darkstack (editable) and its dev tools, rebuilt when pyproject changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[dev,slurm,test]"
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

# Rewrite tests/golden/*.json from the present code; commit them with the reason they moved.
golden: install
	$(BIN)/python -m pytest tests/golden --update-golden -m ""

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/python tools/typecheck.py

# bench_train needs a store of 128 px observations: the demo's.
bench: demo
	$(BIN)/python benchmarks/bench_universe.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_observe.py
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_fields.py
	$(BIN)/python benchmarks/bench_train.py --store $(DEMO)/store

print-torch-spec:
	@echo "$(TORCH_SPEC)"

clean:
	rm -rf $(VENV) $(DEMO) build dist
