PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
# Links in e-mails (sent by the worker, outside any request) point at the port the site runs on.
RUN_ENV := DEBUG=$${DEBUG:-1} SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)}

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hpcgate needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	@mkdir -p var
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	$(RUN_ENV) $(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  hpcgate is starting on http://127.0.0.1:$(PORT)/"
	@echo "    apply:  http://127.0.0.1:$(PORT)/apply/"
	@echo "    admin:  http://127.0.0.1:$(PORT)/admin/"
	@echo "    API:    http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  Demo log-ins (password hpcgate-demo):"
	@echo "    applicant, applicant2  startup founders"
	@echo "    reviewer, reviewer2    reviewers"
	@echo "    manager                call manager"
	@echo "    operator               operator"
	@echo "    governance             governance officer"
	@echo "  Ctrl-C stops the web app, the Celery worker and Celery beat."
	@echo ""
	PORT=$(PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(RUN_ENV) $(BIN)/honcho start -f Procfile

test: install
	@mkdir -p var
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

# bench.scale builds its PostgreSQL databases once (minutes) and reuses them.
BENCH_SCALE_ARGS ?= --runs 3

bench: install
	$(BIN)/python -m bench.ingest --runs 3
	$(BIN)/python -m bench.scale $(BENCH_SCALE_ARGS)
	$(BIN)/python -m bench.draft

clean:
	rm -rf $(VENV) var .pytest_cache
