"""Compiled look-up-table scoring for :mod:`slics.core.pq` (numba, no fastmath).

``S[q, c] = sum_t L[t, q, codes[c, t]]`` with ``L[t, q, k] = <z_{q,t}, c_k>``, for queries
``Z`` (m, T * d), a codebook (K, d) and codes (n, T). Every table entry is summed over the
``d`` dimensions in order and every score over the tokens in the order ``t = 0, ..., T - 1``
(starting from ``0.0``), each by one thread, exactly as the pure-numpy reference
(:func:`slics.core.pq._token_tables`, then ``S = 0; S += L[t][:, codes[:, t]]`` for each
``t``): the scores are bitwise equal to it whatever the number of threads, and the same bits
on any CPU (numba emits no fused multiply-adds without fastmath; no BLAS is involved).

Layout: the tables of ``QB = 8`` queries are interleaved as (T, K, QB), so that one code
selects one 64-byte line holding the 8 queries' entries and one SIMD addition updates 8
scores; a candidate's 32 look-ups are independent loads (the 8 accumulators stay in
registers), its codes one contiguous row. Measured on a busy 2-core AMD EPYC (1 MiB of L2 per
core, so the 8 MiB interleaved table lives in L3): 11 to 14 ns per (query, candidate) and
thread when the L3 is not contended, against 31 to 36 ns for scalar gathers one query at a
time (a compiled loop over ``t``, one 8-byte entry per cache line and a dependent chain of 32
additions per score) and about 110 ns for the numpy gathers; 30 to 60 ns when other processes
thrash the L3. Keeping the tables of more queries at once (one parallel region instead of two
per 8 queries) was slower: the tables no longer fit in L3. numba's OpenMP threads spin between
parallel regions unless ``OMP_WAIT_POLICY=passive``; on an oversubscribed machine the spinning
made 2 threads 3.6 times slower than 1 (``benchmarks/bench_pq.py`` sets it).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

QB = 8                  # queries interleaved per table line (8 float64 = one 64-byte line)
CANDIDATE_BLOCK = 1024  # candidates per parallel task


@njit(cache=True)
def _score_block(tab, codes, S, q0, qn, c0, c1):
    """Scores of queries ``q0..q0+qn-1`` (interleaved table ``tab`` (T, K, QB)) for candidates ``c0..c1-1``."""
    T = tab.shape[0]
    for c in range(c0, c1):
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        a4 = 0.0
        a5 = 0.0
        a6 = 0.0
        a7 = 0.0
        for t in range(T):
            r = tab[t, codes[c, t]]
            a0 += r[0]
            a1 += r[1]
            a2 += r[2]
            a3 += r[3]
            a4 += r[4]
            a5 += r[5]
            a6 += r[6]
            a7 += r[7]
        S[q0, c] = a0
        if qn > 1:
            S[q0 + 1, c] = a1
        if qn > 2:
            S[q0 + 2, c] = a2
        if qn > 3:
            S[q0 + 3, c] = a3
        if qn > 4:
            S[q0 + 4, c] = a4
        if qn > 5:
            S[q0 + 5, c] = a5
        if qn > 6:
            S[q0 + 6, c] = a6
        if qn > 7:
            S[q0 + 7, c] = a7


@njit(cache=True)
def _fill_table(Z, C, q0, qn, t, tab):
    """``tab[t, k, j] = <z_{q0+j, t}, c_k>`` for ``j < qn`` (0 for the padding ``j``).

    Summed over ``i = 0..d-1`` in order, each product and sum rounded.
    """
    K, d = C.shape
    z = np.zeros((d, QB))
    for j in range(qn):
        for i in range(d):
            z[i, j] = Z[q0 + j, t * d + i]
    for k in range(K):
        row = tab[t, k]
        c = C[k, 0]
        for j in range(QB):
            row[j] = z[0, j] * c
        for i in range(1, d):
            c = C[k, i]
            for j in range(QB):
                row[j] += z[i, j] * c


@njit(parallel=True, cache=True)
def lut_scores_kernel(Z, C, codes, S, tab):
    """Look-up-table scores in place: ``S[q, c] = sum_{t=0..T-1} L[t, q, codes[c, t]]``.

    The tables ``L[t, q, k] = <z_{q,t}, c_k>`` of ``Z`` (m, T * d) and ``C`` (K, d), float64,
    with ``codes`` (n, T) unsigned integers, all C-contiguous; ``S`` float64 (m, n); ``tab``
    a (T, K, QB) float64 scratch array, reused.
    Each table entry is summed over the ``d`` dimensions in order, each score over the tokens
    in order, by one thread: no BLAS, so the scores do not depend on the threads, the blocking
    or the BLAS build. For each block of ``QB`` queries in turn: its tables (parallel over
    tokens), then the candidates (parallel over blocks of candidates).
    """
    m = Z.shape[0]
    T = codes.shape[1]
    n = codes.shape[0]
    ncb = (n + CANDIDATE_BLOCK - 1) // CANDIDATE_BLOCK
    for q0 in range(0, m, QB):
        qn = min(QB, m - q0)
        for t in prange(T):
            _fill_table(Z, C, q0, qn, t, tab)
        for b in prange(ncb):
            c0 = b * CANDIDATE_BLOCK
            _score_block(tab, codes, S, q0, qn, c0, min(n, c0 + CANDIDATE_BLOCK))


@njit(parallel=True, cache=True)
def lut_gather_sum(tables, codes, S, tab):
    """``S[q, c] = sum_{t=0..T-1} tables[t, q, codes[c, t]]`` in place, for given (T, m, K) float64 tables.

    As :func:`lut_scores_kernel` from the tables on (they are interleaved into ``tab`` first).
    """
    T, m, K = tables.shape
    n = codes.shape[0]
    ncb = (n + CANDIDATE_BLOCK - 1) // CANDIDATE_BLOCK
    for q0 in range(0, m, QB):
        qn = min(QB, m - q0)
        for t in prange(T):
            for j in range(QB):
                for k in range(K):
                    tab[t, k, j] = tables[t, q0 + j, k] if j < qn else 0.0
        for b in prange(ncb):
            c0 = b * CANDIDATE_BLOCK
            _score_block(tab, codes, S, q0, qn, c0, min(n, c0 + CANDIDATE_BLOCK))


def table_scratch(n_tokens: int, codebook_size: int) -> np.ndarray:
    """The (T, K, QB) scratch array of the kernels."""
    return np.empty((int(n_tokens), int(codebook_size), QB))
