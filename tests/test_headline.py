"""Headline results for the site: the papers' values beside this run's, and the claim verdicts."""

import shutil

import pandas as pd
import pytest

from slics.site import headline
from slics.site.build import _unlink, readme_section
from slics.utils.config import project_root
from slics.utils.reference import report_values


def test_slics_clip_rows_put_the_papers_four_cases_beside_the_run():
    item = headline.slics_clip(project_root() / "results")
    diffs = pd.read_csv(project_root() / "results" / "tables" / "slics_clip_differences.csv")
    ref = report_values("slics_clip")["differences"]
    row = next(r for r in item.rows if r["what"] == "S-SLiCS - UF, COCO, general")
    expected_run = diffs[(diffs.difference == "S-SLiCS - UF") & (diffs.retrieval == "general")
                         & (diffs.case == "COCO/demo")].run.iloc[0]
    assert float(row["run"]) == pytest.approx(expected_run)
    assert row["paper"].startswith(f"{ref['S-SLiCS - UF']['general'][2]:g} / {ref['S-SLiCS - UF']['general'][3]:g}")
    assert row["verdict"] == ""                         # differences are shown; the ledger judges claims
    ledger = pd.read_csv(project_root() / "results" / "tables" / "claims.csv", keep_default_na=False)
    mine = ledger[(ledger["section"] == "slics_clip") & ledger["holds"].isin(["yes", "no"])]
    judged = [r for r in item.rows if r["verdict"]]
    assert len(judged) == len(mine) > 0
    assert [r["verdict"] == headline.HOLDS for r in judged] == list(mine["holds"] == "yes")


def test_every_row_has_both_values_and_the_counts_add_up():
    items = headline.headlines()
    assert [i.title.split(":")[0] for i in items][:2] == ["Report 1, section 1", "Report 1, section 2, Table 1"]
    for item in items:
        assert item.rows, item.title
        assert all(r["paper"] != "" and r["run"] != "" for r in item.rows), item.title
        counts = item.counts()
        assert counts[headline.HOLDS] + counts[headline.FAILS] == sum(bool(r["verdict"]) for r in item.rows)


def test_a_missing_table_names_the_fix(tmp_path):
    shutil.copytree(project_root() / "results" / "metrics", tmp_path / "metrics")
    (tmp_path / "tables").mkdir()
    with pytest.raises(FileNotFoundError, match="robustness.csv does not exist.*dvc repro"):
        headline.headlines(tmp_path)


def test_links_to_files_outside_the_site_become_text():
    body = '<a href="data/README.md">data/README.md</a> <a href="index.html#x">home</a> <a href="https://a.b/c">ext</a>'
    out = _unlink(body, {"index.html"})
    assert out.startswith("data/README.md ") and '<a href="index.html#x">' in out and 'href="https://a.b/c"' in out
    with pytest.raises(ValueError, match="no '## Nope' section"):
        readme_section("# t\n## A\ntext\n", "## Nope")
    assert readme_section("# t\n## A\ntext\n## B\nmore\n", "## A") == "text"


def test_readme_headline_table_is_the_generated_one(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text((project_root() / "README.md").read_text())
    assert not headline.update_readme(readme, headline.headlines()), (
        "README's headline table is stale: run `python -m slics.site.headline --readme`")
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="headline:start"):
        headline.update_readme(readme, headline.headlines())
