"""The retrieval metric's contract at its edges, written from the survivors of `make mutation`.

Each test pins behaviour that a single small change of ``slics.core.retrieval`` used to
leave unnoticed: error messages that name the argument, defaults, empty and one-query
concepts, the layout of the returned table.
"""

import numpy as np
import pandas as pd
import pytest

from slics.core.retrieval import average_precision_at_k, filtered_retrieval, mean_average_precision, top_k


def _set(n_query=4, n_pool=6, d=3, C=2, seed=0):
    rng = np.random.default_rng(seed)
    Xq, Xp = rng.standard_normal((n_query, d)), rng.standard_normal((n_pool, d))
    Yq = np.zeros((n_query, C), bool)
    Yq[np.arange(n_query), np.arange(n_query) % C] = True
    Yp = np.zeros((n_pool, C), bool)
    Yp[np.arange(n_pool), np.arange(n_pool) % C] = True
    return Xq, Xp, Yq, Yp


# ------------------------------------------------------------------ top_k
def test_top_k_with_no_queries_gives_an_empty_ranking():
    out = top_k(np.empty((0, 3)), np.eye(3), 2)
    assert out.shape == (0, 2) and out.dtype == np.int64


def test_top_k_names_a_dimension_mismatch():
    with pytest.raises(ValueError, match="candidates has 2 columns but 3 are expected"):
        top_k(np.ones((1, 3)), np.ones((4, 2)), 1)


def test_top_k_k_equal_to_pool_is_a_full_ordering():
    P = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(top_k(np.array([[1.0, 0.2]]), P, 4), [[0, 2, 1, 3]])


# ------------------------------------------------------------------ average precision
def test_average_precision_with_zero_ranks_is_zero_per_query():
    np.testing.assert_array_equal(average_precision_at_k(np.zeros((3, 0), bool)), np.zeros(3))


def test_average_precision_reads_integer_relevance_as_boolean():
    np.testing.assert_allclose(average_precision_at_k(np.array([[0, 1, 1]])), [(1 / 2 + 2 / 3) / 2])


def test_average_precision_names_a_bad_shape():
    with pytest.raises(ValueError, match=r"relevance must be a 2-D \(queries, ranks\) array, got shape \(3,\)"):
        average_precision_at_k(np.ones(3, bool))


# ------------------------------------------------------------------ filtered retrieval: errors name the argument
@pytest.mark.parametrize("which, name", [(0, "query_emb"), (1, "pool_emb")])
def test_filtered_retrieval_names_bad_embeddings(which, name):
    args = list(_set())
    args[which] = np.full_like(args[which], np.nan)
    with pytest.raises(ValueError, match=f"^{name} contains"):
        filtered_retrieval(*args, k=2)


@pytest.mark.parametrize("which, name", [(2, "query_general"), (3, "pool_general")])
def test_filtered_retrieval_names_bad_labels(which, name):
    args = list(_set())
    args[which] = args[which][:-1]
    with pytest.raises(ValueError, match=f"^{name} has"):
        filtered_retrieval(*args, k=2)


def test_filtered_retrieval_checks_the_shared_space_only_without_transforms():
    Xq, Xp, Yq, Yp = _set()
    with pytest.raises(ValueError, match="^pool_emb has 2 columns but 3 are expected"):
        filtered_retrieval(Xq, Xp[:, :2], Yq, Yp, k=2)
    lift = lambda X, j: np.c_[X, np.zeros(len(X))]        # noqa: E731  pool rows 2 -> 3 columns
    for kwargs in (dict(transform_query=lambda X, j: X[:, :2]), dict(transform_pool=lift)):
        out = filtered_retrieval(Xq, Xp[:, :2], Yq, Yp, k=2, **kwargs)
        assert len(out) == len(Xq)


def test_filtered_retrieval_names_concept_mismatch():
    Xq, Xp, Yq, Yp = _set()
    with pytest.raises(ValueError, match="^queries and candidates must have the same general concepts.$"):
        filtered_retrieval(Xq, Xp, Yq, np.c_[Yp, Yp[:, :1]], k=2)


@pytest.mark.parametrize("name", ["query_sub", "pool_sub"])
def test_filtered_retrieval_names_bad_sub_labels(name):
    Xq, Xp, Yq, Yp = _set()
    subs = {"query_sub": Yq[:, :1], "pool_sub": Yp[:, :1]}
    subs[name] = subs[name][:-1]
    with pytest.raises(ValueError, match=f"^{name} has"):
        filtered_retrieval(Xq, Xp, Yq, Yp, sub_parent=[0], k=2, **subs)
    with pytest.raises(ValueError, match="^query_sub, pool_sub and sub_parent must describe the same sub-labels.$"):
        filtered_retrieval(Xq, Xp, Yq, Yp, query_sub=Yq[:, :1], pool_sub=Yp[:, :1], sub_parent=[0, 1], k=2)


