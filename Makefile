# lean-ops-spark: the README and CI call these targets, nothing else.
#   make setup   venv + package with all extras + the JVM jars (cached; nothing re-downloaded)
#   make test    setup, then lint, type check and the whole test suite
# Variables: ICEBERG_VERSION=1.7.1 (Glue 5.0) | 1.10.0 (Glue 5.1, default);
#            MAVEN_REPO=<your mirror>; PYTHON=<python3.11>; VENV=<folder>.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
ICEBERG_VERSION ?= 1.10.0
MAVEN_REPO ?= https://repo1.maven.org/maven2
BIN := $(VENV)/bin
PYTEST_ARGS ?=

export LEAN_OPS_ICEBERG_VERSION := $(ICEBERG_VERSION)
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYARROW_IGNORE_TIMEZONE := 1

.PHONY: setup jars test lint typecheck pytest unit wheel demo clean help

help:
	@sed -n '2,6p' Makefile

setup: $(VENV)/.installed jars

$(VENV)/.installed: setup.py pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required (e.g. apt-get install openjdk-17-jre-headless)"; exit 3; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 required (3.11 recommended)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[all]"
	@touch $@

jars: $(VENV)/.installed
	$(BIN)/lean-ops setup-jars --with-aws --iceberg-version $(ICEBERG_VERSION) --maven-repo $(MAVEN_REPO)

lint: $(VENV)/.installed
	$(BIN)/ruff check lean_ops_spark jobs orchestration tests bench
	$(BIN)/ruff format --check lean_ops_spark jobs orchestration tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test: setup lint typecheck pytest

wheel: $(VENV)/.installed
	rm -rf dist && $(BIN)/python -m build --wheel --outdir dist .

demo: setup
	$(BIN)/lean-ops init && $(BIN)/lean-ops tables

clean:
	rm -rf .lean-ops dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache
