"""Compiled kernel of :mod:`slics.core.sparse_coding`: ``W G`` for codes ``W`` with few non-zeros."""

from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True)
def sparse_rows_product(W, G, out):
    """``out[i] = sum_j W[i, j] G[j]`` over the non-zeros of each row of ``W`` (in index order).

    ``2 nnz k`` flops for ``nnz`` non-zeros and ``k`` columns of ``G``, against ``2 n m k`` for the
    dense product; rows in parallel. ``W`` (n, m), ``G`` (m, k), ``out`` (n, k), one dtype.
    """
    n, m = W.shape
    k = G.shape[1]
    for i in prange(n):
        w = W[i]
        o = out[i]
        empty = True
        for j in range(m):
            wj = w[j]
            if wj != 0:
                g = G[j]
                if empty:
                    for c in range(k):
                        o[c] = wj * g[c]
                    empty = False
                else:
                    for c in range(k):
                        o[c] += wj * g[c]
        if empty:
            for c in range(k):
                o[c] = 0
