"""Pipeline faults, on a temporary copy of the project: read-only folders and SIGKILL mid-stage.

Each test runs a real stage command (``01_robustness``, the cheapest notebook stage, or the
embed stage's checks) in a subprocess and then checks that the committed results and the data
cache are byte-for-byte what they were, and that the next run cleans up and succeeds.

Read-only folders: ``chmod a-w`` does not stop root, so when the tests run as root the stage
runs under ``setpriv`` with the capabilities that bypass file permissions removed.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slics.utils.config import project_root
from slics.utils.errors import EXIT_ERROR

STAGE = "01_robustness"
STRIP_ROOT = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path):
    """A copy of what the stage reads and writes: params, dvc.yaml, its notebook, the committed
    results and a small data cache (``data/embeddings/demo/cifar10``)."""
    root = project_root()
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(root / name, tmp_path / name)
    (tmp_path / "notebooks").mkdir()
    shutil.copy(root / "notebooks" / f"{STAGE}.ipynb", tmp_path / "notebooks")
    shutil.copytree(root / "results", tmp_path / "results")
    cache = tmp_path / "data" / "embeddings" / "demo" / "cifar10"
    cache.mkdir(parents=True)
    (cache / "cifar10_labels.npy").write_bytes(bytes(range(256)) * 4)
    (cache / "manifest.json").write_text('{"backbone": "demo"}\n')
    return tmp_path


def _run(project: Path, *args: str, unprivileged: bool = False, **popen) -> subprocess.Popen:
    env = {**os.environ, "SLICS_ROOT": str(project), "SLICS_DATA_DIR": str(project / "data"),
           "PYTHONPATH": os.pathsep.join([str(project_root() / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("SLICS_RESULTS_DIR", None)                 # the conftest's scratch folder: use the copy's results/
    prefix = STRIP_ROOT if unprivileged and os.geteuid() == 0 else []
    return subprocess.Popen([*prefix, sys.executable, *args], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


@pytest.fixture
def read_only():
    """Make folders read-only for the stage (undone afterwards)."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    made = []

    def make(folder: Path):
        folder.chmod(0o555)
        made.append(folder)

    yield make
    for folder in made:
        folder.chmod(0o755)


def _assert_clear_error(proc: subprocess.Popen, folder: Path, variable: str) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_ERROR, err
    assert "Traceback" not in err, err
    assert f"cannot write into {folder} (Permission denied)" in err, err
    assert f"chmod -R u+w {folder}" in err and variable in err, err


@pytest.mark.parametrize("folder", ["results", "results/tables"])
def test_read_only_results_folder_is_named_before_the_stage_runs(project, read_only, folder):
    before = _snapshot(project / "results")
    read_only(project / folder)
    proc = _run(project, "-m", "slics.utils.notebooks", STAGE, unprivileged=True)
    _assert_clear_error(proc, project / folder, "SLICS_RESULTS_DIR")
    assert _snapshot(project / "results") == before
    assert not list((project / "results").glob(".staging-*"))


def test_a_project_without_a_results_folder_gets_one(project):
    """A fresh scratch project (the full-profile rehearsal's) has no results/ yet: the stage makes it."""
    shutil.rmtree(project / "results")
    proc = _run(project, "-m", "slics.utils.notebooks", STAGE)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert (project / "results" / "notebooks" / f"{STAGE}.ipynb").is_file()
    assert not list((project / "results").glob(".staging-*"))


@pytest.mark.parametrize("dataset", ["cifar10", "mirflickr25k"])
def test_read_only_embeddings_folder_is_named_before_any_encoding(project, read_only, dataset):
    data, results = project / "data", project / "results"
    before = _snapshot(data), _snapshot(results)
    read_only(data / "embeddings" / "demo")
    proc = _run(project, "-m", "slics.embedding.embed", dataset, unprivileged=True)
    _assert_clear_error(proc, data / "embeddings" / "demo", "SLICS_DATA_DIR")
    assert (_snapshot(data), _snapshot(results)) == before


def _wait_for_staging(project: Path, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Wait until the stage has made its staging folder (True) or has ended (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if list((project / "results").glob(f".staging-{STAGE}-*")):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_sigkill_at_random_points_keeps_results_and_the_next_run_cleans_up(project):
    """SIGKILL (the stage and its kernel, as a power cut would) at seeded random points of the run."""
    results, data = project / "results", project / "data"
    committed, cache = _snapshot(results), _snapshot(data)
    rng = random.Random(18)
    left_staging = 0
    for _ in range(3):
        proc = _run(project, "-m", "slics.utils.notebooks", STAGE, start_new_session=True)
        if _wait_for_staging(project, proc):
            time.sleep(rng.uniform(0.0, 3.0))        # somewhere in the cells (about 4 s of them)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        left_staging += bool(list(results.glob(f".staging-{STAGE}-*")))
        # the published results: a staging folder left by the kill may hold what the stage had written
        # (the next run removes it, below); the stage is deterministic: old or new, same bytes
        published = {path: digest for path, digest in _snapshot(results).items() if not path.startswith(".staging-")}
        assert published == committed
        assert _snapshot(data) == cache
    assert left_staging, "no kill landed while the stage ran; the cleanup was not exercised"
    proc = _run(project, "-m", "slics.utils.notebooks", STAGE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not list(results.glob(".staging-*")), "the stale staging folders were not removed"
    assert _snapshot(results) == committed and _snapshot(data) == cache
