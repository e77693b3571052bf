"""Product quantisation of tokens: nearest codewords, look-up-table scores, storage and operation counts."""

import numba
import numpy as np
import pytest

from slics.core.pq import (QuantisedPool, TokenQuantiser, decode, encode, index_bits, lookup_tables,
                           lut_scores, nearest_codeword, normalise_tokens, operation_counts, split_tokens,
                           storage)
from slics.core.pq import _gather_sum

T, d, K = 8, 6, 50


def numpy_gather_sum(tables, codes):
    """Pure-numpy reference: ``S = 0``, then ``S += tables[t][:, codes[:, t]]`` for ``t = 0..T-1``."""
    S = np.zeros((tables.shape[1], codes.shape[0]))
    for t in range(tables.shape[0]):
        S += np.take(tables[t], codes[:, t].astype(np.intp), axis=1)
    return S


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
    with pytest.raises(ValueError, match="n_tokens = 3 does not divide the 10 features"):
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
    with pytest.raises(ValueError, match="codebook_size = 10 is more than the 6 training tokens"):
        TokenQuantiser(n_tokens=2, codebook_size=10).fit(np.ones((3, 4)))


def test_lut_top_k_matches_dense_ranking_of_the_quantised_pool(world):
    from slics.core.retrieval import top_k

    codebook, pool, queries = world
    qp = QuantisedPool.from_vectors(pool, codebook, T)
    np.testing.assert_array_equal(qp.top_k(queries, 5), top_k(queries, qp.vectors(), 5))
    # ties go to the lower index: a pool of identical candidates ranks 0, 1, 2, ...
    same = QuantisedPool(np.zeros((6, T), dtype=int), codebook)
    np.testing.assert_array_equal(same.top_k(queries[:2], 4), [[0, 1, 2, 3]] * 2)


@pytest.mark.parametrize("m, n, K", [(1, 1, 5), (7, 40, 50), (19, 2100, 300), (8, 1030, 70000)])
def test_compiled_lut_kernel_is_bitwise_the_numpy_order_whatever_the_threads(m, n, K):
    # query counts around the 8-query interleave, candidates around the 1,024-candidate task, uint8/16/32 codes
    rng = np.random.default_rng(m + n)
    Tn = 5
    tables = rng.standard_normal((Tn, m, K)) * 10.0 ** rng.integers(-8, 8, (Tn, 1, 1))   # cancellation: order matters
    codes = rng.integers(0, K, (n, Tn)).astype(np.min_scalar_type(K - 1))
    ref = numpy_gather_sum(tables, codes)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _gather_sum(tables, codes)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _gather_sum(tables, codes)
    finally:
        numba.set_num_threads(threads)
    assert one.tobytes() == ref.tobytes()
    assert two.tobytes() == ref.tobytes()
    # and the sum is the fixed-order one: a different order gives different bits here
    assert not np.array_equal(ref, numpy_gather_sum(tables[::-1], codes[:, ::-1])) or n * m < 10


def test_lut_scores_equal_dense_scores_of_the_dequantised_vectors():
    rng = np.random.default_rng(11)
    Tn, dn, Kn = 32, 12, 600
    codebook = unit_rows(rng, Kn, dn)
    codes = rng.integers(0, Kn, (1500, Tn))
    qp = QuantisedPool(codes, codebook)
    assert qp.codes.dtype == np.uint16 and qp.codes.flags.c_contiguous
    Z = rng.standard_normal((21, Tn * dn))
    dense = Z @ decode(codes, codebook).T                   # brute force on the quantised vectors
    np.testing.assert_allclose(qp.scores(Z, block=5), dense, rtol=0, atol=1e-12)
    # the blocking of the queries changes nothing; the compiled scores (tables included) are
    # bitwise the numpy fixed-order tables and sums, whatever the threads
    L = lookup_tables(Z, codebook, Tn)
    ref = numpy_gather_sum(L.transpose(1, 0, 2), codes)
    np.testing.assert_array_equal(lut_scores(L, codes), ref)
    threads = numba.get_num_threads()
    try:
        for n_threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n_threads)
            assert qp.scores(Z).tobytes() == ref.tobytes()
            assert qp.scores(Z, block=5).tobytes() == ref.tobytes()
    finally:
        numba.set_num_threads(threads)
    # the tables are summed over the dimensions in order: z_0 c_0 + z_1 c_1 + ...
    z, c = Z[3, 7 * dn:8 * dn], codebook[42]
    acc = z[0] * c[0]
    for i in range(1, dn):
        acc = acc + z[i] * c[i]
    assert L[3, 7, 42] == acc


