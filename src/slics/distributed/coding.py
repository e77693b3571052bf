"""The package's solvers and estimators on dask arrays, one block of rows at a time.

Each public function of :mod:`slics` that accepts a dask array (:func:`slics.nnls_batch`,
:func:`slics.lasso`, :func:`slics.core.splice.nonneg_lasso`, :meth:`slics.SLiCS.transform`,
``components``, ``project``, :meth:`slics.SpLiCE.transform`, :meth:`slics.TokenQuantiser.transform`)
calls the matching function here; each maps the in-memory function over the row blocks
(:func:`slics.distributed.blocks.map_rows`) with the dictionary or model broadcast once.
The solvers are row by row, so a block's rows get the codes they get in one in-memory call, up to
the last bits of the BLAS product ``X_block @ D.T`` for rows whose kernel tile differs (blocks of
a multiple of 192 rows: none; the NNLS solvers take that product 192 rows per call, so for them on
any BLAS: :func:`slics.core.nnls.row_products`; see ``docs/scaling.md`` and ``tests/test_distributed.py``).
"""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_matrix
from .blocks import check_columns, map_rows


def _nnls_block(X, support, shared):
    from ..core.nnls import nnls_batch

    D, options = shared
    return nnls_batch(D, X, support, **options)


def nnls_rows(D, X, support=None, **options):
    """:func:`slics.nnls_batch` of a dask ``X`` (``D`` checked by the caller); lazy (n, m)."""
    check_columns(X, D.shape[1])
    return map_rows(_nnls_block, X, support, shared=(D, options), tail=(D.shape[0],), row_names=("support",))


def _lasso_block(X, shared):
    from ..core.lasso import lasso

    D, lam, options = shared
    return lasso(X, D, lam, **options)


def lasso_rows(X, D, lam, dtype=None, **options):
    """:func:`slics.lasso` of a dask ``X`` (scalars checked by the caller); lazy (n, m)."""
    from ..core.lasso import _working_dtype

    out = _working_dtype(np.empty(0, X.dtype), np.asarray(D), dtype)
    D = check_matrix(D, "D", dtype=out)
    check_columns(X, D.shape[1])
    return map_rows(_lasso_block, X, shared=(D, lam, dict(options, dtype=out)), tail=(D.shape[0],), dtype=out)


def _method_block(X, Y, shared):
    model, method, extra = shared
    return getattr(model, method)(X, *extra) if Y is None else getattr(model, method)(X, Y, *extra)


def model_rows(model, method: str, X, Y=None, *extra, tail=(), dtype=np.float64):
    """``model.method(X_block[, Y_block], *extra)`` over the row blocks of a dask ``X``; lazy."""
    return map_rows(_method_block, X, Y, shared=(model, method, extra), tail=tail, dtype=dtype, row_names=("Y",))


def slics_rows(model, method: str, X, Y=None, *extra):
    """:class:`slics.SLiCS` ``transform`` / ``components`` (with ``Y``) or ``project`` (with a concept)."""
    check_columns(X, model.n_features_in_)
    C, K, d = model.n_concepts_, int(model.n_atoms), model.n_features_in_
    if Y is not None and Y.shape[1] != C:
        raise ValueError(f"Y has {Y.shape[1]} concepts but the model was fitted with {C}.")
    tail = {"transform": (C * K,), "components": (C, d), "project": (d,)}[method]
    return model_rows(model, method, X, Y, *extra, tail=tail)


def stream_batches(X, Y):
    """``(X_block, Y_block)`` as NumPy arrays, one row chunk of the dask ``X`` at a time (for
    :meth:`slics.SLiCS.partial_fit`: one chunk in memory at a time)."""
    from .blocks import align_rows, rows_chunked

    X = rows_chunked(X)
    Yd = align_rows(Y, X.chunks[0], "Y")
    for xb, yb in zip(X.to_delayed().ravel(), Yd.to_delayed().ravel()):
        yield xb.compute(), yb.compute()
