"""Product quantisation of token embeddings and look-up-table retrieval (the SLiCS paper, section 4.4.1).

A TiTok-style embedding ``x`` of ``D = T * d`` numbers is the concatenation of ``T`` tokens
``x_t`` of ``d`` numbers, each L2-normalised (TiTok-L-32: ``T = 32``, ``d = 12``). As in
product quantisation (Jegou et al., 2010), a candidate of the pool is stored as ``T``
codeword indices: each token is replaced by its nearest codeword of a codebook
``C = [c_1; ...; c_K]`` of unit-norm rows (``K = 4,096`` for TiTok),

``i_t = argmin_k ||x_t - c_k||^2 = argmax_k <x_t, c_k>``  (the codewords are unit norm),
``x_hat = [c_{i_1}, ..., c_{i_T}]``.

Scoring a query vector ``z`` (a concept component of a query, or the query itself for
unfiltered retrieval) against the quantised pool needs one look-up table per query,

``L[t, k] = <z_t, c_k>``  (shape ``T x K``), then  ``<z, x_hat> = sum_t L[t, i_t]``,

that is ``K * D`` multiply-adds for the table and ``T`` additions per candidate, instead of
``D`` multiply-adds per candidate for the dense pool; the pool takes ``n * T`` indices of
``ceil(log2 K)`` bits instead of ``n * D`` floats. Every ``x_hat`` has the same norm
``sqrt(T)`` (unit codewords), so ranking by the inner product is ranking by the cosine;
:meth:`QuantisedPool.scores` can also return the cosine itself. The look-ups and additions
run in a compiled kernel (:mod:`slics.core.pq_kernels`) that sums every score over the tokens
in the fixed order ``t = 0..T-1``: bitwise the same scores whatever the number of threads.

The codebook of the real tokenizer comes with its weights. Without them (the demo
profile) :class:`TokenQuantiser` learns one by seeded k-means on training tokens
(scikit-learn ``MiniBatchKMeans``), then normalises its centres, as the paper's codebook
vectors are unit norm.
"""

from __future__ import annotations

import math
import os

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..utils.validation import check_int, check_matrix, check_random_state, is_dask_array
from .pq_kernels import lut_gather_sum, lut_scores_kernel, table_scratch

FLOAT_BYTES = 4          # storage is counted as float32 (the scores are computed in float64)


def _check_tokens_shape(n_features: int, n_tokens: int) -> int:
    n_tokens = check_int(n_tokens, "n_tokens", minimum=1)
    if n_features % n_tokens:
        raise ValueError(f"n_tokens = {n_tokens} does not divide the {n_features} features of each row: "
                         f"the tokens must all have the same length; choose a divisor of {n_features}.")
    return n_features // n_tokens


def split_tokens(X, n_tokens: int) -> np.ndarray:
    """View the rows of ``X`` (n, T * d) as tokens: an (n, T, d) array (token ``t`` = columns ``t*d..t*d+d-1``)."""
    X = check_matrix(X, "X")
    d = _check_tokens_shape(X.shape[1], n_tokens)
    return X.reshape(X.shape[0], int(n_tokens), d)


def normalise_tokens(X, n_tokens: int) -> np.ndarray:
    """Each token of each row of ``X`` scaled to unit L2 norm; returns an (n, T * d) float64 array.

    A zero token has no direction and raises (TiTok's tokens are never zero).
    """
    tokens = split_tokens(X, n_tokens).astype(np.float64)
    norms = np.linalg.norm(tokens, axis=2, keepdims=True)
    if np.any(norms == 0):
        row, token = np.argwhere(norms[..., 0] == 0)[0]
        raise ValueError(f"X has {int(np.sum(norms == 0))} zero token(s) (first: row {row}, token {token}); "
                         f"a zero token has no direction and cannot be normalised.")
    return (tokens / norms).reshape(tokens.shape[0], -1)