def test_filtered_retrieval_rejects_k_zero_even_without_query_pairs():
    Xq, Xp, Yq, Yp = _set()
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        filtered_retrieval(Xq, Xp, np.zeros_like(Yq), Yp, k=0)
    assert len(filtered_retrieval(Xq, Xp, Yq, Yp, k=1)) == len(Xq)


# ------------------------------------------------------------------ filtered retrieval: behaviour
def test_filtered_retrieval_default_k_is_20():
    """One query; 21 candidates, the only relevant one is the least similar: AP@20 is 0, AP@21 is 1/21."""
    Xq = np.array([[1.0, 0.0]])
    angles = np.linspace(0, 3.0, 21)
    Xp = np.c_[np.cos(angles), np.sin(angles)]
    Yq = np.array([[True]])
    Yp = np.zeros((21, 1), bool)
    Yp[-1] = True
    assert filtered_retrieval(Xq, Xp, Yq, Yp)["ap_general"].tolist() == [0.0]
    assert filtered_retrieval(Xq, Xp, Yq, Yp, k=21)["ap_general"].tolist() == [pytest.approx(1 / 21)]


def test_filtered_retrieval_skips_empty_concepts_and_keeps_one_query_concepts():
    Xq, Xp, Yq, Yp = _set(n_query=3, C=3)
    Yq[:] = False
    Yq[0, 1] = True                          # concept 0: no query; concept 1: one; concept 2: two
    Yq[1:, 2] = True
    out = filtered_retrieval(Xq, Xp, Yq, Yp, k=2)
    assert out["concept"].tolist() == [1, 2, 2] and out["query"].tolist() == [0, 1, 2]
    assert isinstance(out.index, pd.RangeIndex) and out.index.tolist() == [0, 1, 2]


def test_filtered_retrieval_without_pairs_has_the_columns():
    Xq, Xp, Yq, Yp = _set()
    out = filtered_retrieval(Xq, Xp, np.zeros_like(Yq), Yp, k=2)
    full = filtered_retrieval(Xq, Xp, Yq, Yp, k=2)
    assert list(out.columns) == list(full.columns) and len(out) == 0
    assert list(out.columns)[:4] == ["query", "concept", "ap_general", "ap_sub"]


# ------------------------------------------------------------------ mean average precision
def test_mean_average_precision_of_no_pairs_and_no_sub_pairs():
    empty = pd.DataFrame({"query": [], "concept": [], "ap_general": [], "ap_sub": []})
    out = mean_average_precision(empty)
    assert set(out) == {"map_general", "map_sub", "n_pairs", "n_sub_pairs"}
    assert np.isnan(out["map_general"]) and np.isnan(out["map_sub"]) and out["n_pairs"] == out["n_sub_pairs"] == 0
    some = pd.DataFrame({"query": [0, 1], "concept": [0, 0], "ap_general": [0.5, 1.0], "ap_sub": [np.nan, np.nan]})
    out = mean_average_precision(some)
    assert out["map_general"] == 0.75 and np.isnan(out["map_sub"]) and out["n_sub_pairs"] == 0


# ------------------------------------------------------------------ both AP normalisers (main's minkr columns)
def test_average_precision_messages_are_exact():
    with pytest.raises(ValueError, match=r"^relevance must hold only 0/1 or True/False values.$"):
        average_precision_at_k(np.array([[2, 0]]))
    with pytest.raises(ValueError, match=r"^n_relevant must give, per row, a count >= the relevant items in its top k.$"):
        average_precision_at_k(np.array([[1, 1]]), n_relevant=np.array([1]))


def test_mean_average_precision_under_both_normalisers():
    cols = ["query", "concept", "ap_general", "ap_sub", "ap_general_minkr", "ap_sub_minkr"]
    empty = mean_average_precision(pd.DataFrame({c: [] for c in cols}))
    assert np.isnan(empty["map_general_minkr"]) and np.isnan(empty["map_sub_minkr"])
    pairs = pd.DataFrame({"query": [0, 1], "concept": [0, 0], "ap_general": [0.5, 1.0], "ap_sub": [0.2, np.nan],
                          "ap_general_minkr": [0.25, 0.75], "ap_sub_minkr": [0.1, np.nan]})
    out = mean_average_precision(pairs)
    assert out["map_general_minkr"] == 0.5 and out["map_sub_minkr"] == pytest.approx(0.1)
    assert out["map_sub"] == pytest.approx(0.2) and out["n_sub_pairs"] == 1
    no_sub = mean_average_precision(pairs.assign(ap_sub=np.nan, ap_sub_minkr=np.nan))
    assert np.isnan(no_sub["map_sub_minkr"]) and isinstance(no_sub["map_sub_minkr"], float)
