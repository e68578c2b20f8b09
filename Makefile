# The README's two commands: `make demo` and `make test`. Both start from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Wheels of every runtime dependency (and the build backend), so that the wheel test installs
# digest into a fresh virtual environment without any network (tests/e2e/test_wheel.py).
WHEELHOUSE := .wheelhouse

.PHONY: demo test check install lint typecheck unit golden clean messages bench wheelhouse

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(WHEELHOUSE)/.filled: pyproject.toml | $(STAMP)
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) . 'setuptools>=77'
	rm -f $(WHEELHOUSE)/blog_digest-*.whl
	touch $@

## wheelhouse: fill .wheelhouse/ (needed by the wheel test; `make test` does it)
wheelhouse: $(WHEELHOUSE)/.filled

## demo: install, import the demo subscribers, and dry-run the demo blog's next digest
demo: install
	$(BIN)/digest --config config.yaml subscribers import subscribers/example.csv
	$(BIN)/digest --config config.yaml send --dry-run

## test: system packages the tests drive, the environment, then lint, types and the suite
test: install wheelhouse
	scripts/system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PYTEST_ENV) $(BIN)/pytest $(PARALLEL) --durations=25
	$(BIN)/python bench/render.py --quick
	$(BIN)/python bench/send.py --quick
	$(BIN)/python bench/posts.py --quick
	$(BIN)/python bench/desk.py --quick

# Two processes, one per core of CI's machine (three were slower: 21 min 16 s against 20 min
# 28 s for all of .ci/run), a test file each at a time (a module's server, cluster or browser
# starts once); every test uses its own ports and folders. PARALLEL= runs it in one process.
PARALLEL ?= -n 2 --dist loadfile
# The suite's scratch folders in memory where there is room (scripts/memory-tmpdir): its
# databases, clusters and virtual environments need not reach the disk.
TEST_TMPDIR := $(shell scripts/memory-tmpdir)
PYTEST_ENV := $(if $(TEST_TMPDIR),TMPDIR=$(TEST_TMPDIR))

## check: lint, types and the fast tests (no browser, PostgreSQL, Postfix, Dovecot or slow test)
FAST := not (browser or postgres or postfix or dovecot or slow)
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PYTEST_ENV) $(BIN)/pytest -q $(PARALLEL) -m "$(FAST)"

## bench: the full benchmarks (several minutes)
bench: install
	$(BIN)/python bench/render.py
	$(BIN)/python bench/send.py
	$(BIN)/python bench/posts.py
	$(BIN)/python bench/desk.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(WHEELHOUSE) var outbox .pytest_cache .mypy_cache .ruff_cache build dist

## messages: extract translatable strings, update the catalogues, compile them
messages: install
	$(BIN)/pybabel extract -F babel.cfg -o digest/locale/messages.pot --no-location \
		--sort-output --omit-header -k _ -k ngettext:1,2 -k translate:2 .
	$(BIN)/pybabel update -i digest/locale/messages.pot -d digest/locale --no-fuzzy-matching \
		--ignore-obsolete
	$(BIN)/pybabel compile -d digest/locale --statistics
