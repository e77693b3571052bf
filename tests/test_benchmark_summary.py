"""The benchmark page is the one ``benchmarks/summary.py`` writes from the committed JSON."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _summary():
    spec = importlib.util.spec_from_file_location("bench_summary", ROOT / "benchmarks" / "summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_page_matches_the_committed_benchmarks(tmp_path):
    page = tmp_path / "benchmarks.md"
    _summary().main(page)
    assert page.read_text() == (ROOT / "docs" / "benchmarks.md").read_text(), (
        "docs/benchmarks.md is stale: run `python benchmarks/summary.py`")


def test_page_states_each_goal_from_the_json():
    summary = _summary()
    bench = ROOT / "results" / "benchmarks"
    solvers = json.loads((bench / "solvers.json").read_text())
    slics = json.loads((bench / "slics.json").read_text())
    text = summary.page(solvers, slics)
    assert text.startswith("# Benchmarks\n")
    speedup = solvers["nnls"]["planted"]["speedup"]
    assert f"{speedup:.1f}x a scipy loop" in text
    slow = json.loads(json.dumps(solvers))
    slow["nnls"]["planted"]["speedup"] = summary.NNLS_GOAL / 2  # a goal that fails says so
    assert "**not met**" in summary.page(slow, slics)


def test_readme_links_the_page_and_holds_no_benchmark_table():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/benchmarks.md)" in readme
    assert "| problem | solver |" not in readme
