"""Test-session environment (unit tests and nbval): offline hub, and a scratch results folder.

The nbval run re-executes the committed notebooks; they write their tables and
figures under ``SLICS_RESULTS_DIR``, which points at a temporary folder here, so
running the tests never changes a tracked file.
"""

import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
try:        # the property-based suite (tests/test_properties.py); hypothesis is in the `test` extra
    from hypothesis import HealthCheck, settings
    from hypothesis.configuration import set_hypothesis_home_dir

    # "ci": the same examples on every run (reproducible), none written to a database
    settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, database=None,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    # "dev": fresh random examples, more of them, to hunt for new failures by hand
    settings.register_profile("dev", max_examples=300, deadline=None, database=None)
    settings.load_profile(os.environ.get("SLICS_HYPOTHESIS_PROFILE", "ci"))
except ImportError:
    set_hypothesis_home_dir = None

_SCRATCH = tempfile.mkdtemp(prefix="slics-test-results-")
if set_hypothesis_home_dir is not None:     # hypothesis's caches go to the scratch folder, not the work tree
    set_hypothesis_home_dir(os.path.join(_SCRATCH, ".hypothesis"))
os.environ["SLICS_RESULTS_DIR"] = _SCRATCH


def pytest_unconfigure(config):
    shutil.rmtree(_SCRATCH, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "after_notebooks: runs after every other test (it reads what nbval regenerated)")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("after_notebooks") is not None)
