"""Sections 4.4-4.5 driver: preprocessing, the quantised pool inside the retrieval protocol, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slics.core.dictionary import SLiCS
from slics.core.pq import QuantisedPool, TokenQuantiser, storage
from slics.core.retrieval import filtered_retrieval, mean_average_precision
from slics.data.multilabel import MultiLabelSet
from slics.sections import slics_backbones as sec
from slics.embedding.retrieval_set import RetrievalSet
from slics.evaluation import Quantised, QuantisedCandidates, SLiCSMethod, retrieval_pairs
from slics.preprocess import preprocess


def test_preprocess_titok_tokens_and_dino_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 24)) * 4
    t = preprocess(X, "tokens", n_tokens=4)
    np.testing.assert_allclose(np.linalg.norm(t.reshape(5, 4, 6), axis=2), 1.0, rtol=1e-6)
    np.testing.assert_allclose(t[1, 6:12], X[1, 6:12] / np.linalg.norm(X[1, 6:12]), rtol=1e-5)
    d = preprocess(X, "unit")
    np.testing.assert_allclose(d, X / np.linalg.norm(X, axis=1, keepdims=True), rtol=1e-6)   # no mean removed
    with pytest.raises(ValueError, match="kind must be one of"):
        preprocess(X, "clip")


@pytest.fixture(scope="module")
def planted():
    """A small planted retrieval set: 3 concepts (one with 2 sub-labels), tokens of 4 numbers."""
    rng = np.random.default_rng(1)
    n, C, T, d = 400, 3, 6, 4
    general = rng.random((n, C)) < 0.45
    general[~general.any(axis=1), 0] = True
    sub = np.zeros((n, 2), dtype=bool)
    sub[:, 0] = general[:, 0] & (rng.random(n) < 0.5)
    sub[:, 1] = general[:, 0] & ~sub[:, 0]
    atoms = rng.standard_normal((C + 2, T * d))
    X = general.astype(float) @ atoms[:C] + sub.astype(float) @ atoms[C:] + 0.3 * rng.standard_normal((n, T * d))
    data = MultiLabelSet(tuple(f"im{i}" for i in range(n)), general.copy(), ("a", "b", "c"), general,
                         ("a", "b", "c"), sub, ("a1", "a2"), np.array([0, 0]))
    split = np.array(["train"] * 200 + ["val"] * 50 + ["query"] * 50 + ["pool"] * 100, dtype=object)
    Xt = preprocess(X, "tokens", n_tokens=T)
    return RetrievalSet("mirflickr25k", "planted", Xt, X, split, data, None, None, np.zeros(T * d)), T


def test_quantised_pool_retrieval_equals_lut_ranking(planted):
    rs, T = planted
    pool, queries = rs.rows("pool"), rs.rows("query")
    q = TokenQuantiser(n_tokens=T, codebook_size=12, random_state=0).fit(rs.X[rs.rows("train")])
    qpool = QuantisedPool.from_vectors(rs.X[pool], q.codebook_, T)
    Xhat = qpool.vectors()
    candidates = QuantisedCandidates(q.codebook_, T)
    np.testing.assert_array_equal(candidates.vectors(rs, pool), Xhat)
    model = SLiCS(n_atoms=2, n_iter=2).fit(rs.X[rs.rows("train")], rs.data.general[rs.rows("train")])
    check = sec.lut_agreement(rs, model, qpool, Xhat, n_queries=50, seed=0, k=10)
    assert check["agreement"] == 1.0 and check["max_score_difference"] < 1e-4
    # the protocol on the quantised pool: the same as scoring the dequantised pool directly
    fitted = Quantised(SLiCSMethod(2, model=model), candidates).fit(rs)
    inputs = fitted.inputs(queries, pool)
    np.testing.assert_array_equal(inputs.query_emb, rs.X[queries])      # queries are never quantised
    pairs = retrieval_pairs(rs, fitted, queries, pool, k=10)
    d = rs.data
    ref = filtered_retrieval(rs.X[queries], Xhat, d.general[queries], d.general[pool], query_sub=d.sub[queries],
                             pool_sub=d.sub[pool], sub_parent=d.sub_parent, k=10,
                             transform_query=lambda X, j: model.project(X, j))
    pd.testing.assert_frame_equal(pairs, ref)
    assert 0 < mean_average_precision(pairs)["map_general"] <= 1


def test_results_table_layout_and_s_svd_wins():
    rows = []
    for pool in ("dense", "quantised"):
        for method, g, s in (("S-SVD", 0.9, 0.7), ("S-SLiCS", 0.8, 0.75), ("UF", 0.6, 0.5)):
            rows.append({"dataset": "coco", "backbone": "demo", "method": method, "map_general": g - (pool == "quantised") * 0.1,
                         "map_sub": s, "pool": pool, "seed": 0, "n_pairs": 10, "n_sub_pairs": 5})
    table = sec.results_table(pd.DataFrame(rows))
    assert list(table["pool"]) == ["dense"] * 3 + ["quantised"] * 3
    layout = sec.paper_layout(table).set_index("retrieval")
    assert layout.loc["general", "S-SLiCS (quantised)"] == pytest.approx(0.7)
    assert layout.loc["sub", "UF (dense)"] == pytest.approx(0.5)
    assert sec.s_svd_wins(table) == (1, 2)          # general yes (0.9 > 0.8), sub no (0.7 < 0.75)
    paper = {"s_slics_general": {"coco": 0.795}, "s_slics_sentence": "x", "uf_general": {"coco": 0.564},
             "uf_sentence": "y", "s_slics_minus_uf": {"general": {"coco": 0.23}, "sub": {"coco": 0.04}},
             "s_slics_minus_uf_sentence": "z"}
    comp = sec.paper_comparison(table, paper).set_index(["statement", "retrieval"])
    assert comp.loc[("S-SLiCS - UF", "general"), "run"] == pytest.approx(0.2)
    assert comp.loc[("S-SLiCS - UF", "sub"), "paper"] == pytest.approx(0.04)


def test_cost_table_matches_closed_form():
    qpool = QuantisedPool(np.zeros((1000, 32), dtype=np.uint16), np.eye(12, dtype=np.float32))
    t = sec.cost_table({"x": {"qpool": qpool}}, {"n_tokens": 32, "token_dim": 12, "codebook_size": 4096},
                       {"paper": 100_000}).set_index("pool")
    assert t.loc["x", "index_bits"] == 4 and t.loc["x", "candidates"] == 1000
    assert t.loc["x", "dense_madds_per_query"] == 1000 * 384
    assert t.loc["x", "lut_ops_per_query"] == 12 * 384 + 1000 * 32
    st = storage(100_000, 32, 12, 4096)
    assert t.loc["paper (paper's sizes)", "storage_ratio"] == pytest.approx(st["dense_bytes"] / st["packed_index_bytes"])
    assert t.loc["paper (paper's sizes)", "storage_ratio"] == pytest.approx(32 * 12 * 32 / (32 * 12))
