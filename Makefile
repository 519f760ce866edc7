# The two commands of the README: `make book` and `make test`. Both set up
# everything they need (a virtual environment in .venv) on a fresh machine.
#   PROFILE=smoke|cpu|paper   parameter set of the notebooks (default: cpu)
#   CBMIR_DATA_DIR=...        where the data lives (default: ../shared/data if present,
#                             else ~/.cache/cbmir_tf/data, filled by downloads)

PROFILE ?= cpu
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
CBMIR_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),$(HOME)/.cache/cbmir_tf/data)
export CBMIR_DATA_DIR
# TF_CPP_MIN_LOG_LEVEL=3 hides TensorFlow C++ log noise in the executed notebooks
export TF_CPP_MIN_LOG_LEVEL ?= 3
export MPLBACKEND ?= Agg
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9]*.py))

.PHONY: help venv book notebooks html test clean

help:
	@echo "make book [PROFILE=smoke|cpu|paper]   execute the notebooks and build the HTML book"
	@echo "make test                             run the test suite"

$(BIN)/activate: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/activate

venv: $(BIN)/activate

notebooks: venv
	$(BIN)/python book/run_notebooks.py --profile $(PROFILE) $(NOTEBOOKS)

html: venv
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "Book: $(abspath _build/html/index.html)"

book: notebooks html

test: venv
	$(BIN)/python -m pytest -q

clean:
	rm -rf _build book/chapters/*.ipynb book/generated
