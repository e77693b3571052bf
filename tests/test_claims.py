"""The claims ledger: every claim's sentence is the paper's, every check kind decides correctly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slics.sections import claims
from slics.utils.config import project_root
from slics.utils.reference import report_values

PAPER = "002_be39dbe2b9b924a3.txt"


def _paper_text() -> str:
    folders = [Path(os.environ["SLICS_PAPERS"])] if os.environ.get("SLICS_PAPERS") else []
    folders.append(project_root().parent / "shared" / "papers")
    for folder in folders:
        if (folder / PAPER).is_file():
            return " ".join((folder / PAPER).read_text(encoding="utf-8").split())
    pytest.skip(f"{PAPER} not found: set SLICS_PAPERS to the folder of the source documents.")


def test_every_claim_sentence_is_printed_in_the_paper():
    text = _paper_text()
    ledger = claims.load_claims()
    assert len(ledger) >= 20 and {c["notebook"] for c in ledger} == set(claims.SECTIONS)
    for claim in ledger:
        assert " ".join(claim["sentence"].split()) in text, claim["id"]
        assert claim["check"]["kind"] in {*claims.CHECKS, "cross_table"}


def _walk(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, path + (key,))
    else:
        yield path, node


@pytest.mark.parametrize("section", ["slics_clip", "slics_titok", "slics_dino"])
def test_slics_reference_values_are_in_the_paper_text(section):
    """Every number of the SLiCS paper's reference values appears in the sentence stored beside it,
    and every stored sentence is the paper's (the word captions are checked against Table 1)."""
    text = _paper_text()
    values = report_values(section)
    sentences = {path: v for path, v in _walk(values) if path[-1].endswith("sentence")}
    for path, sentence in sentences.items():
        quoted = sentence.split(": symbols lost")[0]          # the stored reading after the quote
        assert " ".join(quoted.split()) in text, path
    numbers = [v for path, v in _walk(values) if isinstance(v, (int, float)) and not isinstance(v, bool)
               and v != 0.0 and path[0] not in ("s_svd_wins", "sizes")]   # 0.0: "matches it"; sizes: symbols lost
    for v in numbers:
        assert f"{v:g}" in text, (section, v)
    assert len(numbers) >= 4
    if section == "slics_clip":
        table1 = text[text.index("| Subspace |"):text.index("The word captions of supervised")]
        for kind in ("supervised", "unsupervised"):
            for concept, words in values["word_captions_vit_b32_coco"][kind].items():
                assert f"| {concept} |" in table1 and ", ".join(words) in table1


def _table(rows):
    return pd.DataFrame(rows, columns=["dataset", "backbone", "method", "map_general", "map_sub"])


T = _table([("mirflickr25k", "b", "S-SLiCS", 0.90, 0.60), ("mirflickr25k", "b", "S-SVD", 0.88, 0.61),
            ("mirflickr25k", "b", "UF", 0.70, 0.55), ("coco", "b", "S-SLiCS", 0.95, 0.70),
            ("coco", "b", "S-SVD", 0.93, 0.65), ("coco", "b", "UF", 0.80, 0.71)])


def _claim(check, **extra):
    return {"id": "x", "place": "p", "sentence": "s", "paper": "q", "table": "t", "check": check, **extra}


@pytest.mark.parametrize("check, holds", [
    ({"kind": "difference", "a": "S-SLiCS", "b": "UF", "above": 0.0, "cells": "all"}, "no"),       # coco sub -0.01
    ({"kind": "difference", "a": "S-SLiCS", "b": "UF", "above": 0.0, "cells": "most"}, "yes"),     # 3 of 4
    ({"kind": "difference", "a": "S-SLiCS", "b": "UF", "above": 0.15, "retrieval": "general", "cells": "all"}, "no"),
    ({"kind": "difference", "a": "S-SLiCS", "b": "S-SVD", "above": 0.0, "retrieval": "general", "cells": "all"}, "yes"),
    ({"kind": "rank", "method": "S-SLiCS", "rank": 1, "allow": 1}, "no"),                           # first in 2 of 4
    ({"kind": "rank", "method": "S-SLiCS", "rank": 1, "allow": 2}, "yes"),
    ({"kind": "rank", "method": "S-SVD", "rank": 2, "at_most": True, "allow": 0}, "no"),         # third on coco sub
    ({"kind": "rank", "method": "S-SVD", "rank": 2, "at_most": True, "allow": 1}, "yes"),
    ({"kind": "count", "a": "S-SVD", "b": "S-SLiCS", "count": 1}, "yes"),
    ({"kind": "within", "a": "S-SLiCS", "b": "UF", "tolerance": 0.01, "retrieval": "sub", "dataset": "coco"}, "yes"),
    ({"kind": "within", "a": "S-SLiCS", "b": "UF", "tolerance": 0.009, "retrieval": "sub", "dataset": "coco"}, "no"),
    ({"kind": "beats_all", "a": "UF", "others": ["SpLiCE"]}, "n/a"),
    ({"kind": "sub_below_general"}, "yes"),
])
def test_check_kinds_decide_on_a_small_table(check, holds):
    assert claims.evaluate([_claim(check)], {"t": T})["holds"].iloc[0] == holds


def test_cross_table_quantisation_and_k_checks():
    runs = T.assign(pool="dense")
    quant = T.assign(pool="quantised", map_general=T["map_general"] - 0.01)
    both = pd.concat([runs, quant], ignore_index=True)
    out = claims.evaluate([_claim({"kind": "quantisation_drop", "at_most": 0.02}),
                           _claim({"kind": "quantisation_drop", "at_most": 0.005}),
                           _claim({"kind": "cross_table", "other": "u", "method": "UF", "within": 0.02}),
                           _claim({"kind": "cross_table", "other": "u", "method": "UF", "above": 0.0})],
                          {"t": both, "u": T.assign(map_general=T["map_general"] - 0.015)})
    assert list(out["holds"]) == ["yes", "no", "yes", "yes"]
    grid = pd.DataFrame({"dataset": ["coco"] * 3, "K": [2, 4, 8], "map_general": [.5, .6, .5], "map_sub": [.3, .4, .35]})
    assert claims.evaluate([_claim({"kind": "interior_k"})], {"t": grid})["holds"].iloc[0] == "yes"
    grid.loc[2, "map_sub"] = 0.5
    assert claims.evaluate([_claim({"kind": "interior_k"})], {"t": grid})["holds"].iloc[0] == "no"
    with pytest.raises(ValueError, match="unknown check kind 'median'"):
        claims.evaluate([_claim({"kind": "median"})], {"t": T})
    assert claims.evaluate([_claim({"kind": "sub_below_general"})], {})["holds"].iloc[0] == "n/a"
