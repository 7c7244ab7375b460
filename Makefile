# Époque: `make run` serves the lab, `make test` runs every test. Both install on first use;
# `make test` also provisions what its tests need (scripts/provision: Debian packages, services).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install provision run test test-gpu screenshots bench lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -c 'import ensurepip, venv' 2>/dev/null || { echo "python3 cannot \
	create a virtualenv: install Debian's python3-venv (scripts/provision does, as root)" >&2; exit 1; }
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/epoque serve

# Debian packages, PostgreSQL, Redis and the `test` database, when absent (quick when present).
provision:
	scripts/provision

# Every test but the CUDA ones (`make test-gpu`); PYTEST_ARGS='-p randomly' shuffles the order.
test: provision $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The CUDA tests: they fail, saying why, on a machine without CUDA.
test-gpu: provision $(STAMP)
	$(PY) -m pytest -m cuda $(PYTEST_ARGS)

# docs/img/ from the browser tests' screenshots, on purpose (the tests write only their artifacts).
screenshots: provision $(STAMP)
	$(PY) -m pytest -m browser $(PYTEST_ARGS)
	cp tests/e2e/artifacts/docs/*.png docs/img/

lint: $(STAMP)
	$(VENV)/bin/ruff check backend worker tests

# `make bench DEVICE=cuda` also runs the GPU benchmark (bench/gpu.py) on the GPU.
DEVICE ?= cpu
bench: $(STAMP)
	$(PY) -m bench --device $(DEVICE)

clean:
	rm -rf $(VENV) data .pytest_cache .schemathesis tests/e2e/artifacts test-output
