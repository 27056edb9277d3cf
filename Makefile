# django-actrack. The two commands:
#
#   make demo    the demo site on http://127.0.0.1:8000 (SQLite, seeded data)
#   make test    lint, migrations check, then the tests on SQLite and PostgreSQL
#                (PostgreSQL twice: as installed, then with prepared statements)
#
# `make help` lists the other targets. Options (make VAR=value):
#   PYTEST_ARGS   options for pytest (default: -n 2), e.g. PYTEST_ARGS="-x -k feed"
#   VENV          the virtualenv to use (default: .venv)
#   BASE_PYTHON   the Python that creates it (default: python3)
# .ci/postgres.sh says how the PostgreSQL database is chosen.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:

VENV ?= .venv
BASE_PYTHON ?= python3
PYTEST_ARGS ?= -n 2
# An extra requirement installed with the project (the Django 6.1 leg sets it).
DJANGO_REQUIREMENT ?=

PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The venv's tools come first for the .ci/ scripts too.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

DJANGO61_VENV := .venv-django61
DJANGO61_PYTHON := env PYENV_VERSION=3.12.1 python3.12

.PHONY: help demo test lint check-migrations test-sqlite test-postgres test-postgres-prepared \
	test-django61 chromium clean

help:
	@echo "make demo              run the demo site on 127.0.0.1:8000 (migrate + seed_demo first)"
	@echo "make test              lint + check-migrations + test-sqlite + test-postgres(-prepared)"
	@echo "make lint              ruff check, ruff format --check, mypy"
	@echo "make check-migrations  makemigrations --check --dry-run"
	@echo "make test-sqlite       pytest on SQLite"
	@echo "make test-postgres     pytest on PostgreSQL (see .ci/postgres.sh)"
	@echo "make test-postgres-prepared  the same with server-side binding, prepared statements"
	@echo "make test-django61     check-migrations + the test legs on Django 6.1 / Python 3.12"
	@echo "make clean             remove the venvs, caches, build output and demo.sqlite3"

# --- environments --------------------------------------------------------------
# Each install is redone when pyproject.toml or this Makefile changes.

# pip >= 25.1 reads [dependency-groups] (--group); older venvs are upgraded.
$(PY):
	$(BASE_PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml Makefile | $(PY)
	$(PIP) install -q -U 'pip>=25.1'
	$(PIP) install -q -e . $(if $(DJANGO_REQUIREMENT),'$(DJANGO_REQUIREMENT)')
	touch $@

$(VENV)/.installed-test: pyproject.toml Makefile | $(PY)
	$(PIP) install -q -U 'pip>=25.1'
	$(PIP) install -q -e . --group test --group lint \
		$(if $(DJANGO_REQUIREMENT),'$(DJANGO_REQUIREMENT)')
	$(PY) -c 'import django, sys; print("==> installed Django", django.get_version(), "on Python", sys.version.split()[0])'
	touch $@

# Debian's Chromium for the Playwright browser tests (apt-get only when missing).
chromium:
	bash .ci/chromium.sh

# --- the demo --------------------------------------------------------------------

demo: $(VENV)/.installed-demo
	$(PY) manage.py migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

# --- checks and tests ------------------------------------------------------------

test: $(VENV)/.installed-test chromium lint check-migrations test-sqlite test-postgres \
	test-postgres-prepared

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy actrack actrack_dashboard

check-migrations: $(VENV)/.installed-test
	env -u DATABASE_URL $(PY) manage.py makemigrations --check --dry-run

test-sqlite: $(VENV)/.installed-test chromium
	env -u DATABASE_URL bash .ci/pytest.sh $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-test chromium
	bash .ci/postgres.sh bash .ci/pytest.sh $(PYTEST_ARGS)

# PostgreSQL again with server-side binding and prepared statements (psycopg 3 options
# a site may set): raw SQL must then hold one command and bind its own parameters.
test-postgres-prepared: $(VENV)/.installed-test chromium
	bash .ci/postgres.sh env ACTRACK_TEST_DB_OPTIONS='server_side_binding=true&prepare_threshold=2' \
		bash .ci/pytest.sh $(PYTEST_ARGS)

# The same checks (lint aside) on Django 6.1, in its own venv on Python 3.12.
test-django61:
	@$(DJANGO61_PYTHON) --version >/dev/null 2>&1 || { \
		echo "test-django61 needs python3.12 (PYENV_VERSION=3.12.1 python3.12)" >&2; exit 1; }
	$(MAKE) VENV=$(DJANGO61_VENV) BASE_PYTHON='$(DJANGO61_PYTHON)' \
		DJANGO_REQUIREMENT='Django>=6.1,<6.2' check-migrations test-sqlite test-postgres \
		test-postgres-prepared

clean:
	rm -rf .venv .venv-django61 .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* \
		htmlcov dist build *.egg-info test-artifacts .staticfiles demo.sqlite3
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
