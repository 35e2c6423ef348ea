# The verbs a newcomer needs. Every target installs what is missing first (into .venv).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# A hard bound on the whole suite (it takes ~11 min on 2 cores): a hang that no per-test timeout catches ends
# with pytest's summary and the interrupted stack (SIGINT), or is killed a minute later, not at CI's limit.
TEST_TIMEOUT_S ?= 1800

.PHONY: run test soak bench lint fmt typecheck clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## run: start the whole platform on embedded defaults, in the foreground (Ctrl-C stops it gracefully)
run: $(STAMP)
	$(BIN)/trading start --foreground

## test: the whole test suite (unit, integration against real Valkey/chDB, end to end through `trading`)
test: $(STAMP)
	timeout --signal=INT --kill-after=60 $(TEST_TIMEOUT_S) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

## soak: long chaos and soak rounds (many kill -9 rounds, long outages)
soak: $(STAMP)
	HFT_SOAK_ROUNDS=$${HFT_SOAK_ROUNDS:-25} $(BIN)/python -m pytest -q -m soak -p no:cacheprovider $(PYTEST_ARGS)

## bench: the performance figures of DESIGN.md, each beside its ceiling and naive baseline
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src/hftops

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
