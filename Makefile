# The two commands of the README, `make book` and `make test`, and the GPU runner's `make test-gpu`.
# Each makes what it needs first: the virtual environment (when missing or older than the
# requirements), the book's own MathJax (npm), and for the rendering tests headless Chromium.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cdtl-installed
EXTRAS := offline,book,test,serve,bench
MATHJAX := book/node_modules/mathjax/package.json
comma := ,
# The book's profile: CDTL_PROFILE when set, else cdtl's own default (full where a CUDA GPU is
# present, smoke where none is). Expanded when a recipe runs, so after the environment exists.
PROFILE = $(or $(CDTL_PROFILE),$(shell $(BIN)/python -c "import cdtl.profiles as p; print(p.choose()[0])"))
MACHINE = $(shell $(BIN)/python -c "import cdtl.profiles as p; print('gpu' if p.cuda_available() else 'cpu')")
TIMINGS := $(BIN)/python book/cdtl_book/timings.py

# datasets are cached inside the repository unless the caller points elsewhere
export CDTL_DATA_DIR ?= $(CURDIR)/data/cache

PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
CPU_TIERS := not full and not gpu
FAST_TIER := not notebooks and not slow and not full and not gpu

.PHONY: help install lock lint mathjax browser test test-fast test-gpu test-full book book-executed timings results clean-book clean

help:
	@echo "make test      every test (smoke profile): unit tests, every chapter under nbval, recorded results,"
	@echo "               then the book built from those executions (-W) and every page checked in headless Chromium;"
	@echo "               it ends with the 25 slowest tests and chapter cells"
	@echo "make lint      ruff over the package, tests and benchmarks (make test runs it first)"
	@echo "make test-fast the fast unit tests alone (no chapter, nothing slow): well under a minute"
	@echo "make book      build the book into _build/<profile>/_build/html (full with a CUDA GPU, smoke without;"
	@echo "               CDTL_PROFILE=smoke|full chooses)"
	@echo "make book-executed  the book from chapters executed elsewhere (EXECUTED=build/executed/<profile>, left by"
	@echo "               make test-full or make test-gpu): each checked to be this code; nothing is executed again"
	@echo "make test-gpu  on a CUDA machine: every chapter under nbval in the full profile, then the full-profile ranges"
	@echo "make test-full on a CPU (hours): every chapter under nbval in the full profile, the full-profile ranges,"
	@echo "               then their execution times stored in book/timings.json (full, cpu)"
	@echo "make timings   store the last build's execution times of this profile and machine in book/timings.json"
	@echo "make results   the runs chapters quote but do not run on the page (tens of minutes on a CPU): each config's"
	@echo "               metrics.json, per-user table and provenance.json (command, date, machine, versions) under"
	@echo "               results/; RESULTS_ARGS=--overwrite replaces earlier ones"

# The environment installs from the lock, requirements-ci.txt: every package of the extras at one version, each
# file's sha256 checked (--require-hashes), so the recorded chapter results do not move with new releases; then the
# package itself, without resolving again (its build backend, setuptools, is in the lock). The lock's torch is the
# CPU build (2.13.0+cpu), published on the PyTorch CPU index rather than PyPI: that index is added unless pip already
# finds the wheel with no index at all (a local wheel folder in pip's own configuration).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN = $(shell sed -n 's/^\(torch==[^ ]*\).*/\1/p' requirements-ci.txt)
PIP := $(BIN)/python -m pip --disable-pip-version-check

$(STAMP): pyproject.toml requirements-ci.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r requirements-ci.txt \
	  $$($(PIP) install --quiet --dry-run --no-index --no-deps "$(TORCH_PIN)" >/dev/null 2>&1 || echo --extra-index-url $(TORCH_INDEX))
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Recompile the lock from pyproject.toml's extras after a change of ranges there. uv keeps every version the lock
# already pins unless asked (LOCK_ARGS=--upgrade, or --upgrade-package NAME); it runs from a scratch environment,
# never this one. LOCK_ARGS also takes where the CPU torch wheel is found (e.g. --find-links DIR where the PyTorch
# index is out of reach).
LOCK_ARGS ?= --extra-index-url $(TORCH_INDEX) --index-strategy unsafe-best-match
lock:
	test -x build/lock-env/bin/uv || { $(PYTHON) -m venv build/lock-env && build/lock-env/bin/pip install --quiet uv; }
	build/lock-env/bin/uv pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
	  --generate-hashes --python-version 3.11.7 --python-platform x86_64-manylinux_2_28 \
	  --custom-compile-command "make lock" $(LOCK_ARGS) -o requirements-ci.txt
	$(PYTHON) .ci/environment_yml.py

# MathJax, pinned in book/package.json (integrity in book/package-lock.json), served by the book itself
$(MATHJAX): book/package.json book/package-lock.json
	@command -v npm >/dev/null || { echo "make: npm (Node.js) is needed to install the book's MathJax: apt-get install npm" >&2; exit 1; }
	npm ci --prefix book --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(MATHJAX)

mathjax: $(MATHJAX)

# Headless Chromium for the rendering tests: found on PATH, or Debian's package installed where we may
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
	|| { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	       apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	     else echo "make: the rendering tests need headless Chromium: sudo apt-get install chromium (Debian)," \
	               "or install Google Chrome, or set CDTL_CHROMIUM to a Chromium binary" >&2; exit 1; fi; }

