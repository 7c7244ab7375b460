# Époque: `make run` serves the lab, `make test` runs every test. Both install on first use.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/epoque serve

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check backend worker tests

# `make bench DEVICE=cuda` also runs the GPU benchmark (bench/gpu.py) on the GPU.
DEVICE ?= cpu
bench: $(STAMP)
	$(PY) -m bench --device $(DEVICE)

clean:
	rm -rf $(VENV) data .pytest_cache
