"""The package's one row normaliser."""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_float_dtype, check_real_array

__all__ = ["normalise_rows"]


NORM_BLOCK_ROWS = 256        # rows normalised at a time: the block and its squares stay in a core's cache


def normalise_rows(X: np.ndarray, *, dtype=None) -> np.ndarray:
    """Scale every row (the last axis; a 1-D array is one row) to unit L2 norm.

    Parameters
    ----------
    X : array_like of shape (..., d)
        Rows to normalise; any float dtype is kept.
    dtype : float dtype, optional
        Of the result (default: ``X``'s float dtype, float64 for integers). The rows are converted
        as they are normalised, so ``normalise_rows(X, dtype=np.float64)`` is bit for bit
        ``normalise_rows(X.astype(np.float64))`` without the full-size converted copy.

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
    if dtype is not None:
        dtype = check_float_dtype(dtype, "dtype")
    if X.ndim != 2 or not X.flags.c_contiguous or X.shape[0] <= NORM_BLOCK_ROWS:
        return _unit_rows(X if dtype is None else X.astype(dtype, copy=False))
    # Each row's norm and quotient depend on that row alone (a contiguous row is summed the same
    # way in any number of rows), so blocks give the whole array's bits. The blocks are worked
    # in place in the output with one buffer for the squares: no temporary per block (on a Dask
    # worker, whose malloc hands every freed block of 128 KiB or more back to the system, they
    # cost 3x the time in page faults, measured).
    out = np.empty(X.shape, _unit_rows(X[:1]).dtype if dtype is None else dtype)
    squares = np.empty((NORM_BLOCK_ROWS, X.shape[1]), out.dtype)
    norms = np.empty((NORM_BLOCK_ROWS, 1), out.dtype)
    for s in range(0, X.shape[0], NORM_BLOCK_ROWS):
        block = out[s:s + NORM_BLOCK_ROWS]
        np.copyto(block, X[s:s + NORM_BLOCK_ROWS], casting="unsafe")
        sq, nrm = squares[:len(block)], norms[:len(block)]
        np.multiply(block, block, out=sq)
        np.sqrt(np.add.reduce(sq, axis=-1, keepdims=True, out=nrm), out=nrm)
        nrm[nrm == 0] = 1
        np.divide(block, nrm, out=block)
    return out


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """The formula, on a whole array: ``x / ||x||``, a zero row divided by 1."""
    norms = np.linalg.norm(X, axis=-1, keepdims=True)
    return X / np.where(norms == 0, 1, norms)
