"""Tests for slics.core.sparse_coding (section 2: ISTA / FISTA sparse codes)."""

import numpy as np
import pytest
from sklearn.linear_model import Lasso

from slics.core.objectives import lasso_objective
from slics.core.sparse_coding import (align_embeddings, center_and_normalise, concept_dictionary, fista, fista_from,
                                      ista, lipschitz_step, reconstruct, soft_threshold, sparse_memory_bytes)

from references import sklearn_lasso_objective


def random_problem(n=6, d=30, m=20, seed=0):
    """Well-conditioned random problem (m < d): unit-norm Gaussian atoms (rows of D)."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(m, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = rng.normal(size=(n, d))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    return Z, D


def realistic_problem(n=6, d=64, m=200, seed=1):
    """Scaled-down CLIP-like problem: m > d, correlated concepts sharing a common direction, aligned."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=d)
    concepts = (rng.normal(size=(m, d)) + 0.8 * common
                + 0.5 * rng.normal(size=(m, 1)) * rng.normal(size=d))
    images = rng.normal(size=(n, d)) + common
    aligned = align_embeddings(images, concepts)
    return aligned.Z, aligned.D


def rel_gap(W, Z, D, lam, ref):
    return np.max(np.abs(lasso_objective(Z, D, W, lam) - ref) / ref)


# ----------------------------------------------------------------------------- agreement with sklearn
@pytest.mark.parametrize("lam", [0.01, 0.1, 0.5])
def test_random_problem_matches_sklearn(lam):
    Z, D = random_problem()
    ref = sklearn_lasso_objective(Z, D, lam, max_iter=1_000_000)
    assert rel_gap(fista(Z, D, lam, tol=1e-9), Z, D, lam, ref) < 1e-6
    W_ista = ista(Z, D, lam, lr=lipschitz_step(D), n_iter=5000)
    assert rel_gap(W_ista, Z, D, lam, ref) < 1e-6


@pytest.mark.parametrize("lam", [0.02, 0.05, 0.2, 0.5])
def test_realistic_problem_fista_matches_sklearn(lam):
    Z, D = realistic_problem()
    ref = sklearn_lasso_objective(Z, D, lam, max_iter=1_000_000)
    assert rel_gap(fista(Z, D, lam, tol=1e-9), Z, D, lam, ref) < 1e-6
    # never below the optimum (sanity: our objective is the one sklearn minimises)
    assert np.all(lasso_objective(Z, D, fista(Z, D, lam), lam) >= ref * (1 - 1e-9))


def test_plain_fista_without_restart_matches_sklearn():
    # plain Beck & Teboulle FISTA (no restart) reaches the same optimum, just more slowly
    Z, D = realistic_problem()
    lam = 0.1
    ref = sklearn_lasso_objective(Z, D, lam, max_iter=1_000_000)
    assert rel_gap(fista(Z, D, lam, tol=1e-9, restart=False, n_iter=50_000), Z, D, lam, ref) < 1e-6


@pytest.mark.parametrize("lam", [0.2, 0.5])
def test_realistic_problem_ista_matches_sklearn(lam):
    # ISTA converges at O(1/k) on m > d problems; it gets there for moderate lambda.
    Z, D = realistic_problem()
    ref = sklearn_lasso_objective(Z, D, lam, max_iter=1_000_000)
    assert rel_gap(ista(Z, D, lam, lr=lipschitz_step(D), n_iter=8000), Z, D, lam, ref) < 1e-6


