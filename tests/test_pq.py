"""Product quantisation of tokens: nearest codewords, look-up-table scores, storage and operation counts."""

import numpy as np
import pytest

from slics.core.pq import (QuantisedPool, TokenQuantiser, decode, encode, index_bits, lookup_tables,
                           lut_scores, nearest_codeword, normalise_tokens, operation_counts, split_tokens,
                           storage)

T, d, K = 8, 6, 50


def unit_rows(rng, n, dim):
    X = rng.standard_normal((n, dim))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture
def world():
    rng = np.random.default_rng(3)
    codebook = unit_rows(rng, K, d).astype(np.float32)
    pool = normalise_tokens(rng.standard_normal((40, T * d)), T)
    queries = rng.standard_normal((7, T * d)).astype(np.float32)   # components: not unit, not token-normalised
    return codebook, pool, queries


def test_normalise_tokens_makes_every_token_unit_and_keeps_direction():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, T * d)) * rng.uniform(0.1, 5, (5, 1))
    Y = normalise_tokens(X, T)
    tok = split_tokens(Y, T)
    np.testing.assert_allclose(np.linalg.norm(tok, axis=2), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), np.sqrt(T), rtol=1e-6)
    # token t of row i is parallel to the same block of X
    Xi = X[2, 3 * d:4 * d]
    np.testing.assert_allclose(tok[2, 3], Xi / np.linalg.norm(Xi), rtol=1e-5)


def test_token_shape_errors():
    with pytest.raises(ValueError, match="tokens of equal length"):
        split_tokens(np.ones((2, 10)), 3)
    with pytest.raises(ValueError, match="zero"):
        normalise_tokens(np.zeros((1, 6)), 2)


def test_nearest_codeword_matches_brute_force_euclidean():
    rng = np.random.default_rng(1)
    C = rng.standard_normal((K, d))            # not unit: the general nearest-codeword rule
    X = rng.standard_normal((300, d))
    brute = np.array([np.argmin([np.sum((x - c) ** 2) for c in C]) for x in X])
    np.testing.assert_array_equal(nearest_codeword(X, C, block=17), brute)


def test_nearest_unit_codeword_is_the_largest_inner_product(world):
    codebook, pool, _ = world
    tokens = pool.reshape(-1, d)
    np.testing.assert_array_equal(nearest_codeword(tokens, codebook), np.argmax(tokens @ codebook.T, axis=1))


def test_encode_decode_round_trip(world):
    codebook, pool, _ = world
    codes = encode(pool, codebook, T)
    assert codes.shape == (40, T) and codes.dtype == np.uint8
    Xhat = decode(codes, codebook)
    # each token of the quantised vector is its nearest codeword, found independently
    for i in (0, 17, 39):
        for t in range(T):
            tok = pool[i, t * d:(t + 1) * d]
            best = codebook[np.argmin(np.sum((codebook - tok) ** 2, axis=1))]
            np.testing.assert_allclose(Xhat[i, t * d:(t + 1) * d], best)
    # re-encoding a quantised vector gives the same indices
    np.testing.assert_array_equal(encode(Xhat, codebook, T), codes)


def test_lut_score_equals_score_on_quantised_vectors(world):
    codebook, pool, queries = world
    qp = QuantisedPool.from_vectors(pool, codebook, T)
    direct = queries.astype(np.float64) @ qp.vectors().astype(np.float64).T
    np.testing.assert_allclose(qp.scores(queries, block=3), direct, rtol=1e-5, atol=1e-5)
    # the table itself: L[q, t, k] = <z_{q,t}, c_k>
    L = lookup_tables(queries, codebook, T)
    assert L.shape == (7, T, K)
    np.testing.assert_allclose(L[4, 5, 9], queries[4, 5 * d:6 * d] @ codebook[9], rtol=1e-5)
    # a naive sum of table entries for one (query, candidate)
    naive = sum(L[2, t, qp.codes[11, t]] for t in range(T))
    np.testing.assert_allclose(lut_scores(L, qp.codes)[2, 11], naive, rtol=1e-6)


