# The two set-up commands of the README: `make run` and `make test`.
# Each creates the virtualenv and installs the project into it when needed.
# `make test` runs pytest, then the Autobahn conformance suite (`make autobahn`).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
ADDRPORT ?= 127.0.0.1:8000
BIN := $(VENV)/bin

.PHONY: run test autobahn install

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py superserver $(ADDRPORT)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python autobahn/run.py

autobahn: $(VENV)/.installed
	$(BIN)/python autobahn/run.py

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@
