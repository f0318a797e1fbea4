# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates the virtual environment (.venv, Python 3.12) when it is missing.
PYTHON ?= python3.12
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint bench venv clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayesactiv demo

# pytest runs the docstring examples of the package beside the tests
TESTS := --doctest-modules bayesactiv tests

# the whole suite, slow tests and docstring examples included (this is what CI runs)
test: $(STAMP)
	$(PY) -m pytest -q -ra $(TESTS)

# the fast subset, for development (the docstring examples are fast)
test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not slow" $(TESTS)

lint: $(STAMP)
	$(VENV)/bin/ruff check bayesactiv tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/record.py
	$(PY) benchmarks/baselines.py
	$(PY) benchmarks/fit.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
