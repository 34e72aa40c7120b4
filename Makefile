# Lightwave: the two commands a newcomer runs are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test bench install system-deps clean lint

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## run: install, initialise ./var on first start, serve LDAP/LDAPS on localhost
run: install
	$(BIN)/lightwave up $(ARGS)

## system-deps: Debian packages the tests use (OpenLDAP client tools, openssl)
system-deps:
	@command -v ldapsearch >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || { \
	  echo "installing ldap-utils and openssl (Debian packages)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ldap-utils openssl >/dev/null; }

## test: the whole suite (unit, real-client integration, architecture contracts)
test: install system-deps
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q $(ARGS)

## bench: benchmarks against OpenLDAP slapd (installs slapd if missing); never fails the build
bench: install
	$(BIN)/python -m bench.ldap_bench $(ARGS) || true

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
