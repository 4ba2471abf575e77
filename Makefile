# The two commands of the README: `make demo` and `make test`. Both install first (idempotent).
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH):/usr/local/go/bin

.PHONY: install demo test test-unit test-integration lint bench clean

install:
	@bash deploy/local/install.sh

demo: install
	@$(PY) -m actors.demo

test: install lint
	$(PY) -m pytest tests

test-unit: install
	$(PY) -m pytest -m "not integration" tests

test-integration: install
	$(PY) -m pytest -m integration tests

lint: install
	$(VENV)/bin/ruff check .

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .stack contracts/build
