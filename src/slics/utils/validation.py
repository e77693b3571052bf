"""Input checks shared by the whole package: every error names the parameter, the value and the rule.

Scalars are checked for their TYPE before anything converts them (``float("abc")`` would
otherwise fail with a message that does not say which parameter was wrong), and are never
rounded or wrapped: a ``2.5`` where an integer is wanted, or a ``-1`` where an index is
wanted, is an error rather than a truncated or wrapped-around value.
"""

from __future__ import annotations

import numbers

import numpy as np


def _show(value) -> str:
    """A short ``repr`` of a rejected value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def all_finite(X: np.ndarray) -> bool:
    """Whether a float array has no NaN or infinity.

    A finite sum has no NaN or infinity among its terms, and the sum reads the array once with no
    temporary (``np.isfinite(X).all()`` writes a boolean array of ``X``'s size; on a Dask worker,
    whose malloc returns every freed block of 128 KiB or more to the system, that cost page faults
    on every call). A sum that is not finite (a non-finite entry, or finite entries whose sum
    overflows) is checked entry by entry.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(X, axis=None)):
            return True
    return bool(np.isfinite(X).all())


def check_matrix(X, name: str = "X", n_cols: int | None = None, dtype=np.float64,
                 allow_empty: bool = False) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array, or raise a ValueError that says what is wrong.

    ``dtype`` may be a list, as in scikit-learn's ``check_array``: an input of one of its dtypes is
    kept as it is, any other is converted to the first (float32 rows that a solver converts chunk by
    chunk need not be copied whole into float64 first).
    """
    try:
        X = np.asarray(X)
    except (ValueError, TypeError) as exc:      # ragged nested lists
        raise ValueError(f"{name} must be a 2-D numeric array; it could not be read as one ({exc}).") from None
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows are samples), got shape {X.shape}.")
    if not allow_empty and X.size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); pass at least one row and column.")
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"{name} must be real-valued numbers, got dtype {X.dtype}.")
    if isinstance(dtype, (list, tuple)):
        dtype = X.dtype if X.dtype in [np.dtype(t) for t in dtype] else dtype[0]
    X = X.astype(dtype, copy=False)
    if not X.flags.aligned:
        # as deserialised (a Dask worker's copy): NumPy's matmul takes its non-BLAS loop on unaligned
        # data, whose sums differ in the last bits from the BLAS product of the in-memory arrays
        X = X.copy()
    if not all_finite(X):
        bad = int(np.sum(~np.isfinite(X)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s) (after conversion to {np.dtype(dtype)}); "
                         f"clean or drop those rows first.")
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
        if Y.dtype == object or not np.all(np.isin(Y, (0, 1))):
            raise ValueError(f"{name} must be binary (0/1 or bool); found other values.")
        Y = Y.astype(bool)
    return Y


def _real_scalar(value, name: str):
    """``value`` as a Python number, or a TypeError naming ``name`` (before any conversion)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {_show(value)}.")
    return value


