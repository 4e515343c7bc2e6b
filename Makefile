# Every set-up step, idempotent: a second `make run` only serves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
SECRET = $$(cat instance/secret_key)
# Debian packages the tests drive: the browser, the document tools that check exports, and nginx
# (deploy/nginx.conf in front of two processes, routing by clause; also the public pages' cache in
# `bench/public_bench.py --proxy nginx`).
DEBIAN_PACKAGES := chromium libreoffice-writer-nogui poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
	nginx-light

.PHONY: run run-scaled test setup python-deps assets translations system-deps migrate seed lint \
	test-python test-js bench clean lock

run: setup instance/secret_key migrate seed
	@echo "CodeDraft on http://$(HOST):$(PORT)/ (SQLite in instance/). Ctrl-C stops it."
	SECRET_KEY=$(SECRET) $(BIN)/codedraft serve --host $(HOST) --port $(PORT)

# Several processes on PostgreSQL + Redis (docs/deploy.md): one gunicorn per port; put the proxy in
# deploy/nginx.conf in front of them. Ctrl-C stops them all.
SCALED_DATABASE_URL ?= postgresql://root@127.0.0.1:5432/codedraft
SCALED_REDIS_URL ?= redis://127.0.0.1:6379/0
SCALED_PORTS ?= 5001 5002
run-scaled: setup instance/secret_key
	createdb -h 127.0.0.1 codedraft 2>/dev/null || true
	SECRET_KEY=$(SECRET) DATABASE_URL=$(SCALED_DATABASE_URL) $(BIN)/codedraft db upgrade
	SECRET_KEY=$(SECRET) DATABASE_URL=$(SCALED_DATABASE_URL) $(BIN)/codedraft seed-demo
	@echo "CodeDraft processes on ports $(SCALED_PORTS) (PostgreSQL + Redis). Ctrl-C stops them."
	trap 'kill 0' INT TERM; for port in $(SCALED_PORTS); do \
	  SECRET_KEY=$(SECRET) DATABASE_URL=$(SCALED_DATABASE_URL) REDIS_URL=$(SCALED_REDIS_URL) \
	  CODEDRAFT_BIND=$(HOST):$$port $(BIN)/gunicorn -c gunicorn.conf.py & done; wait

setup: python-deps assets translations

python-deps: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

assets: static/dist/.built
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@
static/dist/.built: node_modules/.installed scripts/build-assets.mjs $(shell find static/src -type f 2>/dev/null)
	npm run --silent build
	touch $@

translations: python-deps
	$(BIN)/pybabel -q compile -d codedraft/translations

instance/secret_key:
	mkdir -p instance
	$(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > $@
	chmod 600 $@

migrate: python-deps instance/secret_key
	SECRET_KEY=$(SECRET) $(BIN)/codedraft db upgrade

seed: migrate
	SECRET_KEY=$(SECRET) $(BIN)/codedraft seed-demo

# $(call install_missing,PACKAGES): apt-get installs whichever of the Debian PACKAGES are missing.
install_missing = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

system-deps: .system-deps
# Again whenever this file changes (a package added to the list): only missing ones are installed.
.system-deps: Makefile
	@$(call install_missing,$(DEBIAN_PACKAGES))
	touch $@

test: setup system-deps lint test-python test-js

# Migrations are left out: Alembic writes them, and they are reviewed rather than restyled.
LINTED := codedraft bench tests wsgi.py gunicorn.conf.py
lint: python-deps
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy

# Two workers: the suite mostly waits (servers, browsers, commits), so two halve its time on two
# cores. The tests sharing the machine's Redis stay on one worker (tests/conftest.py).
TEST_WORKERS ?= 2
test-python:
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

test-js:
	node --test tests/js/

# Each benchmark writes bench/results/<name>.json; run one with e.g. `make bench BENCHES=export_bench`.
BENCHES ?= export_bench feedback_bench feedback_rounds_bench search_bench realtime_bench realtime_scaled public_bench
bench: setup system-deps
	for b in $(BENCHES); do $(BIN)/python bench/$$b.py || exit 1; done

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^codedraft' > requirements.lock

clean:
	rm -rf $(VENV) node_modules static/dist .system-deps
