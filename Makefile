# Two commands set everything up on a fresh machine with Python >= 3.11:
#   make run   - create .venv, install, run the demo (utility servers, gateway + dashboard, simulated fleet) until interrupted
#   make test  - create .venv, install, run lint, types and the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint types pytest browser clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/dergw demo --forever

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) browser
	$(BIN)/pytest -q -n 2 --dist loadfile

# The dashboard's browser test drives Debian's chromium through Playwright (which never downloads a browser here).
# Installed when missing and we are root with apt-get (a fresh machine, CI); otherwise that test fails saying so.
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] || { \
		echo "installing Debian's chromium for the dashboard browser test (about 2 minutes, once)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM) || echo "WARNING: $(CHROMIUM) is missing and could not be installed (needs root and apt-get);" \
		"the dashboard browser test will fail until 'apt-get install chromium' is run" >&2

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
