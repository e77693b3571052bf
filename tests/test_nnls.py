import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from slics import nnls_batch
from slics.core.planted import make_planted


def objective(D, x, w, ridge=0.0):
    r = x - w @ D
    return float(r @ r + ridge * w @ w)


def scipy_reference(D, X, support=None, ridge=0.0):
    """Row-by-row scipy.optimize.nnls on the same problems (the independent reference)."""
    n, n_atoms = X.shape[0], D.shape[0]
    W = np.zeros((n, n_atoms))
    for i in range(n):
        cols = np.arange(n_atoms) if support is None else np.flatnonzero(support[i])
        if cols.size == 0:
            continue
        A, b = D[cols].T, X[i]
        if ridge:
            A = np.vstack([A, np.sqrt(ridge) * np.eye(cols.size)])
            b = np.r_[b, np.zeros(cols.size)]
        W[i, cols] = scipy_nnls(A, b, maxiter=100 * cols.size)[0]
    return W


def assert_matches_scipy(D, X, W, support=None, ridge=0.0, rel=1e-8):
    ref = scipy_reference(D, X, support, ridge)
    assert np.all(W >= 0)
    if support is not None:
        assert np.all(W[~support] == 0)
    for i in range(X.shape[0]):
        f, f_ref = objective(D, X[i], W[i], ridge), objective(D, X[i], ref[i], ridge)
        floor = 1e-13 * float(X[i] @ X[i])
        assert abs(f - f_ref) <= rel * f_ref + floor, (i, f, f_ref)


