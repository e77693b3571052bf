"""Tests for nnls_batch(method="cd"): the compiled per-row solver against scipy and the default method."""

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from slics import SLiCS, nnls_batch
from slics.core.planted import make_planted


def scipy_rows(D, X, support):
    W = np.zeros((X.shape[0], D.shape[0]))
    for i, x in enumerate(X):
        cols = np.flatnonzero(support[i])
        if cols.size:
            W[i, cols] = scipy_nnls(D[cols].T, x)[0]
    return W


def objectives(D, X, W):
    R = X - W @ D
    return np.einsum("ij,ij->i", R, R)


@pytest.mark.parametrize("seed", [0, 1])
def test_per_row_supports_match_scipy(seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((25, 30))
    X = rng.standard_normal((200, 30))
    support = rng.random((200, 25)) < 0.5
    support[0] = False
    W, info = nnls_batch(D, X, support, method="cd", return_info=True)
    ref = scipy_rows(D, X, support)
    assert np.all(W[0] == 0) and np.all(W[~support] == 0) and W.min() >= 0
    np.testing.assert_allclose(objectives(D, X, W), objectives(D, X, ref), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(W, ref, atol=1e-7)          # unique: D has independent rows
    assert info["n_fallback"] == 0


def test_coherent_ssvd_dictionary_matches_active_set():
    X, Y, _, _ = make_planted(n_samples=600, n_features=32, n_concepts=5, n_atoms=4, random_state=0)
    D = SLiCS(4, n_iter=0).fit(X, Y).dictionary_
    S = np.repeat(Y, 4, axis=1)
    W_cd = nnls_batch(D, X, S, method="cd")
    W_as = nnls_batch(D, X, S)
    np.testing.assert_allclose(objectives(D, X, W_cd), objectives(D, X, W_as), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(W_cd, W_as, atol=1e-6)


def test_ridge_and_fallback():
    rng = np.random.default_rng(3)
    D = rng.standard_normal((10, 12))
    X = rng.standard_normal((30, 12))
    W = nnls_batch(D, X, ridge=0.5, method="cd")
    np.testing.assert_allclose(W, nnls_batch(D, X, ridge=0.5), atol=1e-8)
    W1, info = nnls_batch(D, X, method="cd", max_iter=1, return_info=True)   # too few sweeps: fallback
    assert info["n_fallback"] > 0
    np.testing.assert_allclose(W1, nnls_batch(D, X), atol=1e-8)


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        nnls_batch(np.eye(2), np.ones((1, 2)), method="magic")
