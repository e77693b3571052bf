"""The protocol shared by the retrieval sections (notebooks 03, 05, 06): choose K, label lists.

Every retrieval section fits its methods through :mod:`slics.evaluation` and chooses the
number of atoms per concept ``K`` the same way: S-SLiCS for every ``K`` of a grid, scored on
the validation queries against the pool, the best sub-label mAP wins (ties: the smaller
``K``). The qualitative label lists (the paper's Figs. 8-10, in words, every method a section
fits) are shared too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.retrieval import top_k
from ..embedding.retrieval_set import RetrievalSet
from ..evaluation import SLiCSMethod, retrieval_pairs
from ..core.retrieval import mean_average_precision

DATASET_LABEL = {"mirflickr25k": "MIR", "coco": "COCO"}
# Printed precision of the retrieval tables and metrics (README, "Reproduction contract").
DECIMALS = {"map_general": 4, "map_sub": 4, "map_general_std": 4, "map_sub_std": 4, "paper": 3, "run": 4,
            "mean_labels_per_image": 3, "residual": 4, "cosine": 3, "co_occurrence": 3,
            "relative_error": 4, "*": 4}


def choose_k(rs: RetrievalSet, grid, n_iter: int, batch_size, pool: np.ndarray, k: int = 20,
             seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Validation mAP@k (general and sub-label) of S-SLiCS for every ``K`` of ``grid`` (Fig. 6),
    and the fitted methods by ``K``."""
    from tqdm import tqdm

    rows, fitted = [], {}
    for K in tqdm(list(grid), desc=f"K grid ({rs.dataset})", disable=None):
        method = fitted[int(K)] = SLiCSMethod(int(K), int(n_iter), batch_size, seed).fit(rs)
        summary = mean_average_precision(retrieval_pairs(rs, method, rs.rows("val"), pool, k))
        rows.append({"dataset": rs.dataset, "backbone": rs.backbone, "K": int(K), "map_general": summary["map_general"],
                     "map_sub": summary["map_sub"]})
    return pd.DataFrame(rows), fitted


def best_k(grid_table: pd.DataFrame) -> int:
    """The ``K`` with the best validation sub-label mAP (ties: the smaller ``K``)."""
    t = grid_table.sort_values(["map_sub", "K"], ascending=[False, True], kind="stable")
    return int(t["K"].iloc[0])


def seeded_subset(rows: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """``size`` of ``rows`` drawn without replacement (sorted), or all of them when ``size`` is null or larger."""
    if size is None or int(size) >= rows.size:
        return np.sort(rows)
    return np.sort(rng.choice(rows, size=int(size), replace=False))


def example_queries(rs: RetrievalSet, n_queries: int, seed: int) -> np.ndarray:
    """A seeded choice of queries with at least two general concepts (sorted rows)."""
    rng = np.random.default_rng(seed)
    queries = rs.rows("query")
    multi = queries[rs.data.general[queries].sum(axis=1) >= 2]
    return np.sort(rng.choice(multi, size=min(n_queries, multi.size), replace=False))


def qualitative_rankings(rs: RetrievalSet, methods, queries, k: int = 5, pool=None) -> list[tuple]:
    """The top ``k`` candidates of each query under each fitted method, as concept-filtered retrieval ranks them.

    ``methods``: :class:`~slics.evaluation.FittedMethod` objects, in the order shown. A method
    whose inputs have no per-concept transform (UF, SpLiCE) ranks the same for every concept
    and gives one ranking per query (concept ``None``); the others give one per concept of the
    query. Each method's inputs are computed once for all the set's query rows against ``pool``
    (default the ``pool`` split), so work a method caches for that protocol (SpLiCE's codes) is
    reused. Returns ``(query row, method name, concept index or None, candidate rows)`` tuples.
    """
    pool = rs.rows("pool") if pool is None else np.asarray(pool)
    all_queries = rs.rows("query")
    position = {int(q): i for i, q in enumerate(all_queries)}
    missing = [int(q) for q in queries if int(q) not in position]
    if missing:
        raise ValueError(f"rows {missing[:5]} are not query rows of the {rs.dataset} set.")
    out = []
    fitted_inputs = [(f.name, f.inputs(all_queries, pool)) for f in methods]
    for q in queries:
        i = position[int(q)]
        for name, inputs in fitted_inputs:
            Q = inputs.query_emb[i:i + 1]
            filtered = inputs.transform_query is not None or inputs.transform_pool is not None
            for j in (np.flatnonzero(rs.data.general[q]) if filtered else [None]):
                Qj = Q if inputs.transform_query is None else inputs.transform_query(Q, int(j))
                P = inputs.pool_emb if inputs.transform_pool is None else inputs.transform_pool(inputs.pool_emb, int(j))
                out.append((int(q), name, None if j is None else int(j), pool[top_k(Qj, P, k)[0]]))
    return out


def qualitative_methods(result: dict, names) -> list:
    """The fitted methods ``names`` of a section's ``run_dataset`` result (its ``fitted`` dict), in that order."""
    missing = [n for n in names if n not in result["fitted"]]
    if missing:
        raise KeyError(f"the run fitted no {', '.join(missing)}; it has {', '.join(result['fitted'])}.")
    return [result["fitted"][n] for n in names]


def qualitative(rs: RetrievalSet, methods, n_queries: int, seed: int, k: int = 5) -> pd.DataFrame:
    """The label lists of Figs. 8-10: the labels of the top ``k`` results of a few queries under each method.

    ``methods``: fitted methods in the order shown (the paper's Fig. 8: UF, S-SLiCS, U-SLiCS,
    F-SpLiCE), ranked by :func:`qualitative_rankings`; ``filter`` is the concept, or ``none``
    for a method that does not filter (UF, SpLiCE).
    """
    chosen = example_queries(rs, n_queries, seed)
    d = rs.data

    def labels(i):
        parts = []
        for j in np.flatnonzero(d.general[i]):
            subs = [d.sub_names[s] for s in d.sub_labels_of(int(j)) if d.sub[i, s]]
            parts.append(f"{d.general_names[j]} ({'+'.join(subs)})" if subs else d.general_names[j])
        return ", ".join(parts)

    return pd.DataFrame([{"query": d.image_ids[q], "query labels": labels(q), "method": name,
                          "filter": "none" if j is None else d.general_names[j],
                          "top results (labels)": " | ".join(labels(i) for i in top)}
                         for q, name, j, top in qualitative_rankings(rs, methods, chosen, k)])
