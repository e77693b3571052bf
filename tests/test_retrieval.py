"""Concept-filtered retrieval: top-k against brute force, AP@k against a naive loop."""

from __future__ import annotations

import numpy as np
import pytest

from slics.core.retrieval import average_precision_at_k, filtered_retrieval, mean_average_precision, top_k


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
    got = pairs.sort_values(["concept", "query"]).to_numpy()
    want = np.array(sorted(rows, key=lambda r: (r[1], r[0])), dtype=float)
    np.testing.assert_array_equal(got[:, :2], want[:, :2])
    np.testing.assert_allclose(got[:, 2:], want[:, 2:], atol=1e-6)
    summary = mean_average_precision(pairs)
    assert summary["n_pairs"] == int(Yq.sum())
    assert summary["map_sub"] == pytest.approx(np.nanmean(want[:, 3]))
