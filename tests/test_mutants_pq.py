"""Tests written for the survivors of `make mutation` over slics.core.pq, class by class: which
argument an error names and its whole message, the smallest index type at its boundaries, the
estimator's documented defaults, k-means against scikit-learn called directly, the token
subsample, degenerate centres, the inertia against brute force, scoring with more codewords than
dimensions and more queries than columns, and the dask path of ``transform``.
"""

import re

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import MiniBatchKMeans

from slics.core.pq import (QuantisedPool, TokenQuantiser, decode, encode, lookup_tables, lut_scores,
                           nearest_codeword, normalise_tokens, operation_counts, split_tokens, storage)


def _exactly(message):
    return "^" + re.escape(message) + "$"


def _unit_rows(rng, n, d):
    C = rng.normal(size=(n, d))
    return C / np.linalg.norm(C, axis=1, keepdims=True)


# ------------------------------------------------------------------ which argument an error names
def test_every_function_names_its_bad_argument():
    rng = np.random.default_rng(0)
    C, bad = _unit_rows(rng, 5, 4), np.full((5, 4), np.nan)
    X = rng.normal(size=(3, 8))
    with pytest.raises(ValueError, match=r"^X contains"):
        split_tokens(np.full((2, 4), np.inf), 2)
    with pytest.raises(ValueError, match=r"^tokens contains"):
        nearest_codeword(np.full((2, 4), np.nan), C)
    with pytest.raises(ValueError, match=r"^codebook contains"):
        nearest_codeword(X[:, :4], bad)
    with pytest.raises(ValueError, match=r"^codebook has 4 columns but 3 are expected"):
        nearest_codeword(X[:, :3], C)
    for call in (lambda: encode(X, bad, 2), lambda: decode(np.zeros((2, 2), int), bad),
                 lambda: lookup_tables(X, bad, 2), lambda: QuantisedPool(np.zeros((2, 2), int), bad)):
        with pytest.raises(ValueError, match=r"^codebook contains"):
            call()
    pool = QuantisedPool(np.zeros((3, 2), int), C)
    with pytest.raises(ValueError, match=r"^Z has 6 columns but 8 are expected"):
        pool.scores(rng.normal(size=(2, 6)))
    with pytest.raises(ValueError, match=r"^Z contains"):
        pool.scores(np.full((2, 8), np.nan))


def test_n_tokens_must_be_at_least_one_and_one_is_allowed():
    X = np.arange(1.0, 7.0).reshape(2, 3)
    with pytest.raises(ValueError, match=r"^n_tokens must be at least 1, got 0"):
        split_tokens(X, 0)
    assert split_tokens(X, 1).shape == (2, 1, 3)


def test_dimension_mismatches_say_both_sizes():
    rng = np.random.default_rng(1)
    C = _unit_rows(rng, 5, 4)
    with pytest.raises(ValueError, match=_exactly("tokens have 3 dimensions but codewords 4.")):
        encode(rng.normal(size=(2, 6)), C, 2)
    with pytest.raises(ValueError, match=_exactly("query tokens have 3 dimensions but codewords 4.")):
        lookup_tables(rng.normal(size=(2, 6)), C, 2)
    L = lookup_tables(rng.normal(size=(2, 8)), C, 2)
    with pytest.raises(ValueError, match=_exactly("codes have 3 tokens but 2 are expected.")):
        lut_scores(L, np.zeros((4, 3), int))
    with pytest.raises(ValueError, match=_exactly("tables must have shape (queries, tokens, codewords), got (2, 3).")):
        lut_scores(np.zeros((2, 3)), np.zeros((4, 3), int))


def test_zero_tokens_are_counted_in_the_message():
    X = np.ones((3, 4))
    X[0, :2] = 0
    X[2, 2:] = 0
    with pytest.raises(ValueError, match=r"^X has 2 zero token\(s\) \(first: row 0, token 0\)"):
        normalise_tokens(X, 2)