def check_positive(value, name: str, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, or raise unless it is a finite positive (or non-negative) number."""
    value = float(_real_scalar(value, name))
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {bound} number, got {value}.")
    return value


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int``, or raise a ValueError.

    Integers (Python or NumPy) pass; floats pass only when integral (``3.0``), so a
    ``2.9`` is rejected rather than silently truncated. Booleans are rejected.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got the boolean {value}.")
    if isinstance(value, (int, np.integer)):
        out = int(value)
    elif isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        out = int(value)
    else:
        raise ValueError(f"{name} must be an integer, got {_show(value)}; it is not rounded or truncated for you.")
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {out}.")
    if maximum is not None and out > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {out}.")
    return out


def check_index(value, name: str, n: int) -> int:
    """Return ``value`` as an index in ``[0, n)``; negative indices do not wrap around."""
    try:
        out = check_int(value, name)
    except ValueError:
        raise ValueError(f"{name} must be an integer in [0, {n}), got {_show(value)}.") from None
    if not 0 <= out < n:
        raise ValueError(f"{name} must be an integer in [0, {n}), got {out}"
                         f"{' (negative indices do not count from the end here)' if out < 0 else ''}.")
    return out


def check_indices(values, name: str, n: int) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array of indices in ``[0, n)`` (no wrap-around, no rounding)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of indices in [0, {n}), got shape {arr.shape}.")
    if arr.size and (arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must hold integer indices in [0, {n}), got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ValueError(f"{name} must hold indices in [0, {n}), got {bad[:5].tolist()} "
                         f"(negative indices do not count from the end here).")
    return arr


def check_random_state(value, name: str = "random_state") -> np.random.Generator:
    """Return a NumPy ``Generator`` from ``value``: None, a non-negative integer seed, or a ``Generator``."""
    if value is None or isinstance(value, np.random.Generator):
        return np.random.default_rng(value)
    try:
        seed = check_int(value, name, minimum=0)
    except ValueError as err:
        raise ValueError(f"{err} ({name} is None, a non-negative integer seed or a numpy Generator)") from None
    return np.random.default_rng(seed)


def check_choice(value, name: str, choices) -> object:
    """Return ``value`` unless it is not one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {_show(value)}.")
    return value


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64 (an integer dtype would truncate unit vectors)."""
    try:
        out = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be a NumPy dtype (float32 or float64), got {_show(dtype)}.") from None
    if out not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {out}; other dtypes would round the "
                         f"unit-norm dictionary and the codes.")
    return out


def is_dask_array(X) -> bool:
    """Whether ``X`` is a ``dask.array.Array``, decided without importing dask (the in-memory path
    of every solver stays free of it)."""
    cls = type(X)
    return cls.__name__ == "Array" and cls.__module__.startswith("dask.array")


def check_vector(value, name: str, length: int) -> np.ndarray:
    """Return ``value`` as a finite float64 vector of ``length`` entries (a mean, an offset), or raise
    a ValueError naming ``name`` before anything is converted."""
    arr = np.asarray(value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must be a finite vector of length {length} (real numbers), got {_show(value)} "
                         f"(dtype {arr.dtype}).")
    if arr.shape != (length,):
        raise ValueError(f"{name} must be a finite vector of length {length} (the embedding dimension), "
                         f"got shape {arr.shape}.")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN or infinite value(s).")
    return arr


def check_names(values, name: str, n: int | None = None, unique: bool = False) -> list[str]:
    """Return ``values`` as a list of str (one name per item), or raise a ValueError naming ``name``.

    A single string is refused rather than read as a sequence of one-letter names; with ``n`` the
    count must match, and with ``unique`` no name may repeat (a dict keyed by the names would
    silently keep one of them).
    """
    if isinstance(values, (str, bytes)) or not np.iterable(values):
        raise ValueError(f"{name} must be a sequence of names (one per item), got {_show(values)}; "
                         f"a single string is not read as a list of letters.")
    out = [str(v) for v in values]
    if n is not None and len(out) != n:
        raise ValueError(f"{name} has {len(out)} names but {n} are expected.")
    if unique:
        repeated = sorted({v for v in out if out.count(v) > 1})
        if repeated:
            raise ValueError(f"{name} must be unique; repeated: {repeated[:5]}.")
    return out


def check_rows(rows, name: str, n: int) -> np.ndarray:
    """Row selection ``rows`` (indices in ``[0, n)``, or a boolean mask of length ``n``) as int64 indices."""
    arr = np.asarray(rows)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"{name} as a boolean mask must have one entry per row ({n}), got shape {arr.shape}.")
        return np.flatnonzero(arr)
    return check_indices(arr, name, n)


def check_real_array(X, name: str = "X") -> np.ndarray:
    """``np.asarray(X)`` of any shape, or a TypeError naming ``name`` unless it holds real numbers (or booleans)."""
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}.")
    return X
