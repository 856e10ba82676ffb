PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint system-deps bench bench-quality clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## run: the analyzer; with no PROMETHEUS_URL, a local demo Prometheus with synthetic traffic too
run: $(VENV)/.installed
ifdef PROMETHEUS_URL
	$(BIN)/canary-analyzer serve --host $(HOST) --port $(PORT)
else
	$(BIN)/python -m app.demo --host $(HOST) --port $(PORT)
endif

## test: lint, then every test (real Prometheus, real server, Argo probe, real browser)
test: $(VENV)/.installed system-deps lint
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

system-deps:
	scripts/install-system-deps

## bench: speed against Prometheus' own, then a soak through Prometheus stopped and paused (about 5 minutes)
bench: $(VENV)/.installed system-deps
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/soak.py

## bench-quality: verdict quality over synthetic rollouts whose truth is known (a few minutes)
bench-quality: $(VENV)/.installed system-deps
	$(BIN)/python bench/judgment_quality.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache test-artifacts
