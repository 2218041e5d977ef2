# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench mutants clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when pyproject.toml changed since the last install.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-mutants: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,mutants]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/tradebot run

# Two workers, one a core: most tests wait on a simulated market or a subprocess, and the
# suite stays under five minutes on two cores (about 3.5; one worker takes about 6).
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist worksteal

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ibsim_bench.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/telegram_bench.py

# Mutation testing of the modules that guard money (not part of `make test`: it takes a while).
# A fresh run each time; niced, two workers, so it shares the machine. Scores per module at the end.
MUTANT_JOBS ?= 2
mutants: $(VENV)/.installed-mutants
	rm -rf mutants
	nice -n 15 $(BIN)/mutmut run --max-children $(MUTANT_JOBS)
	$(BIN)/python tools/mutation_score.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