def nearest_codeword(tokens, codebook, *, block: int = 128, n_jobs: int | None = None) -> np.ndarray:
    """Index of the nearest codeword (Euclidean) of every token.

    Parameters
    ----------
    tokens : array of shape (m, d)
    codebook : array of shape (K, d)
    block : int
        Tokens per matrix product (memory ``block * K`` floats per worker; 128 was the
        fastest of 32 to 4,096 for ``K = 4,096``: the product stays in cache).
    n_jobs : int, optional
        Worker threads, each running single-threaded BLAS on its own blocks (default: the
        CPUs available). Multi-threaded BLAS on these thin products (inner dimension ``d``)
        was measured up to 15 times slower on a busy 2-core machine.

    Returns
    -------
    ndarray of int64, shape (m,)
        ``argmin_k ||x - c_k||^2 = argmin_k (||c_k||^2 / 2 - <x, c_k>)``, batched; for
        unit-norm codewords this is the largest inner product. Ties go to the lower index.
        The result does not depend on ``n_jobs`` (the blocks do not).
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    T = check_matrix(tokens, "tokens", allow_empty=True)
    C = check_matrix(codebook, "codebook", n_cols=T.shape[1])
    block = check_int(block, "block", minimum=1)
    if n_jobs is not None:
        check_int(n_jobs, "n_jobs", minimum=1)
    half_sq = 0.5 * np.einsum("kd,kd->k", C, C)
    CT = C.T
    out = np.empty(T.shape[0], dtype=np.int64)

    def one(start):
        P = T[start:start + block] @ CT
        np.subtract(half_sq, P, out=P)
        out[start:start + block] = np.argmin(P, axis=1)

    starts = range(0, T.shape[0], block)
    workers = max(1, min(len(starts), int(n_jobs) if n_jobs else _available_cpus()))
    with threadpool_limits(1):
        if workers == 1:
            for start in starts:
                one(start)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, starts))
    return out


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not Linux
        return os.cpu_count() or 1


def encode(X, codebook, n_tokens: int) -> np.ndarray:
    """Codeword indices (n, T) of every token of every row of ``X`` (the quantised pool).

    The indices are stored in the smallest unsigned integer type that holds ``K - 1``.
    """
    C = check_matrix(codebook, "codebook")
    tokens = split_tokens(X, n_tokens)
    if tokens.shape[2] != C.shape[1]:
        raise ValueError(f"tokens have {tokens.shape[2]} dimensions but codewords {C.shape[1]}.")
    idx = nearest_codeword(tokens.reshape(-1, tokens.shape[2]), C)
    return idx.reshape(tokens.shape[:2]).astype(np.min_scalar_type(C.shape[0] - 1))


def decode(codes, codebook) -> np.ndarray:
    """The quantised vectors (n, T * d): each index replaced by its codeword, tokens concatenated."""
    C = check_matrix(codebook, "codebook")
    codes = _check_codes(codes, C.shape[0])
    return C[codes].reshape(codes.shape[0], -1)


def _check_codes(codes, codebook_size: int, n_tokens: int | None = None) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be a 2-D integer array (candidates, tokens), got {codes.dtype} {codes.shape}.")
    if n_tokens is not None and codes.shape[1] != n_tokens:
        raise ValueError(f"codes have {codes.shape[1]} tokens but {n_tokens} are expected.")
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"codes must index a codebook of {codebook_size} codewords.")
    return codes


def _token_tables(Z, codebook: np.ndarray, n_tokens: int) -> np.ndarray:
    """Tables laid out token-major, (T, m, K): ``[t, q, k] = <z_{q,t}, c_k>``.

    Summed over the ``d`` dimensions in order (``z_0 c_0 + z_1 c_1 + ...``, each product and
    sum rounded), as the compiled kernel does, rather than by BLAS (whose order and fused
    multiply-adds depend on the build and the CPU): the tables, and so the scores, are the same
    bits everywhere.
    """
    tokens = split_tokens(Z, n_tokens)
    if tokens.shape[2] != codebook.shape[1]:
        raise ValueError(f"query tokens have {tokens.shape[2]} dimensions but codewords {codebook.shape[1]}.")
    zt = tokens.transpose(1, 0, 2)                      # (T, m, d)
    L = zt[:, :, 0, None] * codebook[None, None, :, 0]
    for i in range(1, codebook.shape[1]):
        L += zt[:, :, i, None] * codebook[None, None, :, i]
    return L


def _gather_sum(per_token: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``S[q, c] = sum_t per_token[t, q, codes[c, t]]``, summed in the order ``t = 0..T-1`` (compiled).

    ``per_token`` (T, m, K), ``codes`` (n, T); bitwise equal to ``S = 0; S += per_token[t][:, codes[:, t]]``
    for each ``t`` in turn, whatever the number of threads (see :mod:`slics.core.pq_kernels`).
    """
    tables = np.ascontiguousarray(per_token, dtype=np.float64)
    T, m, K = tables.shape
    codes = np.ascontiguousarray(codes, dtype=np.min_scalar_type(max(K - 1, 0)))
    S = np.empty((m, codes.shape[0]))
    lut_gather_sum(tables, codes, S, table_scratch(T, K))
    return S