def test_nearest_codeword_ties_go_to_the_lower_index_and_threads_do_not_matter():
    rng = np.random.default_rng(4)
    C = unit_rows(rng, 40, d)
    C = np.concatenate([C, C[::-1]])                        # every codeword twice: exact ties
    X = np.concatenate([C[:10], unit_rows(rng, 500, d)])    # tokens on codewords, and random ones
    brute = np.array([min(range(len(C)), key=lambda k: (0.5 * C[k] @ C[k] - x @ C[k], k)) for x in X])
    assert np.all(brute < 40)
    got = nearest_codeword(X, C, block=7, n_jobs=1)
    np.testing.assert_array_equal(got, brute)
    np.testing.assert_array_equal(nearest_codeword(X, C, block=7, n_jobs=3), got)
    np.testing.assert_array_equal(got[:10], np.arange(10))


def brute_top_k(S, k):
    """Best first, ties to the lower index: a stable sort of the negated scores."""
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("k", [1, 2, 5, 11, 12])
def test_lut_top_k_on_a_pool_full_of_ties_is_the_stable_brute_force_ranking(k):
    # a 3-word codebook and 2 tokens: 12 candidates take only 9 distinct vectors, so equal
    # scores straddle the k-th place; k = 12 is the whole pool (no partition at all)
    rng = np.random.default_rng(8)
    codebook = unit_rows(rng, 3, 4)
    codes = rng.integers(0, 3, (12, 2))
    qp = QuantisedPool(codes, codebook)
    Z = np.vstack([rng.standard_normal((6, 8)), np.zeros((1, 8)), decode(codes[[4]], codebook)])
    S = Z @ decode(codes, codebook).T
    assert any(len(np.unique(np.round(r, 12))) < r.size for r in S)          # the test has ties to break
    got = qp.top_k(Z, k)
    assert got.shape == (Z.shape[0], k) and got.dtype == np.int64
    # scores through the tables equal the dense ones to rounding; rank on the tables' own scores
    np.testing.assert_array_equal(got, brute_top_k(qp.scores(Z), k))
    np.testing.assert_array_equal(got[6], np.arange(k))                       # a zero query ties everywhere
    assert got[7, 0] == np.flatnonzero(S[7] == S[7].max())[0]


def test_lut_top_k_boundaries_of_k_and_of_the_query_count(world):
    codebook, pool, queries = world
    qp = QuantisedPool.from_vectors(pool, codebook, T)
    np.testing.assert_array_equal(qp.top_k(queries, len(qp)), brute_top_k(qp.scores(queries), len(qp)))
    np.testing.assert_array_equal(qp.top_k(queries, 3.0), qp.top_k(queries, 3))   # integral float: accepted
    assert qp.top_k(queries[:0], 4).shape == (0, 4)
    for bad, match in [(0, "k must be at least 1"), (len(qp) + 1, "k must be between 1 and the pool size"),
                       (2.5, "k must be an integer")]:
        with pytest.raises(ValueError, match=match):
            qp.top_k(queries, bad)


def test_pool_storage_is_the_storage_of_its_own_sizes():
    # every size different (n, T, d, K), so a swapped axis shows
    rng = np.random.default_rng(2)
    n, Tn, dn, Kn = 9, 3, 5, 300
    qp = QuantisedPool(rng.integers(0, Kn, (n, Tn)), unit_rows(rng, Kn, dn))
    got = qp.storage()
    assert got == storage(n, Tn, dn, Kn)
    assert (got["n_candidates"], got["n_tokens"], got["token_dim"], got["codebook_size"]) == (n, Tn, dn, Kn)
    assert got["index_bits"] == 9 and got["indices"] == n * Tn and got["floats"] == n * Tn * dn
    assert got["packed_index_bytes"] == -(-n * Tn * 9 // 8)
    assert got["index_bytes"] == n * Tn * 2 == qp.codes.nbytes                  # uint16 indices, as stored
    assert got["dense_bytes"] == n * Tn * dn * 4 and got["codebook_bytes"] == Kn * dn * 4


def test_token_quantiser_inverse_transform_and_pool_use_the_fitted_codebook():
    from sklearn.exceptions import NotFittedError

    rng = np.random.default_rng(6)
    Tn, dn = 4, 3
    X = rng.standard_normal((60, Tn * dn))
    q = TokenQuantiser(n_tokens=Tn, codebook_size=7, random_state=1)
    for method in (q.inverse_transform, q.pool):
        with pytest.raises(NotFittedError):
            method(X if method == q.pool else np.zeros((1, Tn), dtype=int))
    q.fit(X)
    codes = q.transform(X)
    Xq = q.inverse_transform(codes)
    assert Xq.shape == X.shape
    # row i, token t is the codeword codes[i, t], as a block of the row
    np.testing.assert_array_equal(Xq.reshape(60, Tn, dn), q.codebook_[codes])
    np.testing.assert_array_equal(q.transform(Xq), codes)                     # codewords quantise to themselves
    pool = q.pool(X)
    np.testing.assert_array_equal(pool.codes, codes)
    np.testing.assert_array_equal(pool.codebook, q.codebook_)
    np.testing.assert_array_equal(pool.vectors(), Xq)
    with pytest.raises(ValueError, match="codes"):
        q.inverse_transform(np.full((2, Tn), 7))                                # index past the codebook
