# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
# TORCH pins the PyTorch wheel installed first; override it for a CUDA build elsewhere,
# e.g. `make test TORCH=torch`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cfglab-installed
PYTEST := scripts/pytest-nonempty $(PY)

.PHONY: demo test test-fast test-slow clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[all,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cfglab reproduce --profile quick --out report

test: test-fast test-slow

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# Large-d checks; CI runs them at reduced size (CFGLAB_SLOW_SCALE=ci).
test-slow: $(STAMP)
	CFGLAB_SLOW_SCALE=$${CFGLAB_SLOW_SCALE:-ci} $(PYTEST) -m slow

clean:
	rm -rf $(VENV) report .pytest_cache
