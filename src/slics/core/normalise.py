"""The package's one row normaliser."""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_real_array

__all__ = ["normalise_rows"]


def normalise_rows(X: np.ndarray) -> np.ndarray:
    """Scale every row (the last axis; a 1-D array is one row) to unit L2 norm.

    Parameters
    ----------
    X : array_like of shape (..., d)
        Rows to normalise; any float dtype is kept.

    Returns
    -------
    ndarray of the shape of ``X``
        ``x / ||x||`` for every row. Convention: a zero row (norm exactly 0) stays zero, it is
        divided by 1 instead of 0 (no NaN, no warning).

    Examples
    --------
    >>> normalise_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    X = check_real_array(X, "X")
    norms = np.linalg.norm(X, axis=-1, keepdims=True)
    return X / np.where(norms == 0, 1, norms)
