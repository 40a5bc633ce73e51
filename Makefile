# The two commands of the README: `make book` and `make test`. Each makes the virtual
# environment first if it is missing or older than the requirements.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cdtl-installed
EXTRAS := offline,book,test,serve,bench
PROFILE := $(or $(CDTL_PROFILE),full)

# datasets are cached inside the repository unless the caller points elsewhere
export CDTL_DATA_DIR ?= $(CURDIR)/data/cache

.PHONY: help install test book clean-book clean

help:
	@echo "make test   run every test (unit tests + every chapter under nbval, smoke profile)"
	@echo "make book   build the book into _build/<profile>/_build/html (CDTL_PROFILE=smoke for a quick build)"

$(STAMP): pyproject.toml requirements-ci.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-ci.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	CDTL_PROFILE=smoke $(BIN)/python -m pytest chapters tests --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider $(PYTEST_ARGS)

book: $(STAMP)
	CDTL_PROFILE=$(PROFILE) $(BIN)/jupyter-book build . --path-output _build/$(PROFILE) -W --keep-going
	@echo "book: _build/$(PROFILE)/_build/html/index.html"

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) build .pytest_cache