def lookup_tables(Z, codebook, n_tokens: int) -> np.ndarray:
    """The look-up table of every query vector: ``L[q, t, k] = <z_{q,t}, c_k>``, shape (m, T, K)."""
    C = check_matrix(codebook, "codebook")
    return _token_tables(Z, C, n_tokens).transpose(1, 0, 2)


def lut_scores(tables, codes) -> np.ndarray:
    """Inner products ``<z_q, x_hat_c> = sum_t L[q, t, i_{c,t}]`` of (m, T, K) tables and (n, T) codes: (m, n).

    ``T`` look-ups and additions per query and candidate, accumulated in float64 in the order
    ``t = 0..T-1`` (the compiled kernel of :mod:`slics.core.pq_kernels`).
    """
    L = np.asarray(tables)
    if L.ndim != 3:
        raise ValueError(f"tables must have shape (queries, tokens, codewords), got {L.shape}.")
    codes = _check_codes(codes, L.shape[2], L.shape[1])
    return _gather_sum(L.transpose(1, 0, 2), codes)


class QuantisedPool:
    """A candidate pool stored as codeword indices, scored through look-up tables.

    Parameters
    ----------
    codes : int array of shape (n, T)
        Codeword index of every token of every candidate.
    codebook : array of shape (K, d)
        Codewords, one per row.

    Attributes
    ----------
    codes : ndarray of shape (n, T)
        The indices, C-contiguous in the smallest unsigned integer type that holds ``K - 1``.
    codebook : ndarray of shape (K, d), float64
    n_tokens : int
        Tokens per candidate ``T``.
    norms : ndarray of shape (n,)
        ``||x_hat||`` of every quantised candidate (``sqrt(T)`` for unit codewords).
    """

    def __init__(self, codes, codebook):
        self.codebook = check_matrix(codebook, "codebook")
        codes = _check_codes(codes, self.codebook.shape[0])
        self.codes = np.ascontiguousarray(codes, dtype=np.min_scalar_type(self.codebook.shape[0] - 1))
        self.n_tokens = self.codes.shape[1]
        sq = np.einsum("kd,kd->k", self.codebook, self.codebook)
        self.norms = np.sqrt(sq[self.codes].sum(axis=1))  # sqrt(T) for unit codewords

    @classmethod
    def from_vectors(cls, X, codebook, n_tokens: int) -> "QuantisedPool":
        """Quantise the rows of ``X`` (each token to its nearest codeword).

        Parameters
        ----------
        X : array of shape (n, T * d)
            Candidates, one per row.
        codebook : array of shape (K, d)
            Codewords, one per row.
        n_tokens : int
            Tokens per candidate ``T``.

        Returns
        -------
        QuantisedPool
        """
        return cls(encode(X, codebook, n_tokens), codebook)

    def __len__(self) -> int:
        return self.codes.shape[0]

    def vectors(self) -> np.ndarray:
        """The quantised vectors ``x_hat``, for checks and for dense scoring.

        Returns
        -------
        ndarray of shape (n, T * d)
        """
        return decode(self.codes, self.codebook)

    def scores(self, Z, *, cosine: bool = False, block: int = 1024) -> np.ndarray:
        """Scores (m, n) of the query vectors ``Z`` (m, T * d) against the pool, through look-up tables.

        ``cosine=False``: the inner products ``<z, x_hat>`` (the paper's score); ``True``:
        divided by ``||z|| ||x_hat||`` (a zero query scores 0). ``block`` queries per kernel
        call. The tables (of ``QB`` queries at a time, in one reused ``T x K x QB`` buffer) and
        the scores are summed in a fixed order by one thread each (:mod:`slics.core.pq_kernels`):
        the result does not depend on the number of threads, on ``block`` or on the BLAS, and
        equals :func:`lut_scores` of :func:`lookup_tables` bit for bit.

        Parameters
        ----------
        Z : array of shape (m, T * d)
            Queries, one per row.
        cosine : bool, default False
            Cosine scores instead of inner products.
        block : int, default 1024
            Queries per kernel call (memory only; the scores do not depend on it).

        Returns
        -------
        ndarray of shape (m, n), float64
        """
        Z = check_matrix(Z, "Z", n_cols=self.n_tokens * self.codebook.shape[1], allow_empty=True)
        S = np.empty((Z.shape[0], len(self)))
        block = check_int(block, "block", minimum=1)
        C = np.ascontiguousarray(self.codebook)
        scratch = table_scratch(self.n_tokens, C.shape[0])
        for start in range(0, Z.shape[0], block):
            lut_scores_kernel(np.ascontiguousarray(Z[start:start + block]), C, self.codes, S[start:start + block],
                              scratch)
        if cosine:
            zn = np.linalg.norm(Z, axis=1)
            S = S / np.where(zn == 0, 1, zn)[:, None] / self.norms[None, :]
        return S

    def top_k(self, Z, k: int) -> np.ndarray:
        """Indices (m, k) of the ``k`` candidates with the largest look-up-table score, best first.

        Ties are broken by the lower candidate index (as :func:`slics.core.retrieval.top_k`).

        Parameters
        ----------
        Z : array of shape (m, T * d)
            Queries, one per row.
        k : int
            Candidates per query, between 1 and the pool size.

        Returns
        -------
        ndarray of shape (m, k), int64
        """
        from .retrieval import select_top

        S = self.scores(Z)
        k = check_int(k, "k", minimum=1)
        if k > len(self):
            raise ValueError(f"k must be between 1 and the pool size ({len(self)}), got {k}.")
        return select_top(S, k)

    def storage(self) -> dict:
        """Bytes of this pool as indices and as dense float32 vectors.

        Returns
        -------
        dict
            As :func:`storage` for this pool's size, tokens, token dimension and codebook size.
        """
        return storage(len(self), self.n_tokens, self.codebook.shape[1], self.codebook.shape[0])


