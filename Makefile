# The two commands a new user needs: `make demo` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KAFKA_LOCAL := docker/kafka-local/kafka-local

.PHONY: install test demo lint kafka-start kafka-stop bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# Starts a local broker for the session when DRIFTLINE_KAFKA_BOOTSTRAP is unset (tests/conftest.py).
test: install
	$(PY) -m pytest

# A local broker on 127.0.0.1:9092 (or DRIFTLINE_KAFKA_BOOTSTRAP), then the demo against it.
demo: install
	@if [ -z "$$DRIFTLINE_KAFKA_BOOTSTRAP" ]; then $(KAFKA_LOCAL) start; fi
	$(VENV)/bin/driftline demo

lint: install
	$(VENV)/bin/ruff check driftline tests bench
	$(VENV)/bin/ruff format --check driftline tests bench
	$(VENV)/bin/mypy

kafka-start:
	$(KAFKA_LOCAL) start

kafka-stop:
	$(KAFKA_LOCAL) stop
