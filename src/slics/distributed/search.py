"""Top-k retrieval over a sharded pool: per-shard top-k on the workers, merged exactly.

Every shard (a row block of the pool) returns, for every query, its ``min(k, shard size)``
best candidates with their scores, ordered by decreasing score and then by increasing global
index; pairs of shard results are merged by the same order (a tree of merges on the workers)
and the first ``k`` kept. The global top ``k`` under that order is always among the union of
the shards' top ``k``, so the result is exactly :func:`slics.core.retrieval.top_k` (ties by the
lower candidate index included) whenever a shard's scores are those of the whole pool, which
holds for the three backends:

* ``"dense"``: cosine of the normalised rows, by :func:`~slics.core.retrieval.cosine_scores`
  with the shard's place in the pool: each score comes from the same BLAS product, of the same
  shape, as in :func:`~slics.core.retrieval.top_k` over the whole pool, so the scores are bit for
  bit those of ``top_k`` run with one BLAS thread (the shards use one; several BLAS threads
  change some products' last bits in memory too). Exact ties across shards then fall by index
  as in memory;
* ``"pq"``: the quantised pool (codes ``(n, T)`` and a codebook), scored through look-up tables
  by the compiled kernel of :mod:`slics.core.pq_kernels` (fixed summation order: the same bits
  as :meth:`slics.core.pq.QuantisedPool.top_k`, 1 byte per token for 256 codewords);
* ``"faiss"``: FAISS's exhaustive inner-product index (``IndexFlatIP``, float32) on the
  normalised rows: the same top-k up to float32 rounding of near-ties (scores to about 1e-6).

The pool is read once per call whatever the number of queries; only ``(m, k)`` scores and
indices per shard travel back.
"""

from __future__ import annotations

import numpy as np

from ..core.normalise import normalise_rows
from ..core.retrieval import cosine_scores, select_top, unit_candidates
from ..utils.threads import single_thread_blas
from ..utils.validation import check_choice, check_int, check_matrix
from .blocks import broadcast, check_columns, dask_modules, rows_chunked

BACKENDS = ("dense", "faiss", "pq")


def merge_top(a, b, k: int):
    """The best ``k`` of two (scores, indices) shard results, by score then lower index."""
    S = np.concatenate([a[0], b[0]], axis=1)
    idx = np.concatenate([a[1], b[1]], axis=1)
    order = np.lexsort((idx, -S), axis=1)[:, :k]
    return np.take_along_axis(S, order, axis=1), np.take_along_axis(idx, order, axis=1)


def _scorer(kind, block, offset, n, extra):
    """``Q -> (len(Q), len(block))`` scores of one shard."""
    if kind == "dense":
        P = unit_candidates(block, "pool")
        return lambda Q: cosine_scores(Q, P, offset, n)
    from ..core.pq import QuantisedPool

    return QuantisedPool(block, extra).scores


def query_blocks(m: int, group: int | None, block: int) -> list[slice]:
    """The blocks of queries scored at a time: ``block`` at a time within each ``group`` of rows
    (the queries of one concept), as separate :func:`~slics.core.retrieval.top_k` calls do."""
    group = group or max(m, 1)
    return [slice(s, min(g + group, m, s + block)) for g in range(0, m, group)
            for s in range(g, min(g + group, m), block)]


def _faiss_top(Q, block, k):
    import faiss

    P = np.ascontiguousarray(unit_candidates(block, "pool"), dtype=np.float32)
    index = faiss.IndexFlatIP(P.shape[1])
    index.add(P)
    S, idx = index.search(np.ascontiguousarray(Q, dtype=np.float32), k)
    return S.astype(np.float64), idx.astype(np.int64)


def _shard_top(block, offset, shared):
    """(scores, global indices), each (m, min(k, rows)), of one shard."""
    Q, k, kind, extra, prepare, blocks, n = shared
    Q = check_matrix(Q, "queries", allow_empty=True)      # aligned (a worker's copy may not be): BLAS as in memory
    if prepare is not None:
        block = prepare(block)
    k = min(k, len(block))
    if kind == "faiss":
        S, idx = _faiss_top(Q, block, k)
        order = np.lexsort((idx, -S), axis=1)        # FAISS's order of equal scores: by index, as top_k
        return np.take_along_axis(S, order, axis=1), np.take_along_axis(idx, order, axis=1) + offset
    scores = np.empty((len(Q), k))
    index = np.empty((len(Q), k), np.int64)
    with single_thread_blas():
        score = _scorer(kind, block, offset, n, extra)
        for rows in blocks:
            S = score(Q[rows])
            top = select_top(S, k)
            scores[rows] = np.take_along_axis(S, top, axis=1)
            index[rows] = top + offset
    return scores, index


def _shard_packed(block, block_info=None, *, shared):
    """:func:`_shard_top` of one shard as one (1, m, 2k) float64 block: its ``k`` best scores,
    then their global indices (exact as float64 below 2^53 rows); a shard of fewer than ``k``
    rows pads with -inf scores, which every merge puts last."""
    k = shared[1]
    scores, index = _shard_top(block, int(block_info[0]["array-location"][0][0]), shared)
    out = np.full((1, len(scores), 2 * k), -np.inf)
    out[0, :, :scores.shape[1]] = scores
    out[0, :, k:k + index.shape[1]] = index
    return out


def _merge_packed(a, b, k: int):
    """:func:`merge_top` of two packed shard results, packed."""
    S, idx = merge_top((a[0, :, :k], a[0, :, k:]), (b[0, :, :k], b[0, :, k:]), k)
    return np.concatenate([S, idx], axis=1)[None]


