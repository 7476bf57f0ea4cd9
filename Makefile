# Backprop Lens — the two set-up commands: `make run` and `make test` (and `make mutate`).
# Both create .venv when missing and reinstall only when pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: run test lint format chromium bench mutate clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Backprop Lens needs Python 3.11 or newer, got " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installed for `make run`: the app and its runtime dependencies (editable, so edits show on restart).
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

# Installed for `make test`: the app plus the test extra, and PyTorch CPU when a wheel of it lies
# in TORCH_WHEELS (the reference that layer/optimizer tests compare against; they skip without it,
# and a multi-GB download from the index is never started by `make test`).
TORCH_WHEELS ?= /opt/wheels
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@if ls $(TORCH_WHEELS)/torch-2.13.0*.whl >/dev/null 2>&1; then \
		$(BIN)/python -m pip install --quiet --find-links $(TORCH_WHEELS) torch==2.13.0 \
		|| echo "note: torch not installed; the PyTorch reference tests will be skipped"; \
	else echo "note: no torch wheel in $(TORCH_WHEELS); the PyTorch reference tests will be skipped"; fi
	@touch $@ $(VENV)/.installed-run

# Installed for `make mutate`: the test install plus mutmut (the `mutate` extra).
$(VENV)/.installed-mutate: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,mutate]'
	@touch $@

run: $(VENV)/.installed-run
	$(BIN)/backprop-lens $(ARGS)

chromium:
	@sh tests/ensure_chromium.sh

test: $(VENV)/.installed-test chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks print ratios against a reference run in the same process (PyTorch CPU when installed).
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.engine_speed
	$(BIN)/python -m bench.stream
	$(BIN)/python -m bench.watch

# Mutation testing of the engine's math and bookkeeping ([tool.mutmut] in pyproject.toml; the
# campaign, its runtime and every equivalent mutant are in docs/testing.md). A fresh campaign each
# time, so the score printed is that of the code and tests as they are now; MUTANTS='name ...'
# (globs allowed) re-tests only those mutants of the last campaign, e.g. after adding a test.
# One BLAS/OpenMP thread per worker: mutmut forks a worker per mutant from a process that has run
# the tests, and a fork taken while a thread pool is alive can deadlock (seen: every mutant hung
# until its timeout); mutmut's workers already fill the cores.
MUTANTS ?=
MUTATE_ENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
mutate: $(VENV)/.installed-mutate
	@if [ -z "$(MUTANTS)" ]; then rm -rf mutants; fi
	@start=$$(date +%s); $(MUTATE_ENV) $(BIN)/mutmut run $(MUTANTS); rc=$$?; \
		echo "campaign: $$(( $$(date +%s) - start )) s"; exit $$rc
	$(BIN)/python tests/mutation_score.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache mutants
