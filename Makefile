# Two commands set everything up on a fresh machine:
#   make demo   create .venv, install OpenIR, run the end-to-end demo on a synthetic patient
#   make test   create .venv, install OpenIR with test extras (and Chromium for the browser
#               tests when run as root on Debian), run ruff, the import contract (the layers of
#               the design) and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/openir demo --out openir-demo

test: $(STAMP)
	sh scripts/ensure-browser.sh
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

bench: $(STAMP)
	for b in benchmarks/*_bench.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) openir-demo .pytest_cache .ruff_cache