def index_bits(codebook_size: int) -> int:
    """Bits of one codeword index: ``ceil(log2 K)`` (at least 1)."""
    return max(1, math.ceil(math.log2(check_int(codebook_size, "codebook_size", minimum=1))))


def _sizes(**sizes) -> list[int]:
    """The counts of :func:`storage` and :func:`operation_counts`, checked (no truncation, none
    negative; at least one token, dimension and codeword)."""
    return [check_int(v, name, minimum=0 if name == "n_candidates" else 1) for name, v in sizes.items()]


def storage(n_candidates: int, n_tokens: int, token_dim: int, codebook_size: int) -> dict:
    """Storage of a pool of ``n`` candidates, quantised and dense (the paper: ``n*T`` indices against ``n*D`` floats).

    Returns the counts (``indices``, ``floats``), the bytes of the indices packed at
    ``ceil(log2 K)`` bits and as the smallest unsigned integer type, the bytes of the
    float32 pool, and the codebook's own float32 bytes (shared by the whole pool).
    """
    n, T, d, K = _sizes(n_candidates=n_candidates, n_tokens=n_tokens, token_dim=token_dim, codebook_size=codebook_size)
    bits = index_bits(K)
    return {
        "n_candidates": n, "n_tokens": T, "token_dim": d, "codebook_size": K, "index_bits": bits,
        "indices": n * T, "floats": n * T * d,
        "packed_index_bytes": math.ceil(n * T * bits / 8),
        "index_bytes": n * T * np.min_scalar_type(K - 1).itemsize,
        "dense_bytes": n * T * d * FLOAT_BYTES,
        "codebook_bytes": K * d * FLOAT_BYTES,
    }


def operation_counts(n_candidates: int, n_tokens: int, token_dim: int, codebook_size: int,
                     n_queries: int = 1) -> dict:
    """Arithmetic of scoring ``n_queries`` query vectors against ``n`` candidates.

    Dense pool: ``D`` multiply-adds per (query, candidate). Quantised pool: the look-up
    table, ``K * D`` multiply-adds per query, then ``T`` additions (table look-ups) per
    (query, candidate): the paper's ``O(K D + n T)`` against ``O(n D)``.
    """
    n, T, d, K, m = _sizes(n_candidates=n_candidates, n_tokens=n_tokens, token_dim=token_dim,
                           codebook_size=codebook_size, n_queries=n_queries)
    D = T * d
    return {"dense_multiply_adds": m * n * D, "lut_multiply_adds": m * K * D, "lut_additions": m * n * T,
            "lut_total": m * (K * D + n * T)}


