# ran-distill: `make demo` and `make test` work on a fresh machine (they install what they need).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned in the same pip command as everything else: an unpinned resolve would
# pull a multi-GB CUDA build.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# two workers (pytest-xdist): the suite is CPU-bound and the tests use ephemeral ports
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint install system-deps proto bench bench-sim clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)" -e ".[train,distributed,dev]"
	rm -f $(VENV)/.installed-* && touch $@

# Debian's Prometheus server: the metrics tests and the demo scrape the xApp with a real one.
# HAProxy 2.6 and Redis 7: the scale-out tests run the cell-affine proxy and the state
# handover for real.
SYSTEM_PACKAGES := prometheus haproxy redis-server
system-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && \
	  command -v haproxy >/dev/null && command -v redis-server >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

# ruff (lint + format) over everything; mypy over linkadapt, service and ran_distill at the
# strictness documented in pyproject.toml ([tool.mypy]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install system-deps lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: install system-deps
	$(BIN)/python -m ran_distill demo

proto: install
	$(BIN)/python -m service.proto_gen.build

bench-sim: install
	$(BIN)/python benchmarks/sim_throughput.py --write

bench: bench-sim

clean:
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache
