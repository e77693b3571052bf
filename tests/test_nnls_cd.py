"""Tests for the reference NNLS solver (coordinate descent) against nnls_batch (its scipy check is in test_nnls_lh.py)."""

import numpy as np
import pytest

from slics import SLiCS, nnls_batch
from slics.core.reference.nnls_cd import nnls_cd
from slics.core.planted import make_planted


def objectives(D, X, W):
    R = X - W @ D
    return np.einsum("ij,ij->i", R, R)


def test_coherent_ssvd_dictionary_matches_active_set():
    X, Y, _, _ = make_planted(n_samples=600, n_features=32, n_concepts=5, n_atoms=4, random_state=0)
    D = SLiCS(4, n_iter=0).fit(X, Y).dictionary_
    S = np.repeat(Y, 4, axis=1)
    W_cd = nnls_cd(D, X, S)
    W_as = nnls_batch(D, X, S)
    np.testing.assert_allclose(objectives(D, X, W_cd), objectives(D, X, W_as), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(W_cd, W_as, atol=1e-6)


def test_ridge_and_fallback():
    rng = np.random.default_rng(3)
    D = rng.standard_normal((10, 12))
    X = rng.standard_normal((30, 12))
    W = nnls_cd(D, X, ridge=0.5)
    np.testing.assert_allclose(W, nnls_batch(D, X, ridge=0.5), atol=1e-8)
    W1, info = nnls_cd(D, X, max_iter=1, return_info=True)   # too few sweeps: fallback
    assert info["n_fallback"] > 0
    np.testing.assert_allclose(W1, nnls_batch(D, X), atol=1e-8)


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        nnls_batch(np.eye(2), np.ones((1, 2)), method="magic")
    with pytest.raises(ValueError, match="method"):       # the reference solver is not a method of the pipeline's
        nnls_batch(np.eye(2), np.ones((1, 2)), method="cd")


def test_reference_solver_checks_its_inputs():
    with pytest.raises(ValueError, match="support must be a boolean mask"):
        nnls_cd(np.eye(2), np.ones((1, 2)), np.ones((1, 3), bool))
    with pytest.raises(ValueError, match="init must have shape"):
        nnls_cd(np.eye(2), np.ones((1, 2)), init=np.zeros((2, 2)))


def test_no_pipeline_stage_runs_the_reference_solvers():
    from slics.utils.pipeline import stage_code, stages

    for name, stage in stages().items():
        assert not [p for p in stage_code(name, stage) if "/core/reference/" in p], name
