# The README's set-up: `make install`, then `make demo`; `make test` runs the suite.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/resnets train

test: $(STAMP)
	$(PYTHON) -m pytest -q -n 2 --maxschedchunk 1  # two workers, one torch thread each, slow tests first (tests/conftest.py)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
