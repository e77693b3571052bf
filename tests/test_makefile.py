"""The Makefile's lab, inputs and test targets, checked with `make -n` (nothing is run), and the
schedule of `make test`'s workers (conftest.py)."""

import os
import shutil
import subprocess

import pytest

from slics.utils.config import project_root

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(target, tmp_path, uid=None, **variables):
    env = dict(os.environ)
    if uid is not None:  # a fake `id` first on PATH: the Makefile asks `id -u`
        fake = tmp_path / "bin"
        fake.mkdir(exist_ok=True)
        (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
        (fake / "id").chmod(0o755)
        env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    args = [f"{k}={v}" for k, v in variables.items()]
    done = subprocess.run(["make", "-n", target, *args], cwd=project_root(), env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout


@pytest.mark.parametrize("uid, flag", [(0, True), (1000, False)])
def test_lab_allows_root_only_as_root_and_writes_to_scratch(tmp_path, uid, flag):
    stamp = tmp_path / "stamp"
    stamp.touch()
    out = _dry_run("lab", tmp_path, uid=uid, INPUTS_STAMP=stamp, SCRATCH_RESULTS=tmp_path / "scratch")
    line = next(line for line in out.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in line) is flag
    assert f"SLICS_RESULTS_DIR={tmp_path / 'scratch'}" in line
    assert f"--notebook-dir={tmp_path / 'scratch' / 'lab'}" in line
    assert f"cp notebooks/01_robustness.ipynb {tmp_path / 'scratch' / 'lab'}/01_robustness.ipynb" in out


def test_inputs_are_rebuilt_only_when_out_of_date(tmp_path):
    stamp = tmp_path / "stamp"
    stamp.touch()  # newer than every file the input stages read
    assert "pipeline inputs" not in _dry_run("inputs", tmp_path, INPUTS_STAMP=stamp)
    os.utime(stamp, (0, 0))  # older than params.yaml
    assert "pipeline inputs" in _dry_run("inputs", tmp_path, INPUTS_STAMP=stamp)
    stamp.unlink()
    assert "pipeline inputs" in _dry_run("inputs", tmp_path, INPUTS_STAMP=stamp)


def test_make_test_is_one_pytest_over_workers_with_the_rehearsal_and_by_hand_the_params_backbone(tmp_path):
    """`make test` runs the rehearsal as a test of one pytest over one single-threaded worker per core,
    after the inputs and the browser's install side by side; `make rehearse-full` runs it by hand with
    params.yaml's target backbone."""
    stamp = tmp_path / "stamp"
    stamp.touch()
    lines = [line.split() for line in _dry_run("test", tmp_path, INPUTS_STAMP=stamp).splitlines()]
    runs = [line for line in lines if "pytest" in line[:8]]
    assert len(runs) == 1 and not any("slics.rehearsal" in line for line in lines)
    words = runs[0]
    assert {"--nbval", "--rehearse-full", "-n"} <= set(words) and words[words.index("-n") + 1] == "auto"
    assert {"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1"} <= set(words)
    # before it, one make on two jobs: the browser's install beside the .venv's and the inputs
    first = lines.index(runs[0])
    assert any("-j2" in line and {"inputs", "browser"} <= set(line) for line in lines[:first])
    by_hand = [line for line in _dry_run("rehearse-full", tmp_path, INPUTS_STAMP=stamp).splitlines()
               if "slics.rehearsal" in line]
    assert [line.split() for line in by_hand] == [["python", "-m", "slics.rehearsal"]]


def test_make_test_schedule_starts_the_long_scopes_and_keeps_the_notebooks_with_their_check():
    """Under pytest-xdist a scope runs on one worker: the notebooks share one with the test that reads
    their outputs (after them); the rehearsal's module and the notebooks are handed out first."""
    import conftest

    class Item:
        def __init__(self, nodeid, last=False):
            self.nodeid, self.last = nodeid, last

        def get_closest_marker(self, name):
            return object() if self.last and name == "after_notebooks" else None

    items = [Item("tests/test_pq.py::test_a"), Item("tests/test_reproduction.py::test_regenerated", last=True),
             Item("tests/test_reproduction.py::test_figure"), Item("tests/test_rehearsal.py::test_full"),
             Item("results/notebooks/01_robustness.ipynb::Cell 0"), Item("results/notebooks/02_ista_clip.ipynb::Cell 0"),
             Item("tests/test_lasso.py::test_b")]
    scopes = {conftest.scope_of(i.nodeid) for i in items}
    assert scopes == {"tests/test_pq.py", "tests/test_lasso.py", "tests/test_rehearsal.py", conftest.NOTEBOOKS}
    order = [i.nodeid for i in sorted(items, key=conftest.schedule_key)]
    assert order == ["tests/test_rehearsal.py::test_full", "tests/test_reproduction.py::test_figure",
                     "results/notebooks/01_robustness.ipynb::Cell 0", "results/notebooks/02_ista_clip.ipynb::Cell 0",
                     "tests/test_reproduction.py::test_regenerated", "tests/test_pq.py::test_a",
                     "tests/test_lasso.py::test_b"]


def test_rehearsal_is_the_first_test_of_its_module():
    """Its worker starts it before the module's short tests (see conftest.LONG_SCOPES)."""
    import ast

    from slics.utils.config import project_root

    tree = ast.parse((project_root() / "tests" / "test_rehearsal.py").read_text())
    tests = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    assert tests[0] == "test_full_profile_rehearsal_runs_every_stage"


def test_the_venv_sets_its_pip_before_installing_the_project():
    """The pinned pip (PIP_VERSION) installs the project; the one venv bundles only installs that pip."""
    out = subprocess.run(["make", "-n", "-B", ".venv/.installed"], cwd=project_root(),
                         capture_output=True, text=True, check=True).stdout
    pins = [i for i, line in enumerate(out.splitlines()) if "pip install" in line and "'pip==" in line]
    project = [i for i, line in enumerate(out.splitlines()) if "pip install" in line and "-e '.[test]'" in line]
    assert len(pins) == 1 and len(project) == 1 and pins[0] <= project[0]
