# govshare — developer commands. GNU make.
#
#   make run     install what is missing, then run the whole platform with demo data (govshare up --demo)
#   make test    install what is missing, then run every test (make test ARGS="-k outbox -x")
#   make console build the operator console (services/console/web/dist) when missing or older than its sources
#   make lint    ruff (check + format --check), mypy, import rules (lint-imports)
#   make bench   run every bench/*.py; JSON results land in bench/results/
#   make clean   remove the installed environment (.venv, .tools); keeps the platform's data
#   make clean-data  remove the platform's data folder (.govshare, or $GOVSHARE_HOME)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

# Extra arguments for pytest (make test) or govshare up (make run): make test ARGS="-k feed -x".
ARGS ?=
# Test processes. The suite mostly waits (on servers, brokers, subprocesses), so more workers than cores pay;
# each worker runs its own embedded PostgreSQL and broker. make test TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 4
# Which bench scripts make bench runs: make bench BENCH=bench/outbox_throughput.py
BENCH ?= $(sort $(filter-out bench/_%,$(wildcard bench/*.py)))

# The machine's Python (3.11, 3.12 or 3.13); uv must use it and never download an interpreter of its own.
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
# PYTHON=python3.13 also finds an interpreter that pyenv has installed but not activated.
export UV_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || { \
  v=$$(echo '$(PYTHON)' | sed -n 's/^python\(3\.[0-9][0-9]*\)$$/\1/p'); \
  [ -n "$$v" ] && command -v pyenv >/dev/null && \
  "$$(pyenv root)/versions/$$(pyenv versions --bare | grep "^$$v\." | tail -1)/bin/python$$v" -c 'import sys; print(sys.executable)'; \
  } 2>/dev/null)
PYTHON_VERSION := $(shell "$(UV_PYTHON)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# The project's environment is ./.venv whatever virtualenv the calling shell has active.
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
unexport VIRTUAL_ENV

# uv: the one on PATH, else a project-local copy in .tools/ (installed from PyPI on first use).
SYSTEM_UV := $(shell command -v uv 2>/dev/null)
ifeq ($(SYSTEM_UV),)
UV := $(CURDIR)/.tools/bin/uv
UV_DEP := $(UV)
else
UV := $(SYSTEM_UV)
UV_DEP :=
endif

# Any change to a package definition or the lock reinstalls.
PROJECT_FILES := pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
# The stamp names the Python, so `make test PYTHON=python3.13` rebuilds the environment on that Python.
STAMP := .venv/.govshare-installed-$(PYTHON_VERSION)
RUN := $(UV) run --no-sync

.PHONY: help install run test lint bench clean clean-data console

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

install: $(STAMP)

$(CURDIR)/.tools/bin/uv:
	@echo "uv is not on PATH; installing it into .tools/ (a project-local tools venv)"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(STAMP): $(PROJECT_FILES) $(UV_DEP)
	@if [ -z "$$UV_PYTHON" ]; then echo "error: '$(PYTHON)' was not found; govshare needs Python 3.11, 3.12 or 3.13 (set PYTHON=/path/to/python3)" >&2; exit 1; fi
	@if ! "$$UV_PYTHON" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'; then \
	  echo "error: $$UV_PYTHON is Python $$("$$UV_PYTHON" -c 'import platform; print(platform.python_version())'), govshare needs 3.11, 3.12 or 3.13 (set PYTHON=/path/to/python3)" >&2; exit 1; fi
	@if ! $(UV) lock --check >/dev/null 2>&1; then \
	  echo "" >&2; \
	  echo "error: uv.lock is out of date with the pyproject.toml files." >&2; \
	  echo "       Run 'uv lock' (or '$(UV) lock'), review the change to uv.lock, commit it, then run make again." >&2; \
	  echo "" >&2; \
	  $(UV) lock --check >&2 || true; \
	  exit 1; fi
	@rm -f .venv/.govshare-installed-*
	$(UV) sync --all-packages --frozen
	@touch $@

# The operator console: npm packages from the committed package-lock.json, built by Vite into dist/ (not
# committed). Rebuilt when any source is newer than the build.
CONSOLE_WEB := services/console/web
CONSOLE_BUILT := $(CONSOLE_WEB)/dist/index.html
CONSOLE_MODULES := $(CONSOLE_WEB)/node_modules/.package-lock.json
CONSOLE_SOURCES := $(shell find $(CONSOLE_WEB)/src -type f 2>/dev/null) $(addprefix $(CONSOLE_WEB)/,index.html vite.config.js package.json)

console: $(CONSOLE_BUILT)

$(CONSOLE_MODULES): $(CONSOLE_WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm (Node.js 20 or newer) is needed to build the console" >&2; exit 1; }
	cd $(CONSOLE_WEB) && npm ci --no-audit --no-fund
	@touch $@

$(CONSOLE_BUILT): $(CONSOLE_SOURCES) $(CONSOLE_MODULES)
	cd $(CONSOLE_WEB) && npx --no-install vite build
	@touch $@

# The browser the console's tests drive: Debian's chromium (Playwright's own download cannot work here).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get install -y --no-install-recommends chromium fonts-wqy-microhei || { apt-get update && apt-get install -y --no-install-recommends chromium fonts-wqy-microhei; }

run: $(STAMP) console
	$(RUN) govshare up --demo $(ARGS)

test: $(STAMP) console $(CHROMIUM)
	$(RUN) pytest -n $(TEST_WORKERS) $(ARGS)

# Import rules live in [tool.importlinter] in pyproject.toml (see docs/import-rules.md).
# Every check runs even when an earlier one fails; the target fails if any did.
lint: $(STAMP)
	@failed=""; \
	for check in "ruff check ." "ruff format --check ." "mypy libs/common/src libs/stack/src $(wildcard services/*/src)" "lint-imports"; do \
	  echo "== $$check"; \
	  $(RUN) $$check || failed="$$failed\n  $$check"; \
	done; \
	if [ -n "$$failed" ]; then echo -e "\nlint failed:$$failed" >&2; exit 1; fi; \
	echo "lint: all checks passed"

bench: $(STAMP) console $(CHROMIUM)
	@mkdir -p bench/results
	@failed=""; \
	for script in $(BENCH); do \
	  echo "== $$script"; \
	  $(RUN) python "$$script" || failed="$$failed $$script"; \
	done; \
	echo "results: bench/results/"; \
	if [ -n "$$failed" ]; then echo "bench failed:$$failed" >&2; exit 1; fi

# .govshare (or $GOVSHARE_HOME) is the platform's data — the embedded PostgreSQL cluster, secrets and demo
# credentials — so `make clean` leaves it alone; `make clean-data` is the explicit way to drop it.
clean:
	rm -rf .venv .tools

clean-data:
	@home="$${GOVSHARE_HOME:-.govshare}"; \
	if [ -f "$$home/stack.json" ] && $(PYTHON) -c 'import json, os, sys; \
	pid = json.load(open(sys.argv[1])).get("supervisor_pid"); os.kill(int(pid), 0)' "$$home/stack.json" 2>/dev/null; then \
	  echo "error: govshare is running on $$home (see $$home/stack.json); stop it with Ctrl-C first" >&2; exit 1; fi; \
	echo "rm -rf $$home"; rm -rf "$$home"
