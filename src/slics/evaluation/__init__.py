"""Concept-filtered retrieval evaluation: any list of methods on a retrieval set, one table.

>>> from slics.evaluation import evaluate                          # doctest: +SKIP
>>> evaluate(rs, ["UF", "S-SVD", "S-SLiCS"], options={"n_atoms": 4})   # doctest: +SKIP

:func:`evaluate` fits every method on the set's training rows (:mod:`.methods`), scores the
query rows against the pool rows with :func:`slics.core.retrieval.filtered_retrieval`
(mAP@k, general and sub-label; the AP@k convention is stated there) and returns one row per
method. :func:`table2` averages runs over seeds as the paper's tables do.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..core.retrieval import filtered_retrieval, mean_average_precision
from ..utils.validation import check_indices
from .methods import (FittedMethod, Quantised, QuantisedCandidates, RetrievalInputs, RetrievalMethod, SLiCSMethod, SpLiCEMethod,
                      Unfiltered, get_method, method_names, register_method, unregister_method)

__all__ = ["evaluate", "retrieval_pairs", "summarise", "table2", "fit_method", "RetrievalMethod", "FittedMethod",
           "RetrievalInputs", "Unfiltered", "SLiCSMethod", "SpLiCEMethod", "QuantisedCandidates",
           "Quantised", "register_method",
           "unregister_method", "get_method", "method_names"]


def _rows(rs, rows, name: str) -> np.ndarray:
    """Row indices of ``rs`` (no negative wrap-around, no out-of-range IndexError from numpy)."""
    return check_indices(rows, name, rs.X.shape[0])


def retrieval_pairs(rs, fitted: FittedMethod, queries: np.ndarray, pool: np.ndarray, k: int = 20) -> pd.DataFrame:
    """AP@k of every (query, concept) pair of ``fitted`` on ``queries`` against ``pool`` (row indices of ``rs``)."""
    queries, pool = _rows(rs, queries, "queries"), _rows(rs, pool, "pool")
    d = rs.data
    inputs = fitted.inputs(queries, pool)
    return filtered_retrieval(inputs.query_emb, inputs.pool_emb, d.general[queries], d.general[pool],
                              query_sub=d.sub[queries], pool_sub=d.sub[pool], sub_parent=d.sub_parent,
                              transform_query=inputs.transform_query, transform_pool=inputs.transform_pool, k=k)


def summarise(pairs: pd.DataFrame, dataset: str, backbone: str, method: str, seed: int | None = None) -> dict:
    """One result row: the set, the method (and seed), mAP@k general and sub-label, pair counts."""
    return {"dataset": dataset, "backbone": backbone, "method": method, "seed": seed,
            **mean_average_precision(pairs)}


def fit_method(rs, method, *, options: dict | None = None, cache: dict | None = None) -> FittedMethod:
    """``method`` (a registered name, a :class:`RetrievalMethod` or a :class:`FittedMethod`) fitted on ``rs``."""
    if isinstance(method, FittedMethod):
        return method
    if isinstance(method, str):
        method = get_method(method, **(options or {}))
    if not isinstance(method, RetrievalMethod):
        raise TypeError(f"methods must be names, RetrievalMethod or FittedMethod objects; got {type(method).__name__}.")
    return method.fit(rs, cache)


def evaluate(rs, methods: Sequence, *, queries=None, pool=None, k: int = 20, options: dict | None = None,
             seed: int | None = None, cache: dict | None = None) -> pd.DataFrame:
    """mAP@k of every method on one retrieval set, one row per method.

    Parameters
    ----------
    rs : RetrievalSet
    methods : sequence of str, RetrievalMethod or FittedMethod
        Registered names (:func:`method_names`: UF, S-SVD, S-SLiCS, U-SLiCS, SpLiCE, F-SpLiCE)
        are built with ``options``.
    queries, pool : arrays of int, optional
        Row indices (default the set's ``query`` and ``pool`` splits).
    k : int, default 20
    options : dict, optional
        Settings passed to the methods built from names (e.g. ``n_atoms``, ``n_iter``,
        ``batch_size``, ``seed``, ``lam``); each takes the ones it knows.
    seed : int, optional
        Recorded in the ``seed`` column.
    cache : dict, optional
        Shared between the methods (e.g. SpLiCE codes); one is made per call by default.

    Returns
    -------
    DataFrame
        Columns ``dataset, backbone, method, seed, map_general, map_sub, n_pairs, n_sub_pairs``.
    """
    queries = rs.rows("query") if queries is None else _rows(rs, queries, "queries")     # checked before any fit
    pool = rs.rows("pool") if pool is None else _rows(rs, pool, "pool")
    cache = {} if cache is None else cache
    rows = []
    for method in methods:
        fitted = fit_method(rs, method, options=options, cache=cache)
        rows.append(summarise(retrieval_pairs(rs, fitted, queries, pool, k), rs.dataset, rs.backbone, fitted.name,
                              seed))
    return pd.DataFrame(rows)


def table2(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std over seeds, NaN for one run) mAP@k per dataset, backbone and method; also the
    mean under the ``min(k, R)`` normaliser where the runs have it."""
    g = runs.groupby(["dataset", "backbone", "method"], sort=False)
    out = g[["map_general", "map_sub"]].mean()
    std = g[["map_general", "map_sub"]].std(ddof=0).add_suffix("_std").where(g.size() > 1)
    out = out.join(std).join(g.size().rename("n_runs"))
    minkr = [c for c in ("map_general_minkr", "map_sub_minkr") if c in runs]
    if minkr:                                  # the other AP@k normaliser (slics.core.retrieval)
        out = out.join(g[minkr].mean())
    return out.reset_index()
