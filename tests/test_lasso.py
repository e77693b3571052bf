"""Tests for slics.core.lasso: exact (non-negative) lasso against scikit-learn and closed forms."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from slics.core.lasso import duality_gap, lasso, lasso_path
from slics.core.objectives import lasso_objective


def problem(n=8, d=40, m=60, seed=0, coherent=False):
    """Unit-norm atoms as rows; ``coherent`` adds a shared direction (CLIP-like correlations)."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(m, d))
    if coherent:
        D += 1.5 * rng.normal(size=d)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, D


def sklearn_codes(X, D, lam, positive=False):
    """scikit-learn's Lasso on (D^T, x): alpha = lam / (2 d) gives the same objective."""
    d = D.shape[1]
    model = Lasso(alpha=lam / (2 * d), fit_intercept=False, positive=positive, tol=1e-14, max_iter=1_000_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.array([model.fit(D.T, x).coef_.copy() for x in X])


def rel_objective_gap(X, D, W, lam, ref_W):
    ours = lasso_objective(X, D, W, lam)
    ref = lasso_objective(X, D, ref_W, lam)
    return (ours - ref) / ref


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("coherent", [False, True])
@pytest.mark.parametrize("lam", [0.02, 0.2, 1.0])
def test_matches_sklearn(lam, coherent, positive):
    X, D = problem(coherent=coherent)
    W, info = lasso(X, D, lam, positive=positive, tol=1e-10, return_info=True)
    gap = rel_objective_gap(X, D, W, lam, sklearn_codes(X, D, lam, positive))
    assert np.all(gap < 1e-8)
    assert np.all(gap > -1e-8)          # sklearn is (almost) exact too: never clearly below it
    assert info["converged"].all()
    if positive:
        assert W.min() >= 0
    # the reported certificate agrees with a direct float64 computation
    np.testing.assert_allclose(info["gap"], duality_gap(X, D, W, lam, positive=positive), atol=1e-9)


def test_default_tolerance_meets_relative_gap():
    X, D = problem(n=20, d=64, m=200, coherent=True, seed=3)
    lam = 0.05
    W, info = lasso(X, D, lam, return_info=True)
    assert np.all(info["gap"] <= 1e-6)
    gap = rel_objective_gap(X, D, W, lam, sklearn_codes(X, D, lam))
    assert np.all(gap < 1e-6)


def test_lambda_above_max_gives_zeros():
    X, D = problem()
    lam_max = np.abs(2 * X @ D.T).max(axis=1)
    W = lasso(X, D, lam_max.max() * 1.0001)
    assert np.all(W == 0)
    # just below the smallest row's lam_max, that row is non-zero
    i = np.argmin(lam_max)
    W = lasso(X[i:i + 1], D, lam_max[i] * 0.99)
    assert np.count_nonzero(W) == 1


def test_positive_lambda_max_uses_positive_part():
    X, D = problem()
    lam_pos = (2 * X @ D.T).max(axis=1)
    W = lasso(X, D, lam_pos.max() * 1.0001, positive=True)
    assert np.all(W == 0)


def test_zero_row_and_zero_atom():
    X, D = problem(n=4)
    X[1] = 0
    D[5] = 0
    W, info = lasso(X, D, 0.1, return_info=True)
    assert np.all(W[1] == 0) and np.all(W[:, 5] == 0)
    assert info["converged"].all()
    ref = sklearn_codes(X, D, 0.1)
    assert np.all(rel_objective_gap(X[[0, 2, 3]], D, W[[0, 2, 3]], 0.1, ref[[0, 2, 3]]) < 1e-8)


@pytest.mark.parametrize("positive", [False, True])
def test_duplicate_atoms(positive):
    X, D = problem(m=30)
    D2 = np.vstack([D, D[:10]])     # atoms 30..39 duplicate 0..9
    lam = 0.1
    W = lasso(X, D2, lam, positive=positive, tol=1e-10)
    W1 = lasso(X, D, lam, positive=positive, tol=1e-10)
    # same optimal objective; the duplicated pair carries the same total weight
    np.testing.assert_allclose(lasso_objective(X, D2, W, lam), lasso_objective(X, D, W1, lam),
                               rtol=1e-9)
    np.testing.assert_allclose(W[:, :10] + W[:, 30:], W1[:, :10], atol=1e-6)


def test_single_atom_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(1, 16))
    X = rng.normal(size=(5, 16))
    lam = 0.7
    b = X @ a[0]
    aa = a[0] @ a[0]
    expect = np.sign(b) * np.maximum(np.abs(b) - lam / 2, 0) / aa
    np.testing.assert_allclose(lasso(X, a, lam)[:, 0], expect, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lasso(X, a, lam, positive=True)[:, 0], np.maximum(expect, 0), rtol=1e-12,
                               atol=1e-14)


