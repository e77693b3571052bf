"""The reproduction contract, checked on what this test run regenerated.

nbval re-executes every committed notebook and compares its text outputs strictly; the
notebooks also rewrite their tables, metrics and figures, into the scratch folder that
conftest.py points SLICS_RESULTS_DIR at. This test runs after them (conftest orders it last)
and compares those files with the committed ones: tables and metrics byte for byte, figures
within the RMS tolerance of slics.utils.verdict.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from slics.utils import verdict
from slics.utils.config import project_root


@pytest.mark.after_notebooks
def test_regenerated_results_match_committed_ones():
    scratch = Path(os.environ["SLICS_RESULTS_DIR"])
    regenerated = sorted(p for p in scratch.rglob("*") if p.is_file() and p.suffix in (".csv", ".md", ".json", ".png"))
    if not regenerated:
        pytest.skip("no notebook ran in this session (run with --nbval on results/notebooks)")
    committed_root = project_root() / "results"
    failures = []
    for path in regenerated:
        rel = path.relative_to(scratch).as_posix()
        committed = committed_root / rel
        if not committed.is_file():
            failures.append(f"{rel}: not committed")
            continue
        result = verdict.compare_bytes(rel, committed.read_bytes(), path.read_bytes())
        if not result.ok or (result.status != "unchanged" and not rel.endswith(".png")):
            failures.append(f"{rel}: {result.status} {result.detail}")
    assert not failures, "\n".join(failures)


def _png(tmp_path, name, array):
    path = tmp_path / name
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path.read_bytes()


def test_figure_comparison_tolerates_noise_not_change(tmp_path):
    rng = np.random.default_rng(0)
    base = np.full((60, 80, 3), 255.0)
    base[20:40, 10:70] = 30
    noisy = np.clip(base + rng.integers(-1, 2, base.shape), 0, 255)
    changed = base.copy()
    changed[20:40, 40:70] = 255  # half the bar gone
    a, b, c = (_png(tmp_path, f"{n}.png", x) for n, x in (("a", base), ("b", noisy), ("c", changed)))
    assert verdict.compare_bytes("f.png", a, a).status == "unchanged"
    assert verdict.compare_bytes("f.png", a, b).status == "within tolerance"
    assert verdict.compare_bytes("f.png", a, c).status == "different"


def test_notebook_comparison_ignores_image_bytes_only():
    import json

    def nb(text, png):
        return json.dumps({"cells": [{"cell_type": "code", "source": "x", "outputs": [
            {"output_type": "display_data", "data": {"image/png": png, "text/plain": text}}]}]}).encode()

    assert verdict.compare_bytes("n.ipynb", nb("a", "AAA"), nb("a", "BBB")).status == "within tolerance"
    assert verdict.compare_bytes("n.ipynb", nb("a", "AAA"), nb("b", "AAA")).status == "different"
    assert verdict.compare_bytes("t.csv", b"x\n1\n", b"x\n2\n").status == "different"
    assert verdict.compare_bytes("t.csv", None, b"x\n").status == "new"


def test_notebook_whose_code_changed_is_different_but_says_its_outputs_are_the_same():
    import json

    def nb(source, text):
        return json.dumps({"cells": [{"cell_type": "code", "source": source, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": text}]}]}).encode()

    refactored = verdict.compare_bytes("n.ipynb", nb("f(x)", "1"), nb("g(x)", "1"))
    assert refactored.status == "different" and "every cell's text output is identical" in refactored.detail
    changed = verdict.compare_bytes("n.ipynb", nb("f(x)", "1"), nb("f(x)", "2"))
    assert changed.status == "different" and changed.detail == "text outputs differ"