def test_history_is_summed_objective():
    Z, D = realistic_problem()
    lam = 0.1
    W, hist = ista(Z, D, lam, lr=0.01, n_iter=50, return_history=True)
    assert hist.shape == (51,)
    assert hist[0] == pytest.approx(np.sum(Z ** 2))
    assert hist[-1] == pytest.approx(lasso_objective(Z, D, W, lam).sum())
    assert np.all(np.diff(hist) <= 1e-12)           # lr = 0.01 < 1/L here: monotone descent
    Wf, hf = fista(Z, D, lam, return_history=True)
    assert hf[-1] == pytest.approx(lasso_objective(Z, D, Wf, lam).sum())
    assert hf[-1] <= hist[-1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("warm", [False, True])
def test_every_history_entry_is_the_objective_of_that_iterate(dtype, warm):
    """In float64 the histories are read off the gradient products (FISTA then multiplies its
    iterates, the extrapolated point's product by linearity); in float32 each iterate's objective
    is computed. Either way entry ``k`` is the objective of the solver's ``k``-th iterate, as a run
    stopped after ``k`` iterations (no history) gives it; codes as without a history."""
    import slics.core.sparse_coding as sc

    Z, D = realistic_problem()
    lam, n = 0.1, 40
    rtol = 1e-11 if dtype == np.float64 else 1e-6
    W0 = fista(Z, D, 0.3, tol=1e-3) if warm else np.zeros((Z.shape[0], D.shape[0]))
    Wf, hf = sc._fista(Z.astype(dtype), sc._columns(D.astype(dtype)), lam, n, 0.0, True, True, dtype,
                       sc.lipschitz_step(D), sc._gram_product(sc._columns(D.astype(dtype))), W0)
    for k in (0, 1, 2, 7, 23, n):
        Wk = fista_from(Z, D, lam, W0, n_iter=k, tol=0.0, dtype=dtype)
        assert hf[k] == pytest.approx(lasso_objective(Z, D, Wk, lam).sum(), rel=rtol), k
    np.testing.assert_allclose(Wf, fista_from(Z, D, lam, W0, n_iter=n, tol=0.0, dtype=dtype),
                               atol=1e-10 if dtype == np.float64 else 1e-5)
    if not warm:
        Wi, hi = ista(Z, D, lam, n_iter=n, return_history=True, dtype=dtype)
        for k in (0, 1, 2, 7, 23, n):
            Wk = ista(Z, D, lam, n_iter=k, dtype=dtype)
            assert hi[k] == pytest.approx(lasso_objective(Z, D, Wk, lam).sum(), rel=rtol), k
        assert np.array_equal(Wi, Wk)


# ----------------------------------------------------------------------------- building blocks
def test_soft_threshold():
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_array_equal(soft_threshold(x, 1.0), [-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(soft_threshold(x, 0.0), x)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 30))
    np.testing.assert_allclose(soft_threshold(X, 0.3), np.sign(X) * np.maximum(np.abs(X) - 0.3, 0))
    assert soft_threshold(X.astype(np.float32), 0.3).dtype == np.float32
    with pytest.raises(ValueError, match="threshold"):
        soft_threshold(X, -1.0)


@pytest.mark.parametrize("shape", [(30, 20), (64, 200), (5, 5)])
def test_lipschitz_step(shape):
    D = np.random.default_rng(3).normal(size=shape)
    smax = np.linalg.svd(D, compute_uv=False)[0]
    assert lipschitz_step(D) == pytest.approx(1.0 / (2.0 * smax ** 2), rel=1e-12)


def test_lr_above_lipschitz_step_warns():
    Z, D = realistic_problem()
    with pytest.warns(RuntimeWarning, match="Lipschitz"):
        ista(Z, D, 0.1, lr=1.5 * lipschitz_step(D), n_iter=3)


@pytest.mark.parametrize("Z_D", [random_problem(), realistic_problem()], ids=["random", "realistic"])
def test_lambda_above_max_gives_zeros(Z_D):
    Z, D = Z_D
    lam_max = np.max(np.abs(2 * Z @ D.T))           # ||2 D z||_inf over all images
    lam = 1.001 * lam_max
    assert np.count_nonzero(ista(Z, D, lam)) == 0
    assert np.count_nonzero(fista(Z, D, lam)) == 0
    assert np.count_nonzero(fista(Z, D, 0.9 * lam_max)) > 0


# ----------------------------------------------------------------------------- report settings
def ista_loop(Z, D, lam, lr=0.01, n_iter=200):
    """Straightforward per-image ISTA, literally as the report writes it (``A = D^T``)."""
    A = D.T
    W = np.zeros((Z.shape[0], A.shape[1]))
    for i, z in enumerate(Z):
        w = np.zeros(A.shape[1])
        for _ in range(n_iter):
            grad = 2 * A.T @ (A @ w - z)
            v = w - lr * grad
            w = np.sign(v) * np.maximum(np.abs(v) - lr * lam, 0)
        W[i] = w
    return W


@pytest.mark.parametrize("lam", [0.05, 0.3])
def test_batched_ista_equals_per_image_loop(lam):
    Z, D = realistic_problem(n=4, d=16, m=40, seed=5)
    assert 0.01 < lipschitz_step(D)                 # report settings are in the safe regime here
    np.testing.assert_allclose(ista(Z, D, lam), ista_loop(Z, D, lam), rtol=1e-10, atol=1e-12)


def test_fixed_zero_rows_and_factored_product_are_exact():
    """Rows that never leave zero are skipped and m > 2d uses (W D) D^T: results unchanged."""
    Z, D = realistic_problem(n=6, d=8, m=40, seed=7)
    Z[::2] *= 0.01                                  # these rows have ||2 D z||_inf below lam
    lam = 0.3
    frozen = np.abs(2 * Z @ D.T).max(axis=1) <= lam
    assert frozen.any() and not frozen.all()
    W, history = ista(Z, D, lam, n_iter=50, return_history=True)
    np.testing.assert_allclose(W, ista_loop(Z, D, lam, n_iter=50), rtol=1e-10, atol=1e-12)
    assert np.all(W[frozen] == 0)
    assert history[-1] == pytest.approx(lasso_objective(Z, D, W, lam).sum(), rel=1e-12)
    assert history[0] == pytest.approx(np.sum(Z**2), rel=1e-12)


def test_float32_dtype():
    Z, D = realistic_problem()
    assert ista(Z, D, 0.1, dtype=np.float32).dtype == np.float32
    W32, W64 = fista(Z, D, 0.1, dtype=np.float32), fista(Z, D, 0.1)
    assert W32.dtype == np.float32 and W64.dtype == np.float64
    ref = lasso_objective(Z, D, W64, 0.1)
    assert np.max(np.abs(lasso_objective(Z, D, W32, 0.1) - ref) / ref) < 1e-5


# ----------------------------------------------------------------------------- alignment and uses
def test_center_and_normalise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 8)) + 3.0
    Xc, mu = center_and_normalise(X)
    np.testing.assert_allclose(mu, X.mean(axis=0))
    np.testing.assert_allclose(np.linalg.norm(Xc, axis=1), 1.0)
    Xc2, mu2 = center_and_normalise(X, mean=np.zeros(8))
    np.testing.assert_allclose(Xc2, X / np.linalg.norm(X, axis=1, keepdims=True))
    with pytest.raises(ValueError, match="mean must be a finite vector of length"):
        center_and_normalise(X, mean=np.zeros(3))
    D, mu_c = concept_dictionary(X)
    assert D.shape == (10, 8)
    np.testing.assert_array_equal(D, Xc)                      # concepts stay rows
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0)