def test_orthonormal_dictionary_is_soft_threshold():
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    X = rng.normal(size=(7, 12))
    lam = 0.5
    B = X @ Q.T
    expect = np.sign(B) * np.maximum(np.abs(B) - lam / 2, 0)
    np.testing.assert_allclose(lasso(X, Q, lam, tol=1e-12), expect, atol=1e-10)


def test_float32():
    X, D = problem(n=10, d=64, m=150, coherent=True, seed=4)
    X32, D32 = X.astype(np.float32), D.astype(np.float32)
    lam = 0.05
    W32, info = lasso(X32, D32, lam, return_info=True)
    assert W32.dtype == np.float32
    assert info["converged"].all()
    gap = rel_objective_gap(X, D, W32.astype(np.float64), lam, sklearn_codes(X, D, lam))
    assert np.all(gap < 1e-5)
    assert lasso(X, D, lam, dtype=np.float32).dtype == np.float32
    assert lasso(X32, D, lam).dtype == np.float64


def test_warm_start_same_solution():
    X, D = problem(coherent=True)
    lam = 0.05
    W_cold = lasso(X, D, lam, tol=1e-12)
    W_warm, info = lasso(X, D, lam, tol=1e-12, init=lasso(X, D, 0.2), return_info=True)
    assert info["converged"].all()
    np.testing.assert_allclose(lasso_objective(X, D, W_warm, lam), lasso_objective(X, D, W_cold, lam),
                               rtol=1e-10)


def test_path_matches_single_calls_in_caller_order():
    X, D = problem(coherent=True)
    lams = [0.05, 0.5, 0.01, 0.2]
    Ws, infos = lasso_path(X, D, lams, positive=True, tol=1e-10, return_info=True)
    assert len(Ws) == len(lams) and all(i["converged"].all() for i in infos)
    for lam, W in zip(lams, Ws):
        ref = lasso(X, D, lam, positive=True, tol=1e-10)
        np.testing.assert_allclose(lasso_objective(X, D, W, lam), lasso_objective(X, D, ref, lam),
                                   rtol=1e-9)
    # sparser at larger lambda
    nnz = [np.count_nonzero(W) for W in Ws]
    assert nnz[1] < nnz[0] < nnz[2]


def test_max_iter_warns_and_reports():
    X, D = problem(coherent=True)
    with pytest.warns(ConvergenceWarning, match="did not reach"):
        W, info = lasso(X, D, 0.01, tol=1e-14, max_iter=1, return_info=True)
    assert not info["converged"].all()
    assert np.all(info["n_iter"] <= 1)


@pytest.mark.parametrize("kwargs, match", [
    ({"lam": 0.0}, "lam"),
    ({"lam": -1.0}, "lam"),
    ({"lam": 0.1, "tol": 0.0}, "tol"),
    ({"lam": 0.1, "max_iter": 2.5}, "max_iter"),
    ({"lam": 0.1, "max_iter": 0}, "max_iter"),
    ({"lam": 0.1, "init": np.zeros((3, 3))}, "init"),
    ({"lam": 0.1, "dtype": np.int64}, "dtype"),
])
def test_input_errors(kwargs, match):
    X, D = problem()
    with pytest.raises(ValueError, match=match):
        lasso(X, D, **kwargs)


