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
# Each step says what it does: the whole install takes a few minutes and pip is quiet.
$(VENV)/.installed: pyproject.toml
	@echo "[1/4] creating the virtual environment $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "[2/4] upgrading pip"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "[3/4] installing $(TORCH_SPEC) (the CPU build; set TORCH_SPEC for GPUs)"
	@$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	@echo "[4/4] installing darkstack and its dev, slurm and test extras (builds Pylians from source: 3-5 minutes)"
	@$(BIN)/python -m pip install --quiet -e ".[dev,slurm,test]"
	@touch $@
	@echo "installed: $(BIN)/darkstack"

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
