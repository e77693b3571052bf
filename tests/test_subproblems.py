"""slics.core.lasso on few rows over many atoms: each row solved on its own working dictionary.

With ``G`` formed on demand (from ``LAZY_FROM`` atoms, or with it lowered here), a call's first rows
are solved on their working sets alone, with ``q = D r`` from their residuals (no row of ``G``), and
the rest of the call takes that path or rows of ``G`` (``_gram_rows._plan``). Either way every row
is certified by the duality gap of the whole problem; scikit-learn's ``Lasso`` and the whole-``G``
solve are the references.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from slics.core import _gram_rows, _subproblems
from slics.core.lasso import LAZY_FROM, duality_gap, lasso, lasso_path
from slics.core.objectives import lasso_objective

from references import sklearn_lasso_objective
from test_gram_rows import lam_at, many_atoms, under_one_and_two_threads


@pytest.fixture
def subproblems(monkeypatch):
    """The path at every size, for every row of a call (the pilot never stopped for its cost), in
    batches of 8 rows."""
    monkeypatch.setattr("slics.core.lasso.LAZY_FROM", 1)
    monkeypatch.setattr(_subproblems, "BATCH", 8)
    monkeypatch.setattr(_gram_rows, "_plan", lambda *args: "subproblems")
    monkeypatch.setattr(_gram_rows, "_whole_cost", lambda D: np.inf)


def objectives(X, D, W, lam):
    return lasso_objective(np.asarray(X, float), np.asarray(D, float), np.asarray(W, float), lam)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("coherent, fraction", [(False, 0.3), (True, 0.05), (True, 0.005)])
def test_subproblems_reach_the_optimum(subproblems, coherent, fraction, positive, dtype):
    """Sparse and dense codes (a coherent dictionary at 0.005 of lam_max: supports near d) reach
    the optimum of the whole-G solve, certified, and not above scikit-learn's."""
    X, D = many_atoms(20, 40, 300, seed=5, coherent=coherent)   # 20 rows: three batches
    lam = lam_at(X, D, fraction)
    Xs, Ds = X.astype(dtype), D.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        W, info = lasso(Xs, Ds, lam, positive=positive, return_info=True, method="cd")
        whole = lasso(Xs, Ds, lam, positive=positive, method="cd", gram=Ds @ Ds.T)
    assert info["subproblem_rows"] == len(X) and info["gram_rows"] == 0
    assert info["converged"].all() and np.all(info["gap"] <= 1e-6)
    slack = 1e-6 if dtype == np.float64 else 1e-4     # float32 solves the float32-rounded problem
    ours = objectives(X, D, W, lam)
    assert np.all(np.abs(ours - objectives(X, D, whole, lam)) <= slack * ours)
    assert np.all(ours <= sklearn_lasso_objective(X, D, lam, positive) * (1 + slack) + 1e-12)
    if positive:
        assert np.all(W >= 0)
    if dtype == np.float64:
        np.testing.assert_allclose(duality_gap(X, D, W, lam, positive=positive), info["gap"], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("positive", [False, True])
def test_few_rows_over_many_atoms_form_no_row_of_g(positive):
    """The default on 12 rows over more than LAZY_FROM atoms in 256 dimensions: no row of G, the
    whole-G optimum."""
    X, D = many_atoms(12, 256, LAZY_FROM + 904, seed=3)
    lam = lam_at(X, D, 0.5)
    W, info = lasso(X, D, lam, positive=positive, return_info=True)
    assert info["gram_rows"] == 0 and info["subproblem_rows"] == 12 and info["converged"].all()
    whole = lasso(X, D, lam, positive=positive, gram=D @ D.T)
    np.testing.assert_allclose(objectives(X, D, W, lam), objectives(X, D, whole, lam), rtol=1e-6)
    assert np.all(duality_gap(X, D, W, lam, positive=positive) <= 1.01e-6)


def test_pilot_then_rows_of_g(monkeypatch):
    """A pilot solved on working dictionaries, then the rest of the call (and of its later chunks)
    by rows of G: every row certified, the whole-G optimum, rows of G formed for the rest only."""
    monkeypatch.setattr("slics.core.lasso.LAZY_FROM", 1)
    monkeypatch.setattr("slics.core.lasso._CHUNK_ELEMENTS", 50 * 600)     # chunks of 50 rows
    monkeypatch.setattr(_gram_rows, "_plan", lambda *args: "rows")
    monkeypatch.setattr(_gram_rows, "_whole_cost", lambda D: np.inf)
    X, D = many_atoms(130, 30, 600, seed=7, coherent=True)
    lam = lam_at(X, D, 0.05)
    W, info = lasso(X, D, lam, return_info=True, method="cd")
    assert info["subproblem_rows"] == _subproblems.PILOT and 0 < info["gram_rows"]
    assert info["converged"].all()
    whole = lasso(X, D, lam, method="cd", gram=D @ D.T)
    np.testing.assert_allclose(objectives(X, D, W, lam), objectives(X, D, whole, lam), rtol=2e-6)


def test_plan_counts_the_rows_to_come():
    """The pilot's multiply-adds a row times the rows to come, against
    the rows of G that the growth of the pilot's distinct atoms foresees (each m d, at twice the rate
    in float32), at most WHOLE_COST of all of G."""
    m, d, p, k = 10_000, 100, 32, 10
    D = np.empty((m, d))
    disjoint = [np.arange(i * k, (i + 1) * k) for i in range(p)]     # every row its own atoms: linear growth
    per_row = 1e7
    # 100 rows to come: 1e9 here, against 1,320 rows of G (1.32e9); in float32, 0.99e9
    assert _gram_rows._plan(disjoint, per_row * p, 100, D) == "subproblems"
    assert _gram_rows._plan(disjoint, per_row * p, 100, D.astype(np.float32)) == "rows"
    # 1,000 rows to come: 1e10 here, against all of G at WHOLE_COST (5e9)
    assert _gram_rows._plan(disjoint, per_row * p, 1000, D) == "rows"
    shared = [np.arange(k) for _ in range(p)]                      # the same atoms in every row: no growth
    assert _gram_rows._plan(shared, 2e6 * p, 1000, D) == "rows"            # 2e9 against 10 rows (1e7)
    assert _gram_rows._plan(shared, 0.8e4 * p, 1000, D) == "subproblems"   # 8e6 against 1e7


def test_a_pilot_that_would_cost_all_of_g_hands_its_rows_over(monkeypatch):
    """Dense codes whose pilot rows alone count more than all of G for the call's rows stop, and
    every row of the chunk is solved by rows of G from where the pilot left it: certified, the
    whole-G optimum, no row counted as solved on working dictionaries, the pilot's sweeps kept."""
    monkeypatch.setattr("slics.core.lasso.LAZY_FROM", 1)
    X, D = many_atoms(60, 40, 300, seed=5, coherent=True)
    lam = lam_at(X, D, 0.005)
    W, info = lasso(X, D, lam, return_info=True, method="cd")
    assert info["subproblem_rows"] == 0 and info["gram_rows"] == D.shape[0] and info["converged"].all()
    whole = lasso(X, D, lam, method="cd", gram=D @ D.T)
    np.testing.assert_allclose(objectives(X, D, W, lam), objectives(X, D, whole, lam), rtol=2e-6)


def test_degenerate_dictionaries_converge(subproblems):
    """Duplicated, collinear and all-zero atoms, and a support near d: every row converges at the
    default max_iter, certified."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(30, 12))
    D = np.vstack([base, base[:10], 2.0 * base[10:20], np.zeros((3, 12))])
    X = rng.normal(size=(40, 12))
    for fraction in (0.3, 0.01):
        lam = lam_at(X, D, fraction)
        for positive in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)
                W, info = lasso(X, D, lam, positive=positive, return_info=True, method="cd")
            assert info["converged"].all() and not W[:, -3:].any()
            assert np.all(duality_gap(X, D, W, lam, positive=positive) <= 1.01e-6)
            assert np.all(objectives(X, D, W, lam) <= sklearn_lasso_objective(X, D, lam, positive) * (1 + 1e-6) + 1e-12)


def test_warm_starts_and_path(subproblems):
    """lasso_path and a warm start reach the optimum of single calls from zero."""
    X, D = many_atoms(20, 30, 400, seed=8, coherent=True)
    lams = [lam_at(X, D, f) for f in (0.5, 0.2, 0.05)]
    Ws, infos = lasso_path(X, D, lams, return_info=True)
    assert all(info["subproblem_rows"] == len(X) and info["gram_rows"] == 0 for info in infos)
    for lam, W in zip(lams, Ws):
        np.testing.assert_allclose(objectives(X, D, W, lam), objectives(X, D, lasso(X, D, lam), lam), rtol=2e-6)
    W, info = lasso(X, D, lams[2], init=Ws[1], return_info=True)
    assert info["converged"].all()
    np.testing.assert_allclose(objectives(X, D, W, lams[2]), objectives(X, D, Ws[2], lams[2]), rtol=2e-6)


def test_max_iter_bounds_the_sweeps_across_rounds(subproblems):
    """A row's sweeps over all its rounds stay within max_iter; rows stopped by it are reported."""
    X, D = many_atoms(10, 40, 300, seed=5, coherent=True)
    lam = lam_at(X, D, 0.005)
    with pytest.warns(ConvergenceWarning, match="raise max_iter"):
        W, info = lasso(X, D, lam, max_iter=3, return_info=True, method="cd")
    assert np.all(info["n_iter"] <= 3) and not info["converged"].all()
    assert np.all(info["gap"][~info["converged"]] > 1e-6)


def test_bitwise_identical_under_one_and_two_threads(subproblems):
    """The rows' working sets and their sub-problems do not depend on the thread count."""
    X, D = many_atoms(48, 30, 300, seed=9, coherent=True)
    one, two = under_one_and_two_threads(X, D, lam_at(X, D, 0.1))
    assert one.tobytes() == two.tobytes()
