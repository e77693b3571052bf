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
