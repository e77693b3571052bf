"""SpLiCE decomposition against scikit-learn, vocabulary grouping, and word captions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Lasso

from slics.core.objectives import lasso_objective
from slics.core.splice import SpLiCE, group_vocabulary, nonneg_lasso
from slics.sections.slics_clip import caption_words


def _problem(seed=0, n=6, V=300, d=24):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((V, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    W0 = np.zeros((n, V))
    for i in range(n):
        W0[i, rng.choice(V, 4, replace=False)] = rng.random(4) + 0.2
    X = W0 @ D + 0.05 * rng.standard_normal((n, d))
    return X, D


@pytest.mark.parametrize("lam", [0.05, 0.3])
def test_nonneg_lasso_matches_sklearn_full_problem(lam):
    X, D = _problem()
    d = D.shape[1]
    W = nonneg_lasso(X, D, lam)
    assert (W >= 0).all()
    for i in range(X.shape[0]):
        ref = Lasso(alpha=lam / (2 * d), fit_intercept=False, positive=True, tol=1e-12, max_iter=100_000)
        ref.fit(D.T, X[i])
        ours, theirs = lasso_objective(X[i:i + 1], D, W[i:i + 1], lam)[0], \
            lasso_objective(X[i:i + 1], D, ref.coef_[None], lam)[0]
        assert ours == pytest.approx(theirs, rel=1e-7, abs=1e-10)
    # optimality on the whole dictionary: 2 D r <= lam everywhere, = lam on the support
    R = X - W @ D
    grad = 2 * R @ D.T
    assert grad.max() <= lam * (1 + 1e-5)
    np.testing.assert_allclose(grad[W > 0], lam, rtol=1e-4)


def test_zero_code_when_lambda_dominates():
    X, D = _problem()
    lam = 2.5 * np.abs(X @ D.T).max()
    assert not nonneg_lasso(X, D, lam).any()


def test_a_shared_gram_gives_the_same_codes():
    rng = np.random.default_rng(5)
    sp = SpLiCE(lam=0.1).fit(rng.standard_normal((200, 16)))
    Z = rng.standard_normal((40, 16))
    Z -= sp.vocab_mean_
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    G = sp.gram()
    np.testing.assert_allclose(G, sp.vocab_ @ sp.vocab_.T, rtol=0, atol=0)
    assert sp.transform(Z, gram=G).tobytes() == sp.transform(Z).tobytes()
    with pytest.raises(ValueError, match="gram is not D @ D.T"):
        sp.transform(Z, gram=G + np.eye(200))


def test_grouping_and_partial_reconstructions_add_up():
    rng = np.random.default_rng(3)
    vocab, concepts = rng.standard_normal((40, 10)), rng.standard_normal((3, 10))
    sp = SpLiCE(lam=0.1).fit(vocab, concepts)
    T = concepts - sp.vocab_mean_
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    brute = [int(np.argmax([v @ t for t in T])) for v in sp.vocab_]
    assert sp.groups_.tolist() == brute
    assert group_vocabulary(sp.vocab_, concepts, sp.vocab_mean_).tolist() == brute
    W = np.abs(rng.standard_normal((5, 40)))
    parts = sum(sp.reconstruct(W, j) for j in range(3))
    np.testing.assert_allclose(parts, sp.reconstruct(W))


def test_caption_words_rank_planted_words_first():
    rng = np.random.default_rng(4)
    d, K = 16, 3
    D = rng.standard_normal((2 * K, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    atom_concept = np.repeat([0, 1], K)
    inside0 = rng.random((3, K)) @ D[:K]                # exactly in concept 0's cone
    inside1 = rng.random((2, K)) @ D[K:]
    noise = rng.standard_normal((20, d))
    V = np.vstack([noise[:7], inside0, noise[7:], inside1])
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    words = [f"w{i}" for i in range(V.shape[0])]
    got = caption_words(D, atom_concept, V, words, ["a", "b"], n_words=3)
    assert set(got["a"]) == {"w7", "w8", "w9"}
    assert set(got["b"][:2]) == {words[-2], words[-1]}
