# Quick start: `make demo` (venv, install, run the bundled example) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint typecheck unit fast audit bench clean

# constraints.txt pins every dependency to the versions CI tests and audits.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' -c constraints.txt
	touch $(STAMP)

# The demo needs only what a user installs: shadow and its report extra, no dev tools.
$(DEMO_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[report]' -c constraints.txt
	touch $(DEMO_STAMP)

# The demo finds the two seeded bugs, so it exits 1 by design (mismatches found).
demo: $(DEMO_STAMP)
	@$(BIN)/shadow demo; code=$$?; \
	if [ $$code -eq 1 ]; then echo "shadow demo: exit 1 = mismatches found, as expected" >&2; exit 0; fi; \
	exit $$code

# lint-imports checks the dependency contract written in pyproject.toml ([tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check shadow tests bench docs
	$(BIN)/ruff format --check shadow tests bench docs
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Every test, two at a time (a file's tests stay on one worker, which keeps the module
# fixtures that run the demo to one run), with the branch coverage of the in-process part
# (the processes the e2e tests start are not measured).
# shadow's own modules are compiled to bytecode first, as pip compiles an installed
# package: the e2e tests start hundreds of shadow processes, and where PYTHONDONTWRITEBYTECODE
# is set each start would compile every module again (about 0.15 s of CPU each).
unit: $(STAMP)
	$(BIN)/python -m compileall -q shadow >/dev/null
	$(BIN)/pytest -q -n 2 --dist loadfile --cov --cov-report=term

# The fast loop while working: the in-process tests only, no process started.
fast: $(STAMP)
	$(BIN)/pytest -q -m "not e2e"

test: lint typecheck unit

# Known vulnerabilities in the pinned versions fail it; packages it cannot check only warn.
audit: $(STAMP)
	$(BIN)/python .ci/audit $(BIN)/pip-audit constraints.txt

# One table of ratios (bench/suite.py, see bench/README.md); its servers and load generator
# are Debian's nginx and wrk, installed here when missing (the suite falls back without them).
bench: $(STAMP)
	@if ! command -v wrk >/dev/null || ! PATH="$$PATH:/usr/sbin" command -v nginx >/dev/null; then \
	  apt-get update -q && apt-get install -y -q nginx wrk \
	  || echo "bench: nginx and wrk could not be installed: aiohttp servers, no wrk" >&2; \
	fi
	$(BIN)/python -m compileall -q shadow >/dev/null
	$(BIN)/python bench/suite.py

clean:
	rm -rf $(VENV) shadow-runs .pytest_cache .mypy_cache .ruff_cache .coverage .import_linter_cache
