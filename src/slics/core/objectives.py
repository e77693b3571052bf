"""The package's one lasso objective, on the report's scale."""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_matrix, check_positive

__all__ = ["lasso_objective"]


def lasso_objective(X, D, W, lam) -> np.ndarray:
    """Per-row lasso objective ``||x_i - w_i D||^2 + lam * ||w_i||_1`` in float64.

    The scale of every sparse coder of the package (ISTA, FISTA, :func:`slics.core.lasso.lasso`,
    SpLiCE) and of the report: no 1/2, no 1/d. scikit-learn's ``Lasso(alpha,
    fit_intercept=False)`` fitted on ``(D.T, x)`` minimises the same problem when
    ``alpha = lam / (2 d)``.

    Parameters
    ----------
    X : array of shape (n, d)
        Signals, one per row.
    D : array of shape (m, d)
        Dictionary, its ``m`` atoms as rows.
    W : array of shape (n, m)
        Codes, one row per signal.
    lam : float
        Non-negative L1 weight.

    Returns
    -------
    ndarray of shape (n,), float64
        The objective of every row.
    """
    D = check_matrix(D, "D")
    X = check_matrix(X, "X", n_cols=D.shape[1])
    W = check_matrix(W, "W", n_cols=D.shape[0])
    if W.shape[0] != X.shape[0]:
        raise ValueError(f"W has {W.shape[0]} rows but X has {X.shape[0]}; one code per row of X is expected.")
    lam = check_positive(lam, "lam (lambda)", allow_zero=True)
    R = X - W @ D
    return np.einsum("ij,ij->i", R, R) + lam * np.abs(W).sum(axis=1)
