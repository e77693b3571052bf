# Two entry points (see README):
#   make reproduce   set up .venv and regenerate every result with `dvc repro` (demo profile by default)
#   make test        set up .venv and run the unit tests and strict nbval on the executed notebooks
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# Offline copies of the small external inputs (see data/README.md); a sibling ../shared/data is used when present.
export SLICS_DATA_MIRROR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data))
# Inputs the notebooks read (DVC-cached, not in git), rebuilt before nbval re-executes the notebooks.
INPUT_STAGES := fetch embed_cifar10 embed_mirflickr25k embed_coco

.PHONY: venv reproduce test inputs benchmarks clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

reproduce: venv
	dvc repro
	dvc status

inputs: venv
	dvc repro $(INPUT_STAGES)

test: inputs
	HF_HUB_OFFLINE=1 python -m pytest --nbval -p no:cacheprovider

benchmarks: venv
	python benchmarks/bench_ista.py
	python benchmarks/bench_slics.py
	python benchmarks/bench_splice.py

clean-venv:
	rm -rf $(VENV)
