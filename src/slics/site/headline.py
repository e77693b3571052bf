"""The headline results: the papers' values beside this run's, and which claims hold.

Read from the committed tables (``results/tables/*.csv``), the detailed metrics and
``reference/report_values.yaml``; nothing is recomputed. One :class:`Headline` per report
table. A row is a value the paper states beside the same quantity in this run; a row with a
verdict is a claim:

- the SLiCS paper's claims are those of its ledger (``reference/claims.yaml``, evaluated by
  :mod:`slics.sections.claims` into ``results/tables/claims.csv``): one row per claim, with the
  verdict the ledger gives; the paper's stated differences are shown beside this run's, not judged
  again here;
- report 1: an *equality* (closed form against the numerical optimum) holds within
  :data:`EQUAL_TOLERANCE`, and the accuracy a sparse code may lose is a threshold;
- absolute values (an mAP@20, an accuracy) are shown, not judged: in the demo profile the images
  are simulated, so only the direction of a comparison can carry over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..utils.config import upstream_results_dir
from ..utils.reference import report_values

EQUAL_TOLERANCE = 1e-4   # the tables' 4 decimals
DATASETS = {"MIR": "mirflickr25k", "COCO": "coco"}
HOLDS, FAILS = "holds", "does not hold"


@dataclass
class Headline:
    """One report table: its title, the committed files it is read from, and its rows."""

    title: str
    sources: list[str]
    note: str = ""
    key: str = ""  # the ``what`` of the row the README's summary shows
    rows: list[dict] = field(default_factory=list)

    def add(self, what: str, paper, run, verdict: str = "") -> None:
        self.rows.append({"what": what, "paper": paper, "run": run, "verdict": verdict})

    def key_row(self) -> dict:
        for row in self.rows:
            if row["what"] == self.key:
                return row
        raise KeyError(f"{self.title}: no row {self.key!r}; set Headline.key to one of its rows.")

    def counts(self) -> dict[str, int]:
        verdicts = [r["verdict"] for r in self.rows]
        return {HOLDS: verdicts.count(HOLDS), FAILS: verdicts.count(FAILS)}


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _table(name: str, root: Path) -> pd.DataFrame:
    path = root / "tables" / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; the site is built from committed results (`dvc repro`).")
    return pd.read_csv(path)


def robustness(root: Path) -> Headline:
    table = _table("robustness", root)
    out = Headline("Report 1, section 1: estimators of [1, 1, 1, 6, 1, 1]", ["robustness.csv"],
                   "The report's closed forms against this run's numerical minimisers of each loss.", key="mean (l2 loss)")
    for row in table.itertuples():
        equal = abs(row.closed_form - row.numerical) <= EQUAL_TOLERANCE
        out.add(f"{row.estimator} ({row.loss} loss)", _fmt(row.closed_form), _fmt(row.numerical),
                HOLDS if equal else FAILS)
    return out


def ista_clip(root: Path) -> Headline:
    table = _table("ista_sparsity_accuracy", root).set_index("lambda")
    metrics = json.loads((root / "metrics" / "ista_clip.json").read_text())
    ref = report_values("ista_clip")
    out = Headline("Report 1, section 2, Table 1: zero-shot CIFAR-10 accuracy of sparse codes",
                   ["ista_sparsity_accuracy.csv", "ista_clip.json"],
                   "Accuracy of the report's reconstruction and mean non-zeros per image, per lambda.",
                   key="accuracy, lambda = 0.05")
    dense_paper = ref["dense_accuracy_percent"]["value"] / 100
    out.add("dense accuracy", _fmt(dense_paper), _fmt(metrics["dense_accuracy"]))
    for lam, row in table.iterrows():
        out.add(f"accuracy, lambda = {lam:g}", _fmt(row.report_accuracy), _fmt(row.accuracy))
        out.add(f"mean non-zeros, lambda = {lam:g}", _fmt(row.report_mean_nonzeros, 2), _fmt(row.mean_nonzeros, 1))
    lam = ref["sparse_accuracy_percent"]["lambda"]
    paper_loss = dense_paper - ref["sparse_accuracy_percent"]["value"] / 100
    run_loss = metrics["dense_accuracy"] - table.loc[lam, "accuracy"]
    out.add(f"claim: codes at lambda = {lam:g} lose at most 0.01 of the dense accuracy (dense minus sparse)",
            _fmt(paper_loss), _fmt(run_loss), HOLDS if run_loss <= 0.01 else FAILS)
    return out


def slics_clip(root: Path) -> Headline:
    from ..sections.slics_clip import stated_rows

    diffs = _table("slics_clip_differences", root)
    ref = report_values("slics_clip")
    table2 = stated_rows(_table("slics_clip_table2", root))      # ViT-B/32 where the run has it
    out = Headline("SLiCS paper, section 4, Table 2: concept-filtered retrieval with CLIP (mAP@20)",
                   ["slics_clip_differences.csv", "slics_clip_table2.csv"],
                   "The paper's differences are given for four cases (RN50 and ViT-B/32 on each dataset); "
                   "a claim holds when this run's difference has the sign of the paper's mean for that dataset.",
                   key="S-SLiCS (best), MIR, general")
    for short, dataset in DATASETS.items():
        run = table2[table2.dataset == dataset].set_index("method")
        out.add(f"UF, {short}, general", _fmt(ref["uf_clip_general"][dataset]), _fmt(run.loc["UF", "map_general"]))
        out.add(f"S-SLiCS (best), {short}, general", _fmt(ref["best_s_slics_general"][dataset]),
                _fmt(run.loc["S-SLiCS", "map_general"]))
    cases = ref["cases"]
    for difference, values in ref["differences"].items():
        for retrieval in ("general", "sub"):
            for short in DATASETS:
                paper = [v for case, v in zip(cases, values[retrieval]) if case.startswith(short + "/")]
                run = diffs[(diffs.difference == difference) & (diffs.retrieval == retrieval)
                            & diffs.case.str.startswith(short + "/") & diffs.run.notna()]
                if run.empty:
                    continue
                shown = " / ".join(_fmt(float(v)) for v in run.run)
                if len(run) > 1:                   # every backbone of the run, as the paper's cases
                    shown += " (" + " / ".join(c.split("/", 1)[1] for c in run.case) + ")"
                out.add(f"{difference}, {short}, {retrieval}", " / ".join(_fmt(p, 3) for p in paper) + " (RN / ViT)",
                        shown)
    _ledger(out, root, "slics_clip")
    return out


def _ledger(out: Headline, root: Path, section: str) -> None:
    """The ledger's claims of notebook ``section`` as verdict rows (``n/a`` ones are left out)."""
    claims = _table("claims", root)
    for row in claims[claims["section"] == section].to_dict("records"):
        if row["holds"] in ("yes", "no"):
            out.add(f"claim ({row['place']}): {row['sentence']}", row["paper"], row["this run"],
                    HOLDS if row["holds"] == "yes" else FAILS)


