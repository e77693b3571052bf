"""The README's benchmark table is the one ``benchmarks/summary.py`` writes from the committed JSON."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _summary():
    spec = importlib.util.spec_from_file_location("bench_summary", ROOT / "benchmarks" / "summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_matches_the_committed_benchmarks(tmp_path):
    summary = _summary()
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    readme.write_text(text)
    summary.main(readme)
    assert readme.read_text() == text, "README's benchmark table is stale: run `python benchmarks/summary.py`"


def test_missing_markers_name_the_fix(tmp_path):
    import pytest

    readme = tmp_path / "README.md"
    readme.write_text("no table here\n")
    with pytest.raises(SystemExit, match="benchmarks:start"):
        _summary().main(readme)
