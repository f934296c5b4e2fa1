# The README's quickstart is `make run` and `make test`; both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= feeds.yaml
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: run test bench lint demo check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@ $(STAMP_TEST) $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/monitor --config $(CONFIG) run

demo: $(STAMP_RUN)
	$(BIN)/monitor demo

check: $(STAMP_RUN)
	$(BIN)/monitor --config $(CONFIG) check

test: $(STAMP_TEST)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP_BENCH)
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

lint: $(STAMP_TEST)
	$(BIN)/ruff check monitor alerts tests bench deploy
	$(BIN)/mypy
	$(BIN)/python -m deploy.verify

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
