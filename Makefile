# mslam: `make install` sets a fresh machine up (idempotent), `make test` runs the test suite,
# `make demo` runs the egs/mini recipe end to end. `test` and `demo` install first.
SHELL := /bin/bash
PYTHON ?= python3.11
TORCH_VERSION := 2.11.0
PIP_VERSION := 25.0.1
VENV := tools/venv
STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test test-fast demo clean system-tools

install: $(STAMP)

# Reinstall only when the package description or this file changes.
$(STAMP): setup.py Makefile
	@$(MAKE) --no-print-directory system-tools
	@command -v $(PYTHON) >/dev/null || { echo "make install: $(PYTHON) not found (mslam needs Python 3.11; set PYTHON=...)" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@printf 'torch==%s\ntorchaudio==%s\n' $(TORCH_VERSION) $(TORCH_VERSION) > $(VENV)/constraints.txt
	# pip is pinned: pip >= 26 refuses espnet's dependency tree (ci_sdr declares a git URL in an extra).
	$(PY) -m pip install -q pip==$(PIP_VERSION)
	$(PY) -m pip install -q torch==$(TORCH_VERSION) torchaudio==$(TORCH_VERSION)
	# espnet is installed with torch held at $(TORCH_VERSION), so its requirements cannot move it.
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e '.[test,espnet,bench]'
	$(PY) -c "import torch, torchaudio, espnet, mslam; assert torch.__version__.startswith('$(TORCH_VERSION)'), torch.__version__"
	@touch $@
	@echo "make install: done ($(VENV))"

# System programs the toolkit calls: espeak-ng speaks the egs/mini corpus.
system-tools:
	@if ! command -v espeak-ng >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO="sudo -n"; \
	  else echo "make install: espeak-ng is missing and this user cannot run apt-get; install it (apt-get install espeak-ng)" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq espeak-ng >/dev/null; \
	fi
	@command -v espeak-ng >/dev/null

test: install
	$(PY) -m pytest -c test/pytest.ini --rootdir . test $(PYTEST_ARGS)

# The quick subset: everything but the end-to-end tests marked slow.
test-fast: install
	$(PY) -m pytest -c test/pytest.ini --rootdir . test -m "not slow" $(PYTEST_ARGS)

demo: install
	cd egs/mini && ./run.sh --size small

clean:
	rm -rf $(VENV) mslam.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
