import nbformat
import pytest

from slics.utils.notebooks import clean_notebook, select_params


def test_clean_notebook_removes_volatile_metadata():
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"params": {"seed": 0}}, "start_time": "2026-01-01",
                                "duration": 1.5, "environment_variables": {}}
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    cell.metadata["papermill"] = {"duration": 0.1, "status": "completed"}
    nb.cells = [cell, nbformat.v4.new_markdown_cell("x")]
    cleaned = clean_notebook(nb)
    assert cleaned.metadata["papermill"] == {"parameters": {"params": {"seed": 0}}}
    assert "execution" not in cleaned.cells[0].metadata and "papermill" not in cleaned.cells[0].metadata
    assert [c.id for c in cleaned.cells] == ["cell-000", "cell-001"]


def test_select_params():
    params = {"seed": 0, "robustness": {"a": 1}, "other": 2}
    assert select_params(["seed", "robustness"], params) == {"seed": 0, "robustness": {"a": 1}}
    with pytest.raises(KeyError, match="missing_key"):
        select_params(["missing_key"], params)
