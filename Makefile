# Quick start: `make demo` (venv, install, run the bundled example) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The demo finds the two seeded bugs, so it exits 1 by design (mismatches found).
demo: $(STAMP)
	@$(BIN)/shadow demo; code=$$?; \
	if [ $$code -eq 1 ]; then echo "shadow demo: exit 1 = mismatches found, as expected" >&2; exit 0; fi; \
	exit $$code

lint: $(STAMP)
	$(BIN)/ruff check shadow tests
	$(BIN)/ruff format --check shadow tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) shadow-runs .pytest_cache .mypy_cache .ruff_cache