def assert_kkt(D, X, W, support=None, ridge=0.0, tol=1e-7):
    """First-order optimality, computed independently of the solver."""
    G = D @ D.T + ridge * np.eye(D.shape[0])
    grad = W @ G - X @ D.T
    allowed = np.ones_like(W, bool) if support is None else support
    scale = np.abs(X @ D.T).max(axis=1, keepdims=True)
    assert np.all(np.abs(grad[(W > 0) & allowed]) <= tol * np.broadcast_to(scale, W.shape)[(W > 0) & allowed])
    assert np.all(grad[(W == 0) & allowed] >= -tol * np.broadcast_to(scale, W.shape)[(W == 0) & allowed])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_problems_match_scipy(seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((30, 40))
    X = rng.standard_normal((150, 40))
    W = nnls_batch(D, X)
    assert_matches_scipy(D, X, W)
    assert_kkt(D, X, W)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_per_row_supports_match_scipy(seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((25, 30))
    X = rng.standard_normal((200, 30))
    support = rng.random((200, 25)) < 0.5
    support[0] = False                                   # an empty support gives zeros
    W, info = nnls_batch(D, X, support, method="active_set", return_info=True)
    assert info["n_groups"] == 0                         # all distinct: no grouping
    assert np.all(W[0] == 0)
    assert_matches_scipy(D, X, W, support)


def test_shared_supports_use_the_shared_factorisation():
    X, Y, D, _ = make_planted(600, 48, 5, 6, noise=0.05, random_state=3)
    support = np.repeat(Y, 6, axis=1)
    W, info = nnls_batch(D, X, support, method="active_set", return_info=True)
    assert 0 < info["n_groups"] <= 25 and info["n_zero_form"] > 0
    assert_matches_scipy(D, X, W, support)
    assert_kkt(D, X, W, support)


@pytest.mark.parametrize("with_support", [False, True])
def test_ill_conditioned_problems_match_scipy(with_support):
    rng = np.random.default_rng(7)
    n_atoms, d = 24, 40
    U = np.linalg.qr(rng.standard_normal((n_atoms, n_atoms)))[0]
    V = np.linalg.qr(rng.standard_normal((d, n_atoms)))[0]
    D = U @ np.diag(np.logspace(0, -4, n_atoms)) @ V.T   # cond(D) = 1e4, cond(G) = 1e8
    D[1] = D[0] + 1e-5 * rng.standard_normal(d)           # and a near-duplicate atom
    X = rng.standard_normal((120, n_atoms)) @ D + 0.1 * rng.standard_normal((120, d))
    support = None
    if with_support:
        support = np.repeat(rng.random((120, 4)) < 0.7, 6, axis=1)   # few distinct patterns
        support[:, :2] = True
    W = nnls_batch(D, X, support)
    assert_matches_scipy(D, X, W, support)


def test_coherent_atoms_reach_the_active_set_phase():
    """Per-concept top singular vectors of multi-concept data all contain the data's mean
    direction: nearly identical atoms across concepts make block pivoting stall, and the
    monotone Lawson-Hanson phase must still give the exact solution."""
    X, Y, _, _ = make_planted(400, 32, 6, 5, noise=0.1, random_state=0)
    D = np.vstack([np.linalg.svd(X[Y[:, j]], full_matrices=False)[2][:5] for j in range(6)])
    support = np.repeat(Y, 5, axis=1)
    W, info = nnls_batch(D, X, support, method="active_set", return_info=True)
    assert info["n_lawson_hanson"] > 0
    assert_matches_scipy(D, X, W, support)
    assert_kkt(D, X, W, support)


def test_scipy_fallback_when_iterations_run_out():
    rng = np.random.default_rng(5)
    D = rng.standard_normal((15, 20))
    X = rng.standard_normal((40, 20))
    W, info = nnls_batch(D, X, max_iter=0, method="active_set", return_info=True)
    assert info["n_fallback"] > 0
    assert_matches_scipy(D, X, W)


def test_ridge_matches_augmented_system():
    rng = np.random.default_rng(3)
    D = rng.standard_normal((30, 20))                     # more atoms than dimensions
    X = rng.standard_normal((60, 20))
    W = nnls_batch(D, X, ridge=0.1)
    assert_matches_scipy(D, X, W, ridge=0.1)
    assert_kkt(D, X, W, ridge=0.1)


def test_warm_start_gives_the_same_solution():
    X, Y, D, Wtrue = make_planted(300, 32, 4, 5, noise=0.05, random_state=4)
    support = np.repeat(Y, 5, axis=1)
    cold = nnls_batch(D, X, support)
    warm = nnls_batch(D, X, support, init=Wtrue)
    np.testing.assert_allclose(warm, cold, atol=1e-9)


def test_identity_dictionary_is_clipping():
    X = np.array([[1.0, -2.0, 0.5], [-1.0, -1.0, -1.0]])
    np.testing.assert_allclose(nnls_batch(np.eye(3), X), np.maximum(X, 0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(X=np.ones((3, 4))), "columns but 5 are expected"),
    (dict(support=np.ones((3, 2), bool)), "support must be a boolean mask of shape"),
    (dict(support=np.full((3, 6), 2)), "support must be boolean"),
    (dict(X=np.full((3, 5), np.nan)), "NaN"),
    (dict(ridge=-1.0), "ridge must be a finite non-negative"),
    (dict(init=np.ones((2, 6))), "init must have shape"),
])
def test_invalid_input(kwargs, match):
    args = dict(D=np.ones((6, 5)), X=np.ones((3, 5)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        nnls_batch(**args)


@pytest.mark.parametrize("method", ["lh"])
def test_overwrite_init_writes_the_same_solution_into_init(method):
    rng = np.random.default_rng(4)
    D, X = rng.normal(size=(6, 10)), rng.normal(size=(30, 10))
    support = rng.random((30, 6)) < 0.7
    init = np.abs(rng.normal(size=(30, 6)))
    ref = nnls_batch(D, X, support, init=init.copy(), method=method)
    mine = init.copy()
    out = nnls_batch(D, X, support, init=mine, method=method, overwrite_init=True)
    assert out is mine
    assert out.tobytes() == ref.tobytes()
    frozen = init.astype(np.float32)                       # not float64: copied, left as it was
    before = frozen.copy()
    out32 = nnls_batch(D, X, support, init=frozen, method=method, overwrite_init=True)
    assert out32 is not frozen and np.array_equal(frozen, before)
