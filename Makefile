# The two commands: `make run` starts the whole demo, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv run test test-fast bench format demo-services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever requirements.txt changes.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

run: venv
	$(BIN)/python scripts/run_demo.py

test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The unit tier only: pure code, no database, Redis, services or subprocesses.
test-fast: venv
	$(BIN)/python -m pytest -m unit -q $(PYTEST_ARGS)

# The SPEC's performance figures as ratios measured in one run (needs wrk; about 2 minutes).
bench: venv
	@command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; \
		apt-get install -y -qq wrk 2>/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }; }
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py --variants final,fastapi_peer

demo-services: venv
	$(BIN)/python -m demo_services

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .run db.sqlite3 staticfiles .pytest_cache .ruff_cache .hypothesis \
		.import_linter_cache .ci-logs
