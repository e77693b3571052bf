"""Test-session environment (unit tests and nbval): offline hub, and a scratch results folder.

The nbval run re-executes the committed notebooks; they write their tables and
figures under ``SLICS_RESULTS_DIR``, which points at a temporary folder here, so
running the tests never changes a tracked file.
"""

import os
import shutil
import tempfile

import pytest

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


def pytest_addoption(parser):
    parser.addoption("--rehearse-full", action="store_true",
                     help="also rehearse the full profile at tiny scale (tests/test_rehearsal.py; make test does)")


def pytest_configure(config):
    config.addinivalue_line("markers", "after_notebooks: runs after the notebooks, in their worker (it reads what "
                                       "nbval regenerated)")


# Under pytest-xdist (make test) a worker runs one scope at a time: a test module, or the notebooks
# together with the test that reads what they wrote (so that it sees this worker's scratch folder,
# after them). Scopes are handed out in collection order, and the two that run for minutes come
# first, so that each starts on its own worker and the short modules fill in around them.
NOTEBOOKS = "results/notebooks/"
LONG_SCOPES = ("tests/test_rehearsal.py", NOTEBOOKS)


def scope_of(nodeid: str) -> str:
    """The xdist scope of a test: its module, or NOTEBOOKS for the notebooks and tests/test_reproduction.py."""
    path = nodeid.split("::", 1)[0]
    return NOTEBOOKS if path.startswith(NOTEBOOKS) or path == "tests/test_reproduction.py" else path


def schedule_key(item) -> tuple[int, bool]:
    """Sort key of the collection: the long scopes first, then the rest in their own order; in each
    scope, the after_notebooks tests last."""
    scope = scope_of(item.nodeid)
    rank = LONG_SCOPES.index(scope) if scope in LONG_SCOPES else len(LONG_SCOPES)
    return rank, item.get_closest_marker("after_notebooks") is not None


def pytest_collection_modifyitems(config, items):
    items.sort(key=schedule_key)


@pytest.hookimpl(optionalhook=True)     # a hook of pytest-xdist, which plain runs need not have
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByScope(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return scope_of(nodeid)

    config.option.loadscopereorder = False      # the collection's order (schedule_key) is the schedule
    return ByScope(config, log)