# ------------------------------------------------------------------ nearest codeword
def test_nearest_codeword_of_no_tokens_and_of_one_token_blocks():
    rng = np.random.default_rng(2)
    C = _unit_rows(rng, 7, 3)
    assert nearest_codeword(np.empty((0, 3)), C).shape == (0,)
    T = rng.normal(size=(50, 3))
    brute = np.argmin(cdist(T, C, "sqeuclidean"), axis=1)
    np.testing.assert_array_equal(nearest_codeword(T, C, block=1), brute)
    np.testing.assert_array_equal(nearest_codeword(T, C), brute)


# ------------------------------------------------------------------ the smallest index type
@pytest.mark.parametrize("K, dtype", [(1, np.uint8), (256, np.uint8), (257, np.uint16), (300, np.uint16)])
def test_indices_take_the_smallest_unsigned_type_holding_k_minus_1(K, dtype):
    rng = np.random.default_rng(3)
    C = _unit_rows(rng, K, 4)
    X = rng.normal(size=(6, 8))
    codes = encode(X, C, 2)
    assert codes.dtype == dtype
    assert QuantisedPool(codes.astype(np.int64), C).codes.dtype == dtype
    assert storage(10, 2, 4, K)["index_bytes"] == 10 * 2 * np.dtype(dtype).itemsize


def test_look_up_scores_reach_the_last_codeword_of_a_257_word_codebook():
    """Codes up to K - 1 = 256 need 16 bits: the scores use every index as it is."""
    rng = np.random.default_rng(12)
    C = _unit_rows(rng, 257, 3)
    codes = np.array([[256, 0], [255, 256], [1, 2]])
    Z = rng.normal(size=(4, 6))
    dense = Z @ decode(codes, C).T
    np.testing.assert_allclose(lut_scores(lookup_tables(Z, C, 2), codes), dense, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(QuantisedPool(codes, C).scores(Z), dense, rtol=1e-12, atol=1e-12)


def test_operation_counts_default_to_one_query():
    assert operation_counts(100, 4, 8, 16) == operation_counts(100, 4, 8, 16, n_queries=1)
    assert operation_counts(100, 4, 8, 16)["dense_multiply_adds"] == 100 * 4 * 8


# ------------------------------------------------------------------ scoring
def test_scores_with_more_codewords_than_dimensions_and_more_queries_than_columns():
    """K = 64 codewords of d = 3 dimensions (the kernel's scratch is T x K), 40 queries against
    6 columns scored 4 at a time: equal to the look-up tables summed by lut_scores, and to the
    dense product of the quantised vectors."""
    rng = np.random.default_rng(4)
    C = _unit_rows(rng, 64, 3)
    pool = QuantisedPool.from_vectors(rng.normal(size=(30, 6)), C, 2)
    Z = rng.normal(size=(40, 6))
    S = pool.scores(Z, block=4)
    assert S.tobytes() == lut_scores(lookup_tables(Z, C, 2), pool.codes).tobytes()
    np.testing.assert_allclose(S, Z @ pool.vectors().T, rtol=1e-12, atol=1e-12)
    assert pool.scores(Z, block=1).tobytes() == S.tobytes()


# ------------------------------------------------------------------ the estimator
def test_documented_defaults():
    params = TokenQuantiser(2, 4).get_params()
    assert params == {"n_tokens": 2, "codebook_size": 4, "max_iter": 100, "batch_size": 4096, "max_tokens": None,
                      "random_state": 0}


def test_codebook_size_must_be_at_least_one_and_one_is_allowed():
    X = np.random.default_rng(5).normal(size=(10, 4))
    with pytest.raises(ValueError, match=r"^codebook_size must be at least 1, got 0"):
        TokenQuantiser(2, 0).fit(X)
    q = TokenQuantiser(2, 1).fit(X)
    assert q.codebook_.shape == (1, 2) and q.token_dim_ == 2


@pytest.mark.parametrize("seed", [0, 3])
def test_codebook_is_scikit_learns_minibatch_kmeans_of_the_unit_tokens_normalised(seed):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(60, 12))
    q = TokenQuantiser(3, 5, max_iter=3, batch_size=64, random_state=seed).fit(X)
    tokens = normalise_tokens(X, 3).reshape(-1, 4)
    km = MiniBatchKMeans(n_clusters=5, max_iter=3, batch_size=64, n_init=1, random_state=seed).fit(tokens)
    ref = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    np.testing.assert_allclose(q.codebook_, ref, rtol=1e-12, atol=1e-14)
    assert q.token_dim_ == 4
    brute = np.mean(np.min(cdist(tokens, q.codebook_, "sqeuclidean"), axis=1))     # the inertia, by brute force
    assert q.inertia_ == pytest.approx(brute, rel=1e-10)


