# imgrec: `make demo` and `make test` are the quick start; both install into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint unit clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/imgrec demo

lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest -q tests/unit

test: lint
	$(PY) -m pytest -q --durations=15

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