def test_lut_cosine_and_constant_pool_norm(world):
    codebook, pool, queries = world
    qp = QuantisedPool.from_vectors(pool, codebook, T)
    np.testing.assert_allclose(qp.norms, np.sqrt(T), rtol=1e-6)
    V = qp.vectors().astype(np.float64)
    cos = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (V / np.linalg.norm(V, axis=1,
                                                                                         keepdims=True)).T
    np.testing.assert_allclose(qp.scores(queries, cosine=True), cos, rtol=1e-5, atol=1e-6)
    # a zero query (an empty cone) scores 0, not NaN
    zero = np.zeros((1, T * d), dtype=np.float32)
    assert np.all(qp.scores(zero, cosine=True) == 0)


def test_codes_are_checked(world):
    codebook, _, _ = world
    with pytest.raises(ValueError, match="index a codebook"):
        QuantisedPool(np.full((2, T), K), codebook)
    with pytest.raises(ValueError, match="integer"):
        QuantisedPool(np.zeros((2, T)), codebook)


def test_storage_and_operation_counts_closed_form():
    s = storage(10_000, 32, 12, 4096)
    assert s["indices"] == 320_000 and s["floats"] == 3_840_000
    assert s["index_bits"] == 12 and s["packed_index_bytes"] == 480_000
    assert s["index_bytes"] == 640_000 and s["dense_bytes"] == 15_360_000
    assert s["codebook_bytes"] == 4096 * 12 * 4
    assert index_bits(256) == 8 and index_bits(257) == 9 and index_bits(1) == 1
    ops = operation_counts(10_000, 32, 12, 4096, n_queries=2)
    assert ops["dense_multiply_adds"] == 2 * 10_000 * 384
    assert ops["lut_multiply_adds"] == 2 * 4096 * 384
    assert ops["lut_additions"] == 2 * 10_000 * 32


def test_token_quantiser_unit_codebook_and_planted_clusters():
    rng = np.random.default_rng(5)
    centres = unit_rows(rng, 6, d)
    # every token is one of 6 planted directions plus small noise
    idx = rng.integers(0, 6, (500, T))
    X = centres[idx] + 0.01 * rng.standard_normal((500, T, d))
    q = TokenQuantiser(n_tokens=T, codebook_size=6, random_state=0).fit(X.reshape(500, -1))
    np.testing.assert_allclose(np.linalg.norm(q.codebook_, axis=1), 1.0, rtol=1e-6)
    # each planted centre is matched by a codeword (cosine close to 1)
    assert np.all((centres @ q.codebook_.T).max(axis=1) > 0.999)
    codes = q.transform(X.reshape(500, -1))
    # tokens from the same planted centre share a codeword, different centres do not
    mapping = {}
    for a, b in zip(idx.ravel(), codes.ravel()):
        assert mapping.setdefault(a, b) == b
    assert len(set(mapping.values())) == 6
    assert q.inertia_ < 1e-3
    # seeded: the same codebook again
    q2 = TokenQuantiser(n_tokens=T, codebook_size=6, random_state=0).fit(X.reshape(500, -1))
    np.testing.assert_array_equal(q.codebook_, q2.codebook_)


def test_token_quantiser_needs_enough_tokens():
    with pytest.raises(ValueError, match="cannot make"):
        TokenQuantiser(n_tokens=2, codebook_size=10).fit(np.ones((3, 4)))


def test_lut_top_k_matches_dense_ranking_of_the_quantised_pool(world):
    from slics.core.retrieval import top_k

    codebook, pool, queries = world
    qp = QuantisedPool.from_vectors(pool, codebook, T)
    np.testing.assert_array_equal(qp.top_k(queries, 5), top_k(queries, qp.vectors(), 5))
    # ties go to the lower index: a pool of identical candidates ranks 0, 1, 2, ...
    same = QuantisedPool(np.zeros((6, T), dtype=int), codebook)
    np.testing.assert_array_equal(same.top_k(queries[:2], 4), [[0, 1, 2, 3]] * 2)
