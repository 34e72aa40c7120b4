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
	$(BIN)/pip install -q -e '.[test,accel]'
	touch $(STAMP)

# the directory's hot path compiled with mypyc (tools/build_accel.py); LIGHTWAVE_PURE_PYTHON=1: interpreted
ACCEL := $(VENV)/.accel
ACCEL_SRC := $(shell $(PY) tools/build_accel.py --sources 2>/dev/null)

$(ACCEL): $(STAMP) $(ACCEL_SRC) vmdir/_accel.py tools/build_accel.py
	@echo "compiling the directory's hot path with mypyc (about 2 minutes, once per change of those files)"
	$(BIN)/python tools/build_accel.py
	touch $(ACCEL)

ifeq ($(LIGHTWAVE_PURE_PYTHON),1)
install: $(STAMP)
	$(BIN)/python tools/build_accel.py --clean
	rm -f $(ACCEL)
else
install: $(STAMP) $(ACCEL)
endif

## run: install, initialise ./var on first start, serve LDAP/LDAPS on localhost
run: install
	$(BIN)/lightwave up $(ARGS)

## system-deps: Debian packages the tests use (OpenLDAP client tools and slappasswd, openssl, curl)
# slapd only for slappasswd (hashes the password tests verify); preseeded not to set up a directory
system-deps:
	@command -v ldapsearch >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 \
	  && PATH="$$PATH:/usr/sbin" command -v slappasswd >/dev/null 2>&1 || { \
	  echo "installing ldap-utils, slapd (for slappasswd), openssl and curl (Debian packages)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "slapd slapd/no_configuration boolean true" | $$SUDO debconf-set-selections 2>/dev/null; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ldap-utils slapd openssl curl >/dev/null; }

## test: the whole suite (unit, real-client integration, architecture contracts)
test: install system-deps
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q $(ARGS)

## bench: benchmarks against OpenLDAP slapd (installs slapd if missing); never fails the build
bench: install
	$(BIN)/python -m bench.ldap_bench $(ARGS) || true

clean:
	-$(PY) tools/build_accel.py --clean
	rm -rf $(VENV) var .pytest_cache .hypothesis
