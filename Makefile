# The two set-up commands of the README: `make run` and `make test`.
# Each creates the virtualenv and installs the project into it when needed.
# `make test` also installs the Debian packages the tests use when they are missing
# (redis-server, Chromium and its driver, nginx, PostgreSQL, Node.js and npm) and Node's
# ws (tests/node/, from the npm registry), then runs pytest and the Autobahn suite.
# `make matrix` runs the tests on every supported Python and Django (noxfile.py), each in
# a virtualenv of its own; `make matrix NOX_ARGS='-p 3.13'` those on Python 3.13,
# `make matrix MATRIX_JOBS=2` two at a time.
# `make bench` runs the benchmarks (bench/README.md), with wrk from Debian;
# `make bench BENCH_ARGS='--scenarios S1,S3 --runs 1'` passes options, as
# `make autobahn AUTOBAHN_ARGS='--client kosoku'` does (autobahn/README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
ADDRPORT ?= 127.0.0.1:8000
BIN := $(VENV)/bin
# Sessions of `make matrix` at once; CI runs two, one per core.
MATRIX_JOBS ?= 1
MATRIX_ROW := matrix-row.md

# command:package pairs of what the tests run, and where Debian has them.
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium chromedriver:chromium-driver \
    nginx:nginx pg_ctl:postgresql node:nodejs npm:npm
# Node's ws, a permessage-deflate client of the interop tests (tests/test_interop.py).
NODE_MODULES := tests/node/node_modules
# The same for the benchmarks: wrk, the HTTP load generator.
BENCH_PACKAGES := wrk:wrk
# Where Debian puts commands that are not on every user's PATH: nginx in /usr/sbin,
# pg_ctl in PostgreSQL's versioned directory.
SYSTEM_BIN := /usr/sbin /usr/lib/postgresql/*/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test matrix autobahn bench install system-packages bench-packages node-modules

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py superserver $(ADDRPORT)

test: $(VENV)/.installed system-packages node-modules
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python autobahn/run.py

# The virtualenvs are made one after the other (each editable install writes the tree's
# egg-info), then the tests run MATRIX_JOBS sessions at a time; a table of them ends it.
matrix: $(VENV)/.installed system-packages node-modules
	rm -f .nox/*/tmp/$(MATRIX_ROW)
	$(BIN)/nox --install-only $(NOX_ARGS)
	$(BIN)/nox -R -j $(MATRIX_JOBS) $(NOX_ARGS) || status=$$?; \
	echo '| combination | tests run | passed | failed | skipped | time |'; \
	echo '|---|--:|--:|--:|--:|--:|'; \
	cat .nox/*/tmp/$(MATRIX_ROW); exit $${status:-0}

autobahn: $(VENV)/.installed
	$(BIN)/python autobahn/run.py $(AUTOBAHN_ARGS)

bench: $(VENV)/.installed bench-packages
	$(BIN)/python -m bench $(BENCH_ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

# $(call install-missing,command:package pairs,who uses them): apt-get install the
# packages whose command is not found.
define install-missing
@missing=$$(PATH="$$PATH$$(printf ':%s' $(SYSTEM_BIN))"; \
    for pair in $(1); do \
    command -v $${pair%%:*} >/dev/null || echo $${pair#*:}; done); \
if [ -n "$$missing" ]; then \
    echo "Installing the Debian packages $(2) use:" $$missing; \
    $(SUDO) apt-get update -qq && \
    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
fi
endef

system-packages:
	$(call install-missing,$(SYSTEM_PACKAGES),the tests)

bench-packages:
	$(call install-missing,$(BENCH_PACKAGES),the benchmarks)

node-modules: system-packages $(NODE_MODULES)/.installed

$(NODE_MODULES)/.installed: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@
