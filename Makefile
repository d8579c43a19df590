# Two commands on a fresh machine (Python 3.11+ and a C compiler):
#   make run   installs and starts the whole system on embedded defaults
#   make test  installs and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: install
	$(VENV)/bin/townsquare up

test: install
	$(PY) -m pytest

bench: install
	$(PY) bench/api.py

clean:
	rm -rf $(VENV) build *.egg-info
