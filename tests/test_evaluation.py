"""The retrieval-method protocol and the evaluation module, against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slics.core.dictionary import SLiCS
from slics.core.retrieval import filtered_retrieval
from slics.embedding.retrieval_set import RetrievalSet
from slics.evaluation import (FittedMethod, RetrievalInputs, RetrievalMethod, evaluate, get_method, method_names,
                              register_method, retrieval_pairs)
from slics.evaluation.methods import unregister_method


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(5)
    n, d, C = 300, 12, 3
    general = rng.random((n, C)) < 0.4
    general[~general.any(axis=1), 1] = True
    sub = np.stack([general[:, 0] & (rng.random(n) < 0.5), general[:, 0] & (rng.random(n) < 0.5)], axis=1)
    X = general @ rng.standard_normal((C, d)) + sub @ rng.standard_normal((2, d)) + 0.4 * rng.standard_normal((n, d))
    split = np.array(["train"] * 150 + ["val"] * 30 + ["query"] * 40 + ["pool"] * 80, dtype=object)
    text = general.T.astype(float) @ X / general.sum(axis=0)[:, None]          # concept means as "names"
    vocab = np.vstack([text + 0.1 * rng.standard_normal(text.shape), rng.standard_normal((17, d))])
    return RetrievalSet.from_arrays(X, general, split, general_names=["a", "b", "c"], sub=sub,
                                    sub_parent=[0, 0], sub_names=["a1", "a2"], general_text=text, vocab=vocab)


def brute_force_map(Q, P, rel_general, k):
    """mAP@k by a loop: rank by cosine (ties: lower index), AP = mean precision at the hits."""
    aps = []
    for q, rel in zip(Q, rel_general):
        s = (P @ q) / (np.linalg.norm(P, axis=1) * np.linalg.norm(q))
        order = sorted(range(len(P)), key=lambda i: (-s[i], i))[:k]
        hits, total = 0, 0.0
        for rank, i in enumerate(order, 1):
            if rel[i]:
                hits += 1
                total += hits / rank
        aps.append(total / hits if hits else 0.0)
    return float(np.mean(aps))


def test_uf_matches_a_brute_force_ranking(planted):
    rs = planted
    q, p = rs.rows("query"), rs.rows("pool")
    row = evaluate(rs, ["UF"], k=10).iloc[0]
    expected = []
    for j in range(3):
        qi = q[rs.data.general[q, j]]
        expected += [brute_force_map(rs.X[[i]], rs.X[p], rs.data.general[p][None, :, j], 10) for i in qi]
    assert row["map_general"] == pytest.approx(np.mean(expected), abs=1e-12)
    assert row["n_pairs"] == int(rs.data.general[q].sum())


def test_slics_methods_equal_direct_filtered_retrieval(planted):
    rs = planted
    q, p, train = rs.rows("query"), rs.rows("pool"), rs.rows("train")
    d = rs.data
    for name, n_iter in (("S-SVD", 0), ("S-SLiCS", 3)):
        fitted = get_method(name, n_atoms=2, n_iter=3, seed=1).fit(rs)
        model = SLiCS(n_atoms=2, n_iter=n_iter, random_state=1 if n_iter else 0).fit(rs.X[train], d.general[train])
        assert fitted.model.dictionary_.tobytes() == model.dictionary_.tobytes()
        ref = filtered_retrieval(rs.X[q], rs.X[p], d.general[q], d.general[p], query_sub=d.sub[q], pool_sub=d.sub[p],
                                 sub_parent=d.sub_parent, transform_query=model.project, k=20)
        pd.testing.assert_frame_equal(retrieval_pairs(rs, fitted, q, p), ref)


def test_all_six_methods_run_and_share_the_splice_codes(planted):
    cache = {}
    table = evaluate(planted, method_names(), options={"n_atoms": 2, "n_iter": 2, "lam": 0.05}, k=10, cache=cache)
    assert list(table["method"]) == ["UF", "S-SVD", "S-SLiCS", "U-SLiCS", "SpLiCE", "F-SpLiCE"]
    assert table["map_general"].between(0, 1).all() and table["map_sub"].between(0, 1).all()
    (entry,) = [v for key, v in cache.items() if key[0] == "splice"]
    assert len(entry["codes"]) == 1                        # decomposed once for both SpLiCE methods


def test_a_new_method_is_one_class(planted):
    class ConceptMean(RetrievalMethod):
        """Query for concept j: the mean of the training rows labelled j."""

        name = "concept-mean"

        def fit(self, rs, cache=None):
            train = rs.rows("train")
            means = np.stack([rs.X[train][rs.data.general[train, j]].mean(axis=0) for j in range(3)])
            return FittedMethod(self.name, lambda q, p: RetrievalInputs(
                rs.X[q], rs.X[p], lambda X, j: np.repeat(means[j:j + 1], len(X), axis=0)))

    register_method("concept-mean", ConceptMean)
    try:
        table = evaluate(planted, ["UF", "concept-mean"], k=10).set_index("method")
        assert table.loc["concept-mean", "map_general"] > table.loc["UF", "map_general"]
    finally:
        unregister_method("concept-mean")
    assert "concept-mean" not in method_names()


def test_bad_methods_and_sets_are_named(planted):
    with pytest.raises(ValueError, match="unknown retrieval method 'SLiCS'; registered: UF, S-SVD"):
        evaluate(planted, ["SLiCS"])
    with pytest.raises(TypeError, match="methods must be names"):
        evaluate(planted, [3])
    no_text = RetrievalSet.from_arrays(planted.X_raw, planted.data.general, planted.split, general_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="U-SLiCS needs concept-name embeddings"):
        evaluate(no_text, ["U-SLiCS"])
    with pytest.raises(ValueError, match="SpLiCE needs a word vocabulary"):
        evaluate(no_text, ["SpLiCE"])
    with pytest.raises(ValueError, match="split has no 'pool' rows"):
        RetrievalSet.from_arrays(planted.X_raw, planted.data.general, np.where(planted.split == "pool", "val",
                                 planted.split), general_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="general_names has 2 names for 3 label columns"):
        RetrievalSet.from_arrays(planted.X_raw, planted.data.general, planted.split, general_names=["a", "b"])


def test_pool_projections_on_one_atoms_ray_tie_exactly():
    """Candidates whose cone projection lies on one atom's ray all have the same cosine to a query;
    raw floating-point projections order them by rounding noise (machine-dependent), the pool
    transform of the ablation ties them exactly, so they go to the lower index."""
    from slics.core.nnls import nnls_batch
    from slics.core.retrieval import top_k
    from slics.evaluation.methods import ray_exact

    class Cone:
        def __init__(self, D, concept):
            self.dictionary_, self.atom_concept_ = D, concept

        def project(self, X, j):
            Dj = self.dictionary_[self.atom_concept_ == j]
            return nnls_batch(Dj, X) @ Dj

    rng = np.random.default_rng(0)
    D = rng.normal(size=(3, 16))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    model = Cone(D, np.array([0, 0, 1]))
    basis, _ = np.linalg.qr(np.vstack([D[:2], rng.normal(size=(14, 16))]).T)
    on_ray = rng.uniform(0.1, 10, size=(200, 1)) * D[0] + rng.normal(size=(200, 14)) @ basis[:, 2:].T
    off_ray = np.abs(rng.normal(size=(30, 2))) @ D[:2] + 0.01                # two atoms: generic directions
    X = np.vstack([on_ray, off_ray])
    q = rng.normal(size=(1, 16)) + 3 * D[0]
    raw = top_k(q, model.project(X, 0), 20)[0]
    assert not np.array_equal(raw, np.arange(20))       # the noise this guards against is real here
    P = ray_exact(model)(X, 0)
    assert np.array_equal(top_k(q, P, 20)[0], np.arange(20))
    assert np.array_equal(P[:200], np.repeat(D[[0]], 200, axis=0))
    np.testing.assert_array_equal(P[200:], model.project(X[200:], 0))     # off the rays: untouched
    assert np.all((ray_exact(model)(X, 1) == D[2]).all(axis=1) | ~model.project(X, 1).any(axis=1))   # one atom: every row on it
