"""The Makefile's lab and inputs targets, checked with `make -n` (nothing is run)."""

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


def test_make_test_rehearses_stage_07_with_rn50_and_by_hand_with_the_params_backbone(tmp_path):
    """`make test` runs the rehearsal (RN50 as stage 07's target) and pytest in one make of two jobs."""
    stamp = tmp_path / "stamp"
    stamp.touch()
    in_test = [line for line in _dry_run("test", tmp_path, INPUTS_STAMP=stamp).splitlines() if "slics.rehearsal" in line]
    assert any(line.split()[:4] == ["make", "--no-print-directory", "-j2", "rehearse-beside"] and "pytest" in line.split()
               for line in _dry_run("test", tmp_path, INPUTS_STAMP=stamp).splitlines())
    by_hand = [line for line in _dry_run("rehearse-full", tmp_path, INPUTS_STAMP=stamp).splitlines()
               if "slics.rehearsal" in line]
    assert len(in_test) == 1            # its report kept until it ends, then printed; its status is the recipe's
    command = in_test[0].split("; ")[1]
    assert command.split() == ["python", "-m", "slics.rehearsal", "--target-backbone", "clip-rn50", ">", "$log", "2>&1"]
    assert in_test[0].endswith("exit $status")
    assert [line.split() for line in by_hand] == [["python", "-m", "slics.rehearsal"]]