def test_dimension_mismatch():
    X, D = problem()
    with pytest.raises(ValueError, match="columns"):
        lasso(X[:, :10], D, 0.1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("positive, method", [(False, "cd"), (True, "cd"), (False, "fista+cd"), (False, "auto"),
                                              (True, "auto")])
def test_a_given_gram_gives_the_same_codes(dtype, positive, method):
    """A Gram matrix computed once (D @ D.T in the storage dtype) changes nothing but the time;
    with method="auto" the choice is timed, so the codes agree to the certified gap."""
    X, D = problem(n=300, d=24, m=90, seed=4, coherent=True)
    X, D = X.astype(dtype), D.astype(dtype)
    kwargs = dict(positive=positive, method=method, tol=1e-8)
    ref = lasso(X, D, 0.05, **kwargs)
    got = lasso(X, D, 0.05, gram=D @ D.T, **kwargs)
    if method == "auto" and not positive:
        np.testing.assert_allclose(lasso_objective(X, D, got, 0.05), lasso_objective(X, D, ref, 0.05), rtol=1e-6)
    else:
        assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes()
    # a float64 Gram for float32 storage is converted; the codes stay at the optimum
    if dtype == np.float32 and method == "cd":
        W = lasso(X, D, 0.05, gram=D.astype(np.float64) @ D.astype(np.float64).T, **kwargs)
        np.testing.assert_allclose(lasso_objective(X, D, W, 0.05), lasso_objective(X, D, ref, 0.05), rtol=1e-5)


def test_a_wrong_gram_is_refused():
    X, D = problem(m=60, d=40)
    G = D @ D.T
    for bad, match in [(G[:-1, :-1], r"gram must be D @ D\.T, of shape \(60, 60\)"),
                       (D.T @ D, r"shape \(60, 60\)"),
                       (2 * G, "gram is not D @ D.T"),
                       (np.eye(60), "gram is not D @ D.T"),
                       (np.where(np.eye(60, dtype=bool), np.nan, G), "gram contains 60 NaN")]:
        with pytest.raises(ValueError, match=match):
            lasso(X, D, 0.1, gram=bad)
    G[59, 3] += 1e-2                        # one wrong entry on a checked row (0, m // 2, m - 1)
    with pytest.raises(ValueError, match=r"rows \[0, 30, 59\]"):
        lasso(X, D, 0.1, gram=G)


def test_fista_warm_start_method_same_optimum():
    X, D = problem(n=10, d=40, m=60, coherent=True)
    lam = 0.02
    W_cd = lasso(X, D, lam, method="cd", tol=1e-10)
    W_f, info = lasso(X, D, lam, method="fista+cd", tol=1e-10, return_info=True)
    assert info["method"] == "fista+cd" and info["converged"].all()
    np.testing.assert_allclose(lasso_objective(X, D, W_f, lam), lasso_objective(X, D, W_cd, lam),
                               rtol=1e-9)
    with pytest.raises(ValueError, match="signed"):
        lasso(X, D, lam, method="fista+cd", positive=True)
    with pytest.raises(ValueError, match="method"):
        lasso(X, D, lam, method="ista")


class FakeTime:
    """A clock that moves only when a (wrapped) solver says what its call cost: the pilot's
    timings, FISTA's budget checks included, then follow a script instead of the machine. The
    script's seconds count as short timings (``_STEADY`` out of reach): ``"cd"``'s first pilot is
    two calls (``p // 4`` rows, then the rest of its ``p``), and the veto timing applies."""

    def __init__(self, monkeypatch, solve_costs, fista_cost):
        import slics.core.lasso as mod
        monkeypatch.setattr(mod, "_STEADY", np.inf)
        self.now, self.costs = 0.0, list(solve_costs)
        real_solve, real_fista = mod._solve, mod._fista_rows

        def solve(*args, **kwargs):
            self.now += self.costs.pop(0) if self.costs else 0.0
            return real_solve(*args, **kwargs)

        def fista_rows(*args, **kwargs):
            self.now += fista_cost            # FISTA's first budget check sees this
            return real_fista(*args, **kwargs)
        monkeypatch.setattr(mod, "_clock", lambda: self.now)
        monkeypatch.setattr(mod, "_solve", solve)
        monkeypatch.setattr(mod, "_fista_rows", fista_rows)


@pytest.mark.parametrize("fista_faster", [False, True])
def test_auto_solves_the_rest_with_the_faster_pilot(monkeypatch, fista_faster):
    X, D = problem(n=200, d=40, m=60, coherent=True)
    # cd's pilot costs 1 s (0.25 + 0.75 s), and 1.5 s timed again before FISTA's set-up (no veto; the
    # budget stays 1 s); FISTA's 0.5 s (then 0.2 s to certify: 0.7 s in all) or 2 s (over its budget)
    FakeTime(monkeypatch, [0.25, 0.75, 1.5, 0.2, 0.0], 0.5 if fista_faster else 2.0)
    W, info = lasso(X, D, 0.05, tol=1e-10, return_info=True)
    assert info["method"] == ("fista+cd" if fista_faster else "cd")
    p = info["pilot"]["rows_per_method"]
    assert p == 16 and info["pilot"]["seconds"] == {"cd": 1.0, "fista+cd": pytest.approx(0.7) if fista_faster else None}
    assert info["converged"].all() and len(info["gap"]) == 200
    monkeypatch.undo()
    W_cd = lasso(X, D, 0.05, tol=1e-10, method="cd")
    # Each cd call is bitwise what method="cd" gives in a call of those rows (a BLAS may sum a row
    # differently in calls of other lengths: OpenBLAS's AVX-512 kernels do)
    assert W[:p // 4].tobytes() == lasso(X[:p // 4], D, 0.05, tol=1e-10, method="cd").tobytes()
    assert W[p // 4:p].tobytes() == lasso(X[p // 4:p], D, 0.05, tol=1e-10, method="cd").tobytes()
    assert W[p:2 * p].tobytes() == lasso(X[p:2 * p], D, 0.05, tol=1e-10, method="cd").tobytes()
    if not fista_faster:
        # FISTA stopped at its budget: its pilot rows were solved by cd from zero, in one call with the rest
        assert W[2 * p:].tobytes() == lasso(X[2 * p:], D, 0.05, tol=1e-10, method="cd").tobytes()
    else:
        forced = lasso(X[3 * p:], D, 0.05, tol=1e-10, method="fista+cd")
        np.testing.assert_allclose(W[3 * p:], forced, atol=1e-6)
    # the choice does not change the optimum
    np.testing.assert_allclose(lasso_objective(X, D, W, 0.05), lasso_objective(X, D, W_cd, 0.05), rtol=1e-9)


@pytest.mark.parametrize("again, starts", [(0.2, False), (0.8, True)])
def test_auto_times_cd_again_before_an_unstoppable_set_up(monkeypatch, again, starts):
    """A first cd timing of 1 s would let a set-up modelled at 0.5 s start; cd timed again on the
    next rows in 0.2 s (the first was slow) vetoes it, in 0.8 s lets it start; the budget stays 1 s."""
    import slics.core.lasso as mod

    X, D = problem(n=200, d=40, m=60, coherent=True)
    FakeTime(monkeypatch, [0.25, 0.75, again, 0.0, 0.0], 10.0)      # FISTA over any budget
    monkeypatch.setattr(mod, "_setup_seconds", lambda D, gram_seconds: 0.5)
    prepared = []
    real_prepare = mod._prepare
    monkeypatch.setattr(mod, "_prepare", lambda *a: prepared.append(1) or real_prepare(*a))
    W, info = lasso(X, D, 0.05, tol=1e-10, return_info=True)
    assert info["method"] == "cd" and info["pilot"]["seconds"] == {"cd": 1.0, "fista+cd": None}
    assert info["pilot"]["cd_again_seconds"] == pytest.approx(again)
    assert bool(prepared) == starts and info["converged"].all()
    monkeypatch.undo()
    p = info["pilot"]["rows_per_method"]
    for rows in (slice(0, p // 4), slice(p // 4, p), slice(p, 2 * p), slice(2 * p, None)):    # four cd calls
        assert W[rows].tobytes() == lasso(X[rows], D, 0.05, tol=1e-10, method="cd").tobytes()


def test_auto_fista_pilot_stops_on_time():
    """With the real clock: FISTA's pilot never takes much longer than cd's (its budget)."""
    X, D = problem(n=600, d=40, m=200, coherent=True)
    _, info = lasso(X, D, 0.02, return_info=True)
    seconds = info["pilot"]["seconds"]
    assert info["converged"].all() and set(seconds) == {"cd", "fista+cd"}
    if seconds["fista+cd"] is None:
        assert info["method"] == "cd"


def test_fista_warm_start_step_is_the_lipschitz_step():
    from slics.core.sparse_coding import _fista_rows, _prepare, fista, lipschitz_step
    for d, m in [(40, 60), (60, 40)]:
        X, D = problem(n=5, d=d, m=m, coherent=True)
        prepared = _prepare(D, np.float64, D @ D.T)
        np.testing.assert_allclose(prepared.step, lipschitz_step(D), rtol=1e-12)
        W = _fista_rows(X, 0.05, None, prepared, 1e-9, np.float64)
        np.testing.assert_allclose(W, fista(X, D, 0.05, tol=1e-9), atol=1e-7)
        assert _fista_rows(X, 0.05, None, prepared, 1e-9, np.float64, stop=lambda: True) is None


def test_auto_without_a_choice_is_cd():
    X, D = problem(n=100, d=40, m=60, coherent=True)
    _, few = lasso(X, D, 0.05, return_info=True)                          # fewer than 8 p rows
    X2, D2 = problem(n=300, d=40, m=60, coherent=True)
    W, pos = lasso(X2, D2, 0.05, positive=True, return_info=True)          # FISTA is signed only
    assert few["method"] == pos["method"] == "cd" and few["pilot"] is None and pos["pilot"] is None
    assert W.tobytes() == lasso(X2, D2, 0.05, positive=True, method="cd").tobytes()


def test_path_measures_each_lambda():
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(8)
    D = rng.standard_normal((15, 20))
    X = rng.standard_normal((300, 20))
    lams = [0.01, 1.0, 60.0]
    Ws, infos = lasso_path(X, D, lams, tol=1e-9, return_info=True)
    for lam, W, info in zip(lams, Ws, infos):
        assert info["converged"].all() and info["method"] in ("cd", "fista+cd")
        assert info["pilot"]["rows_per_method"] == 16
        seconds, scale = info["pilot"]["seconds"], info["pilot"]["fista_bulk_scale"]
        # fista+cd wins on its pilot's time, or on its FISTA part scaled to the bulk's cost per row
        # (measured only for a pilot that lost: the arithmetic is checked with a fake clock in
        # test_mutants_lasso.py); cd otherwise
        if info["method"] == "cd":
            assert seconds["fista+cd"] is None or seconds["cd"] <= seconds["fista+cd"]
        else:
            assert seconds["fista+cd"] < seconds["cd"] or (scale is not None and 0 < scale < 1)
        assert scale is None or (seconds["fista+cd"] is not None and seconds["fista+cd"] >= seconds["cd"])
        ref = np.array([Lasso(alpha=lam / (2 * 20), fit_intercept=False, tol=1e-12, max_iter=100_000)
                        .fit(D.T, x).coef_ for x in X[:40]])
        f, f_ref = lasso_objective(X[:40], D, W[:40], lam), lasso_objective(X[:40], D, ref, lam)
        assert np.all(f <= f_ref * (1 + 1e-7))


@pytest.mark.parametrize("positive", [False, True])
def test_bitwise_identical_under_one_and_two_threads(positive):
    """Rows are independent (each its own Cholesky factors, LAPACK on one thread): the thread
    count cannot change a byte."""
    import numba

    X, D = problem(n=64, d=40, m=60, coherent=True)
    before = numba.get_num_threads()
    out = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out.append(lasso(X, D, 0.02, positive=positive, tol=1e-10))
    finally:
        numba.set_num_threads(before)
    assert out[0].tobytes() == out[1].tobytes()


def _support_candidates(D, x, w0, lam):
    """The two points of an exact support solve, computed directly in numpy: the minimiser ``v``
    on the support of ``w0`` with its signs, (1) with the flipped coefficients set to zero and
    (2) the step from ``w0`` towards ``v`` that stops where the first coefficient reaches zero."""
    S = np.flatnonzero(w0)
    sign = np.sign(w0[S])
    v = np.linalg.solve(D[S] @ D[S].T, D[S] @ x - 0.5 * lam * sign)
    kept = np.sign(v) == sign
    one = np.zeros_like(w0)
    one[S[kept]] = v[kept]
    if kept.all():
        return [one]
    ratios = w0[S][~kept] / (w0[S][~kept] - v[~kept])
    step = min(1.0, ratios.min())
    two = np.zeros_like(w0)
    two[S] = w0[S] + step * (v - w0[S])
    two[S[np.sign(two[S]) != sign]] = 0.0
    return [one, two]


def test_exact_support_solve_keeps_the_better_candidate():
    """The support solve of the coordinate descent (``_support_solve``, a compiled kernel) takes
    the better of its two candidates, and only if it lowers the objective; checked against both
    candidates computed directly on random supports with random signs."""
    from slics.core.lasso import _support_solve

    rng = np.random.default_rng(0)
    lam, k, d = 0.3, 10, 20
    both = 0
    for _ in range(40):
        D = rng.standard_normal((k, d)) / np.sqrt(d)
        x = rng.standard_normal(d)
        w0 = rng.standard_normal(k) * (rng.random(k) < 0.7)
        if not w0.any():
            continue
        G, b = D @ D.T, D @ x
        w, q = w0.copy(), b - G @ w0
        _support_solve(G, b, w, q, k, float(x @ x), lam, False)
        f = lambda u: float(np.sum((x - u @ D) ** 2) + lam * np.abs(u).sum())  # noqa: E731
        candidates = _support_candidates(D, x, w0, lam)
        best = min(f(w0), *map(f, candidates))
        both += len(candidates) == 2 and abs(f(candidates[0]) - f(candidates[1])) > 1e-9
        assert f(w) <= best + 1e-12 * abs(best)
        np.testing.assert_allclose(q, b - G @ w, atol=1e-12)
    assert both >= 10            # the candidates differ often enough for the choice to matter


def _float32_atoms(rng, s, d):
    """``s`` unit atoms in ``d`` dimensions in float32, and their Gram matrix as the solver reads it
    (the float32 product, in float64)."""
    D = rng.standard_normal((s, d)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return D, (D @ D.T).astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_float32_support_of_more_atoms_than_dimensions_drops_to_the_rank_in_one_reduction(seed):
    """A support of ``s > d`` atoms is dependent: its null space has ``s - d`` directions. From a
    float32 ``G`` their eigenvalues come out at about +-1e-7, and the eigenvalue threshold alone
    (``1e-10`` of the diagonal) sees only some of them (checked here: without the rank, fewer
    atoms drop). With the rank, one reduction leaves at most ``d`` atoms and does not raise the
    objective on that ``G``."""
    from slics.core._lasso_kernels import _reduce_support

    rng = np.random.default_rng(seed)
    d, s, lam = 24, 40, 0.05
    D, G = _float32_atoms(rng, s, d)
    x = rng.standard_normal(d).astype(np.float32)
    b = (D @ x).astype(np.float64)
    w0 = rng.standard_normal(s)
    f = lambda w: float(w @ G @ w - 2 * b @ w + lam * np.abs(w).sum())  # noqa: E731
    assert np.linalg.eigvalsh(G)[: s - d].max() > 1e-10    # rounding lifts some null eigenvalues
    kept = {}
    for rank in (d, s):
        w = w0.copy()
        q = b - G @ w
        dropped = _reduce_support(G, w, q, np.arange(s), s, G.copy(), lam, False, rank)
        assert dropped
        assert f(w) <= f(w0) + 1e-9 * abs(f(w0))
        np.testing.assert_allclose(q, b - G @ w, atol=1e-9)
        kept[rank] = np.count_nonzero(w)
    assert kept[d] <= d < kept[s]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_eigen_solve_of_a_float32_support_beyond_the_rank_is_the_rank_d_pseudo_inverse(seed):
    """``_eig_solve(M, v, s, s - d)`` on the float32 Gram matrix of ``s > d`` atoms equals the
    pseudo-inverse that keeps its ``d`` largest eigenvalues (numpy's ``eigh`` in float64, truncated
    by count). The ``s - d`` null eigenvalues come out at about +-1e-7, above the solve's relative
    cut (``1e-15``): kept, they divide rounding noise by rounding noise, and the solution is no
    longer the minimum-norm one (checked here)."""
    from slics.core._lasso_kernels import _eig_solve

    rng = np.random.default_rng(seed)
    d, s = 24, 40
    _, G = _float32_atoms(rng, s, d)
    v = G @ rng.standard_normal(s)
    evals, evecs = np.linalg.eigh(G)
    assert np.abs(evals[: s - d]).max() > 1e-12 * evals[-1]
    top = evecs[:, s - d:]
    expected = top @ ((top.T @ v) / evals[s - d:])
    got = v.copy()
    _eig_solve(G.copy(), got, s, s - d)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    untruncated = v.copy()
    _eig_solve(G.copy(), untruncated, s, 0)
    assert np.abs(untruncated - expected).max() > 0.1 * np.abs(expected).max()
    assert np.linalg.norm(untruncated) > np.linalg.norm(expected)


def _cd_history(D, x, lam, positive, sweeps, seed):
    """``sweeps`` iterates of plain cyclic coordinate descent (numpy, from a random start) and their ``q``."""
    G, b = D @ D.T, D @ x
    w = np.random.default_rng(seed).random(len(D)) * 0.1
    Hw, Hq = [], []
    for _ in range(sweeps):
        for a in range(len(D)):
            z = b[a] - G[a] @ w + G[a, a] * w[a]
            new = max(z - lam / 2, 0.0) if positive else np.sign(z) * max(abs(z) - lam / 2, 0.0)
            w[a] = new / G[a, a]
        Hw.append(w.copy())
        Hq.append(b - G @ w)
    return G, b, np.array(Hw), np.array(Hq)


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("K", [2, 3, 5])
def test_anderson_extrapolation_against_its_definition(positive, K):
    """``_extrapolate`` (a compiled kernel) combines the last ``K`` of ``K + 1`` iterates with the
    coefficients that minimise ``||sum_i c_i U_i||`` subject to ``sum_i c_i = 1`` (``U_i`` the
    differences of consecutive iterates). The reference solves that constrained least squares by
    its KKT system, not by the kernel's ``(U U^T) z = 1`` normalised; the extrapolated ``q`` must be
    ``b - G w`` of the extrapolated ``w`` (built by combination, not by a product), negative
    coefficients being set to zero first with ``positive``."""
    from slics.core.lasso import _extrapolate

    rng = np.random.default_rng(K)
    D = rng.standard_normal((12, 8)) + 1.2 * rng.standard_normal(8)       # coherent: CD crawls
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    x = rng.random(12) @ D + 0.1 * rng.standard_normal(8)           # many atoms active, also with positive
    G, b, Hw, Hq = _cd_history(D, x, 0.05, positive, K + 1, seed=K)
    assert np.count_nonzero(Hw[-1]) >= 4
    ok, wa, qa = _extrapolate(Hw, Hq, K, len(D), positive, G)
    assert ok
    U = np.diff(Hw, axis=0)
    kkt = np.block([[2 * U @ U.T, np.ones((K, 1))], [np.ones((1, K)), np.zeros((1, 1))]])
    c = np.linalg.solve(kkt, np.r_[np.zeros(K), 1.0])[:K]
    expected = c @ Hw[1:]
    if positive:
        expected = np.maximum(expected, 0.0)
    np.testing.assert_allclose(wa, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(qa, b - G @ wa, atol=1e-10)


def test_anderson_extrapolation_refuses_a_stalled_history():
    """Iterates that stopped moving make ``U U^T`` singular: no extrapolation (and no NaN)."""
    from slics.core.lasso import _extrapolate

    Hw = np.tile([0.5, 0.0, -0.2], (4, 1))
    ok, wa, qa = _extrapolate(Hw, Hw.copy(), 3, 3, False, np.eye(3))
    assert not ok and np.isfinite(wa).all() and np.isfinite(qa).all()
    Hw[3, 0] += 1e-3            # one difference only: still rank-deficient
    assert not _extrapolate(Hw, Hw.copy(), 3, 3, False, np.eye(3))[0]


@pytest.mark.parametrize("positive", [False, True])
def test_coherent_dense_rows_converge_with_fewer_sweeps_than_plain_cd(positive):
    """On a coherent dictionary at a small lambda (about half of d non-zeros per row) the solver,
    with its extrapolation and support solves, certifies every row to tol in a quarter of the
    sweeps (over its working sets) that plain cyclic coordinate descent (numpy, above, over all
    atoms) takes to come within that tol of the same objective (measured: 5 to 30 times as many)."""
    _, D = problem(d=30, m=50, seed=3, coherent=True)
    rng = np.random.default_rng(3)
    X = rng.random((6, 50)) @ D / 10 + 0.05 * rng.standard_normal((6, 30))
    lam = 0.02
    W, info = lasso(X, D, lam, positive=positive, method="cd", return_info=True)
    assert info["converged"].all() and (np.count_nonzero(W, axis=1) >= 20).all()
    for i, x in enumerate(X):
        target = lasso_objective(X[i:i + 1], D, W[i:i + 1], lam)[0] * (1 + 1e-6)
        G, b, Hw, _ = _cd_history(D, x, lam, positive, 4 * int(info["n_iter"][i]), seed=i)
        plain = lasso_objective(np.repeat(X[i:i + 1], len(Hw), 0), D, Hw, lam)
        assert plain.min() > target


@pytest.mark.parametrize("madds, threaded", [(1e6, False), (1e12, True)])
def test_small_products_run_on_one_blas_thread(madds, threaded):
    """``blas_threads_for``: one BLAS thread below ``THREADED_FROM`` multiply-adds (the Gram matrix
    of a small dictionary, before the compiled kernel), the caller's setting above it."""
    from threadpoolctl import threadpool_info

    from slics.utils.threads import THREADED_FROM, blas_threads, blas_threads_for

    assert (madds >= THREADED_FROM) == threaded
    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    with blas_threads_for(madds):
        inside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert inside == (before if threaded else [1] * len(before))
    assert blas_threads() == max(before or [1])


def test_the_thread_limits_see_libraries_loaded_later(monkeypatch):
    """The thread limits rescan the loaded libraries after new imports (a BLAS library loaded after
    the first scan, such as faiss's, kept its threads inside ``single_thread_blas``), and not
    between calls that import nothing (a scan takes milliseconds)."""
    import sys

    from slics.utils import threads

    first = threads._controller()
    assert threads._controller() is first
    monkeypatch.setitem(sys.modules, "slics_test_newly_imported", object())
    assert threads._controller() is not first


@pytest.mark.parametrize("rows", [None, 5])
def test_gram_helper_forms_the_rows_it_times(monkeypatch, rows):
    """``_gram``: ``D @ D.T`` (or its first ``rows`` rows, which ``method="auto"`` times when ``gram``
    is given), and the time of the whole matrix: scaled by ``m / rows`` from the rows formed, and
    divided by the BLAS threads where a small product ran on one (clock and thread count replaced)."""
    from slics.core import lasso as module

    ticks = iter([10.0, 10.5])
    monkeypatch.setattr(module, "_clock", lambda: next(ticks))
    monkeypatch.setattr(module, "blas_threads", lambda: 2)
    D = np.random.default_rng(0).standard_normal((20, 6))
    G, seconds = module._gram(D, rows=rows)
    np.testing.assert_array_equal(G, D @ D.T if rows is None else D[:rows] @ D.T)
    assert seconds == pytest.approx(0.5 * (1 if rows is None else 20 / rows) / 2)
