"""Row-block mapping of dask arrays, with the shared model sent to the workers once.

:func:`map_rows` turns a function of one block of rows (and the matching blocks of per-row
arguments, such as labels) into a lazy dask array over all the rows. The object every block
needs (a dictionary, a fitted model) goes through :func:`broadcast`: with a ``distributed``
client, ``Client.scatter(obj, broadcast=True)`` copies it to every worker once and each task
refers to it by its key; without one (dask's local schedulers) it is a single graph key. The
block function is called with NumPy arrays and the shared object, so the in-memory code runs
unchanged on every block.
"""

from __future__ import annotations

import uuid

import numpy as np

from ..utils.validation import is_dask_array

INSTALL = "pip install 'slics[dask]' (dask[array], distributed, zarr)"


def dask_modules():
    """``(dask, dask.array)``, or an ImportError that says how to install them."""
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError(f"dask arrays need the dask extra: {INSTALL}.") from None
    return dask, da


def rows_chunked(X, name: str = "X"):
    """``X`` (a 2-D dask array) with every row block holding all its columns."""
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows are samples), got shape {X.shape}.")
    if np.isnan(X.shape[0]):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first.")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued numbers, got dtype {X.dtype}.")
    return X.rechunk({1: -1}) if len(X.chunks[1]) > 1 else X


def check_columns(X, n_cols: int, name: str = "X") -> None:
    """The column check of :func:`slics.utils.validation.check_matrix`, on a lazy array's shape."""
    if X.shape[1] != n_cols:
        raise ValueError(f"{name} has {X.shape[1]} columns but {n_cols} are expected "
                         f"(embedding dimension mismatch: were both made by the same backbone?).")


def broadcast(obj):
    """A reference to ``obj`` that tasks share: a future on every worker, or one graph key."""
    dask, _ = dask_modules()
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):      # no distributed, or no client: the local schedulers
        return dask.delayed(obj, name=f"slics-shared-{uuid.uuid4().hex}", traverse=False)
    return client.scatter(obj, broadcast=True, hash=False)


def align_rows(A, chunks: tuple, name: str):
    """A per-row argument (NumPy or dask, any number of columns) in the row chunks ``chunks``."""
    if A is None:
        return None
    _, da = dask_modules()
    n = sum(chunks)
    if not is_dask_array(A):
        A = np.asarray(A)
    if A.shape[0] != n:
        raise ValueError(f"{name} has {A.shape[0]} rows but X has {n}; they must describe the same samples.")
    chunking = (chunks,) + tuple(-1 for _ in A.shape[1:])
    return A.rechunk(chunking) if is_dask_array(A) else da.from_array(A, chunks=chunking)


def map_rows(func, X, *per_row, shared=None, tail=(), dtype=np.float64, name: str = "X", row_names=()):
    """Lazy ``func(X_block, *per_row_blocks, shared)`` over the row blocks of ``X``.

    Parameters
    ----------
    func : callable
        A module-level function (workers import it) of NumPy blocks; returns an array of
        ``len(X_block)`` rows and trailing shape ``tail``.
    X : dask array of shape (n, d)
    *per_row : arrays with ``n`` rows (NumPy or dask), or None
        Cut into the same row blocks as ``X`` (e.g. labels).
    shared : object
        Passed whole to every call, through :func:`broadcast`.
    tail : tuple of int
        Trailing shape of each result block.
    dtype : dtype of the result.
    name : str, default "X"
        The name ``X`` goes by in error messages.
    row_names : tuple of str
        The names of the ``per_row`` arguments in error messages (the caller's, e.g. ``"Y"``).

    Returns
    -------
    dask array of shape (n, *tail), one chunk per row block of ``X``.
    """
    _, da = dask_modules()
    X = rows_chunked(X, name)
    names = (*row_names, *(f"argument {i + 2} of {getattr(func, '__name__', 'func')}"
                           for i in range(len(row_names), len(per_row))))
    others = [align_rows(A, X.chunks[0], label) for A, label in zip(per_row, names)]
    # One blockwise layer, the rows' index i and the columns' index j shared by every argument
    # (no contracted index): dask then fuses it with a blockwise source, such as a store's reads,
    # so that a block is read by the task that codes it and never travels between workers (as a
    # separate read task, a 100 MB block was sometimes coded on the other worker: 0.3-0.5 s a
    # transfer, measured on 2 local workers).
    extra = iter("klmnopqrs")
    pairs = [X, "ij"]
    for A in others:
        if A is not None:
            pairs += [A, "ij"[:A.ndim] + "".join(next(extra) for _ in range(A.ndim - 2))]
    if tail:
        out = "ij" + "tuvw"[:len(tail) - 1]
        kw = {"adjust_chunks": {"j": tail[0]}, "new_axes": dict(zip("tuvw", tail[1:]))}
    else:
        out, kw = "i", {}
    return da.blockwise(_call_rows, out, *pairs, align_arrays=False, concatenate=True, dtype=dtype,
                        meta=np.empty((0,) * len(out), dtype), fn=func, slots=tuple(A is not None for A in others),
                        shared=broadcast(shared), **kw)


def _call_rows(X, *per_row, fn, slots, shared):
    """``fn(X_block, *per_row_blocks, shared)``, the blocks of absent per-row arguments None."""
    blocks = iter(per_row)
    return fn(X, *(next(blocks) if present else None for present in slots), shared)
