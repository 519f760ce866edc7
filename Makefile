# The two commands of the README: `make book` and `make test`. Both set up
# everything they need (a virtual environment in .venv) on a fresh machine.
#   PROFILE=smoke|cpu|paper   parameter set of the notebooks (default: cpu)
#   CBMIR_DATA_DIR=...        a pre-filled data folder (default: ../shared/data if present;
#                             otherwise every file comes from the cache ~/.cache/cbmir_tf/data,
#                             filled by verified downloads: see `cbmir-data list`)
#   CBMIR_MIRROR=URL          download from a mirror laid out by `cbmir-data mirror`

PROFILE ?= cpu
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/README.md),)
CBMIR_DATA_DIR ?= $(SHARED_DATA)
export CBMIR_DATA_DIR
endif
# TF_CPP_MIN_LOG_LEVEL=3 hides TensorFlow C++ log noise in the executed notebooks
export TF_CPP_MIN_LOG_LEVEL ?= 3
export MPLBACKEND ?= Agg
# NOTEBOOKS=notebooks/x.py ... runs only those; by default every chapter, in the order of _toc.yml
NOTEBOOKS ?=

.PHONY: help venv book notebooks html test dry-run clean clean-cache check-book check-results

help:
	@echo "make book [PROFILE=smoke|cpu|paper]   execute the notebooks and build the HTML book"
	@echo "make test                             run the test suite"
	@echo "make dry-run                          every chapter under PROFILE=paper, capped to a training step"
	@echo "                                      or two on a few images per code (output: _build/dry-run/)"
	@echo "make check-book                       open every built page in headless Chromium and check it"
	@echo "make check-results                    compare the regenerated tables with the committed record"
	@echo "make clean                            remove the built book and executed notebooks (keeps trained networks)"
	@echo "make clean-cache                      remove the trained networks (\$$CBMIR_MODEL_CACHE, default ~/.cache/cbmir_tf/models)"

$(BIN)/activate: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/activate

venv: $(BIN)/activate

notebooks: venv
	$(BIN)/python book/run_notebooks.py --profile $(PROFILE) $(NOTEBOOKS)

# A cpu or paper run builds from the committed record (book/chapters, book/generated); a smoke run
# from its own chapters under _build/smoke/, staged beside a copy of the pages (book_root).
html: venv
	@root=$$($(BIN)/python book/run_notebooks.py --profile $(PROFILE) --book-root) && \
	$(BIN)/jupyter-book build "$$root" --path-output . --warningiserror --keep-going
	@echo "Book: $(abspath _build/html/index.html)"

# The HTML is built even when a chapter failed (its page says why); make still
# fails at the end with the notebooks step's status.
book: venv
	@status=0; $(MAKE) --no-print-directory notebooks || status=$$?; \
	$(MAKE) --no-print-directory html || exit $$?; \
	exit $$status

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The paper profile's networks and code paths, each training capped at a step or two and the data
# at a few images per code (cbmir_tf.profiles.dry_run_settings). Writes only under _build/dry-run/ (no HTML);
# fails when any chapter failed.
dry-run: venv
	$(BIN)/python book/run_notebooks.py --profile paper --dry-run $(NOTEBOOKS)

# The built book and the smoke and dry-run outputs. The results of record (book/chapters,
# book/generated) are committed and stay, as do the trained networks (see clean-cache).
clean:
	rm -rf _build

# The train-once model cache (cbmir_tf.methods.cache): every network is trained again next time.
clean-cache: venv
	$(BIN)/python -c "from cbmir_tf.methods.cache import clean; clean()"

# Every page of the built book (_build/html) in headless Chromium at 1280 px: console errors,
# images, tables too wide for the column, log lines, tracebacks and machine paths.
# Needs Debian's chromium (apt-get install chromium) or CHROMIUM=/path/to/chromium.
check-book: venv
	$(BIN)/python book/check_book.py _build/html

# The regenerated tables (book/generated after `make book`) against the committed record.
check-results: venv
	$(BIN)/python book/check_results.py
