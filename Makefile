# One entry point for people and CI. `make test` is the README's test command; .ci/run calls it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSYNC := .venv-insync
CHECKOV := .venv-checkov
PIP_FLAGS := -q --disable-pip-version-check

.PHONY: install test test-main test-insync lint format demo stack bench schemas constraints clean soak

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade 'pip>=24'  # older pip mis-matches extras with '_'
	$(BIN)/pip install $(PIP_FLAGS) -c constraints.txt -e '.[ib_async,sim,test,dev]'
	touch $@

# ib_insync cannot share a virtualenv with ib_async: a second one proves the worker's broker
# module and ibsim's client scenario run on it too (tests marked ib_client).
$(INSYNC)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(INSYNC)
	$(INSYNC)/bin/pip install $(PIP_FLAGS) --upgrade 'pip>=24'
	$(INSYNC)/bin/pip install $(PIP_FLAGS) -c constraints.txt -e '.[ib_insync,sim,test]'
	touch $@

# checkov pins bc-python-hcl2, which installs the same `hcl2` module as python-hcl2.
$(CHECKOV)/.installed:
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install $(PIP_FLAGS) checkov==3.3.30
	touch $@

test: install $(INSYNC)/.installed $(CHECKOV)/.installed lint test-main test-insync

test-main:
	$(BIN)/pytest

test-insync:
	$(INSYNC)/bin/pytest -m ib_client tests/ibsim tests/worker

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# ibsim's scenario for demo and stack: a built-in name (default, two_accounts, ...) or a YAML path.
SCENARIO ?= default

demo: install
	$(BIN)/python -m worker.devstack demo --scenario '$(SCENARIO)'

stack: install
	$(BIN)/python -m worker.devstack stack --scenario '$(SCENARIO)'

bench: install
	$(BIN)/python -m benchmarks

# Fault-injection soak (soak/): RUNS runs of order-placing intents, faults chosen by SEED,
# stopped after DURATION seconds; exits non-zero on a duplicate, lost leg or missing outcome.
soak: install
	$(BIN)/python -m soak --runs $(or $(RUNS),200) --seed $(or $(SEED),1) --duration $(or $(DURATION),1800)

schemas: install
	$(BIN)/python -m worker.intents.schemas

constraints: install
	{ head -n 2 constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) $(INSYNC) $(CHECKOV) *.egg-info .pytest_cache .ruff_cache
