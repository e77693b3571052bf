"""Each stage of nnls_batch(method="active_set") on its own, against scipy and direct formulas.

Through the whole solver a broken stage is often hidden: block principal pivoting hands stalled
rows to Lawson-Hanson, a KKT check re-solves rows the zero-set form got wrong, and scipy takes
what is left. So mutants of a stage survived the end-to-end tests (issue #18); here every stage
must be right by itself: the grouped precomputation, the zero-set form, block principal
pivoting, the batched Lawson-Hanson, the KKT check and the scipy fallback.
"""

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from slics.core.nnls import _bpp, _group_ids, _Groups, _kkt_failures, _lawson_hanson, _scipy_row, _solve_passive

from test_nnls import objective, scipy_reference


def problem(seed, n=60, m=12, d=20, ridge=0.0, duplicate=False):
    """Rows with four distinct supports (so four groups), a coherent dictionary, and B, G as
    nnls_batch builds them."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((m, d)) + 0.8 * rng.standard_normal(d)
    if duplicate:
        D[3] = D[1]
    X = rng.standard_normal((n, d))
    patterns = rng.random((4, m)) < 0.7
    patterns[:, 1] = patterns[:, 3] = True
    support = patterns[np.arange(n) % 4]
    G = D @ D.T + ridge * np.eye(m)
    B = X @ D.T
    B[~support] = 0.0
    return D, X, support, G, B


def assert_rows_optimal(D, X, W, support, rows, ridge=0.0):
    ref = scipy_reference(D, X[rows], support[rows], ridge)
    assert np.all(W[rows] >= 0) and np.all(W[rows][~support[rows]] == 0)
    for r, i in enumerate(rows):
        f, f_ref = objective(D, X[i], W[i], ridge), objective(D, X[i], ref[r], ridge)
        assert f <= f_ref * (1 + 1e-9) + 1e-12, (i, f, f_ref)


def kkt_fails(G, B, W, support, tol):
    """Rows whose KKT conditions fail, from the definition (gradient W G - B on the support)."""
    Y = W @ G - B
    t = tol * np.maximum(np.abs(B).max(axis=1), np.finfo(float).tiny)[:, None]
    bad = support & (((W > 0) & (np.abs(Y) > t)) | ((W <= 0) & (Y < -t)))
    return np.flatnonzero(bad.any(axis=1))


@pytest.mark.parametrize("ridge", [0.0, 0.5])
def test_groups_hold_each_supports_system(ridge):
    D, X, support, G, B = problem(0, ridge=ridge)
    gid = _group_ids(support)
    assert gid.max() == 3
    for i in range(len(X)):                                  # one group per distinct support
        np.testing.assert_array_equal(gid == gid[i], (support == support[i]).all(axis=1))
    groups = _Groups(G, D, X, support, gid)
    np.testing.assert_allclose(groups.B, B, atol=1e-12)
    for g in range(4):
        rows = np.flatnonzero(gid == g)
        cols = np.flatnonzero(support[rows[0]])
        Gs = G[np.ix_(cols, cols)]
        assert groups.ok[g]
        np.testing.assert_array_equal(groups.cols[g, :cols.size], cols)
        np.testing.assert_array_equal(groups.pos[g, cols], np.arange(cols.size))
        np.testing.assert_allclose(groups.H[g, :cols.size, :cols.size], np.linalg.inv(Gs), rtol=1e-8, atol=1e-10)
        unconstrained = np.linalg.solve(Gs, B[np.ix_(rows, cols)].T).T
        np.testing.assert_allclose(groups.z0[np.ix_(rows, cols)], unconstrained, rtol=1e-8, atol=1e-10)
        assert np.all(groups.z0[rows][:, ~support[rows[0]]] == 0)


def test_groups_with_a_singular_block_use_least_squares():
    """Atoms 1 and 3 are equal and in every support: a Cholesky factor fails on some blocks (on
    others rounding lets it through; the solver's KKT check is there for those rows)."""
    D, X, support, G, B = problem(1, duplicate=True)
    groups = _Groups(G, D, X, support, _group_ids(support))
    assert not groups.ok.all()
    for g in np.flatnonzero(~groups.ok):
        rows = np.flatnonzero(groups.gid == g)
        cols = np.flatnonzero(support[rows[0]])
        lstsq = np.linalg.lstsq(G[np.ix_(cols, cols)], B[np.ix_(rows, cols)].T, rcond=None)[0].T
        np.testing.assert_allclose(groups.z0[np.ix_(rows, cols)], lstsq, atol=1e-10)
        np.testing.assert_array_equal(groups.H[g], np.eye(groups.p_max))


@pytest.mark.parametrize("seed", [2, 3])
def test_zero_set_form_equals_the_passive_set_form(seed):
    """solve_zero (the inverse Gram block updated on the zero set) gives the minimiser on every
    row's passive set and the gradient on its zero set, as a direct solve does."""
    D, X, support, G, B = problem(seed)
    groups = _Groups(G, D, X, support, _group_ids(support))
    rng = np.random.default_rng(seed)
    F = support & (rng.random(support.shape) < 0.6)
    rows = np.arange(len(X))
    Xz, Yz = groups.solve_zero(rows, F, support)
    direct = _solve_passive(G, B, F)
    np.testing.assert_allclose(Xz, direct, rtol=1e-8, atol=1e-10)
    for i in rows[:12]:
        f = np.flatnonzero(F[i])
        w = np.zeros(G.shape[0])
        w[f] = np.linalg.solve(G[np.ix_(f, f)], B[i, f]) if f.size else 0.0
        np.testing.assert_allclose(Xz[i], w, rtol=1e-8, atol=1e-10)
    zero = support & ~F
    np.testing.assert_allclose(Yz[zero], (direct @ G - B)[zero], rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("grouped", [False, True])
def test_block_principal_pivoting_alone(grouped):
    D, X, support, G, B = problem(4)
    groups = _Groups(G, D, X, support, _group_ids(support)) if grouped else None
    F = support & (_solve_passive(G, B, support) > 0)
    W, via_zero, stalled, x_stalled, n_iter = _bpp(G, B, support, F, 1e-10, 200, groups)
    done = np.setdiff1d(np.arange(len(X)), stalled)
    assert done.size > 0 and n_iter >= 1
    assert_rows_optimal(D, X, W, support, done)
    assert np.all(x_stalled >= 0) and np.all(x_stalled[~support[stalled]] == 0)
    assert via_zero.any() == grouped
    # with no exchange allowed, every row that is not optimal at its start is handed over
    W0, _, stalled0, x0, it0 = _bpp(G, B, support, F, 1e-10, 0, groups)
    assert it0 == 0
    start = _solve_passive(G, B, F)
    optimal_at_start = np.setdiff1d(np.arange(len(X)), kkt_fails(G, B, start, support, 1e-10))
    optimal_at_start = optimal_at_start[np.all(start[optimal_at_start] >= 0, axis=1)]
    np.testing.assert_array_equal(np.sort(stalled0), np.setdiff1d(np.arange(len(X)), optimal_at_start))
    np.testing.assert_allclose(x0, np.where(F[stalled0], np.maximum(start[stalled0], 0), 0), rtol=1e-10, atol=1e-13)
    assert np.all(x0[~F[stalled0]] == 0) and np.all(x0 >= 0)


@pytest.mark.parametrize("start", ["zero", "positive", "signed"])
@pytest.mark.parametrize("grouped", [False, True])
def test_lawson_hanson_alone(start, grouped):
    D, X, support, G, B = problem(5)
    n, m = support.shape
    groups = _Groups(G, D, X, support, _group_ids(support)) if grouped else None
    rng = np.random.default_rng(5)
    x0 = {"zero": np.zeros((n, m)), "positive": rng.uniform(0.1, 1, (n, m)),
          "signed": rng.standard_normal((n, m))}[start]
    rows = np.arange(n)
    W, via_zero, left, n_iter = _lawson_hanson(G, B, support, x0, 1e-10, 500, groups, rows)
    assert left.size == 0 and n_iter >= 1
    assert_rows_optimal(D, X, W, support, rows)
    assert via_zero.any() == grouped
    # a row subset keeps its global row numbers for the groups
    sub = np.array([3, 8, 9, 22])
    W_sub, _, _, _ = _lawson_hanson(G, B[sub], support[sub], x0[sub], 1e-10, 500, groups, sub)
    np.testing.assert_allclose(W_sub, W[sub], rtol=1e-9, atol=1e-12)


def test_lawson_hanson_reports_the_rows_it_did_not_finish():
    D, X, support, G, B = problem(6)
    W, _, left, n_iter = _lawson_hanson(G, B, support, np.zeros(support.shape), 1e-10, 2)
    assert n_iter == 2 and left.size > 0
    assert np.all(W[left] >= 0) and np.all(W[left][~support[left]] == 0) and W[left].any()
    finished = np.setdiff1d(np.arange(len(X)), left)
    assert_rows_optimal(D, X, W, support, finished)


@pytest.mark.parametrize("start", ["positive", "near_optimum"])
@pytest.mark.parametrize("grouped", [False, True])
def test_lawson_hanson_objective_never_rises(start, grouped):
    """Every row's objective after 0, 1, 2, ... iterations (its last feasible point when
    unfinished) never rises: each step goes towards the passive-set minimiser only as far as
    feasibility allows. From uniform positive starts, and from scipy's optimum with 0.01 added to
    its zeros (there, jumping to the minimiser and clipping it would rise above the start)."""
    D, X, support, G, B = problem(9)
    groups = _Groups(G, D, X, support, _group_ids(support)) if grouped else None
    if start == "positive":
        x0 = np.where(support, np.random.default_rng(9).uniform(0.1, 1, support.shape), 0.0)
    else:
        x0 = scipy_reference(D, X, support)
        x0[support & (x0 == 0)] = 0.01
    rows = np.arange(len(X))
    values = []
    for max_iter in range(40):
        W, _, left, _ = _lawson_hanson(G, B, support, x0, 1e-10, max_iter, groups, rows)
        values.append([objective(D, X[i], W[i] if max_iter else x0[i]) for i in rows])
        if not left.size:
            break
    assert not left.size
    values = np.array(values)
    assert np.isfinite(values).all()
    rises = np.diff(values, axis=0) > 1e-12 * values[:-1]
    assert not rises.any(), np.argwhere(rises)
    assert_rows_optimal(D, X, W, support, rows)


def test_kkt_check_flags_exactly_the_rows_that_fail():
    D, X, support, G, B = problem(7)
    groups = _Groups(G, D, X, support, _group_ids(support))
    W = scipy_reference(D, X, support)
    rows = np.arange(len(X))
    tol = 1e-9
    assert _kkt_failures(G, B, W, rows, groups, tol).size == kkt_fails(G, B, W, support, tol).size == 0
    spoiled = W.copy()
    spoiled[4, np.flatnonzero(W[4] > 0)[0]] *= 1.001         # a positive coefficient off its optimum
    spoiled[9, np.flatnonzero(W[9] > 0)[0]] = 0.0            # a needed coefficient removed
    spoiled[13, np.flatnonzero(support[13] & (W[13] == 0))[0]] = 1e-3   # a coefficient that should be zero
    spoiled[21] *= 1 + 1e-14                                 # within the tolerance
    expected = kkt_fails(G, B, spoiled, support, tol)
    np.testing.assert_array_equal(expected, [4, 9, 13])
    np.testing.assert_array_equal(np.sort(_kkt_failures(G, B, spoiled, rows, groups, tol)), expected)
    some = np.array([4, 5, 13, 30])                          # only the rows asked about
    np.testing.assert_array_equal(np.sort(_kkt_failures(G, B, spoiled, some, groups, tol)), [4, 13])
    assert _kkt_failures(G, B, spoiled, some, groups, tol).dtype == np.intp
    assert _kkt_failures(G, B, spoiled, some[[1, 3]], groups, tol).shape == (0,)


@pytest.mark.parametrize("scale", [1.0, 0.01])
def test_kkt_check_tolerance_is_relative_to_the_row(scale):
    """A coefficient moved off the optimum by a growing amount: the check flags the row exactly
    when the direct test (tolerance times the row's largest |B|) does, for rows of ordinary size
    and rows 100 times smaller (whose largest |B| is under 1)."""
    D, X, support, G, B = problem(10)
    X = X * scale
    B = B * scale
    groups = _Groups(G, D, X, support, _group_ids(support))
    W = scipy_reference(D, X, support)
    i = 2
    j = np.flatnonzero(W[i] > 0)[0]
    tol = 1e-6
    t = tol * np.abs(B[i]).max()
    flags = []
    for factor in (0.1, 0.3, 0.6, 0.9, 1.2, 2.0, 5.0):
        moved = W.copy()
        moved[i, j] += factor * t / G[j, j]                 # the gradient at j moves by factor * t
        direct = i in kkt_fails(G, B, moved, support, tol)
        assert direct == (i in _kkt_failures(G, B, moved, np.array([i]), groups, tol)), factor
        flags.append(direct)
    assert flags[0] is False and flags[-1] is True          # both outcomes occur


@pytest.mark.parametrize("ridge", [0.0, 0.3])
def test_scipy_fallback_row(ridge):
    D, X, support, _, _ = problem(8)
    cols = np.flatnonzero(support[0])
    A, b = D[cols].T, X[0]
    if ridge:
        A, b = np.vstack([A, np.sqrt(ridge) * np.eye(cols.size)]), np.r_[b, np.zeros(cols.size)]
    np.testing.assert_allclose(_scipy_row(D, X[0], cols, ridge), scipy_nnls(A, b)[0], rtol=1e-10, atol=1e-12)
    assert _scipy_row(D, X[0], cols, ridge).shape == (cols.size,)
