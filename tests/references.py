"""Independent references shared by the test files (imported as ``references``: pytest puts ``tests/`` on the path)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from slics.core.objectives import lasso_objective


def sklearn_lasso_objective(X, D, lam, positive=False, max_iter=100_000):
    """Per-row objective ``||x - w D||^2 + lam ||w||_1`` of scikit-learn's ``Lasso`` (its own solver, its
    own convention: ``alpha = lam / (2 d)`` on ``(1 / 2d) ||x - D^T w||^2 + alpha ||w||_1``), one row
    at a time, at ``tol=1e-12``."""
    d = D.shape[1]
    model = Lasso(alpha=lam / (2 * d), fit_intercept=False, positive=positive, tol=1e-12, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        W = np.array([model.fit(D.T, x).coef_.copy() for x in X])
    return lasso_objective(X, D, W, lam)