def test_reconstruct_and_memory():
    Z, D = realistic_problem()
    mu = np.arange(D.shape[1], dtype=float)
    W = fista(Z, D, 0.3)
    np.testing.assert_allclose(reconstruct(W, D), W @ D)
    np.testing.assert_allclose(reconstruct(W, D, mu), W @ D + mu)
    mem = sparse_memory_bytes(W)
    nnz = np.count_nonzero(W)
    assert mem["nnz"] == nnz
    assert mem["data_dtype"] == "float32" and mem["indices_dtype"] == "int32"
    assert mem["csr_bytes"] == nnz * 4 + nnz * 4 + (W.shape[0] + 1) * 4
    assert mem["dense_float32_bytes"] == W.size * 4


# ----------------------------------------------------------------------------- bad input
def test_bad_input():
    Z, D = realistic_problem()
    Z_nan = Z.copy()
    Z_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ista(Z_nan, D, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        fista(Z_nan, D, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        align_embeddings(Z_nan, D)
    with pytest.raises(ValueError, match="columns but 64 are expected"):
        ista(Z[:, :32], D, 0.1)
    with pytest.raises(ValueError, match="columns but 64 are expected"):
        fista(Z[:, :32], D, 0.1)
    with pytest.raises(ValueError, match="lam .* non-negative"):
        ista(Z, D, -0.1)
    with pytest.raises(ValueError, match="lam .* non-negative"):
        fista(Z, D, -0.1)
    with pytest.raises(ValueError, match="lr .* positive"):
        ista(Z, D, 0.1, lr=0.0)
    with pytest.raises(ValueError, match="lr .* positive"):
        ista(Z, D, 0.1, lr=-0.01)
    with pytest.raises(ValueError, match="2-D"):
        ista(Z[0], D, 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_step_equals_numpy_bitwise_and_counts_the_non_zeros(dtype):
    """The compiled proximal-gradient step of ISTA and FISTA: NumPy's five passes (gradient step,
    then the soft threshold as :func:`soft_threshold` writes it), the same bits, and the non-zeros of
    the result; entries at exactly the threshold, zeros and signed zeros included."""
    from slics.core._sparse_product import prox_gradient_step

    rng = np.random.default_rng(5)
    P, ZA, Y = (rng.normal(size=(50, 41)).astype(dtype) for _ in range(3))
    two_step, thr = dtype(0.37), dtype(0.3)
    P[0, :4], ZA[0, :4], Y[0, :4] = 0.0, 0.0, [0.3, -0.3, -0.0, 0.2999]     # |v| at, below the threshold
    expected = Y - two_step * (P - ZA)
    expected = soft_threshold(expected, thr)
    got = P.copy()
    nnz = prox_gradient_step(got, ZA, Y, two_step, thr)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)
    assert not np.any(got[0, :4]) and nnz == np.count_nonzero(expected) > 0
    np.testing.assert_array_equal(got, np.sign(expected) * np.maximum(np.abs(Y - two_step * (P - ZA)) - thr, 0))


# ----------------------------------------------------------------------------- solver inputs (issue 7, section 5)
def test_all_zero_dictionary_is_a_clear_error():
    Z, D = random_problem()
    for solver in (ista, fista):
        with pytest.raises(ValueError, match="all zeros"):
            solver(Z, np.zeros_like(D), 0.1)


def test_step_at_stability_limit_raises_and_states_one_over_L():
    Z, D = realistic_problem()
    safe = lipschitz_step(D)
    with pytest.raises(ValueError, match=f"1/L={safe:.4g}"):
        ista(Z, D, 0.1, lr=2.5 * safe, n_iter=3)
    with pytest.raises(ValueError, match="stability limit"):
        ista(Z, D, 0.1, lr=2.0 * safe, n_iter=3)


def test_options_after_lam_are_keyword_only():
    Z, D = random_problem()
    with pytest.raises(TypeError):
        fista(Z, D, 0.1, 0.01)
    with pytest.raises(TypeError):
        ista(Z, D, 0.1, 0.01)


@pytest.mark.parametrize("n_iter", [-1, 2.9, "3", True])
def test_bad_n_iter(n_iter):
    Z, D = random_problem()
    for solver in (ista, fista):
        with pytest.raises(ValueError, match="n_iter"):
            solver(Z, D, 0.1, n_iter=n_iter)


def test_integral_float_n_iter_accepted():
    Z, D = random_problem()
    np.testing.assert_array_equal(ista(Z, D, 0.1, n_iter=3.0), ista(Z, D, 0.1, n_iter=3))


def test_chunked_rows_give_the_same_codes(monkeypatch):
    """Rows are processed in chunks (bounded memory): ISTA is unchanged, FISTA reaches the
    same optimum, and the histories stay sums over all images."""
    import slics.core.sparse_coding as sc

    rng = np.random.default_rng(11)
    D = rng.standard_normal((30, 20))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = rng.standard_normal((50, 20))
    lr = 0.9 * sc.lipschitz_step(D)
    W1, h1 = sc.ista(Z, D, 0.3, lr=lr, n_iter=40, return_history=True)
    F1 = sc.fista(Z, D, 0.3, tol=1e-10)
    monkeypatch.setattr(sc, "_CHUNK_ELEMENTS", 7 * 30)          # chunks of 7 rows
    W2, h2 = sc.ista(Z, D, 0.3, lr=lr, n_iter=40, return_history=True)
    np.testing.assert_allclose(W2, W1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h2, h1, rtol=1e-12)
    F2, hf = sc.fista(Z, D, 0.3, tol=1e-10, return_history=True)
    np.testing.assert_allclose(F2, F1, atol=1e-8)
    np.testing.assert_allclose(hf[-1], sc.lasso_objective(Z, D, F2, 0.3).sum(), rtol=1e-12)


# ----------------------------------------------------------------------------- dictionary layout (atoms as rows)
@pytest.mark.parametrize("lam", [0.05, 0.2])
def test_rows_layout_codes_match_sklearn_lasso(lam):
    """The codes themselves (not only the objective) are scikit-learn's ``Lasso`` at
    ``alpha = lam / (2 d)`` fitted on ``(D.T, z)``: the atoms-as-rows dictionary means what the
    old concepts-as-columns ``A = D.T`` meant."""
    Z, D = random_problem(n=4, d=30, m=20, seed=4)
    d = D.shape[1]
    ref = np.array([Lasso(alpha=lam / (2 * d), fit_intercept=False, tol=1e-14, max_iter=1_000_000)
                    .fit(D.T, z).coef_ for z in Z])
    np.testing.assert_allclose(fista(Z, D, lam, tol=1e-12, n_iter=100_000), ref, atol=1e-7)
    np.testing.assert_allclose(ista(Z, D, lam, lr=lipschitz_step(D), n_iter=20_000), ref, atol=1e-7)
    np.testing.assert_allclose(fista_from(Z, D, lam, np.zeros_like(ref), tol=1e-12, n_iter=100_000), ref,
                               atol=1e-7)


def test_memory_order_of_the_dictionary_does_not_change_the_codes():
    """``align_embeddings`` returns ``D`` as a transposed view; a C-ordered copy of it (what a
    caller builds by hand) gives bitwise the same codes and steps."""
    Z, D = realistic_problem()
    assert not D.flags.c_contiguous and D.T.flags.c_contiguous
    Dc = np.ascontiguousarray(D)
    np.testing.assert_array_equal(ista(Z, Dc, 0.1, n_iter=30), ista(Z, D, 0.1, n_iter=30))
    np.testing.assert_array_equal(fista(Z, Dc, 0.1), fista(Z, D, 0.1))
    assert lipschitz_step(Dc) == lipschitz_step(D)


def test_one_lasso_objective_everywhere():
    """The section-2 solvers, the exact lasso and SpLiCE all use slics.core.objectives."""
    import slics.core.lasso as lasso_mod
    import slics.core.sparse_coding as sc
    import slics.core.splice as splice_mod

    assert sc.lasso_objective is lasso_objective
    assert not hasattr(lasso_mod, "lasso_objective_rows") and not hasattr(splice_mod, "lasso_objective")
    Z, D = random_problem()
    W = fista(Z, D, 0.1)
    R = Z - W @ D
    np.testing.assert_allclose(lasso_objective(Z, D, W, 0.1), (R ** 2).sum(axis=1) + 0.1 * np.abs(W).sum(axis=1),
                               rtol=1e-13)
    with pytest.raises(ValueError, match="W has 5 rows but X has 6"):
        lasso_objective(Z, D, W[:5], 0.1)
    with pytest.raises(ValueError, match="lam .* non-negative"):
        lasso_objective(Z, D, W, -1.0)