class TokenQuantiser(BaseEstimator):
    """A unit-norm codebook for the tokens of embeddings, learned by seeded k-means.

    Parameters
    ----------
    n_tokens : int
        Tokens per embedding ``T`` (the features are ``T`` consecutive blocks).
    codebook_size : int
        Codewords ``K``.
    max_iter : int, default 100
        Epochs of ``MiniBatchKMeans``.
    batch_size : int, default 4096
        Mini-batch of tokens.
    max_tokens : int, optional
        Fit on at most this many training tokens (drawn with ``random_state``).
    random_state : int, default 0
        Seed of the token subsample and of k-means.

    Attributes
    ----------
    codebook_ : ndarray of shape (codebook_size, token_dim)
        Unit-norm codewords: the k-means centres, normalised.
    token_dim_ : int
        Dimension ``d`` of one token.
    inertia_ : float
        Mean squared distance of the training tokens to their nearest unit codeword.

    Notes
    -----
    The training tokens are normalised first (as the pool's are). A centre of norm zero
    (possible only for degenerate data) is replaced by a training token, so that every
    codeword is a unit vector.
    """

    def __init__(self, n_tokens, codebook_size, max_iter=100, batch_size=4096, max_tokens=None, random_state=0):
        self.n_tokens = n_tokens
        self.codebook_size = codebook_size
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.random_state = random_state

    def fit(self, X, y=None):
        """Learn the codebook from the tokens of the rows of ``X``.

        Parameters
        ----------
        X : array of shape (n, T * d)
            Training embeddings, one per row.
        y : None
            Ignored (scikit-learn's signature).

        Returns
        -------
        self : TokenQuantiser
        """
        from sklearn.cluster import MiniBatchKMeans

        K = check_int(self.codebook_size, "codebook_size", minimum=1)
        for name in ("max_iter", "batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        if self.max_tokens is not None:
            check_int(self.max_tokens, "max_tokens", minimum=1)
        rng = check_random_state(self.random_state)
        X = normalise_tokens(X, self.n_tokens)
        tokens = X.reshape(-1, X.shape[1] // int(self.n_tokens))
        if self.max_tokens is not None and tokens.shape[0] > int(self.max_tokens):
            tokens = tokens[np.sort(rng.choice(tokens.shape[0], int(self.max_tokens), replace=False))]
        if tokens.shape[0] < K:
            raise ValueError(f"codebook_size = {K} is more than the {tokens.shape[0]} training tokens (rows of X "
                             f"times n_tokens); k-means needs at least one token per codeword.")
        seeded = self.random_state is not None and not isinstance(self.random_state, np.random.Generator)
        km = MiniBatchKMeans(n_clusters=int(K), max_iter=int(self.max_iter), batch_size=int(self.batch_size), n_init=1,
                             random_state=int(self.random_state) if seeded else int(rng.integers(2**31 - 1)),
                             compute_labels=False)
        centres = km.fit(tokens).cluster_centers_
        norms = np.linalg.norm(centres, axis=1)
        for k in np.flatnonzero(norms == 0):
            centres[k] = tokens[k % tokens.shape[0]]
            norms[k] = 1.0
        self.codebook_ = centres / norms[:, None]
        self.token_dim_ = int(tokens.shape[1])
        idx = nearest_codeword(tokens, self.codebook_)
        self.inertia_ = float(np.mean(np.sum((tokens - self.codebook_[idx]) ** 2, axis=1)))
        return self

    def transform(self, X) -> np.ndarray:
        """Codeword indices of the normalised tokens of ``X``.

        Parameters
        ----------
        X : array of shape (n, T * d)
            Embeddings, one per row.

        Returns
        -------
        ndarray of shape (n, T)
            Index of the nearest codeword of every token.
        """
        check_is_fitted(self, "codebook_")
        if is_dask_array(X):      # lazy, block by block, the fitted quantiser sent once (slics.distributed)
            from ..distributed.coding import model_rows

            return model_rows(self, "transform", X, tail=(self.n_tokens,),
                              dtype=np.min_scalar_type(self.codebook_.shape[0] - 1))
        return encode(normalise_tokens(X, self.n_tokens), self.codebook_, self.n_tokens)

    def inverse_transform(self, codes) -> np.ndarray:
        """Quantised vectors of codeword indices.

        Parameters
        ----------
        codes : int array of shape (n, T)
            Codeword indices, as :meth:`transform` returns them.

        Returns
        -------
        ndarray of shape (n, T * d)
        """
        check_is_fitted(self, "codebook_")
        return decode(codes, self.codebook_)

    def pool(self, X) -> QuantisedPool:
        """The rows of ``X`` as a :class:`QuantisedPool` over this codebook.

        Parameters
        ----------
        X : array of shape (n, T * d)
            Candidates, one per row.

        Returns
        -------
        QuantisedPool
        """
        return QuantisedPool(self.transform(X), self.codebook_)
