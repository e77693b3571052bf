"""ISTA's product over the non-zeros of its iterate (slics.core._sparse_product, used by
slics.core.sparse_coding.ista where the codes are sparse): against dense products and a per-image ISTA."""

import numpy as np
import pytest

import slics.core.sparse_coding as sc
from slics.core._sparse_product import sparse_rows_product
from slics.core.sparse_coding import align_embeddings, ista

from test_sparse_coding import ista_loop


def _sparse_codes(rng, n, m, density, dtype):
    W = (rng.standard_normal((n, m)) * (rng.random((n, m)) < density)).astype(dtype)
    W[::5] = 0                                       # rows without a non-zero
    return W


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("density", [0.0, 0.02, 0.2, 1.0])
@pytest.mark.parametrize("shape", [(37, 23, 23), (50, 31, 7), (3, 64, 90)])
def test_kernel_equals_the_dense_product(dtype, density, shape):
    """``W G`` over the non-zeros: equal to NumPy's product (to rounding), zero rows exactly zero,
    rows with one non-zero exactly ``w_j G[j]``; square and non-square ``G``."""
    n, m, k = shape
    rng = np.random.default_rng(n + m + k)
    W, G = _sparse_codes(rng, n, m, density, dtype), rng.standard_normal((m, k)).astype(dtype)
    out = np.full((n, k), np.nan, dtype)
    sparse_rows_product(W, G, out)
    expected = W.astype(np.float64) @ G.astype(np.float64)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol * np.abs(G).max() * max(1, m))
    for i in np.flatnonzero((W != 0).sum(axis=1) <= 1):
        j = np.flatnonzero(W[i])
        assert np.array_equal(out[i], W[i, j[0]] * G[j[0]] if j.size else np.zeros(k, dtype))


def _problem(n=150, d=16, m=40, seed=3):
    rng = np.random.default_rng(seed)
    common = rng.normal(size=d)
    aligned = align_embeddings(rng.normal(size=(n, d)) + common, rng.normal(size=(m, d)) + 0.8 * common)
    return aligned.Z, aligned.D


def _spy(monkeypatch):
    """Record the non-zeros of every iterate that ISTA multiplies by the sparse product."""
    seen = []
    kernel = sc.sparse_rows_product

    def counted(W, G, out):
        seen.append(int(np.count_nonzero(W)))
        return kernel(W, G, out)

    monkeypatch.setattr(sc, "sparse_rows_product", counted)
    return seen


@pytest.mark.parametrize("lam", [0.1, 0.3, 1.0])
def test_ista_with_sparse_products_equals_the_per_image_loop(monkeypatch, lam):
    """More images than concepts and sparse codes: ISTA multiplies sparse iterates by the sparse
    product (its threshold lowered so that this small problem reaches it) and its codes equal a
    per-image ISTA (an independent reference)."""
    Z, D = _problem()
    monkeypatch.setattr(sc, "_SPARSE_COST", 1.0)
    seen = _spy(monkeypatch)
    W = ista(Z, D, lam, n_iter=120)
    assert max(seen) > 0                                    # not only the first iterate, W = 0
    np.testing.assert_allclose(W, ista_loop(Z, D, lam, n_iter=120), rtol=1e-9, atol=1e-12)


def test_ista_keeps_the_dense_product_for_dense_codes_and_few_images(monkeypatch):
    """Dense codes (small lam), or fewer images than concepts (``G`` would be larger than the
    iterate): no iterate with non-zeros goes to the sparse product, and the codes are the dense
    product's, bit for bit."""
    Z, D = _problem()
    monkeypatch.setattr(sc, "_SPARSE_COST", 1.0)
    seen = _spy(monkeypatch)
    W = ista(Z, D, 0.001, n_iter=60)
    W_few = ista(Z[:30], D, 1.0, n_iter=60)
    assert (W != 0).mean() > 0.5 and (W_few != 0).any()
    assert not any(seen)
    monkeypatch.setattr(sc, "_SPARSE_COST", np.inf)
    assert np.array_equal(W, ista(Z, D, 0.001, n_iter=60))
    assert np.array_equal(W_few, ista(Z[:30], D, 1.0, n_iter=60))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_choice_depends_on_the_codes_only(dtype):
    """The same call twice gives the same bytes (no timing decides the product), and the sparse
    and dense products give the same codes to rounding."""
    Z, D = _problem(n=200, m=50, seed=8)
    a, b = ista(Z, D, 0.5, dtype=dtype), ista(Z, D, 0.5, dtype=dtype)
    assert np.array_equal(a, b)
    cost = sc._SPARSE_COST
    try:
        sc._SPARSE_COST = np.inf
        dense = ista(Z, D, 0.5, dtype=dtype)
    finally:
        sc._SPARSE_COST = cost
    np.testing.assert_allclose(a, dense, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-5 if dtype == np.float32 else 1e-12)
