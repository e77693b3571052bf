"""SLiCS past one machine: chunked stores, coding and concept-filtered retrieval on Dask.

The public solvers and estimators dispatch here when given a ``dask.array.Array`` (the check,
:func:`slics.utils.validation.is_dask_array`, imports nothing), so the same calls work in
memory and on a cluster::

    import slics, slics.distributed as sd
    with sd.connect(workers=2):                       # or sd.connect("tcp://scheduler:8786")
        X = sd.open_embeddings("pool.zarr")           # lazy (n, d), one chunk per block of rows
        W = model.transform(X, Y)                     # lazy (n, C K); nothing computed yet
        sd.save_store(W, "codes.zarr")                # computed chunk by chunk on the workers

Chunks are blocks of rows (columns in one chunk). The model or dictionary is sent once per
worker (``Client.scatter(..., broadcast=True)``; one graph key without a distributed client),
never embedded per task. Results equal the in-memory ones row for row: every solver here is
row-independent, up to the last bits of BLAS products whose row tiles fall elsewhere than in
one in-memory call (bitwise for blocks of a multiple of 192 rows; retrieval scores in fixed pool
blocks, :func:`slics.core.retrieval.cosine_scores`, and is bitwise at any size; ``docs/scaling.md``
and ``tests/test_distributed.py`` say what and why).

Modules, by role: :mod:`.blocks` (row-block mapping and the broadcast), :mod:`.coding` (the
solvers and estimators on dask arrays), :mod:`.store` (zarr and ``.npy``-shard stores, atomic
writes), :mod:`.search` (sharded top-k, exact merge; dense, quantised or FAISS),
:mod:`.cluster` (a local cluster or an existing scheduler), :mod:`.estimate` (the internet-scale
estimate of ``docs/scaling.md``). Needs the ``dask`` extra: ``pip install 'slics[dask]'``.
"""

from __future__ import annotations

_PUBLIC = {
    "open_embeddings": "slics.distributed.store",
    "save_store": "slics.distributed.store",
    "is_store": "slics.distributed.store",
    "connect": "slics.distributed.cluster",
    "sharded_top_k": "slics.distributed.search",
    "quantised_top_k": "slics.distributed.search",
    "filtered_top_k": "slics.distributed.search",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    import importlib

    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'slics.distributed' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__():
    return list(__all__)
