# The front door of the dossier service: `make run` starts it, `make test` checks it.
# CI (.ci/run) calls the same targets, so what passes here passes there.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Written after a successful install; older than the lock file means "install again".
INSTALL_STAMP := $(VENV)/.install-stamp
# Every package pip installs comes from a lock file with hashes (`make lock` refreshes
# both): the dev lock for make and CI, the runtime lock (same versions, no dev tools) for the image.
DEV_LOCK := requirements-dev.lock
RUNTIME_LOCK := requirements-runtime.lock
# What `make lock` resolves for: the Python of the Dockerfile and of CI, any platform.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet

# The embedded defaults keep everything (SQLite, objects, broker) under this directory.
DOSSIER_DATA_DIR ?= $(CURDIR)/var
PORT ?= 8000

# Debian packages the service and its tests need:
# - tesseract-ocr(-deu/-eng), poppler-utils (pdftoppm): OCR of scans for the search index;
# - ghostscript: PDF/A renditions in archival exports (SIP);
# - chromium: browser tests of the web interface drive Debian's chromium
#   through Playwright (no browser is ever downloaded); DejaVu (below) also renders test scans;
# - tzdata: Europe/Zurich for dates in search filters and facets;
# - nginx-light: `dossier serve` puts it in front of gunicorn, so slow clients wait in nginx
#   instead of holding gunicorn's threads (without it, gunicorn listens itself and warns);
# - libpango-1.0-0, libpangoft2-1.0-0: WeasyPrint lays out the letters (cost-approval
#   decisions) with Pango; fonts-dejavu-core, fonts-noto-core: the fonts embedded in those
#   PDF/A letters (DejaVu Sans for Latin script, Noto Sans Arabic and Noto Sans Ethiopic
#   for names in Arabic and Ge'ez script), so no letter of a name is lost.
RUNTIME_PACKAGES := tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng poppler-utils \
	ghostscript tzdata nginx-light libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
	fonts-noto-core
DEBIAN_PACKAGES := $(RUNTIME_PACKAGES) chromium

# Extra arguments for pytest, e.g. `make test PYTEST_ARGS='-k transfer -x'`.
PYTEST_ARGS ?=
# Extra arguments for bench/ingest.py, e.g. `make bench BENCH_ARGS='--sizes 1G --repeat 1'`.
BENCH_ARGS ?=

.PHONY: help venv install lock system-deps run test lint fmt bench clean distclean

help: ## Show this list of targets
	@echo "Usage: make <target>   (PORT=$(PORT), DOSSIER_DATA_DIR=$(DOSSIER_DATA_DIR))"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

venv: $(BIN)/python ## Create the virtual environment .venv (if missing)

$(INSTALL_STAMP): $(DEV_LOCK) pyproject.toml | $(BIN)/python
	@# --no-deps: the lock is complete, so pip installs exactly its lines and resolves
	@# nothing (pip 23 took weasyprint's "fonttools[woff]" for an unpinned requirement
	@# and refused the install); `pip check` then proves the set is consistent.
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r $(DEV_LOCK)
	@# The project itself: its dependencies are all in the lock, and setuptools (locked
	@# too) builds it in this venv, so nothing unpinned is fetched.
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@touch $@

install: $(INSTALL_STAMP) ## Install the package and dev tools into .venv from requirements-dev.lock

# The build backend (pyproject's build-system.requires) is locked along with the rest.
BUILD_REQUIRES = $(PYTHON) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))'

lock: install ## Resolve pyproject.toml anew into requirements-*.lock (then commit them)
	$(BUILD_REQUIRES) | $(BIN)/uv pip compile pyproject.toml - --extra dev $(LOCK_FLAGS) \
	  --upgrade --custom-compile-command 'make lock' -o $(DEV_LOCK)
	@# The runtime lock is constrained by the dev lock: the image runs the tested versions.
	$(BUILD_REQUIRES) | $(BIN)/uv pip compile pyproject.toml - $(LOCK_FLAGS) \
	  -c $(DEV_LOCK) --custom-compile-command 'make lock' -o $(RUNTIME_LOCK)

system-deps: ## Install missing Debian packages the tests need (apt-get, as root; no-op when present)
	@missing=""; \
	for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg -s "$$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then \
	  echo "system packages: all present ($(or $(strip $(DEBIAN_PACKAGES)),none needed))"; exit 0; \
	fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "system packages missing:$$missing (not a Debian system: install them yourself)" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "system packages missing:$$missing (run 'make system-deps' as root)" >&2; exit 1; \
	fi; \
	echo "installing system packages:$$missing"; \
	apt-get -o DPkg::Lock::Timeout=300 update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $$missing

run: install ## Start the service with demo data at http://127.0.0.1:$PORT (data in DOSSIER_DATA_DIR)
	@$(MAKE) --no-print-directory system-deps DEBIAN_PACKAGES="$(RUNTIME_PACKAGES)" || \
	  echo "warning: system packages missing: without OCR/PDF tools scans are not searchable and PDF/A renditions skipped; without nginx slow clients can block the server" >&2
	@export DOSSIER_DATA_DIR="$(DOSSIER_DATA_DIR)"; set -e; \
	$(BIN)/dossier init; \
	$(BIN)/dossier demo; \
	tokens="$$DOSSIER_DATA_DIR/demo-tokens.txt"; \
	if [ -f "$$tokens" ]; then \
	  echo "demo users' API tokens and web passwords (kept out of this log): $$tokens"; \
	  echo "try:  curl -H \"Authorization: Bearer \$$(awk '\$$1==\"ksd.meier\" {print \$$2}' \"$$tokens\")\" http://127.0.0.1:$(PORT)/api/v1/cases"; \
	  echo "web interface: http://127.0.0.1:$(PORT)/ (demo user ksd.meier, password: third column of that file)"; \
	else \
	  echo "no $$tokens: create a token with '$(BIN)/dossier tokens create --username ksd.meier'"; \
	fi; \
	exec $(BIN)/dossier serve --host 127.0.0.1 --port $(PORT)

lint: install ## Check the code: ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install system-deps lint ## Lint, then run the tests (PostgreSQL and Redis are used when they answer)
	@exports=$$($(BIN)/python scripts/detect_services.py) || exit 1; \
	eval "$$exports"; \
	status=0; $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; fi; \
	exit $$status

bench: install ## Measure upload throughput (bench/ingest.py starts its own server; BENCH_ARGS=...)
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

fmt: install ## Format the code with ruff
	$(BIN)/ruff format .

clean: ## Remove caches and build artefacts (keeps .venv, var/ and bench/out/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean ## Also remove .venv and the local data directory var/ (demo data, tokens)
	rm -rf $(VENV) var