def test_max_tokens_fits_on_that_many_tokens():
    """K tokens for K codewords: each token has nearly a centre of its own, so the inertia (over
    the training tokens) is a small fraction of that of a fit on all the tokens (several times K)."""
    X = np.random.default_rng(7).normal(size=(40, 8))          # 80 tokens of 4 dimensions
    sub = TokenQuantiser(2, 6, max_tokens=6, max_iter=20, batch_size=64).fit(X)
    full = TokenQuantiser(2, 6, max_iter=20, batch_size=64).fit(X)
    assert sub.inertia_ < 0.1 * full.inertia_


def test_a_generator_seed_gives_a_reproducible_fit_and_is_consumed():
    X = np.random.default_rng(13).normal(size=(30, 8))
    fit = lambda rng: TokenQuantiser(2, 4, max_iter=5, batch_size=64, random_state=rng).fit(X).codebook_
    np.testing.assert_array_equal(fit(np.random.default_rng(9)), fit(np.random.default_rng(9)))
    rng = np.random.default_rng(9)
    first = fit(rng)
    assert not np.array_equal(fit(rng), first)        # the same Generator, drawn again: another seed


def test_max_tokens_equal_to_the_token_count_draws_nothing():
    """No subsample is drawn when max_tokens is the token count: a Generator seed is then
    consumed exactly as without max_tokens."""
    X = np.random.default_rng(8).normal(size=(30, 8))
    fit = lambda **kw: TokenQuantiser(2, 4, max_iter=5, batch_size=64, random_state=np.random.default_rng(9), **kw).fit(X)
    np.testing.assert_array_equal(fit(max_tokens=60).codebook_, fit().codebook_)


def test_a_centre_of_norm_zero_becomes_a_training_token(monkeypatch):
    """A k-means centre of norm zero has no direction (possible only on degenerate data, and not
    reliably produced by scikit-learn's mini-batch updates, so it is injected here): centre k
    becomes training token k, a unit vector, and the others are normalised as usual."""
    import sklearn.cluster

    class ZeroLastCentre(MiniBatchKMeans):
        def fit(self, X, y=None, sample_weight=None):
            super().fit(X)
            self.cluster_centers_[4] = 0.0
            return self

    monkeypatch.setattr(sklearn.cluster, "MiniBatchKMeans", ZeroLastCentre)
    X = np.random.default_rng(11).normal(size=(20, 6))
    q = TokenQuantiser(2, 5, max_iter=5, batch_size=64).fit(X)          # 40 tokens of 3 dimensions
    tokens = normalise_tokens(X, 2).reshape(-1, 3)
    np.testing.assert_array_equal(q.codebook_[4], tokens[4])
    np.testing.assert_allclose(np.linalg.norm(q.codebook_, axis=1), 1.0, rtol=1e-15)


dask_array = pytest.importorskip("dask.array")


@pytest.mark.parametrize("K, dtype", [(256, np.uint8), (257, np.uint16)])
def test_transform_of_a_dask_array_is_the_in_memory_transform_block_by_block(K, dtype):
    rng = np.random.default_rng(10)
    X = rng.normal(size=(90, 8))
    q = TokenQuantiser(2, K, max_iter=2, batch_size=64).fit(rng.normal(size=(200, 8)))
    lazy = q.transform(dask_array.from_array(X, chunks=(40, 8)))
    assert isinstance(lazy, dask_array.Array) and lazy.shape == (90, 2) and lazy.dtype == dtype
    got = lazy.compute(scheduler="synchronous")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, q.transform(X))
