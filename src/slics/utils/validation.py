"""Input checks shared by every estimator: clear errors that name the problem and the fix."""

from __future__ import annotations

import numpy as np


def check_matrix(X, name: str = "X", n_cols: int | None = None, dtype=np.float64,
                 allow_empty: bool = False) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array, or raise a ValueError that says what is wrong."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows are samples), got shape {X.shape}.")
    if not allow_empty and X.size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one row and column.")
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"{name} must be real-valued numbers, got dtype {X.dtype}.")
    X = X.astype(dtype, copy=False)
    if not np.all(np.isfinite(X)):
        bad = int(np.sum(~np.isfinite(X)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); clean or drop those rows first.")
    if n_cols is not None and X.shape[1] != n_cols:
        raise ValueError(f"{name} has {X.shape[1]} columns but {n_cols} are expected "
                         f"(embedding dimension mismatch: were both made by the same backbone?).")
    return X


def check_labels(Y, n_rows: int, name: str = "Y") -> np.ndarray:
    """Return ``Y`` as a boolean (n_rows, C) label matrix, or raise."""
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"{name} must be a 2-D binary label matrix (n_samples, n_concepts), got shape {Y.shape}.")
    if Y.shape[0] != n_rows:
        raise ValueError(f"{name} has {Y.shape[0]} rows but X has {n_rows}; they must describe the same samples.")
    if Y.dtype != bool:
        if not np.all(np.isin(Y, (0, 1))):
            raise ValueError(f"{name} must be binary (0/1 or bool); found other values.")
        Y = Y.astype(bool)
    return Y


def check_positive(value, name: str, allow_zero: bool = False) -> float:
    """Raise unless ``value`` is a finite positive (or non-negative) number."""
    value = float(value)
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {bound} number, got {value}.")
    return value


def check_int(value, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int``, or raise a ValueError.

    Integers (Python or NumPy) pass; floats pass only when integral (``3.0``), so a
    ``2.9`` is rejected rather than silently truncated. Booleans are rejected.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got the boolean {value}.")
    if isinstance(value, (int, np.integer)):
        out = int(value)
    elif isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        out = int(value)
    else:
        raise ValueError(f"{name} must be an integer, got {value!r}; it is not rounded or truncated for you.")
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {out}.")
    return out