def backbone(section: str, table_name: str, title: str) -> "callable":
    """A headline builder for a ``*_paper.csv`` table (statement, dataset, retrieval, paper, run)."""

    def build(root: Path) -> Headline:
        table = _table(table_name, root)
        out = Headline(title, [f"{table_name}.csv"],
                       "Rows where the paper states a number; the claims and their verdicts are the ledger's.",
                       key="S-SLiCS, MIR, general")
        for row in table.itertuples():
            if pd.isna(row.paper) or pd.isna(row.run):
                continue
            out.add(f"{row.statement}, {row.dataset}, {row.retrieval}", _fmt(row.paper, 3), _fmt(row.run))
        _ledger(out, root, section)
        return out

    build.__name__ = section
    return build


BUILDERS = (
    robustness,
    ista_clip,
    slics_clip,
    backbone("slics_titok", "slics_titok_paper", "SLiCS paper, section 4.4.1, Table 3: TiTok tokens (mAP@20)"),
    backbone("slics_dino", "slics_dino_paper", "SLiCS paper, section 4.4.2, Table 4: DINOv2 embeddings (mAP@20)"),
)


def headlines(root: Path | None = None) -> list[Headline]:
    """Every headline table, in report order, from the committed results under ``root``."""
    root = root or upstream_results_dir()
    return [build(root) for build in BUILDERS]


README_START, README_END = "<!-- headline:start -->", "<!-- headline:end -->"


def markdown(items: list[Headline]) -> str:
    """The README's headline table: per report table, one value beside the paper's, and the claims."""
    lines = ["| report table | value | paper | this run | claims that hold | claims that do not |",
             "|---|---|---|---|---|---|"]
    for item in items:
        counts, row = item.counts(), item.key_row()
        lines.append(f"| {item.title} | {row['what']} | {row['paper']} | {row['run']} | "
                     f"{counts[HOLDS]} | {counts[FAILS]} |")
    return "\n".join(lines)


def update_readme(readme: Path, items: list[Headline]) -> bool:
    """Rewrite the block between the headline markers of ``readme``; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} block; add the two markers "
                         "where the headline table goes.")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    new = f"{head}{README_START}\n{markdown(items)}\n{README_END}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from ..utils.config import project_root

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", action="store_true", help="rewrite the headline table in README.md")
    args = parser.parse_args(argv)
    items = headlines()
    if args.readme:
        changed = update_readme(project_root() / "README.md", items)
        print("README.md headline table " + ("updated" if changed else "already up to date"))
    else:
        sys.stdout.write(markdown(items) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
