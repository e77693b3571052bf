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
_SCRATCH = tempfile.mkdtemp(prefix="slics-test-results-")
os.environ["SLICS_RESULTS_DIR"] = _SCRATCH


def pytest_unconfigure(config):
    shutil.rmtree(_SCRATCH, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "after_notebooks: runs after every other test (it reads what nbval regenerated)")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("after_notebooks") is not None)
