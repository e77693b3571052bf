"""Concept-filtered retrieval and its metric, mAP@k: the public entry point.

The functions live in :mod:`slics.core.retrieval` and are re-exported here unchanged.

Conventions (stated there): for one (query, concept) pair with relevance ``rel_i`` at ranks
``i = 1..k``, ``AP@k = (1 / N) * sum_{i <= k} P@i * rel_i`` with ``P@i = (1/i) sum_{l <= i} rel_l``;
mAP@k is the mean over all pairs. The default normaliser is ``N = R_k``, the relevant items
*found* in the top k (``AP@k = 0`` when ``R_k = 0``): the deep-hashing benchmarks' convention,
read as the SLiCS paper's. ``average_precision_at_k(rel, n_relevant)`` divides by
``min(k, R)`` instead (``R`` relevant items in the pool); :func:`filtered_retrieval` reports
both (``ap_*`` and ``ap_*_minkr``). Rankings are by cosine, ties broken by the lower
candidate index.

Examples
--------
>>> import numpy as np
>>> from slics.retrieval import top_k, average_precision_at_k
>>> top_k(np.eye(2), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 2).tolist()
[[0, 2], [1, 2]]
>>> average_precision_at_k([[True, False, True]]).round(4).tolist()
[0.8333]
>>> average_precision_at_k([[True, False, True]], n_relevant=[5]).round(4).tolist()
[0.5556]
"""

from .core.retrieval import AP_CONVENTION, average_precision_at_k, filtered_retrieval, mean_average_precision, top_k

__all__ = ["top_k", "filtered_retrieval", "average_precision_at_k", "mean_average_precision", "AP_CONVENTION"]