# One execution of every chapter: nbval runs it, its outputs become the book's execution cache
# (tests/support/nbval_cache.py), the book is built from that cache with warnings as errors and checked
# in Chromium (tests/book/test_rendered.py), and the recorded results are checked against their ranges.
# The linter (ruff, configured in pyproject.toml) over the package, tests, benchmarks and the book's extension
lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) mathjax browser lint
	CDTL_PROFILE=smoke $(PYTEST) chapters tests --nbval-lax --nbval-cell-timeout=1800 -m "$(CPU_TIERS)" --durations=25 $(PYTEST_ARGS)

# The fast tier while developing: unit tests that are neither slow nor a chapter
test-fast: $(STAMP)
	CDTL_PROFILE=smoke $(PYTEST) tests -m "$(FAST_TIER)" $(PYTEST_ARGS)

# The full profile on a CUDA machine (the GPU runner): the same chapters, recorded-results checks and checks of
# the prose against the records (tests/book/test_conventions.py: every glued key recorded, no number typed)
test-gpu: $(STAMP)
	@$(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
	  'make test-gpu needs a CUDA GPU that PyTorch sees; torch ' + torch.__version__ + ' sees none')"
	CDTL_PROFILE=full $(BIN)/python -m pytest chapters tests/book/test_chapter_results.py tests/book/test_conventions.py \
	  --nbval-lax --nbval-cell-timeout=3600 -p no:cacheprovider $(PYTEST_ARGS)
	$(TIMINGS) show --cache _build/full/_build/.jupyter_cache

# The full profile on a CPU (hours on two cores): every chapter under nbval, the full-profile ranges and prose checks,
# then the measured times stored as full/cpu. CUDA is hidden so a GPU machine measures its CPU too.
test-full: $(STAMP)
	CDTL_PROFILE=full CUDA_VISIBLE_DEVICES= $(BIN)/python -m pytest chapters tests/book/test_chapter_results.py \
	  tests/book/test_conventions.py --nbval-lax --nbval-cell-timeout=7200 -p no:cacheprovider $(PYTEST_ARGS)
	$(TIMINGS) record --profile full --machine cpu --cache _build/full/_build/.jupyter_cache

book: $(STAMP) mathjax
	$(BIN)/jupyter-book build . --path-output _build/$(PROFILE) -W --keep-going
	@echo "book ($(PROFILE) profile): _build/$(PROFILE)/_build/html/index.html"

# The book from chapters executed elsewhere (make test-full's or the GPU runner's build/executed/<profile>, or the
# workflows' full-profile artefact unpacked there): each is checked to be this code, cached, and nothing re-executed
EXECUTED ?= build/executed/$(PROFILE)
book-executed: $(STAMP) mathjax
	$(BIN)/python book/cdtl_book/executed.py $(EXECUTED) --profile $(PROFILE)
	$(BIN)/jupyter-book build . --path-output _build/$(PROFILE) -W --keep-going
	@echo "book ($(PROFILE) profile, from $(EXECUTED)): _build/$(PROFILE)/_build/html/index.html"

timings: $(STAMP)
	$(TIMINGS) record --profile $(PROFILE) --machine $(MACHINE) --cache _build/$(PROFILE)/_build/.jupyter_cache

# Runs too long for a chapter's page, quoted by the chapters from results/<name>/ (committed): chapter 05's
# MovieLens 1M new-item comparison and its full Amazon few-shot comparison, both with the pretrained encoder,
# chapter 02's scaling benchmark at 10^5 interactions (one process, then two under torchrun), and chapter 06's
# merged Food-Kitchen histories (C2DSR's setting), 8 epochs per model: the chapter says they are under-trained
RECORD := CDTL_PROFILE=full $(BIN)/python results/record.py
results: $(STAMP)
	$(RECORD) newitems_ml1m configs/newitems_ml1m.yaml --set "encoders=[frozen]" --set "protocol.ratios=[0.2]" $(RESULTS_ARGS)
	$(RECORD) fewshot_amazon configs/fewshot_amazon.yaml --set "encoders=[frozen]" $(RESULTS_ARGS)
	$(RECORD) scale_1e5 benchmarks/bench_scale.py --args="--sizes 100000 --no-implicit" --main scale.json $(RESULTS_ARGS)
	$(RECORD) sequential_amazon_merged configs/sequential_amazon_merged.yaml --set train.epochs=8 --set evaluate.bootstrap=200 $(RESULTS_ARGS)
	$(RECORD) sequential_amazon_budgets configs/sequential_amazon.yaml --set "protocol.budgets=[0.01,0.05]" \
		--set "models=[popularity,item_knn,sasrec,text_zero_shot,text_adaptor,text_full]" \
		--set model.sampled_softmax=1024 --set pretrain.epochs=15 --set train.epochs=30 $(RESULTS_ARGS)
	$(RECORD) sequential_amazon_sasrec_fixed configs/sequential_amazon.yaml --set "protocol.budgets=[0.01,0.05]" \
		--set "models=[sasrec]" --set model.sampled_softmax=1024 --set train.epochs=200 --set train.monitor=null $(RESULTS_ARGS)
	$(RECORD) sequential_amazon_controls configs/sequential_amazon.yaml --set "protocol.budgets=[0.01,0.05]" \
		--set "models=[text_target,sasrec_shuffled]" --set model.sampled_softmax=1024 --set train.epochs=200 \
		--set train.monitor=null --set evaluate.reference=text_target $(RESULTS_ARGS)

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) build .pytest_cache book/node_modules
