# Every target creates .venv when missing. `make run` and `make test` are the two promises.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint typecheck unit bench render clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,documents,data,api]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/eventfn db upgrade
	$(BIN)/eventfn inventory seed demo/inventory-seed.json
	$(BIN)/eventfn dev --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests functions bench demo
	$(BIN)/ruff format --check src tests functions bench demo

typecheck: $(STAMP)
	$(BIN)/mypy

include mk/checks.mk

test: lint typecheck hadolint checkov-venv
	$(BIN)/python -m pytest

bench: $(STAMP)
	bash bench/setup_peers.sh
	$(BIN)/python bench/runtime.py

render: $(STAMP)
	$(BIN)/eventfn render

clean:
	rm -rf $(VENV) .venv-checkov .eventfn .pytest_cache .mypy_cache .ruff_cache
