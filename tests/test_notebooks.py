import json
from pathlib import Path

import nbformat
import pytest

from slics.utils.config import project_root
from slics.utils.notebooks import StageFailed, clean_notebook, run_notebook, select_params


def test_clean_notebook_removes_volatile_metadata():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"params": {"seed": 0}}, "start_time": "2026-01-01",
                                "duration": 1.5, "environment_variables": {}}
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    cell.metadata["papermill"] = {"duration": 0.1, "status": "completed"}
    nb.cells = [cell, nbformat.v4.new_markdown_cell("x")]
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.2"}   # the machine's patch release
    cleaned = clean_notebook(nb)
    assert cleaned.metadata["language_info"] == {"name": "python"}
    assert cleaned.metadata["papermill"] == {"parameters": {"params": {"seed": 0}}}
    assert "execution" not in cleaned.cells[0].metadata and "papermill" not in cleaned.cells[0].metadata
    assert [c.id for c in cleaned.cells] == ["cell-000", "cell-001"]


def test_select_params():
    params = {"seed": 0, "robustness": {"a": 1}, "other": 2}
    assert select_params(["seed", "robustness"], params) == {"seed": 0, "robustness": {"a": 1}}
    with pytest.raises(KeyError, match="missing_key"):
        select_params(["missing_key"], params)


def _toy_project(tmp_path, body):
    """A project with one notebook stage `toy` whose second cell runs `body`."""
    (tmp_path / "params.yaml").write_text((project_root() / "params.yaml").read_text())
    (tmp_path / "dvc.yaml").write_text("stages:\n  toy:\n    cmd: python -m slics.utils.notebooks toy\n"
                                       "    params: [seed]\n")
    nb = nbformat.v4.new_notebook()
    params_cell = nbformat.v4.new_code_cell("params = None")
    params_cell.metadata["tags"] = ["parameters"]
    nb.cells = [params_cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "toy.ipynb")
    committed = tmp_path / "results" / "tables" / "toy.csv"
    committed.parent.mkdir(parents=True)
    committed.write_text("old\n")
    return committed


WRITE_THEN = """
import pandas as pd
from slics.utils.config import results_dir
from slics.utils.io import write_table
write_table(pd.DataFrame({"x": [params["seed"]]}), results_dir() / "tables" / "toy", decimals=0)
{tail}
"""


def _toy_stage(tmp_path, monkeypatch, tail: str):
    """A toy project whose notebook writes a table, then runs ``tail``; returns the committed table."""
    committed = _toy_project(tmp_path, WRITE_THEN.replace("{tail}", tail))
    monkeypatch.setenv("SLICS_ROOT", str(tmp_path))
    monkeypatch.delenv("SLICS_RESULTS_DIR", raising=False)
    return committed

@pytest.mark.slow
def test_failed_stage_leaves_committed_results_and_keeps_partial_notebook(tmp_path, monkeypatch):
    committed = _toy_stage(tmp_path, monkeypatch, "raise RuntimeError('late failure')")
    with pytest.raises(StageFailed, match="late failure") as err:
        run_notebook("toy", ["seed"])
    failed = tmp_path / "results" / "failed" / "toy.ipynb"
    assert str(failed) in str(err.value)
    assert committed.read_text() == "old\n"  # the table written before the failure was not published
    assert failed.is_file() and "late failure" in failed.read_text()
    assert not list((tmp_path / "results").glob(".staging-*"))
    assert not (tmp_path / "results" / "notebooks" / "toy.ipynb").exists()


@pytest.mark.slow
def test_successful_stage_publishes_everything(tmp_path, monkeypatch):
    committed = _toy_stage(tmp_path, monkeypatch, "")
    (tmp_path / "results" / "failed").mkdir()
    (tmp_path / "results" / "failed" / "toy.ipynb").write_text("{}")  # from an earlier failure
    dest = run_notebook("toy", ["seed"])
    assert committed.read_text() == "x\n0\n"
    assert dest == tmp_path / "results" / "notebooks" / "toy.ipynb" and dest.is_file()
    assert not (tmp_path / "results" / "failed" / "toy.ipynb").exists()
    assert not list((tmp_path / "results").glob(".staging-*"))


