# make run: set up (once) and start the app.  make test: set up (once) and run every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test test-fast bench models setup setup-dev

$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(BIN)/.dev: requirements-dev.txt $(BIN)/.runtime
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

setup: $(BIN)/.runtime
setup-dev: $(BIN)/.dev

run: $(BIN)/.runtime
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: $(BIN)/.dev
	@test -x /usr/bin/chromium || echo "note: /usr/bin/chromium missing, browser tests will be skipped (apt-get install -y chromium)"
	$(BIN)/python -m pytest -q tests

test-fast: $(BIN)/.dev
	$(BIN)/python -m pytest -q tests --ignore=tests/e2e

bench: $(BIN)/.dev
	$(BIN)/python -m bench

models: $(BIN)/.runtime
	$(BIN)/python -m imageai train --dataset digits --out imageai/models/digits.safetensors
	$(BIN)/python -m imageai train --dataset shapes --out imageai/models/shapes.safetensors
