"""Concept-filtered retrieval: top-k against brute force, AP@k against a naive loop."""

from __future__ import annotations

import numpy as np
import pytest

from slics.core.retrieval import (average_precision_at_k, filtered_retrieval, mean_average_precision, select_top,
                                  top_k)


def _naive_ap(rel):
    hits, total = 0, 0.0
    for i, r in enumerate(rel, 1):
        if r:
            hits += 1
            total += hits / i
    return total / hits if hits else 0.0


def test_average_precision_matches_naive_definition():
    rng = np.random.default_rng(0)
    rel = rng.random((200, 20)) < 0.3
    rel[0] = False
    expected = np.array([_naive_ap(r) for r in rel])
    np.testing.assert_allclose(average_precision_at_k(rel), expected, rtol=1e-12)
    assert average_precision_at_k([[True, False, True]])[0] == pytest.approx((1 + 2 / 3) / 2)


def test_top_k_matches_full_sort_with_index_ties():
    rng = np.random.default_rng(1)
    Q = rng.standard_normal((37, 8))
    P = rng.standard_normal((300, 8))
    got = top_k(Q, P, 20, block=7)
    S = (Q / np.linalg.norm(Q, axis=1, keepdims=True)) @ (P / np.linalg.norm(P, axis=1, keepdims=True)).T
    for i in range(Q.shape[0]):
        order = sorted(range(P.shape[0]), key=lambda c: (-S[i, c], c))[:20]
        assert got[i].tolist() == order                    # no near-ties at float64 precision here
    # exact ties (scores exactly representable): broken by the lower candidate index
    P = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert top_k(np.array([[2.0, 0.0], [0.0, 1.0]]), P, 3).tolist() == [[1, 3, 4], [0, 2, 1]]
    assert top_k(np.zeros((1, 2)), P, 4).tolist() == [[0, 1, 2, 3]]   # a zero query: pool order


def _sorted_top(S, k):
    """The reference: each row fully ordered by (score descending, column ascending)."""
    return np.array([np.lexsort((np.arange(S.shape[1]), -row))[:k] for row in S], dtype=np.int64).reshape(len(S), k)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, n, k", [(9, 4096, 20), (9, 4099, 20), (5, 16 * 7, 7), (5, 16 * 7 - 1, 7), (3, 50_000, 1),
                                     (4, 1000, 999), (4, 1000, 1000), (6, 2000, 3)])
