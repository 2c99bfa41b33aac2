# splitgo: make run · make test · make check · make lint · make bench
# Every target sets itself up from nothing: a .venv in the project, refreshed when
# pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint bench soak load clean

# Python writes its bytecode caches (and pytest its rewritten test modules) even where the
# environment says not to: without them every test worker and every node a test starts
# compiles the whole program again (a fifth of `make check`)
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python run.py $(ARGS)

# In CI, temporary folders live in the checkout: another pytest run on the same machine
# prunes the shared /tmp/pytest-of-<user> folders it finds, including a running one's.
CI_TMP := $(if $(CI),--basetemp=$(CURDIR)/.pytest-tmp,)

# two workers (one per core), each taking whole test files: a file's node and fixtures stay
# with one worker
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -rs $(CI_TMP) $(PYTEST_ARGS)

# everyday work: unit, runtime and integration tests (no node processes, no e2e)
check: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(CI_TMP) -p no:cacheprovider tests/unit tests/runtime tests/integration $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/python ../shared/tools/check_layers.py . || test ! -f ../shared/tools/check_layers.py

bench: $(STAMP)
	$(BIN)/python -m tests.bench $(ARGS)

# three nodes under a mixed load for 10 minutes, one SIGKILLed and restarted every 2;
# nothing lost or doubled (not part of `make test`): SOAK_SECONDS=180 make soak to shorten
soak: $(STAMP)
	$(BIN)/python -m tests.soak $(ARGS)

# a node under a realistic mix for 60 s, then its reads alone: make load ARGS="--seconds 10"
load: $(STAMP)
	$(BIN)/python -m tests.load $(ARGS)

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache build *.egg-info
