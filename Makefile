# b24emu: `make run` starts the emulator, `make test` runs the tests. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HASH := $(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)
# Two stamps: `make run` installs what serving needs, `make test` adds the test extra.
RUN_STAMP := $(VENV)/.installed-run-$(HASH)
TEST_STAMP := $(VENV)/.installed-test-$(HASH)

.PHONY: run test lint bench fuzz clean

$(PY):
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "make: $(PYTHON) -m venv failed;" \
	  "install Python 3.11+ with venv (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	rm -f $(VENV)/.installed-run-*
	touch $(RUN_STAMP)

$(TEST_STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(RUN_STAMP) $(TEST_STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/b24emu serve

# Chromium (for the inbox page's browser tests) is found or installed before any test runs.
test: $(TEST_STAMP)
	$(PY) tests/prerequisites.py
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check app tests bench

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info

bench: $(TEST_STAMP)
	$(PY) -m bench

fuzz: $(TEST_STAMP)
	B24EMU_FUZZ_EXAMPLES=$${B24EMU_FUZZ_EXAMPLES:-5000} $(PY) -m pytest -q tests/test_fuzz.py
