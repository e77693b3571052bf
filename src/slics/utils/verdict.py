"""Did this rerun reproduce the committed results? A verdict per file, and one overall.

The reproduction contract (README): tables, metrics and the text of executed notebooks are
identical on any machine, because every printed number has a precision that cross-machine
float noise does not reach; figures are equal within an RMS tolerance (matplotlib's
``compare_images``), since rasterised float noise moves a few pixels.

``python -m slics.utils.verdict`` compares every file under ``results/`` (benchmarks aside)
with its committed version (``git show HEAD:path``) and prints, per file: ``unchanged``,
``within tolerance`` (with the largest difference), ``different`` or ``new``; then
``verdict: reproduced`` or ``verdict: NOT reproduced``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import project_root

FIGURE_RMS_TOLERANCE = 2.0  # on 0-255 pixel values; noise is well below, a changed plot far above
IMAGE_KEYS = ("image/png", "image/jpeg", "image/svg+xml")
SKIPPED = ("results/benchmarks/", "results/failed/")


@dataclass(frozen=True)
class Comparison:
    path: str
    status: str  # unchanged | within tolerance | different | new
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("unchanged", "within tolerance")


def notebook_text(data: bytes) -> str:
    """A notebook's sources and outputs with image payloads left out (they are compared as figures)."""
    nb = json.loads(data)
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            for key in IMAGE_KEYS:
                if key in output.get("data", {}):
                    output["data"][key] = "<image>"
    return json.dumps(nb, sort_keys=True, indent=1)


def notebook_outputs(data: bytes) -> list[str]:
    """The text outputs of every code cell (images left out), without the sources: tells a changed
    notebook code (a refactoring) from changed results."""
    nb = json.loads(notebook_text(data))
    return [json.dumps(c.get("outputs", []), sort_keys=True) for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def figure_rms(expected: bytes, actual: bytes) -> float:
    """RMS difference of two PNGs (matplotlib's measure); inf when their sizes differ."""
    from matplotlib.testing.compare import compare_images

    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "expected.png", Path(tmp) / "actual.png"
        a.write_bytes(expected)
        b.write_bytes(actual)
        try:
            result = compare_images(str(a), str(b), tol=0, in_decorator=True)
        except Exception:  # sizes differ
            return float("inf")
    return 0.0 if result is None else float(result["rms"])


def compare_bytes(path: str, expected: bytes | None, actual: bytes) -> Comparison:
    if expected is None:
        return Comparison(path, "new")
    if expected == actual:
        return Comparison(path, "unchanged")
    if path.endswith(".png"):
        rms = figure_rms(expected, actual)
        status = "within tolerance" if rms <= FIGURE_RMS_TOLERANCE else "different"
        return Comparison(path, status, f"RMS {rms:.3f} (tolerance {FIGURE_RMS_TOLERANCE})")
    if path.endswith(".ipynb"):
        if notebook_text(expected) == notebook_text(actual):
            return Comparison(path, "within tolerance", "text identical; only figure bytes differ")
        if notebook_outputs(expected) == notebook_outputs(actual):
            return Comparison(path, "different", "the code of some cells changed; every cell's text output is identical")
        return Comparison(path, "different", "text outputs differ")
    return Comparison(path, "different", "bytes differ")


def _committed(root: Path, rel: str, rev: str) -> bytes | None:
    proc = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=root, capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def check_rev(root: Path, rev: str) -> None:
    """Raise unless ``rev`` names a commit of the git checkout at ``root`` (else every file would be 'new')."""
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode:
        raise ValueError(f"--rev {rev!r} is not a commit of {root} (is it a git checkout, and is the name "
                         f"spelled right? `git log --oneline` lists the commits); nothing was compared.")


def compare_results(results: Path | None = None, rev: str = "HEAD") -> list[Comparison]:
    """Compare every file under ``results/`` with its version at ``rev`` (a commit of the checkout)."""
    root = project_root()
    check_rev(root, rev)
    results = results or root / "results"
    out = []
    for path in sorted(p for p in results.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        if rel.startswith(SKIPPED) or "/." in rel:
            continue
        out.append(compare_bytes(rel, _committed(root, rel, rev), path.read_bytes()))
    return out


def report(comparisons: list[Comparison]) -> tuple[str, bool]:
    lines = [f"{c.status:>17}  {c.path}{'  (' + c.detail + ')' if c.detail else ''}"
             for c in comparisons if c.status != "unchanged"]
    n = {s: sum(c.status == s for c in comparisons) for s in ("unchanged", "within tolerance", "different", "new")}
    ok = n["different"] == 0 and n["new"] == 0
    summary = (f"{n['unchanged']} unchanged, {n['within tolerance']} within tolerance, "
               f"{n['different']} different, {n['new']} new (of {len(comparisons)} result files)")
    if ok:
        verdict = ("verdict: reproduced: every table, metric and notebook text is identical to the "
                   "committed one, every figure within tolerance")
    else:
        verdict = "verdict: NOT reproduced: the files marked 'different' or 'new' above differ from the committed ones"
    return "\n".join(lines + [summary, verdict]), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD", help="the committed version to compare against")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless reproduced")
    args = parser.parse_args(argv)
    text, ok = report(compare_results(rev=args.rev))
    print(text)
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    from slics.utils.errors import run_main

    sys.exit(run_main(main))
