# tiktokfer: `make demo` and `make test` are the whole set-up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Machines without internet fetch weights and media from a local folder laid out like
# weights/manifest.tsv; here that is ../shared. Elsewhere leave it empty to use the URLs.
TIKTOKFER_FETCH_SOURCE ?= $(if $(wildcard ../shared/MANIFEST.tsv),$(abspath ../shared),)
export TIKTOKFER_FETCH_SOURCE
export DAGSTER_HOME ?= $(abspath .tiktokfer/dagster)
APT_PACKAGES := ffmpeg espeak-ng chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo demo-production test test-fast lint install fetch system-deps ui bench clean
# pytest markers (pyproject.toml) of the tests that need a server, a browser or minutes of pipeline
FAST_TESTS := not (postgres or s3 or browser or slow)

system-deps:  ## Debian packages the pipeline and its test media need
	@missing=""; for b in ffmpeg ffprobe espeak-ng chromium; do command -v $$b >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); fi

# With compiled bytecode: where PYTHONDONTWRITEBYTECODE is set nothing is cached, and every process that imports the
# code location and torch compiles them again (a unique_faces child of bench_scale, profiled on 2 loaded cores: 43 s
# of its 81 s in compile()).
$(VENV)/.installed: pyproject.toml
	command -v uv >/dev/null || python3 -m pip install -q uv
	[ -x $(PY) ] || uv venv -q $(VENV) --python python3
	uv pip install -q --compile-bytecode --python $(PY) -e ".[test]"
	touch $@

install: $(VENV)/.installed

fetch: install
	$(VENV)/bin/tiktokfer fetch

demo: system-deps install  ## build the demo challenge and materialise every asset on local storage
	mkdir -p $(DAGSTER_HOME) && touch $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/tiktokfer demo

demo-production: system-deps install  ## the demo on the production stack: SeaweedFS (S3) on loopback + this machine's Postgres
	scripts/production_stack.sh

test: system-deps fetch  ## the test suite (CI runs exactly this)
	$(VENV)/bin/pytest -q

test-fast: system-deps fetch  ## pure and in-memory tests: no Postgres, S3, browser or slow pipeline fixtures
	$(VENV)/bin/pytest -q -m "$(FAST_TESTS)"

lint: install  ## ruff (configuration in pyproject.toml)
	$(VENV)/bin/ruff check .

ui: install  ## the Dagster UI on the local results (http://127.0.0.1:3000)
	mkdir -p $(DAGSTER_HOME) && touch $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install fetch  ## bench/ imports the test servers of tests/support/
	for b in bench/bench_*.py; do echo "== $$b"; PYTHONPATH=tests $(PY) $$b || exit 1; done

clean:
	rm -rf .tiktokfer data/demo test-artifacts
