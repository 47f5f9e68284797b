# deepseek-mock: every target sets up .venv by itself on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# HOST and PORT (make serve PORT=9000) override DEEPSEEK_MOCK_HOST / DEEPSEEK_MOCK_PORT, which
# the command reads itself; with neither, it serves on 127.0.0.1:8000.
HOST   ?=
PORT   ?=
.DEFAULT_GOAL := help

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(STAMP)  ## create .venv with the package and the dev tools

serve: $(STAMP)  ## run the mock on http://127.0.0.1:8000 (PORT=9000, ARGS="--dialect acedata")
	$(BIN)/deepseek-mock serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(ARGS)

fmt: $(STAMP)  ## format and auto-fix
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

check: $(STAMP)  ## formatting, lint, types (ruff + mypy --strict)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: check schemathesis  ## everything CI runs: checks, Schemathesis, the server's tests, the contract suite
	HYPOTHESIS_PROFILE=$(if $(CI),ci,dev) $(BIN)/pytest $(ARGS)

schemathesis: $(STAMP)  ## Schemathesis against a mock, driven by the OpenAPI documents it serves
	$(BIN)/python -m tests.schemathesis_run

contract: $(STAMP)  ## the contract suite against a mock it starts itself, for every dialect
	$(BIN)/pytest contract_tests $(ARGS)

contract-live: $(STAMP)  ## the contract suite against a real endpoint (CONTRACT_DIALECT, its key, CONTRACT_BASE_URL)
	$(BIN)/pytest contract_tests --live $(ARGS)

bench: $(STAMP)  ## the mock against bare Starlette (ARGS="--peers": and other mocks) as a table (ARGS="--quick")
	$(BIN)/python -m tests.bench $(ARGS)

need-deepseek-key:
	@test -n "$$DEEPSEEK_API_KEY" || { echo "make record-live needs DEEPSEEK_API_KEY (a real key); nothing was sent" >&2; exit 2; }

record-live: need-deepseek-key $(STAMP)  ## record live/cassettes/ from the real API again (DEEPSEEK_API_KEY; never run by CI)
	$(BIN)/pytest live --deepseek-mock-record-mode=all $(ARGS)

coverage: $(STAMP)  ## the test suite under coverage, with a report of what is not run
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage dist build

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: venv serve fmt check test schemathesis contract contract-live bench record-live need-deepseek-key coverage clean help