@pytest.mark.slow
def test_timings_go_to_their_own_file_and_never_into_the_notebook(tmp_path, monkeypatch):
    """With $SLICS_TIMINGS set, a stage appends its cell durations there (profile_pipeline.py);
    the executed notebook stays free of them, so results keep their bytes."""
    _toy_stage(tmp_path, monkeypatch, "import time; time.sleep(0.3)")
    timings = tmp_path / "timings.jsonl"
    monkeypatch.setenv("SLICS_TIMINGS", str(timings))
    dest = run_notebook("toy", ["seed"])
    run_notebook("toy", ["seed"])
    records = [json.loads(line) for line in timings.read_text().splitlines()]
    assert [r["stage"] for r in records] == ["toy", "toy"]
    cells = records[0]["cells"]
    assert [c["cell"] for c in cells] == list(range(len(cells))) and len(cells) == 3  # parameters, injected, body
    assert cells[-1]["line"] == "import pandas as pd" and cells[-1]["seconds"] >= 0.3
    assert records[0]["seconds"] >= sum(c["seconds"] for c in cells)
    assert "duration" not in dest.read_text()


@pytest.mark.slow
def test_dead_kernel_is_a_stage_failure_that_publishes_nothing(tmp_path, monkeypatch):
    committed = _toy_stage(tmp_path, monkeypatch, "import os\nos._exit(1)")
    with pytest.raises(StageFailed, match="DeadKernelError") as err:
        run_notebook("toy", ["seed"])
    assert "Nothing under" in str(err.value)
    assert committed.read_text() == "old\n"
    assert not list((tmp_path / "results").glob(".staging-*"))


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "results" / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_executed_notebooks_carry_no_stderr(path):
    """Warnings and progress bars hold paths and timings that differ on every run and machine."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    streams = [(i, o.get("text", "")) for i, c in enumerate(nb["cells"]) for o in c.get("outputs", [])
               if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not streams, f"cell {streams[0][0]} writes to stderr: {''.join(streams[0][1])[:200]!r}"


@pytest.mark.slow
def test_stale_staging_of_a_killed_run_is_removed_by_the_next(tmp_path, monkeypatch):
    committed = _toy_stage(tmp_path, monkeypatch, "")
    stale = tmp_path / "results" / ".staging-toy-abc123"           # what a SIGKILL leaves behind
    (stale / "tables").mkdir(parents=True)
    (stale / "tables" / "toy.csv").write_text("half\n")
    other = tmp_path / "results" / ".staging-other-xyz"              # another stage's: not ours to remove
    other.mkdir()
    run_notebook("toy", ["seed"])
    assert not stale.exists() and other.exists() and committed.read_text() == "x\n0\n"


@pytest.mark.slow
def test_failure_path_survives_a_full_disk(tmp_path, monkeypatch):
    """The handler of a failed stage cannot write the partial notebook (ENOSPC): it still says so,
    publishes nothing and leaves no staging folder."""
    import errno

    from slics.utils import notebooks

    committed = _toy_stage(tmp_path, monkeypatch, "raise RuntimeError('late failure')")
    real = notebooks.write_text

    def full_disk(dest, text):
        if "failed" in str(dest):
            raise OSError(errno.ENOSPC, "No space left on device", str(dest))
        return real(dest, text)

    monkeypatch.setattr(notebooks, "write_text", full_disk)
    with pytest.raises(StageFailed, match="could not be kept .*No space left on device") as err:
        run_notebook("toy", ["seed"])
    assert "Nothing under" in str(err.value) and committed.read_text() == "old\n"
    assert not list((tmp_path / "results").glob(".staging-*"))


def test_results_dir_that_is_a_file_is_named(tmp_path, monkeypatch):
    target = tmp_path / "results-file"
    target.write_text("x")
    monkeypatch.setenv("SLICS_RESULTS_DIR", str(target))
    with pytest.raises(NotADirectoryError, match="point SLICS_RESULTS_DIR at a folder"):
        run_notebook("01_robustness", ["seed"])


@pytest.mark.slow
def test_stage_reports_progress_on_stderr_and_no_kernel_warning(tmp_path, monkeypatch, capfd):
    from slics.utils import progress

    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.5)
    from slics.utils import notebooks  # conftest turns tqdm off (TQDM_DISABLE, read at import): on again here

    monkeypatch.setattr(notebooks, "PROGRESS_BAR", notebooks.PROGRESS_BAR | {"disable": False})
    _toy_stage(tmp_path, monkeypatch, "import time\ntime.sleep(2.5)")
    dest = run_notebook("toy", ["seed"])
    err = capfd.readouterr().err
    assert "toy:" in err and ("cell/s" in err or "s/cell" in err)  # the bar: cells done, time spent
    assert "running for" in err  # the heartbeat of the long cell
    assert "without encryption" not in err  # the kernel runs over IPC, not TCP
    text = dest.read_text()
    assert "running for" not in text and "cell/s" not in text and "s/cell" not in text


def test_cell_clock_rejects_a_bad_interval():
    from slics.utils.progress import CellClock

    with pytest.raises(ValueError, match="heartbeat=0"):
        CellClock("x", heartbeat=0)
