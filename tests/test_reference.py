"""reference/report_values.yaml against the report's own text."""

import os
import re
from pathlib import Path

import pytest

from slics.utils.config import project_root
from slics.utils.reference import report_table, report_value, report_values

REPORT = "000_319bce2b239d7353.txt"


def _report_text() -> str:
    folders = [Path(os.environ["SLICS_PAPERS"])] if os.environ.get("SLICS_PAPERS") else []
    folders.append(project_root().parent / "shared" / "papers")
    for folder in folders:
        if (folder / REPORT).is_file():
            return (folder / REPORT).read_text(encoding="utf-8")
    pytest.skip(f"{REPORT} not found: set SLICS_PAPERS to the folder of the source documents.")


def _section2(text: str) -> str:
    return text[text.index("2 Sparsity In Contrastive Models"):text.index("2.5 Conclusion")]


def test_a_few_values_as_printed_in_the_report():
    """Values copied by hand from the report (section 2), independent of the YAML layout."""
    assert report_value("ista_clip", "dense_accuracy_percent") == 87.83
    assert report_value("ista_clip", "sparse_accuracy_percent") == 88.53
    assert report_value("ista_clip", "n_concepts") == 1003
    t1 = report_table("ista_clip", "table1").set_index("lambda")
    assert t1.loc[0.05, "mean_nonzeros"] == 215.27 and t1.loc[0.5, "accuracy_percent"] == 48.88
    t2 = report_table("ista_clip", "table2").set_index("embedding")["memory_MB"]
    assert (t2["Dense"], t2["Sparse"]) == (19.53, 8.21)
    t3 = report_table("ista_clip", "table3")
    assert t3["concept"].tolist()[:3] == ["cat", "animals", "deer"] and t3["nonzero_count"].iloc[-1] == 4282
    assert all("place" in v for v in report_values("ista_clip").values() if isinstance(v, dict))


def test_tables_match_the_report_text():
    text = _section2(_report_text())
    t1 = re.findall(r"^(\d+\.\d\d)\t(\d+\.\d\d)\t(\d+\.\d\d)$", text, flags=re.M)
    assert [tuple(map(float, row)) for row in t1] == \
        [tuple(row) for row in report_table("ista_clip", "table1").itertuples(index=False)]
    t3 = re.findall(r"^(\d+)\t(\w+) \((\d+)\)$", text, flags=re.M)
    assert [(int(r), c, int(n)) for r, c, n in t3] == \
        [tuple(row) for row in report_table("ista_clip", "table3").itertuples(index=False)]
    t2 = re.findall(r"^(Dense|Sparse)\t(\d+)×(\d+)\t(\d+\.\d\d)$", text, flags=re.M)
    assert [(kind, f"{n}x{m}", float(mb)) for kind, n, m, mb in t2] == \
        [tuple(row) for row in report_table("ista_clip", "table2").itertuples(index=False)]


def test_scalars_match_the_report_text():
    text = _section2(_report_text())
    assert "accuracy of **87.83%**" in text
    assert f"accuracy of **{report_value('ista_clip', 'sparse_accuracy_percent')}%**" in text
    assert f"left with {report_value('ista_clip', 'n_concepts')} concepts" in text
    assert f"We set this to {report_value('ista_clip', 'top_lambda')}." in text
    ista = report_values("ista_clip")["ista"]
    assert f"Number of Iterations: {ista['n_iter']}" in text and f"Learning Rate: {ista['lr']}" in text


def test_missing_entries_raise():
    with pytest.raises(KeyError, match="no section"):
        report_values("nope")
    with pytest.raises(KeyError, match="not a table"):
        report_table("ista_clip", "top_lambda")
