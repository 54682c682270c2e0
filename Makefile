# The two commands a newcomer runs (README): `make render` and `make test`.
# Each sets up .venv from the pinned requirements on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
OUT    ?= out

.PHONY: render test lint setup
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

render: setup
	$(PY) -m components render --stack all --out $(OUT)

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

# Validate services.yaml and every Pulumi.<stack>.yaml (no Pulumi, under a second):
# the pre-commit hook and the first CI job.
.PHONY: check
check: setup
	$(PY) -m components check
