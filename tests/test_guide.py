"""docs/own-embeddings.md runs as written: its bash and python blocks, in order, in a fresh folder.

Blocks fenced as ```bash run through ``bash -euo pipefail`` with ``slics`` on the PATH; blocks
fenced as ```python run as scripts; other fences (```python no-run, ```text) are not run.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "own-embeddings.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.S | re.M)

def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every block that runs, in order."""
    return [(info.strip(), code) for info, code in FENCE.findall(text) if info.strip() in ("bash", "python")]


def _slics_bin(folder: Path) -> Path:
    """A folder with a ``slics`` on it: the environment's console script, or one that runs ``-m slics.cli``."""
    installed = Path(sys.executable).parent / "slics"
    if installed.exists():
        return installed.parent
    folder.mkdir()
    script = folder / "slics"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m slics.cli "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def test_guide_has_every_verb_and_is_linked_from_readme():
    text = GUIDE.read_text(encoding="utf-8")
    code = "\n".join(c for lang, c in blocks(text) if lang == "bash")
    for verb in ("fit", "caption", "components", "retrieve", "evaluate"):
        assert f"slics {verb} " in code
    assert "docs/own-embeddings.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_guide_runs(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
               PATH=os.pathsep.join([str(_slics_bin(tmp_path / "bin")), os.environ["PATH"]]),
               MPLBACKEND="Agg", TQDM_DISABLE="1", HF_HUB_OFFLINE="1")
    ran = 0
    for i, (lang, code) in enumerate(blocks(GUIDE.read_text(encoding="utf-8"))):
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"block {i} ({lang}) failed:\n{code}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
        ran += 1
    assert ran == 10
    assert (work / "model.npz").is_file() and (work / "hits.csv").is_file()
    table = (work / "table2.md").read_text()
    assert all(m in table for m in ("UF", "S-SVD", "S-SLiCS", "U-SLiCS", "SpLiCE", "F-SpLiCE"))
    # S-SLiCS from the model fitted on the train rows is the one evaluate fits itself
    row = [line for line in table.splitlines() if "| S-SLiCS " in line]
    assert row and row == [line for line in (work / "table2_model.md").read_text().splitlines() if "| S-SLiCS " in line]
