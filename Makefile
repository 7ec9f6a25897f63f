# dgtrs-book: two commands for a new user (see README.md).
#   make book   create .venv if missing, install the lock, execute every notebook under the profile
#               that fits the hardware (PROFILE=auto: gpu with CUDA, else cpu) and build the HTML book
#   make test   the test suite (unit tests + smoke execution of every notebook + book build + browser check)
# The venv includes MathJax 3 from PyPI (django-static-mathjax, in requirements.txt): the book build
# copies it into _build/html/_static/mathjax, so formulas render offline (nothing is committed).
# While notebooks run, the terminal shows each cell and the library's progress; QUIET=1 keeps one
# line per notebook.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
QUIET ?=
RUNNER_FLAGS := $(if $(QUIET),--quiet,)
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ifeq ($(DGTRS_ONLINE),1)
OFFLINE :=
endif

.PHONY: venv book book-check test ablations bench gpu-check clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt -c requirements-lock.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: venv
	$(OFFLINE) $(PY) -m dgtrs_lib.publishing.runner --profile $(PROFILE) --book $(RUNNER_FLAGS)

book-check: venv
	$(OFFLINE) $(PY) -m dgtrs_lib.publishing.runner --profile $(PROFILE) --book --browser-check $(RUNNER_FLAGS)

test: venv
	$(OFFLINE) $(PY) -m pytest -q -p no:cacheprovider

ablations: venv
	$(OFFLINE) $(PY) -m dgtrs_lib.experiments.ablations --profile $(if $(filter auto,$(PROFILE)),cpu,$(PROFILE))

bench: venv
	$(OFFLINE) $(PY) scripts/bench_input.py
	$(OFFLINE) $(PY) scripts/bench_train.py --gradcache
	$(OFFLINE) $(PY) scripts/bench_eval.py

gpu-check: venv
	bash scripts/gpu_check.sh

clean:
	rm -rf _build artifacts results/smoke results/cpu results/gpu .cache
