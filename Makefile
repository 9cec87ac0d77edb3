# One command to set up and run the main job, one to set up and run the tests.
# The venv is created on first use; rerunning is cheap.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0: on this project's machines pip serves the CPU wheel from local disk. On a laptop
# without a GPU, `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu` avoids the CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup demo test fuzz-long clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[dev,gpu]"
	touch $@

demo: setup
	$(VENV)/bin/qlts demo

test: setup
	$(PY) -m pytest -q

# hypothesis, 2,000 examples per public entry point (~20 min; counts in benchmarks/results/reliability.md)
fuzz-long: setup
	QLTS_FUZZ_PROFILE=long $(PY) -m pytest tests/fuzz -p no:cacheprovider --hypothesis-show-statistics

clean:
	rm -rf $(VENV) qlts_demo_output .pytest_cache
