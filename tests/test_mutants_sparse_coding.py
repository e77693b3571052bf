"""Tests written for the survivors of `make mutation` over slics.core.sparse_coding, class by
class: which argument an error names and its whole message, the step-size warning and error, zero iterations and zero tolerance, dtypes kept, paths over several chunks
(the chunk size made small), warm starts, the prepared dictionary of the lasso's warm starts
against an independent Lipschitz constant and Gram product, and the storage counts by hand.
"""

import re
import warnings

import numpy as np
import pytest

from slics.core import sparse_coding as sc
from slics.core.sparse_coding import (align_embeddings, center_and_normalise, fista, fista_from, ista,
                                      lipschitz_step, reconstruct, soft_threshold, sparse_memory_bytes)


def _problem(seed=0, n=12, m=10, d=6):
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(m, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = rng.normal(size=(n, d))
    return Z / np.linalg.norm(Z, axis=1, keepdims=True), D


def _sigma_step(D):
    """1 / L with L = 2 sigma_max(D)^2, from the SVD (independent of the solvers' routes)."""
    return 1.0 / (2.0 * np.linalg.svd(np.asarray(D, np.float64), compute_uv=False)[0] ** 2)


# ------------------------------------------------------------------ which argument an error names
def test_every_function_names_its_bad_argument():
    Z, D = _problem()
    nan = np.full((3, 6), np.nan)
    cases = [
        (lambda: center_and_normalise(nan), r"^X contains"),
        (lambda: align_embeddings(nan, D), r"^image_emb contains"),
        (lambda: align_embeddings(Z, np.full((4, 6), np.nan)), r"^concept_emb contains"),
        (lambda: align_embeddings(Z, np.ones((4, 5))), r"^concept_emb has 5 columns but 6 are expected"),
        (lambda: soft_threshold(np.ones(3), -1.0), r"^threshold t must be"),
        (lambda: soft_threshold(np.array([1 + 1j]), 1.0), r"^X must hold real numbers"),
        (lambda: lipschitz_step(np.full((3, 3), np.nan)), r"^D contains"),
        (lambda: ista(Z, D, 0.1, lr=0.0), r"^lr \(learning rate\) must be"),
        (lambda: ista(Z, D, 0.1, n_iter=-1), r"^n_iter must be at least 0"),
        (lambda: fista(Z, D, 0.1, tol=-1.0), r"^tol must be"),
        (lambda: fista(Z, D, 0.1, n_iter=-1), r"^n_iter must be at least 0"),
        (lambda: fista_from(Z, D, 0.1, np.full((12, 10), np.nan)), r"^W0 contains"),
        (lambda: fista_from(Z, D, 0.1, np.zeros((12, 9))), r"^W0 has 9 columns but 10 are expected"),
        (lambda: reconstruct(np.zeros((2, 10)), np.full((10, 6), np.nan)), r"^D contains"),
        (lambda: reconstruct(np.full((2, 10), np.nan), D), r"^W contains"),
        (lambda: reconstruct(np.zeros((2, 9)), D), r"^W has 9 columns but 10 are expected"),
        (lambda: reconstruct(np.zeros((2, 10)), D, mean=np.zeros(5)), r"^mean must be a finite vector of length 6"),
        (lambda: sparse_memory_bytes(np.full((2, 2), np.nan)), r"^W contains"),
    ]
    for call, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            call()


def test_warm_start_rows_must_match():
    Z, D = _problem()
    message = "W0 has 5 rows but Z has 12; one starting code per row of Z is expected."
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        fista_from(Z, D, 0.1, np.zeros((5, 10)))


def test_an_all_zero_dictionary_is_refused_and_a_small_one_is_not():
    Z, D = _problem()
    message = "D is all zeros; the dictionary must contain at least one non-zero concept."
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        sc._prepare(np.zeros((10, 6)), np.float64)
    assert sc._prepare(0.01 * D, np.float64).step == pytest.approx(_sigma_step(0.01 * D), rel=1e-10)


# ------------------------------------------------------------------ building blocks
def test_align_embeddings_returns_both_means():
    rng = np.random.default_rng(1)
    images, concepts = rng.normal(size=(9, 5)) + 2.0, rng.normal(size=(4, 5)) - 1.0
    out = align_embeddings(images, concepts)
    np.testing.assert_allclose(out.image_mean, images.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(out.concept_mean, concepts.mean(axis=0), rtol=1e-14)


def test_soft_threshold_of_integers_is_float64():
    out = soft_threshold(np.array([3, -1, 0, -4]), 1)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [2.0, 0.0, 0.0, -3.0])


def test_the_lipschitz_constant_is_computed_in_float64():
    A = np.random.default_rng(2).normal(size=(6, 10)).astype(np.float32)
    assert sc._lipschitz(A) == sc._lipschitz(A.astype(np.float64))


# ------------------------------------------------------------------ the step size of ista
def test_ista_step_warning_and_error_say_the_limit():
    Z, D = _problem(3)
    safe = lipschitz_step(D)
    with pytest.warns(RuntimeWarning) as caught:
        ista(Z, D, 0.1, lr=1.5 * safe, n_iter=2)
    assert len(caught) == 1
    assert f"diverges for lr >= 2/L={2 * safe:.4g}." in str(caught[0].message)
    with pytest.raises(ValueError, match=re.escape(f"stability limit 2/L={2 * safe:.4g} of this dictionary")):
        ista(Z, D, 0.1, lr=2.5 * safe, n_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ista(Z, D, 0.1, lr=safe, n_iter=2)            # exactly 1/L: no warning


# ------------------------------------------------------------------ zero iterations and tolerance
def test_zero_iterations_return_the_start():
    Z, D = _problem(4)
    assert np.array_equal(ista(Z, D, 0.1, n_iter=0), np.zeros((12, 10)))
    assert np.array_equal(fista(Z, D, 0.1, n_iter=0), np.zeros((12, 10)))
    W0 = np.random.default_rng(5).normal(size=(12, 10))
    np.testing.assert_array_equal(fista_from(Z, D, 0.1, W0, n_iter=0), W0)


def test_zero_tolerance_runs_every_iteration():
    Z, D = _problem(6)
    W, history = fista(Z, D, 0.1, tol=0.0, n_iter=50, return_history=True)
    assert history.shape == (51,)


def test_fista_from_defaults_converge_to_fista():
    Z, D = _problem(7)
    tight = fista(Z, D, 0.05, tol=1e-12, n_iter=20000)
    np.testing.assert_allclose(fista_from(Z, D, 0.05, np.zeros_like(tight)), tight, atol=1e-5)


# ------------------------------------------------------------------ several chunks
@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 4 rows for 10 concepts (the module's chunk is 2^24 code entries)."""
    monkeypatch.setattr(sc, "_CHUNK_ELEMENTS", 40)
    assert sc.chunk_rows(10) == 4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_solvers_over_several_chunks_equal_one_chunk_and_keep_the_dtype(small_chunks, dtype, monkeypatch):
    Z, D = _problem(8, n=13)
    chunked = {"ista": ista(Z, D, 0.1, n_iter=30, dtype=dtype), "fista": fista(Z, D, 0.1, dtype=dtype),
               "fista_from": fista_from(Z, D, 0.1, np.full((13, 10), 0.01), dtype=dtype)}
    monkeypatch.setattr(sc, "_CHUNK_ELEMENTS", 1 << 24)
    whole = {"ista": ista(Z, D, 0.1, n_iter=30, dtype=dtype), "fista": fista(Z, D, 0.1, dtype=dtype),
             "fista_from": fista_from(Z, D, 0.1, np.full((13, 10), 0.01), dtype=dtype)}
    for name in chunked:            # ista runs a fixed count; fista's chunks stop at their own tolerance
        assert chunked[name].dtype == dtype, name
        atol = 1e-5 if name != "ista" else 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(chunked[name], whole[name], rtol=0, atol=atol, err_msg=name)


def test_histories_over_chunks_are_summed_with_a_stopped_chunk_held_at_its_last_value(small_chunks):
    """Chunks stop at different iterations; the objective of a stopped chunk stays at its last value."""
    Z, D = _problem(9, n=12)
    Z[:4] *= 0.01                                   # the first chunk converges much sooner
    W, history = fista(Z, D, 0.05, tol=1e-6, return_history=True)
    parts = [fista(Z[s:s + 4], D, 0.05, tol=1e-6, return_history=True)[1] for s in (0, 4, 8)]
    assert len({p.size for p in parts}) > 1
    length = max(p.size for p in parts)
    expect = sum(np.concatenate([p, np.full(length - p.size, p[-1])]) for p in parts)
    np.testing.assert_array_equal(history, expect)          # the same sums in the same order


# ------------------------------------------------------------------ the prepared dictionary
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, d, with_gram", [(10, 6, False), (10, 6, True), (4, 6, False), (4, 6, True),
                                             (30, 6, True)])
def test_prepared_dictionary_step_and_gradient_product(m, d, with_gram, dtype):
    """The step is 1 / (2 sigma_max^2) (SVD) and the product is W D D^T, from either Gram order and
    from a Gram matrix passed in float32 storage; the Lipschitz constant in float64 whatever the
    working dtype. Small-integer atoms: D and D D^T are exact in float32, so the float64 results
    can be held to 1e-12."""
    rng = np.random.default_rng(10)
    D = rng.integers(-3, 4, size=(m, d)).astype(np.float32)
    D[0, 0] = 5.0                                           # never all zeros
    D64 = D.astype(np.float64)
    G = (D64 @ D64.T).astype(np.float32) if with_gram else None
    prepared = sc._prepare(D, dtype, G)
    assert prepared.A.dtype == dtype
    assert prepared.step == pytest.approx(_sigma_step(D64), rel=1e-12)
    W = rng.normal(size=(5, m)).astype(dtype)
    out = np.empty((5, m), dtype)
    prepared.gradient_product(W, out)
    exact = W.astype(np.float64) @ (D64 @ D64.T)
    scale = np.abs(exact).max()
    np.testing.assert_allclose(out, exact, rtol=0, atol=(1e-6 if dtype == np.float32 else 1e-13) * scale)


# ------------------------------------------------------------------ storage
def test_sparse_memory_bytes_counts_by_hand():
    W = np.zeros((4, 5))
    W[0, 1], W[2, 0], W[2, 4] = 1.5, -2.0, 3.0
    W[3, 3] = 1e-50                                   # 0 in float32: not stored
    out = sparse_memory_bytes(W)
    assert out == {"shape": [4, 5], "nnz": 3, "mean_nnz_per_row": 0.75, "data_bytes": 12, "indices_bytes": 12,
                   "indptr_bytes": 20, "csr_bytes": 44, "data_dtype": "float32", "indices_dtype": "int32",
                   "indptr_dtype": "int32", "dense_float32_bytes": 80, "ratio": 44 / 80}
