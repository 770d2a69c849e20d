# nucleikit: `make book` sets everything up and builds the executed book; `make test` runs every test.
# Each stage prints its wall time. Variables: TORCH_SPEC, CONSTRAINTS, JOBS (chapters run side by side).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
export OMP_NUM_THREADS ?= 1
export PYTHONHASHSEED ?= 0
# Never export MPLBACKEND=Agg: it stops the inline backend from saving figures into the notebooks.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
CONSTRAINTS ?= constraints.txt
JOBS ?= 2
RUN := _build/runs/quick
EXEC := $(RUN)/executed
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
STAMP := $(VENV)/.installed
T0 = start=$$(date +%s)
T1 = echo "[stage] $@: $$(( $$(date +%s) - start )) s"

SOURCES := $(shell find nucleikit -name '*.py') $(wildcard notebooks/*.ipynb) pyproject.toml
BOOK_SOURCES := $(wildcard book/*.md book/*.bib book/images/*) _toc.yml _config.yml

.PHONY: venv vendor-js samples figures notebooks book lint unit nbval test clean
.DELETE_ON_ERROR:

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@$(T0); \
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV); \
	$(PY) -m pip install -q --upgrade pip; \
	$(PY) -m pip install -q "$(TORCH_SPEC)"; \
	$(PY) -m pip install -q -r requirements.txt $(if $(CONSTRAINTS),-c $(CONSTRAINTS)); \
	$(PY) -m pip install -q --no-deps -e .; \
	touch $@; echo "[stage] venv: $$(( $$(date +%s) - start )) s"

venv: $(STAMP)

_vendor/offline/.done: package.json package-lock.json
	@$(T0); \
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error; \
	rm -rf _vendor/offline; mkdir -p _vendor/offline/html-manager _vendor/offline/mathjax/es5/output/chtml/fonts; \
	cp node_modules/requirejs/require.js _vendor/offline/; \
	cp node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js _vendor/offline/html-manager/; \
	m=node_modules/mathjax/es5; o=_vendor/offline/mathjax/es5; \
	cp $$m/tex-mml-chtml.js $$o/; cp -r $$m/input $$m/ui $$m/a11y $$m/sre $$m/adaptors $$o/; \
	cp -r $$m/output/chtml/fonts/woff-v2 $$o/output/chtml/fonts/; cp $$m/output/chtml/fonts/tex.js $$o/output/chtml/fonts/; \
	touch $@; echo "[stage] vendor-js: $$(( $$(date +%s) - start )) s"

vendor-js: _vendor/offline/.done

samples: venv
	@$(T0); $(PY) -m nucleikit samples; $(T1)

figures: venv
	@$(T0); $(PY) book/chapter_map.py >/dev/null; $(T1)

# Every chapter, executed by papermill in the quick profile (reruns only when code or notebooks change).
$(RUN)/manifest.json: $(SOURCES) | venv samples
	@$(T0); $(PY) -m nucleikit run --profile quick --jobs $(JOBS) --out $(RUN); \
	echo "[stage] notebooks: $$(( $$(date +%s) - start )) s"

notebooks: $(RUN)/manifest.json

# The book, built from the executed notebooks with execution off (no third run).
_build/html/index.html: $(RUN)/manifest.json $(BOOK_SOURCES) _vendor/offline/.done
	@$(T0); \
	$(PY) book/stage.py $(EXEC) _build/stage >/dev/null; \
	$(VENV)/bin/jupyter-book build _build/stage --path-output . -W --keep-going -q; \
	! grep -rlE '<script[^>]+src="https?://' _build/html --include='*.html' \
	  || { echo "error: a page loads a script from the network"; exit 1; }; \
	echo "book: $$(pwd)/_build/html/index.html"; echo "[stage] book: $$(( $$(date +%s) - start )) s"

book: _build/html/index.html

lint: venv
	@$(T0); $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(T1)

# The final, single pytest: unit tests, the nbval pass over the executed notebooks (checkpoints reused),
# the exercise and tamper checks, and the headless-browser check of the built book.
test: lint book
	@$(VENV)/bin/pytest -n 2 --dist loadfile tests $(EXEC) $(NBVAL) -rfEs --durations=15

unit: venv
	$(VENV)/bin/pytest -n 2 tests -m "not browser" -q

nbval: venv
	$(VENV)/bin/pytest -n 2 --dist loadfile $(EXEC) $(NBVAL) -q

clean:
	rm -rf _build _vendor node_modules
