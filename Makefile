# Two entry points (see README):
#   make reproduce   set up .venv and regenerate every result with `dvc repro` (demo profile by default)
#   make test        set up .venv and run the unit tests and strict nbval on the executed notebooks
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# Offline copies of the small external inputs (see data/README.md); a sibling ../shared/data is used when present.
export SLICS_DATA_MIRROR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data))

.PHONY: venv reproduce test inputs lab benchmarks mutation clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# Check params.yaml in a second, run the pipeline, then say whether the rerun reproduced the committed results.
reproduce: venv
	python -m slics.utils.schema
	dvc repro
	python -m slics.utils.verdict

# The inputs the notebooks read (data/, git-ignored), built by the stages' own commands without DVC,
# so that the tests never rewrite dvc.lock.
inputs: venv
	python -m slics.utils.pipeline inputs

test: inputs
	HF_HUB_OFFLINE=1 python -m pytest --nbval -p no:cacheprovider

# Read and rerun the notebooks by hand, with the project's environment.
lab: inputs
	jupyter lab notebooks/

benchmarks: venv
	python benchmarks/bench_ista.py
	python benchmarks/bench_slics.py
	python benchmarks/bench_solvers.py
	python benchmarks/bench_splice.py
	python benchmarks/bench_pq.py
	python benchmarks/bench_cli.py
	python benchmarks/summary.py

# Mutation score of src/slics/core (mutmut, config in pyproject.toml; needs the `bench` extra):
# results/benchmarks/mutation.json. Slow, so not part of `make test`; MODULES=slics.core.retrieval narrows it.
mutation: venv
	python benchmarks/mutation.py $(MODULES)

clean-venv:
	rm -rf $(VENV)
