# Two commands for a newcomer: `make run` (demo on http://127.0.0.1:5000) and `make test`;
# `make test-fast` is the inner loop while working (under a minute).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
export FLASK_APP := wsgi

.PHONY: run test test-fast install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

static/vendor/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf static/vendor
	mkdir -p static/vendor/swagger-ui static/vendor/socket.io
	cp node_modules/swagger-ui-dist/swagger-ui.css \
	   node_modules/swagger-ui-dist/swagger-ui-bundle.js \
	   node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js static/vendor/swagger-ui/
	cp node_modules/socket.io-client/dist/socket.io.min.js static/vendor/socket.io/
	mkdir -p static/vendor/axe-core  # for the accessibility tests (tests/test_e2e_webapp.py)
	cp node_modules/axe-core/axe.min.js static/vendor/axe-core/
	mkdir -p static/vendor/leaflet  # the maps (static/map.js)
	cp -r node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css \
	   node_modules/leaflet/dist/images static/vendor/leaflet/
	touch $@

install: $(VENV)/.installed static/vendor/.installed

run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m marketplace.serve

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

# SQLite only, without the tests marked slow (browser, live servers, property tests, clock
# waits); `make test` runs them all, on both databases.
test-fast: install
	TEST_DATABASES=sqlite $(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check marketplace tests bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) node_modules static/vendor