def _reduce(parts, k: int):
    """A balanced tree of merges over the delayed packed shard results; one delayed result."""
    dask, _ = dask_modules()
    merge = dask.delayed(_merge_packed, pure=True)
    while len(parts) > 1:
        parts = [merge(parts[i], parts[i + 1], k) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


def _search(Q, pool, k, kind, extra=None, prepare=None, block=512, group=None):
    dask, _ = dask_modules()
    k = check_int(k, "k", minimum=1)
    packed = packed_shards(Q, pool, k, kind, extra, prepare, block, group)
    out = dask.compute(_reduce(list(packed.to_delayed().ravel()), k))[0][0]
    return out[:, k:].astype(np.int64), out[:, :k]


def packed_shards(Q, pool, k: int, kind: str, extra=None, prepare=None, block=512, group=None):
    """The lazy (shards, m, 2k) array of every shard's :func:`_shard_packed` result: one blockwise
    layer over the pool, which dask fuses with a store's reads (as :func:`~.blocks.map_rows`)."""
    pool = rows_chunked(pool, "pool")
    n = pool.shape[0]
    block = check_int(block, "block", minimum=1)
    if k > n:
        raise ValueError(f"k must be between 1 and the number of candidates ({n}), got {k}.")
    ref = broadcast((Q, k, kind, extra, prepare, query_blocks(len(Q), group, block), n))
    return pool.map_blocks(_shard_packed, shared=ref, dtype=np.float64, new_axis=2,
                           chunks=((1,) * len(pool.chunks[0]), (len(Q),), (2 * k,)), meta=np.empty((0, 0, 0)))


def sharded_top_k(queries, pool, k: int, *, backend: str = "dense", prepare=None, block: int = 512,
                  group: int | None = None):
    """The ``k`` candidates of a sharded pool most cosine-similar to each query, best first.

    Parameters
    ----------
    queries : array of shape (m, d)
        In memory (normalised here).
    pool : dask array of shape (n, d)
        Candidates, one shard per row chunk (e.g. :func:`slics.distributed.open_embeddings`).
    k : int
        Between 1 and ``n``.
    backend : {"dense", "faiss"}, default "dense"
        ``"dense"``: exactly :func:`slics.core.retrieval.top_k` (with one BLAS thread; see the
        module docstring); ``"faiss"``: FAISS's flat inner-product index per shard (float32;
        needs ``faiss-cpu``).
    prepare : callable, optional
        A module-level function applied to every shard's rows before scoring (e.g. a model's
        preprocessing); sent to the workers once with the queries.
    block : int, default 512
        Queries scored at a time per shard (memory: ``block`` x shard rows x 8 bytes).
    group : int, optional
        The queries are groups of this many rows (e.g. one concept's projections each), blocked
        as separate :func:`~slics.core.retrieval.top_k` calls on each group would be.

    Returns
    -------
    index : ndarray of shape (m, k), int64
        Global row numbers of the pool; ties by the lower index.
    scores : ndarray of shape (m, k), float64
        Their cosines.
    """
    backend = check_choice(backend, "backend", BACKENDS[:2])
    Q = normalise_rows(check_matrix(queries, "queries", allow_empty=True))
    if prepare is None:
        check_columns(pool, Q.shape[1], "pool")
    if group is not None:
        group = check_int(group, "group", minimum=1)
    return _search(Q, pool, k, backend, prepare=prepare, block=block, group=group)


def quantised_top_k(queries, codes, codebook, k: int, *, block: int = 512):
    """Top-k of a sharded quantised pool by look-up-table scores: :meth:`QuantisedPool.top_k`, sharded.

    Parameters
    ----------
    queries : array of shape (m, T * d)
    codes : dask array of shape (n, T), integers
        Codeword indices (e.g. ``TokenQuantiser.transform`` of a dask array, or a store of them).
    codebook : array of shape (K, d)
    k : int
    block : int, default 512

    Returns
    -------
    index, scores : ndarrays of shape (m, k)
        Inner products ``<z, x_hat>`` (the paper's score), best first, ties by the lower index.
    """
    C = check_matrix(codebook, "codebook")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integer codeword indices, got dtype {codes.dtype}.")
    Q = check_matrix(queries, "queries", n_cols=codes.shape[1] * C.shape[1], allow_empty=True)
    return _search(Q, codes, k, "pq", extra=C, block=block)


def filtered_top_k(model, queries, pool, concepts, k: int, *, backend: str = "dense", prepare=None,
                   block: int = 512):
    """Concept-filtered retrieval over a sharded pool in one pass: top-k of every query's projection
    on each concept (the CLI's ``retrieve``; :meth:`slics.SLiCS.project`, normalised).

    Parameters
    ----------
    model : fitted SLiCS
    queries : array of shape (m, d)
        Prepared as the pool is (the model's preprocessing).
    pool : dask array of shape (n, d)
    concepts : sequence of int
    k : int
    backend, prepare, block : as :func:`sharded_top_k`

    Returns
    -------
    index, scores : ndarrays of shape (len(concepts), m, k)
    """
    Q = check_matrix(queries, "queries", n_cols=model.n_features_in_)
    F = np.concatenate([normalise_rows(model.project(Q, j)) for j in concepts])
    index, scores = sharded_top_k(F, pool, k, backend=backend, prepare=prepare, block=block, group=len(Q))
    shape = (len(concepts), Q.shape[0], -1)
    return index.reshape(shape), scores.reshape(shape)
