# Two entry points (see README):
#   make reproduce   set up .venv and regenerate every result with `dvc repro` (demo profile by default)
#   make test        set up .venv and run the unit tests, strict nbval on the executed notebooks and
#                    a rehearsal of the full profile at tiny scale, on one pytest worker per core
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# Offline copies of the small external inputs (see data/README.md); a sibling ../shared/data is used when present.
export SLICS_DATA_MIRROR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data))

.PHONY: venv reproduce test pytest inputs rehearse-full lab benchmarks mutation mutation-kernels clean-venv site browser

# Hand runs in `make lab` write here (git-ignored), never into the committed results/.
SCRATCH_RESULTS ?= $(CURDIR)/results-scratch
# Jupyter refuses to start as root without --allow-root (containers and many cloud machines run as root).
JUPYTER_ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

venv: $(VENV)/.installed

# The interpreter is checked before .venv is created; a failed install removes .venv, so that no
# later run reuses a half-installed environment. The venv's pip is first set to PIP_VERSION: it picks
# the same versions as the pip that venv bundles (23.2 here) in 54 s instead of 82 s, its own install
# included. pip byte-compiles what it installs on one core (about a minute of CPU), so it is told not
# to and compileall does the same on every core, but for the packages' own test suites and the model
# zoos of transformers and diffusers (two fifths of the bytes, none imported but the one model a run
# loads, which Python compiles on its first import): on 2 cores 19 s instead of 29 s. A file that does
# not compile (a few packages ship Python 2 examples) is no error, as pip skips those too. The numba
# kernels are then compiled into their cache in parallel processes (slics.utils.jit: 43 s on 2 cores
# instead of about 80 s on one, inside the first stage or test that calls each).
PIP_VERSION := 26.3
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "error: this project needs Python 3.11; '$(PYTHON)' is $$($(PYTHON) --version 2>/dev/null || echo 'not found')." >&2; \
	  echo "       Choose the interpreter with PYTHON=python3.11 make $(MAKECMDGOALS)" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	{ $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile 'pip==$(PIP_VERSION)' && \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[test]'; } || { \
	  rm -rf $(VENV); echo "error: the installation failed (see above); .venv was removed, so the next run starts clean." >&2; exit 1; }
	$(BIN)/python -m compileall -qq -j 0 -x '/tests?/|/transformers/models/|/diffusers/' $(VENV)/lib || true
	$(BIN)/python -m slics.utils.jit
	touch $@

# Check params.yaml in a second, run the pipeline, then say whether the rerun reproduced the committed results.
reproduce: venv
	python -m slics.utils.schema
	dvc repro
	python -m slics.utils.verdict

# The inputs the notebooks read (data/, git-ignored), built by the stages' own commands without DVC,
# so that the tests never rewrite dvc.lock.
# Rebuilt only when a file the input stages read is newer than the stamp (the list comes from
# dvc.yaml: half a second of Python each time make starts).
INPUTS_STAMP := data/.inputs-built
inputs: $(INPUTS_STAMP)

.SECONDEXPANSION:
$(INPUTS_STAMP): $$(shell test -x $(BIN)/python && $(BIN)/python -m slics.utils.pipeline inputs --list-deps 2>/dev/null) | venv
	python -m slics.utils.pipeline inputs
	touch $@

# One pytest over one worker per core (pytest-xdist, at most 4), each running whole test modules, or
# all the notebooks (conftest.py: the scopes and their order): the rehearsal of the full profile
# (tests/test_rehearsal.py, stage 07's target RN50) and the notebooks start first, on their own
# workers, and the other modules fill in around them. Each worker and what it starts (notebook
# kernels, the rehearsal's stages) computes on one BLAS/OpenMP thread: processes with a thread pool
# per core each, on the same cores, lose time waiting for one another. Measured on 2 cores in one
# checkout: this step 499 s; the rehearsal beside pytest with their thread pools 701 s (a fresh clone),
# with one thread each 555 s (numba's threads left as they are: 554 s).
TEST_THREADS := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
PYTEST := HF_HUB_OFFLINE=1 python -m pytest --nbval -p no:cacheprovider
# The browser's install (apt-get: the network and one core, about 18 s where Chromium is missing) runs
# beside the .venv's (pip: one core, about a minute), so that neither waits for the other.
test:
	@$(MAKE) --no-print-directory -j2 inputs browser
	$(TEST_THREADS) $(PYTEST) --rehearse-full -n auto --maxprocesses 4

# The unit tests and strict nbval on the executed notebooks, in one process (no rehearsal).
pytest: inputs
	$(PYTEST)

# Every stage in profile `full` at tiny scale, offline: fixture datasets in the real formats, random
# weights of the real architectures, a scratch folder (a temp dir) that never touches data/ or results/.
rehearse-full: inputs
	python -m slics.rehearsal $(REHEARSAL_ARGS)

# Read and rerun the notebooks by hand, with the project's environment. JupyterLab opens copies of
# notebooks/ in $(SCRATCH_RESULTS)/lab (refreshed when a source notebook is newer), since saving a
# run notebook writes its outputs into the file; tables, figures and metrics of hand runs go to
# $(SCRATCH_RESULTS). `make reproduce` is the one way to publish into results/.
LAB_DIR := $(SCRATCH_RESULTS)/lab
lab: inputs $(patsubst notebooks/%,$(LAB_DIR)/%,$(wildcard notebooks/*.ipynb))
	SLICS_ROOT=$(CURDIR) SLICS_RESULTS_DIR=$(SCRATCH_RESULTS) jupyter lab $(JUPYTER_ROOT_FLAG) --notebook-dir=$(LAB_DIR)

$(LAB_DIR)/%.ipynb: notebooks/%.ipynb
	@mkdir -p $(@D)
	cp $< $@

# The offline HTML site of the committed results (git-ignored site/; open site/index.html).
site: venv
	python -m slics.site --out site

# Headless Chromium for tests/test_site.py, from Debian's package (installed when missing, as root
# or through password-less sudo; otherwise that test is skipped and says why).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null \
	  || echo "warning: could not install chromium (apt-get install -y chromium needs root); tests/test_site.py will be skipped" >&2; }

# GRID_ARGS='--rows 200' (rows per cell) sizes the grid benchmark's 1,000-atom half (see benchmarks/bench_grid.py);
# its 10,000-atom half runs on 40 rows per cell (sparse_encode takes up to 1.5 s a row there), every solver
# the fastest of 3 calls, without lasso_lars (never the faster peer there; see bench_grid.py).
benchmarks: venv
	python benchmarks/bench_ista.py
	python benchmarks/bench_ista_sparse.py
	python benchmarks/bench_slics.py
	python benchmarks/bench_solvers.py
	python benchmarks/bench_grid.py --m 1000 $(GRID_ARGS)
	python benchmarks/bench_grid.py --m 10000 --rows 40 --calls 3 --no-lars --out results/benchmarks/grid_10k.json
	python benchmarks/bench_grid.py --m 1000 --d 384 768 --dicts lowrank clustered --calls 2 --fractions 0.5 0.2 0.06 0.015 0.004 0.001 --out results/benchmarks/grid_other.json
	python benchmarks/bench_splice.py
	python benchmarks/bench_pq.py
	python benchmarks/bench_cli.py
	python benchmarks/bench_dask.py
	python benchmarks/summary.py
	python -m slics.distributed.estimate --write

# Mutation score of src/slics/core (mutmut, config in pyproject.toml; needs the `bench` extra):
# results/benchmarks/mutation.json. Slow, so not part of `make test`; MODULES=slics.core.retrieval narrows it.
mutation: venv
	python benchmarks/mutation.py $(MODULES)

# Hand-made mutants of the numba kernels (mutmut skips decorated functions); minutes per mutant.
mutation-kernels: venv
	python benchmarks/mutation_kernels.py $(KERNELS)

clean-venv:
	rm -rf $(VENV)
