"""Orthogonal Procrustes alignment between embedding spaces (section 3.7)."""

import numpy as np
import pytest

from slics.core.alignment import (LeastSquaresAlignment, ProcrustesAlignment, alignment_errors, random_rotation,
                                  rotation_error)


def test_random_rotation_is_seeded_and_orthogonal():
    R = random_rotation(12, seed=4)
    np.testing.assert_allclose(R @ R.T, np.eye(12), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_array_equal(R, random_rotation(12, seed=4))
    assert not np.allclose(R, random_rotation(12, seed=5))


def test_procrustes_recovers_a_planted_rotation():
    rng = np.random.default_rng(0)
    R0 = random_rotation(20, seed=1)
    X = rng.standard_normal((500, 20))
    Y = X @ R0 + 0.01 * rng.standard_normal((500, 20))
    fit = ProcrustesAlignment().fit(X, Y)
    assert rotation_error(fit.map_, R0) < 0.01
    np.testing.assert_allclose(fit.map_ @ fit.map_.T, np.eye(20), atol=1e-10)
    # closed form: U V^T from the SVD of X^T Y
    U, _, Vt = np.linalg.svd(X.T @ Y)
    np.testing.assert_allclose(fit.map_, U @ Vt, atol=1e-10)
    # noiseless: exact
    assert rotation_error(ProcrustesAlignment().fit(X, X @ R0).map_, R0) < 1e-10


def test_rectangular_procrustes_matches_the_svd_solution_and_beats_other_semi_orthogonal_maps():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 5))
    Y = rng.standard_normal((300, 8))
    R = ProcrustesAlignment().fit(X, Y).map_
    assert R.shape == (5, 8)
    np.testing.assert_allclose(R @ R.T, np.eye(5), atol=1e-10)
    U, _, Vt = np.linalg.svd(X.T @ Y, full_matrices=False)
    np.testing.assert_allclose(R, U @ Vt, atol=1e-10)
    best = np.linalg.norm(X @ R - Y)
    for seed in range(20):
        Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((8, 5)))[0].T    # (5, 8), orthonormal rows
        assert np.linalg.norm(X @ Q - Y) >= best - 1e-9
    # and the other direction (p > q): orthonormal columns
    R2 = ProcrustesAlignment().fit(Y, X).map_
    assert R2.shape == (8, 5)
    np.testing.assert_allclose(R2.T @ R2, np.eye(5), atol=1e-10)


def test_least_squares_matches_numpy_and_fits_training_rows_at_least_as_well():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 10))
    Y = X @ random_rotation(10, 0) + 0.3 * rng.standard_normal((60, 10))
    ls = LeastSquaresAlignment().fit(X, Y)
    np.testing.assert_allclose(ls.map_, np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-10)
    pr = ProcrustesAlignment().fit(X, Y)
    assert alignment_errors(ls.transform(X), Y)["mse"] <= alignment_errors(pr.transform(X), Y)["mse"]


def test_alignment_errors_by_hand():
    Y = np.array([[1.0, 0.0], [0.0, 2.0]])
    M = np.array([[1.0, 1.0], [0.0, 1.0]])
    e = alignment_errors(M, Y)
    assert e["mse"] == pytest.approx((1 + 1) / 2)
    assert e["relative_error"] == pytest.approx(np.sqrt(2) / np.sqrt(5))
    assert e["mean_cosine"] == pytest.approx((1 / np.sqrt(2) + 1) / 2)
    assert e["top1_match"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same images"):
        alignment_errors(M, Y[:1])
