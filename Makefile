# Two commands do all set-up on a fresh machine with Python 3.11+ and make:
#   make serve   install into .venv and serve the API on SQLite under ./var (dev keys generated)
#   make test    install into .venv and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install serve test test-pg lint bench bench-smoke audit clean migrations schema image-smoke trusted

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

serve: install
	$(BIN)/consentry serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

test: install
	$(BIN)/python -m pytest

test-pg: install
	CONSENTRY_TEST_DATABASE_URL=$${CONSENTRY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m bench

bench-smoke: install
	$(BIN)/python -m bench --smoke

# Fails on a known vulnerability. Packages the advisory service cannot resolve (offline runners)
# are listed as skipped, not failed.
audit: install
	$(BIN)/pip-audit -r constraints.txt --progress-spinner off

# The served SDL, checked in: tests/test_contract.py fails when it drifts from what is served.
schema: install
	$(BIN)/consentry schema > schema/schema.graphql.tmp
	mv schema/schema.graphql.tmp schema/schema.graphql

# Trusted documents: schema/trusted/manifest.json (sha256 -> document) from schema/trusted/*.graphql,
# checked in; tests/test_trusted_documents.py fails when it drifts.
trusted: install
	$(BIN)/python -m schema.trusted

# Build the Dockerfile and run the image in production mode against the local PostgreSQL
# (docker when it works, else podman/buildah on a locally built base): see ops/image-smoke.
image-smoke:
	ops/image-smoke

clean:
	rm -rf $(VENV) var .pytest_cache

# Models changed? Nothing is released yet, so the initial migrations are regenerated whole.
migrations: install
	rm -f api/migrations/0*.py api/vault_migrations/0*.py
	$(BIN)/tortoise -c api.service.orm_cli.TORTOISE_ORM makemigrations
