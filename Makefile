# darkstack developer entry points. `make demo` and `make test` are the README's quickstart.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Installed before darkstack so its `torch>=2.4` is already met: a bare `torch` from PyPI is a
# CUDA build of several GB. On a GPU machine use e.g. TORCH_SPEC="torch --index-url ...".
TORCH_SPEC ?= torch==2.13.0
DEMO ?= demo

.PHONY: install demo test test-all lint typecheck golden bench bench-doc bench-env print-torch-spec clean

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

# Benchmarks (docs/benchmarks.md): each times darkstack against a reference tool through
# benchmarks/_harness.py and writes benchmarks/results/<bench>.json; bench-doc renders the page
# from those files. Small sizes, so that the whole run takes about half an hour on 2 cores;
# every script takes larger ones (see its --help).
BENCH := cd benchmarks && nice -n 10 ../$(BIN)/python
bench: install bench-env
	$(BENCH) bench_universe.py
	$(BENCH) bench_ingest.py
	$(BENCH) bench_scaling.py
	$(BENCH) bench_observe.py
	$(BENCH) bench_photometry_smoothing.py
	$(BENCH) bench_fields.py   # the issue-17 sizes: ~5 min, ~8 GB of spill in the temp folder
	$(BENCH) bench_streaming.py
	$(BENCH) bench_train.py
	$(BENCH) bench_ray_jobs.py
	$(BENCH) bench_ensemble.py
	$(BENCH) bench_checkpoint.py
	$(MAKE) bench-doc

bench-doc: install
	$(BIN)/python tools/benchmarks_doc.py

# scida, the ingest benchmark's reference, requires zarr < 3 and darkstack zarr >= 3: it gets
# an environment of its own, which bench_ingest.py runs it in.
bench-env: .venv-scida/.installed
.venv-scida/.installed:
	$(PYTHON) -m venv .venv-scida
	.venv-scida/bin/python -m pip install --quiet "scida==0.3.6"
	touch $@

print-torch-spec:
	@echo "$(TORCH_SPEC)"

clean:
	rm -rf $(VENV) .venv-scida $(DEMO) build dist
