"""The ledger of the SLiCS paper's claims, evaluated on this run's tables.

Each claim of ``reference/claims.yaml`` is data: the sentence as printed, its place in the
paper, what the paper reports, and a check on one of this run's tables. :func:`evaluate`
returns one row per claim (claim, paper, this run, holds); every retrieval notebook prints
its own claims (:func:`section_ledger`), and ``python -m slics.sections.claims`` (DVC stage
``claims``) collects them all into ``results/tables/claims.md``.

A *cell* is one (dataset, backbone[, pool]) case and one retrieval kind (general or
sub-label) of a table; its values are the methods' mAP@20 (the found-items normaliser of
:mod:`slics.core.retrieval`). "holds" is ``yes``, ``no``, or ``n/a`` when the table lacks a
method the claim compares (e.g. SpLiCE on seeded subsamples only).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.config import load_yaml, project_root
from .retrieval_protocol import DATASET_LABEL, best_k

CLAIMS_FILE = "reference/claims.yaml"
SECTIONS = ("slics_clip", "slics_titok", "slics_dino")
COLUMNS = ["claim", "place", "sentence", "paper", "this run", "holds"]


def load_claims(section: str | None = None) -> list[dict]:
    """The claims of ``reference/claims.yaml`` (those printed by notebook ``section``, or all)."""
    claims = load_yaml(project_root() / CLAIMS_FILE)["claims"]
    ids = [c["id"] for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{CLAIMS_FILE}: claim ids must be unique.")
    return [c for c in claims if section is None or c["notebook"] == section]


def _case(row: pd.Series) -> str:
    parts = [DATASET_LABEL.get(row["dataset"], row["dataset"]), str(row.get("backbone", ""))]
    if "pool" in row and isinstance(row["pool"], str):
        parts.append(row["pool"])
    return "/".join(p for p in parts if p)


def cells(table: pd.DataFrame, claim: dict):
    """(case, retrieval, values by method) for every cell the claim looks at."""
    t = table
    if claim.get("pool") and "pool" in t:
        t = t[t["pool"] == claim["pool"]]
    check = claim["check"]
    if check.get("dataset"):
        t = t[t["dataset"] == check["dataset"]]
    keys = [c for c in ("dataset", "backbone", "pool") if c in t]
    by = claim.get("by", "method")
    for _, g in t.groupby(keys, sort=False):
        for retrieval in ("general", "sub"):
            if check.get("retrieval") in (None, retrieval):
                values = g.set_index(by)[f"map_{retrieval}"].dropna()
                if len(values):
                    yield _case(g.iloc[0]), retrieval, values


def _fmt(x: float) -> str:
    return f"{x:+.4f}"


def _diff(a, b) -> float:
    """``a - b`` of two table values (4 decimals), without the float representation's last bits,
    so that a difference of exactly a threshold compares as that threshold."""
    return round(float(a) - float(b), 10)


def _difference(table, claim):
    c = claim["check"]
    found = [(case, r, _diff(v[c["a"]], v[c["b"]])) for case, r, v in cells(table, claim)
             if {c["a"], c["b"]} <= set(v.index)]
    if not found:
        return None, "n/a"
    ok = [d > c["above"] for _, _, d in found]
    need = len(found) if c["cells"] == "all" else len(found) // 2 + 1
    text = (f"{c['a']} - {c['b']}: " + ", ".join(f"{case} {r} {_fmt(d)}" for case, r, d in found)
            + f" ({sum(ok)} of {len(found)} above {c['above']:g})")
    return sum(ok) >= need, text


def _rank(table, claim):
    c = claim["check"]
    ranks = []
    for case, r, v in cells(table, claim):
        if c["method"] in v.index:
            ranks.append((case, r, 1 + int((v > v[c["method"]]).sum())))
    if not ranks:
        return None, "n/a"
    ok = [(k <= c["rank"]) if c.get("at_most") else (k == c["rank"]) for _, _, k in ranks]
    want = f"rank {'<= ' if c.get('at_most') else ''}{c['rank']}"
    text = (f"{c['method']} rank: " + ", ".join(f"{case} {r} {k}" for case, r, k in ranks)
            + f" ({want} in {sum(ok)} of {len(ranks)})")
    return len(ranks) - sum(ok) <= c["allow"], text


def _within(table, claim):
    c = claim["check"]
    found = [(case, r, _diff(v[c["a"]], v[c["b"]])) for case, r, v in cells(table, claim)
             if {c["a"], c["b"]} <= set(v.index)]
    if not found:
        return None, "n/a"
    text = f"{c['a']} - {c['b']}: " + ", ".join(f"{case} {r} {_fmt(d)}" for case, r, d in found)
    return all(abs(d) <= c["tolerance"] for _, _, d in found), text


def _beats_all(table, claim):
    c = claim["check"]
    found = [(case, r, _diff(v[c["a"]], v[c["others"]].max())) for case, r, v in cells(table, claim)
             if {c["a"], *c["others"]} <= set(v.index)]
    if not found:
        return None, "n/a (the table lacks " + ", ".join(c["others"]) + ")"
    text = (f"{c['a']} - best of {', '.join(c['others'])}: "
            + ", ".join(f"{case} {r} {_fmt(d)}" for case, r, d in found))
    return all(d > 0 for _, _, d in found), text


def _count(table, claim):
    c = claim["check"]
    found = [(case, r, v[c["a"]] > v[c["b"]]) for case, r, v in cells(table, claim) if {c["a"], c["b"]} <= set(v.index)]
    if not found:
        return None, "n/a"
    n = sum(w for _, _, w in found)
    return n == c["count"], f"{c['a']} above {c['b']} in {n} of {len(found)} cells"


def _sub_below_general(table, claim):
    t = table.dropna(subset=["map_sub"])
    bad = t[t["map_sub"] >= t["map_general"]]
    text = f"sub-label below general in {len(t) - len(bad)} of {len(t)} (case, method) rows"
    if len(bad):
        text += ": not for " + ", ".join(f"{_case(r)} {r['method']}" for _, r in bad.iterrows())
    return len(bad) == 0, text


def _interior_k(table, claim):
    parts, ok = [], []
    keys = [k for k in ("dataset", "backbone") if k in table]
    for case, g in table.groupby(keys, sort=False):
        case = case if isinstance(case, tuple) else (case,)
        K = best_k(g)
        inside = g["K"].min() < K < g["K"].max()
        ok.append(inside)
        name = "/".join([DATASET_LABEL.get(case[0], case[0]), *case[1:]]) if len(case) > 1 and \
            table["backbone"].nunique() > 1 else DATASET_LABEL.get(case[0], case[0])
        parts.append(f"{name}: K = {K} of {sorted(g['K'].tolist())}")
    return all(ok), "; ".join(parts)


def _quantisation_drop(table, claim):
    c = claim["check"]
    keys = ["dataset", "method"]
    dense = table[table["pool"] == "dense"].set_index(keys)
    quant = table[table["pool"] == "quantised"].set_index(keys)
    drops = []
    for key in dense.index.intersection(quant.index):
        for r in ("general", "sub"):
            d = _diff(dense.loc[key, f"map_{r}"], quant.loc[key, f"map_{r}"])
            if not math.isnan(d):
                drops.append((key, r, d))
    if not drops:
        return None, "n/a (no quantised pool)"
    worst = max(drops, key=lambda x: x[2])
    (dataset, method), r, d = worst
    text = (f"largest drop {d:.4f} ({DATASET_LABEL.get(dataset, dataset)} {method} {r}); "
            f"{sum(x[2] <= c['at_most'] for x in drops)} of {len(drops)} drops at most {c['at_most']:g}")
    return all(x[2] <= c["at_most"] for x in drops), text


def _cross_table(table, claim, tables):
    c = claim["check"]
    other = tables.get(c["other"])
    if other is None:
        return None, f"n/a ({c['other']} not available)"
    r = c.get("retrieval", "general")
    mine = table[(table.get("pool", "dense") == "dense") & (table["method"] == c["method"])].set_index("dataset")
    from .slics_clip import stated_rows

    theirs = stated_rows(other)
    theirs = theirs[theirs["method"] == c["method"]].set_index("dataset")
    found = [(d, _diff(mine.loc[d, f"map_{r}"], theirs.loc[d, f"map_{r}"])) for d in mine.index if d in theirs.index]
    if not found:
        return None, "n/a"
    text = f"{c['method']} {r}, this table - {c['other']}: " + ", ".join(
        f"{DATASET_LABEL.get(d, d)} {_fmt(x)}" for d, x in found)
    if "within" in c:
        return all(abs(x) <= c["within"] for _, x in found), text
    return all(x > c["above"] for _, x in found), text


CHECKS = {"difference": _difference, "rank": _rank, "within": _within, "beats_all": _beats_all, "count": _count,
          "sub_below_general": _sub_below_general, "interior_k": _interior_k,
          "quantisation_drop": _quantisation_drop}


def evaluate(claims: list[dict], tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim: its id, place, sentence, the paper's report, this run's values and whether it holds."""
    rows = []
    for claim in claims:
        kind = claim["check"]["kind"]
        table = tables.get(claim["table"])
        if table is None:
            holds, text = None, f"n/a ({claim['table']} not available)"
        elif kind == "cross_table":
            holds, text = _cross_table(table, claim, tables)
        elif kind in CHECKS:
            holds, text = CHECKS[kind](table, claim)
        else:
            raise ValueError(f"claim {claim['id']!r}: unknown check kind {kind!r}; known: "
                             f"{', '.join([*CHECKS, 'cross_table'])}.")
        rows.append({"claim": claim["id"], "place": claim["place"], "sentence": claim["sentence"],
                     "paper": claim["paper"], "this run": text,
                     "holds": "n/a" if holds is None else ("yes" if holds else "no")})
    return pd.DataFrame(rows, columns=COLUMNS)


def read_tables(folder: Path, names) -> dict[str, pd.DataFrame]:
    """The CSV tables ``names`` of ``folder`` that exist."""
    return {n: pd.read_csv(folder / f"{n}.csv") for n in names if (folder / f"{n}.csv").is_file()}


def section_ledger(section: str, tables: dict[str, pd.DataFrame], upstream: Path | None = None) -> pd.DataFrame:
    """The claims notebook ``section`` prints, evaluated on its ``tables`` (plus, for cross-table
    claims, the upstream tables read from ``upstream``)."""
    claims = load_claims(section)
    others = {c["check"]["other"] for c in claims if c["check"]["kind"] == "cross_table"} - set(tables)
    if upstream is not None and others:
        tables = {**read_tables(upstream, others), **tables}
    return evaluate(claims, tables)


def main(argv=None) -> int:
    """Collect the notebooks' ledgers (``results/tables/claims_<section>.csv``) into ``claims.md``/``.csv``."""
    from ..utils.config import results_dir
    from ..utils.io import write_table

    tables = results_dir() / "tables"
    frames = []
    for section in SECTIONS:
        path = tables / f"claims_{section}.csv"
        if not path.is_file():
            print(f"error: {path} is missing; run the {section} stage first.", file=sys.stderr)
            return 1
        frames.append(pd.read_csv(path, keep_default_na=False).assign(section=section))
    ledger = pd.concat(frames, ignore_index=True)
    counts = ledger["holds"].value_counts()
    write_table(ledger[["section", *COLUMNS]], tables / "claims", decimals=0,
                caption=(f"The SLiCS paper's claims checked on this run's tables: {counts.get('yes', 0)} hold, "
                         f"{counts.get('no', 0)} do not, {counts.get('n/a', 0)} cannot be checked here "
                         f"(reference/claims.yaml; mAP@20 with the found-items normaliser)."))
    print(f"claims: {counts.get('yes', 0)} hold, {counts.get('no', 0)} do not, {counts.get('n/a', 0)} n/a")
    return 0


if __name__ == "__main__":
    sys.exit(main())