@pytest.mark.parametrize("scores", ["continuous", "few values", "one value", "best at the end"])
def test_select_top_matches_a_full_sort(dtype, m, n, k, scores):
    """The bound on the k-th score (block maxima; a partial last block left out) must never drop a candidate
    of the top k, with exact ties between blocks and within one, at any block count."""
    rng = np.random.default_rng(n + k)
    S = {"continuous": lambda: rng.standard_normal((m, n)),
         "few values": lambda: rng.integers(-2, 3, (m, n)).astype(float),
         "one value": lambda: np.full((m, n), 0.5),
         "best at the end": lambda: np.tile(np.arange(n, dtype=float) // 3, (m, 1))}[scores]().astype(dtype)
    S[0, :] = -np.inf if dtype == np.float64 else S[0, :]
    np.testing.assert_array_equal(select_top(S, k), _sorted_top(S, k))


def test_filtered_retrieval_against_naive_loop():
    rng = np.random.default_rng(2)
    m, n, d, C = 15, 60, 6, 3
    Xq, Xp = rng.standard_normal((m, d)), rng.standard_normal((n, d))
    Yq, Yp = rng.random((m, C)) < 0.5, rng.random((n, C)) < 0.5
    parent = np.array([0, 0, 2])
    Sq, Sp = rng.random((m, 3)) < 0.4, rng.random((n, 3)) < 0.4
    proj = rng.standard_normal((C, d, d))
    fq = lambda X, j: X @ proj[j]                                           # noqa: E731
    fp = lambda X, j: X @ proj[j].T                                         # noqa: E731
    pairs = filtered_retrieval(Xq, Xp, Yq, Yp, query_sub=Sq, pool_sub=Sp, sub_parent=parent,
                               transform_query=fq, transform_pool=fp, k=10)
    rows = []
    for j in range(C):
        for q in range(m):
            if not Yq[q, j]:
                continue
            a = fq(Xq[q:q + 1], j)[0]
            scores = []
            for c in range(n):                                          # loop over candidates
                b = fp(Xp[c:c + 1], j)[0]
                scores.append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
            ranked = sorted(range(n), key=lambda c: (-scores[c], c))[:10]
            gen = _naive_ap([Yp[c, j] for c in ranked])
            subs = [s for s in range(3) if parent[s] == j and Sq[q, s]]
            sub = _naive_ap([any(Sp[c, s] for s in subs) for c in ranked]) if subs else np.nan
            rows.append((q, j, gen, sub))
    got = pairs.sort_values(["concept", "query"])[["query", "concept", "ap_general", "ap_sub"]].to_numpy()
    want = np.array(sorted(rows, key=lambda r: (r[1], r[0])), dtype=float)
    np.testing.assert_array_equal(got[:, :2], want[:, :2])
    np.testing.assert_allclose(got[:, 2:], want[:, 2:], atol=1e-6)
    summary = mean_average_precision(pairs)
    assert summary["n_pairs"] == int(Yq.sum())
    assert summary["map_sub"] == pytest.approx(np.nanmean(want[:, 3]))


# ---------------------------------------------------------------------------------------------------
# The AP@k conventions, each against an independent implementation on the same rankings

def _rankings(seed=0, m=40, n=60, k=10):
    rng = np.random.default_rng(seed)
    rel_pool = rng.random((m, n)) < rng.uniform(0.02, 0.5, (m, 1))      # relevance of every pool item
    order = np.argsort(rng.random((m, n)), axis=1)                       # some ranking of the pool
    return rel_pool, order, k


def test_found_convention_equals_torchmetrics_and_sklearn():
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.retrieval")
    from sklearn.metrics import average_precision_score

    rel_pool, order, k = _rankings()
    ours = average_precision_at_k(np.take_along_axis(rel_pool, order, axis=1)[:, :k])
    n = rel_pool.shape[1]
    for i in range(len(rel_pool)):
        score = np.empty(n)
        score[order[i]] = np.arange(n, 0, -1, dtype=float)                  # positive, strictly by rank
        ref = float(tm.retrieval_average_precision(torch.tensor(score), torch.tensor(rel_pool[i]), top_k=k))
        assert ours[i] == pytest.approx(ref, abs=1e-6)
        top = order[i, :k]
        if rel_pool[i, top].any():                                          # sklearn: AP of the top-k list
            assert ours[i] == pytest.approx(average_precision_score(rel_pool[i, top], score[top]), abs=1e-12)
        else:
            assert ours[i] == 0


def test_min_k_r_convention_equals_its_definition():
    rel_pool, order, k = _rankings(1)
    ranked = np.take_along_axis(rel_pool, order, axis=1)
    ours = average_precision_at_k(ranked[:, :k], rel_pool.sum(axis=1))
    for i, row in enumerate(ranked):
        total, found = 0.0, 0
        for rank in range(1, k + 1):                                        # sum of P@i at the relevant ranks
            if row[rank - 1]:
                found += 1
                total += found / rank
        R = int(row.sum())
        assert ours[i] == pytest.approx(total / min(k, R) if R else 0.0, abs=1e-12)
    assert np.all(ours <= average_precision_at_k(ranked[:, :k]) + 1e-15)    # it can only be lower


def test_filtered_retrieval_reports_both_normalisers():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 5))
    Y = rng.random((50, 2)) < 0.3
    Y[~Y.any(axis=1), 0] = True
    S = np.stack([Y[:, 0] & (rng.random(50) < .5), Y[:, 0] & (rng.random(50) < .5)], axis=1)
    pairs = filtered_retrieval(X[:10], X[10:], Y[:10], Y[10:], query_sub=S[:10], pool_sub=S[10:],
                               sub_parent=np.array([0, 0]), k=5)
    for _, r in pairs.iterrows():
        q, j = int(r["query"]), int(r["concept"])
        top = top_k(X[q:q + 1], X[10:], 5)[0]
        R = int(Y[10:, j].sum())
        rel = Y[10:][top, j]
        assert r["ap_general_minkr"] == pytest.approx(average_precision_at_k(rel[None], [R])[0])
        if not np.isnan(r["ap_sub"]):
            mine = S[q] & (np.array([0, 0]) == j)
            relevant = (S[10:] & mine).any(axis=1)
            assert r["ap_sub_minkr"] == pytest.approx(average_precision_at_k(relevant[top][None], [relevant.sum()])[0])
    summary = mean_average_precision(pairs)
    assert summary["map_general_minkr"] <= summary["map_general"]


def test_relevance_must_be_binary():
    with pytest.raises(ValueError, match="only 0/1"):
        average_precision_at_k(np.array([[1, -1, 0]]))
    with pytest.raises(ValueError, match="n_relevant"):
        average_precision_at_k(np.array([[True, True]]), [1])


def test_cosine_scores_of_any_slice_are_those_of_the_whole_pool():
    """cosine_scores scores the pool in blocks of POOL_BLOCK rows: a slice at its offset (a shard)
    gets the bits of the whole pool's scores, which are the block products written out here."""
    from slics.core.retrieval import POOL_BLOCK, cosine_scores

    rng = np.random.default_rng(11)
    n = 2 * POOL_BLOCK + 300
    P = rng.standard_normal((n, 12))
    Q = rng.standard_normal((9, 12))
    whole = cosine_scores(Q, P)
    assert np.array_equal(whole, np.hstack([Q @ P[s:s + POOL_BLOCK].T for s in range(0, n, POOL_BLOCK)]))
    for start, stop in [(0, 1), (5, POOL_BLOCK + 7), (POOL_BLOCK - 1, POOL_BLOCK + 1), (POOL_BLOCK, 2 * POOL_BLOCK),
                        (2 * POOL_BLOCK + 299, n), (0, n)]:
        assert np.array_equal(cosine_scores(Q, P[start:stop], start, n), whole[:, start:stop]), (start, stop)
