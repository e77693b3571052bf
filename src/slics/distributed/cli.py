"""The command line's ``components`` and ``retrieve`` on chunked stores (zarr, ``.npy`` shards).

:mod:`slics.cli` hands a verb over here when its rows input is a store (or ``--scheduler`` /
``--workers`` is given): the rows are read lazily (:func:`slics.distributed.open_embeddings`),
prepared and coded block by block on the workers of a local cluster or of a running scheduler,
and the components are written as a store (``.zarr`` or a folder of ``.npy`` shards),
atomically. Labels come from the usual CSV, or from a store of 0/1 columns in the model's
concept order.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .blocks import check_columns, map_rows
from .cluster import connect
from .store import is_store, open_embeddings, save_store


def wanted(args, path: str) -> bool:
    """Whether the verb runs on dask: a store as input, or a cluster asked for."""
    return is_store(path) or args.scheduler is not None or args.workers is not None


def _rows(args, path: str, what: str, model):
    from ..cli import InputError

    try:
        X = open_embeddings(path, rows_per_chunk=args.rows_per_chunk, what=what)
        check_columns(X, model.n_features_in_, what)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return X


def _prepared(model, X):
    from ..cli import prepare_for
    from ..core.normalise import normalise_rows

    return normalise_rows(prepare_for(model, X))


def _components_block(X, Y, model):
    from ..cli import prepare_for

    return model.components(prepare_for(model, X), Y)


def _labels(args, model, n: int):
    from ..cli import InputError, _labels_for

    if not is_store(args.labels):
        return _labels_for(model, args.labels, n)
    Y = open_embeddings(args.labels, what="labels")
    if Y.shape != (n, model.n_concepts_):
        raise InputError(f"labels store {args.labels!r} has shape {Y.shape}; ({n}, {model.n_concepts_}) is expected "
                         f"(0/1 columns in the model's concept order: {', '.join(model.concept_names_)}).")
    return Y.astype(bool)


def components(args, model) -> int:
    """``slics components`` with a store as ``--embeddings``: writes a store of (rows, concepts, features)."""
    from ..cli import InputError, _say

    out = Path(args.out)
    if out.suffix.lower() in (".npy", ".npz") or (out.exists() and not out.is_dir()):
        raise InputError(f"--out {args.out!r}: components of a store are written as a store: NAME.zarr or a folder "
                         f"name for .npy shards.")
    X = _rows(args, args.embeddings, "embeddings", model)
    Y = _labels(args, model, X.shape[0])
    with connect(args.scheduler, workers=args.workers):
        comps = map_rows(_components_block, X, Y, shared=model, tail=(model.n_concepts_, model.n_features_in_),
                         row_names=("Y",))
        save_store(comps, out)
    _say(f"wrote {out}: components of shape {comps.shape} (rows, concepts, features) in {len(X.chunks[0])} chunks")
    return 0


def retrieve(args, model, F: np.ndarray, n_queries: int):
    """Top-k of the stacked query projections ``F`` (one group of ``n_queries`` rows per concept) in
    the pool store, in one pass; (index, scores)."""
    from ..cli import InputError
    from .search import sharded_top_k

    P = _rows(args, args.pool, "pool embeddings", model)
    if not 1 <= args.k <= P.shape[0]:
        raise InputError(f"-k must be between 1 and the pool size ({P.shape[0]}), got {args.k}.")
    with connect(args.scheduler, workers=args.workers):
        return sharded_top_k(F, P, args.k, backend=args.backend, prepare=functools.partial(_prepared, model),
                             group=n_queries)
