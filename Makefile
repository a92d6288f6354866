# Two set-up commands for a fresh machine: `make demo` and `make test`.
# `make demo` installs what every page of the docs uses: segdil with the export (ONNX) and
# tensorboard extras; `make test` adds the dev extra. Then `source .venv/bin/activate`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-fast lint install install-dev clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(TORCH)

$(VENV)/.installed: $(VENV)/bin/activate pyproject.toml Makefile
	$(PIP) install -q -e ".[export,tensorboard]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/bin/activate pyproject.toml Makefile
	$(PIP) install -q -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/segdil compare --preset demo --out runs/demo

test: install-dev
	$(PY) -m pytest -n 2 --dist loadgroup -q

# everything but the end-to-end runs in subprocesses (marked slow): under a minute
test-fast: install-dev
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "not slow"

lint: install-dev
	$(VENV)/bin/ruff check segdil tests tools lab

clean:
	rm -rf $(VENV) runs
