"""slics.core.lasso is exact at its default settings on small, coherent and degenerate problems.

Every case runs ``lasso`` with the defaults (``tol=1e-6``, ``max_iter=1000``) and checks that no
row is left unconverged, that the certificate agrees with an independent float64 computation
(:func:`duality_gap`), and that the objective is not above scikit-learn's ``Lasso`` at a tight
tolerance (an independent solver) by more than the certified relative gap.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from slics.core.lasso import duality_gap, lasso
from slics.core.objectives import lasso_objective

from references import sklearn_lasso_objective


@pytest.fixture(autouse=True, params=["whole G", "rows of G on demand"])
def gram_rows(request, monkeypatch):
    """Every case with G formed whole, and with its rows formed only as the working sets ask for
    them (slics.core._gram_rows, at every size here, never all at once): rows stop and resume."""
    if request.param == "rows of G on demand":
        monkeypatch.setattr("slics.core.lasso.LAZY_FROM", 1)
        monkeypatch.setattr("slics.core._gram_rows.WHOLE_FROM", 2.0)
        monkeypatch.setattr("slics.core._gram_rows.WHOLE_COST", 2.0)


def coherent(n, d, m, seed, shared=1.5):
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(m, d)) + shared * rng.normal(size=d)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, D


def check_exact(X, D, lam, positive, rows=40, rtol=1e-6):
    """Defaults converge; certificate independent; objective <= scikit-learn's (1 + rtol)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        W, info = lasso(X, D, lam, positive=positive, return_info=True)
    assert info["converged"].all()
    X64, D64 = np.asarray(X, float), np.asarray(D, float)
    W64 = np.asarray(W, float)
    if W.dtype == np.float64:    # (float32 solves the float32-rounded problem: objective only)
        assert np.all(duality_gap(X64, D64, W64, lam, positive=positive) <= 1.01 * rtol + 1e-12)
    if positive:
        assert W.min() >= 0
    sub = slice(0, rows)
    ours = lasso_objective(X64[sub], D64, W64[sub], lam)
    ref = sklearn_lasso_objective(X64[sub], D64, lam, positive, max_iter=20_000)
    assert np.all(ours <= ref * (1 + (10 if W.dtype == np.float32 else 1) * rtol) + 1e-12)
    return W, info


@pytest.mark.parametrize("positive", [False, True])
def test_issue_example_converges_at_defaults(positive):
    """The issue's case: 40 coherent atoms in d = 16, 400 rows (9 rows were left unconverged)."""
    X, D = coherent(400, 16, 40, 3)
    check_exact(X, D, 0.05, positive)


@pytest.mark.parametrize("lam", [1e-3, 1e-2])
def test_tiny_lambda_more_atoms_than_dimensions(lam):
    """Nearly interpolating codes: supports of d atoms, every working set rank-deficient."""
    X, D = coherent(200, 16, 40, 1)
    check_exact(X, D, lam, False)


@pytest.mark.parametrize("positive", [False, True])
def test_duplicated_atoms_converge(positive):
    X, D = coherent(120, 20, 30, 2)
    D2 = np.vstack([D, D[:15], D[:5]])            # two and three copies of some atoms
    W, _ = check_exact(X, D2, 0.02, positive)
    W1 = lasso(X, D, 0.02, positive=positive, tol=1e-10)
    np.testing.assert_allclose(lasso_objective(X, D2, W, 0.02), lasso_objective(X, D, W1, 0.02), rtol=2e-6)


@pytest.mark.parametrize("positive", [False, True])
def test_nearly_collinear_atoms_converge(positive):
    rng = np.random.default_rng(5)
    X, D = coherent(120, 24, 30, 5)
    near = D[:12] + 1e-7 * rng.normal(size=(12, 24))
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    check_exact(X, np.vstack([D, near]), 0.01, positive)


def test_more_dimensions_than_atoms():
    X, D = coherent(150, 60, 20, 6)
    for positive in (False, True):
        check_exact(X, D, 0.01, positive)


def test_zero_rows_and_lambda_above_max():
    X, D = coherent(60, 16, 40, 7)
    X[::7] = 0
    W, info = check_exact(X, D, 0.05, False)
    assert np.all(W[::7] == 0)
    lam_max = np.abs(2 * X @ D.T).max()
    W, info = lasso(X, D, lam_max * 1.01, return_info=True)
    assert np.all(W == 0) and info["converged"].all()


@pytest.mark.parametrize("positive", [False, True])
def test_float32_degenerate(positive):
    X, D = coherent(150, 16, 48, 8)
    check_exact(X.astype(np.float32), D.astype(np.float32), 0.02, positive)


@pytest.mark.parametrize("d, m, n, frac, positive, dtype", [
    (82, 209, 40, 0.001, False, np.float32),
    (120, 400, 20, 0.002, True, np.float32),
    (121, 259, 20, 0.0013, False, np.float64),
    (151, 537, 16, 0.005, True, np.float64),
])
def test_gaussian_near_interpolation_converges(d, m, n, frac, positive, dtype):
    """Supports of about d atoms, too large for a support solve every few sweeps (``_CHEAP``):
    coordinate descent alone crawls there (up to all rows unconverged at 1,000 sweeps before a
    crawling row, ``_CRAWL`` sweeps, solved every support exactly)."""
    rng = np.random.default_rng(d * m)
    D = rng.normal(size=(m, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.normal(size=(n, d))
    lam = frac * np.abs(2 * X @ D.T).max()
    W, _ = check_exact(X.astype(dtype), D.astype(dtype), lam, positive, rows=3)
    assert np.count_nonzero(W, axis=1).max() > 0.6 * d
