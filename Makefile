# minipretrain — everyday commands. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The project's corpora come from the offline mirror beside the checkout when it is there.
MIRROR ?= $(abspath ../shared/data)
export MINIPRETRAIN_DATA_MIRROR ?= $(if $(wildcard $(MIRROR)),$(MIRROR),)

.PHONY: help install test test-fast bench clean

help:
	@echo "make install   create .venv and install minipretrain with its dev extras"
	@echo "make test      run the whole test suite with coverage of minipretrain/"
	@echo "make bench     speed and memory benchmarks (not tests)"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q -n auto --dist loadfile --cov=minipretrain --cov-report=term-missing:skip-covered --cov-fail-under=90 tests

test-fast: install
	$(PY) -m pytest -q -x tests

bench: install
	$(PY) benchmarks/ops.py

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov
