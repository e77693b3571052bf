"""slics.core.lasso with many atoms forms only the rows of G = D D^T that its working sets need.

From ``LAZY_FROM`` atoms on (or with it lowered here, to reach the path on small problems) the
codes must be the optimum that the whole ``G`` gives, each row certified, with fewer rows of
``G`` formed on sparse problems; scikit-learn's ``Lasso`` is the independent reference. Here no
row is solved on its own working dictionary (``_subproblems.PILOT`` 0: tests/test_subproblems.py).
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from slics.core import _gram_rows, _subproblems
from slics.core.lasso import LAZY_FROM, duality_gap, lasso, lasso_path
from slics.core.objectives import lasso_objective

from references import sklearn_lasso_objective


def many_atoms(n, d, m, seed, coherent=False):
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(m, d)) + (1.5 * rng.normal(size=d) if coherent else 0.0)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.normal(size=(n, d))
    return X, D


def lam_at(X, D, fraction):
    return float(fraction * np.median(np.abs(2 * X @ D.T).max(axis=1)))


@pytest.fixture(autouse=True)
def rows_of_g(monkeypatch):
    """Every call by rows of G: no pilot on working dictionaries."""
    monkeypatch.setattr(_subproblems, "PILOT", 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("positive", [False, True])
def test_sparse_codes_over_many_atoms_form_few_rows(positive, dtype):
    X, D = many_atoms(12, 24, LAZY_FROM + 904, seed=3)
    lam = lam_at(X, D, 0.5)
    Xs, Ds = X.astype(dtype), D.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        W, info = lasso(Xs, Ds, lam, positive=positive, return_info=True)
        W_whole, info_whole = lasso(Xs, Ds, lam, positive=positive, return_info=True, gram=Ds @ Ds.T)
    m = D.shape[0]
    assert 0 < info["gram_rows"] < m // 4 and info_whole["gram_rows"] == m
    assert info["converged"].all()
    ours, whole = (lasso_objective(X, D, np.asarray(w, float), lam) for w in (W, W_whole))
    slack = 1e-6 if dtype == np.float64 else 1e-4     # float32 solves the float32-rounded problem
    assert np.all(np.abs(ours - whole) <= slack * whole)
    assert np.all(ours <= sklearn_lasso_objective(X, D, lam, positive) * (1 + slack) + 1e-12)
    if dtype == np.float64:
        assert np.all(duality_gap(X, D, W, lam, positive=positive) <= 1.01e-6)


@pytest.fixture
def rows_on_demand(monkeypatch):
    """The path at every size, and never all of G at once: every working set stops for its rows."""
    monkeypatch.setattr("slics.core.lasso.LAZY_FROM", 1)
    monkeypatch.setattr(_gram_rows, "WHOLE_FROM", 2.0)
    monkeypatch.setattr(_gram_rows, "WHOLE_COST", 2.0)


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("coherent, fraction", [(False, 0.3), (True, 0.05), (True, 0.005)])
def test_rows_on_demand_reach_the_optimum(rows_on_demand, coherent, fraction, positive):
    """Rows that stop for rows of G many times (dense codes on a coherent dictionary included) resume
    to the same optimum: certified, and not above scikit-learn's."""
    X, D = many_atoms(16, 40, 300, seed=5, coherent=coherent)
    lam = lam_at(X, D, fraction)
    W, info = lasso(X, D, lam, positive=positive, return_info=True)
    assert info["converged"].all()
    assert np.all(duality_gap(X, D, W, lam, positive=positive) <= 1.01e-6)
    assert np.all(lasso_objective(X, D, W, lam) <= sklearn_lasso_objective(X, D, lam, positive) * (1 + 1e-6) + 1e-12)


def test_warm_start_and_path_reuse_the_rows(rows_on_demand):
    """A warm start's support rows are formed before its rows start; lasso_path keeps the rows it
    formed for every smaller lambda (the count never falls) and matches single calls."""
    X, D = many_atoms(20, 30, 400, seed=8, coherent=True)
    lams = [lam_at(X, D, f) for f in (0.5, 0.2, 0.05)]
    Ws, infos = lasso_path(X, D, lams, return_info=True)
    rows = [info["gram_rows"] for info in infos]
    assert rows == sorted(rows) and rows[0] < D.shape[0]
    for lam, W in zip(lams, Ws):
        single = lasso(X, D, lam)
        assert np.allclose(lasso_objective(X, D, W, lam), lasso_objective(X, D, single, lam), rtol=2e-6)
    W, info = lasso(X, D, lams[2], init=Ws[1], return_info=True)
    assert info["converged"].all()
    assert np.allclose(lasso_objective(X, D, W, lams[2]), lasso_objective(X, D, Ws[2], lams[2]), rtol=2e-6)


def under_one_and_two_threads(X, D, lam):
    """The codes of ``lasso(X, D, lam, tol=1e-10)`` with one numba thread and with two (where there are)."""
    import numba

    before = numba.get_num_threads()
    out = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out.append(lasso(X, D, lam, tol=1e-10))
    finally:
        numba.set_num_threads(before)
    return out


def test_rows_on_demand_bitwise_identical_under_one_and_two_threads(rows_on_demand):
    """Which rows stop, and which rows of G a round forms, do not depend on the thread count."""
    X, D = many_atoms(48, 30, 300, seed=9, coherent=True)
    one, two = under_one_and_two_threads(X, D, lam_at(X, D, 0.1))
    assert one.tobytes() == two.tobytes()


def test_many_first_round_atoms_form_all_of_g_at_once(monkeypatch):
    """Rows whose first rounds alone would ask for more than WHOLE_FROM of G get all of it in one
    product, before any row stops (the stops would cost more than the rows saved): one kernel call."""
    calls = []
    kernel = _gram_rows._solve_chunk
    monkeypatch.setattr(_gram_rows, "_solve_chunk", lambda *args: calls.append(1) or kernel(*args))
    X, D = many_atoms(600, 16, LAZY_FROM, seed=4)
    W, info = lasso(X, D, lam_at(X, D, 0.3), return_info=True, method="cd")
    assert info["gram_rows"] == D.shape[0] and info["converged"].all() and len(calls) == 1


@pytest.mark.parametrize("n, s", [(1000, 100), (400, 64)])
def test_first_round_growth_estimate(n, s):
    """The estimate of the distinct first-round atoms of n rows from s of them: exact when every row
    asks for other atoms (linear growth), and all rows asking for the same atoms stay at that count."""
    m, k = s * _gram_rows._GROW + 16, _gram_rows._GROW
    disjoint = np.zeros((s, m))
    for i in range(s):
        disjoint[i, i * k:(i + 1) * k] = 1.0
    atoms, expected = _gram_rows._first_round(disjoint, 0.5, True, n)
    assert atoms.size == s * k and expected == pytest.approx(n * k)
    same = np.zeros((s, m))
    same[:, :k] = 1.0
    atoms, expected = _gram_rows._first_round(same, 0.5, True, n)
    assert atoms.size == k and expected == pytest.approx(k)


def test_foreseen_rows_follow_the_last_growth():
    """The rows the next batches would ask for: none without a last batch, none after a batch that
    shrank; a batch as large as the last foresees as many again per batch ahead, a growing one more."""
    assert _gram_rows._foreseen(400, 0) == 0.0 and _gram_rows._foreseen(0, 400) == 0.0
    assert _gram_rows._foreseen(525, 622) == 0.0
    ahead = _gram_rows._AHEAD
    assert _gram_rows._foreseen(300, 300) == pytest.approx(300 * ahead)
    assert _gram_rows._foreseen(300, 200) == pytest.approx(300 * sum(1.5 ** i for i in range(1, ahead + 1)))
    assert _gram_rows._foreseen(400, 200) > 400 * ahead


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_of_g_at_once_only_where_the_rows_still_to_form_cost_more(dtype):
    """The rows already formed are paid for and do not count: a batch forms its own rows however
    many are present, and all of G once the batch and the rows foreseen after it, at most the
    absent ones, would cost more than the symmetric product (WHOLE_COST of m rows). Every row
    present is that of D D^T."""
    m = 200
    D = np.random.default_rng(2).normal(size=(m, 12)).astype(dtype)
    half = int(_gram_rows.WHOLE_COST * m)
    G = _gram_rows.GramRows(D)
    G.ensure(np.arange(0, 90))
    G.ensure(np.arange(90, 180))              # 180 of 200 present: never all of G on the count
    assert G.filled == 180 and G.whole is None
    G.ensure(np.arange(180, 190), foreseen=10 * m)   # at most the 20 absent rows are still to come
    assert G.filled == 190 and G.whole is None
    fresh = _gram_rows.GramRows(D)
    fresh.ensure(np.arange(half))              # as many rows as the product costs: formed apart
    assert fresh.filled == half and fresh.whole is None
    other = _gram_rows.GramRows(D)
    other.ensure(np.arange(40), foreseen=half - 39)  # 40 asked and more than the rest foreseen
    assert other.whole is not None
    exact = D.astype(np.float64) @ D.T.astype(np.float64)
    for rows in (G, fresh, other):
        present = np.flatnonzero(rows.slot >= 0)
        np.testing.assert_allclose(rows.buffer[rows.slot[present]], exact[present],
                                   rtol=0, atol=1e-4 if dtype == np.float32 else 1e-12)


def test_rows_formed_apart_are_never_taken_for_g_in_atom_order(monkeypatch):
    """Every row formed one batch at a time, in another order than the atoms': all rows are
    present, but the buffer is not G (row j at j), so it is not offered as G (FISTA's warm starts
    multiply by it); all of G formed at once is."""
    monkeypatch.setattr(_gram_rows, "WHOLE_COST", 2.0)
    D = np.random.default_rng(0).normal(size=(30, 5))
    order = np.random.default_rng(1).permutation(30)
    G = _gram_rows.GramRows(D)
    G.ensure(order[:15])
    G.ensure(order[15:])
    assert G.filled == 30 and G.whole is None
    np.testing.assert_allclose(G.buffer[G.slot], D @ D.T, rtol=0, atol=1e-12)
    G.form_whole()
    np.testing.assert_allclose(G.whole, D @ D.T, rtol=0, atol=1e-12)


@pytest.fixture
def rows_formed_apart(monkeypatch):
    """The sizes of the batches of rows of G formed one product at a time (not all of G at once)."""
    sizes = []
    product = _gram_rows._product
    monkeypatch.setattr(_gram_rows, "_product", lambda A, B, out: sizes.append(len(A)) or product(A, B, out))
    return sizes


def test_first_rounds_count_the_rows_still_to_come(monkeypatch, rows_formed_apart):
    """A call in chunks of 20 rows: the first chunk alone forms a few rows of G one batch at a time,
    but the first rounds of the call's 400 rows would ask for more than WHOLE_FROM of it, so the
    call forms all of G at once, before any row (a pilot's, or a first chunk's, formed apart would
    be formed again). The codes are certified."""
    monkeypatch.setattr("slics.core.lasso.LAZY_FROM", 1)
    X, D = many_atoms(400, 24, 2000, seed=4)
    m = D.shape[0]
    lam = lam_at(X, D, 0.3)
    monkeypatch.setattr("slics.core.lasso._CHUNK_ELEMENTS", 20 * m)
    first = lasso(X[:20], D, lam, return_info=True, method="cd")[1]
    rows_formed_apart.clear()
    W, info = lasso(X, D, lam, return_info=True, method="cd")
    assert 0 < first["gram_rows"] < m // 2
    assert info["gram_rows"] == m and not rows_formed_apart and info["converged"].all()
    assert np.all(duality_gap(X, D, W, lam) <= 1.01e-6)


def test_growing_requests_form_all_of_g_before_a_batch_alone_does(monkeypatch, rows_formed_apart):
    """Dense codes over many atoms with few rows ask for more rows of G at every stop, and end up
    needing nearly all of it: without a forecast they form over 90 % of its rows one batch at a
    time (more flops than the whole product); the growth of the batches switches to the whole G
    after fewer. The optimum is the same."""
    monkeypatch.setattr("slics.core.lasso.LAZY_FROM", 1)
    X, D = many_atoms(24, 64, 2000, seed=8)
    lam = lam_at(X, D, 0.005)
    m = D.shape[0]
    formed = {}
    for ahead in (0, _gram_rows._AHEAD):
        monkeypatch.setattr(_gram_rows, "_AHEAD", ahead)
        rows_formed_apart.clear()
        W, info = lasso(X, D, lam, return_info=True, method="cd")
        assert info["converged"].all()
        formed[ahead] = (sum(rows_formed_apart), info["gram_rows"], W)
    assert formed[0][0] == formed[0][1] > 0.9 * m
    assert formed[_gram_rows._AHEAD][1] == m and formed[_gram_rows._AHEAD][0] < _gram_rows.WHOLE_COST * m
    np.testing.assert_allclose(lasso_objective(X, D, formed[_gram_rows._AHEAD][2], lam),
                               lasso_objective(X, D, formed[0][2], lam), rtol=1e-9)


def test_a_resumed_row_keeps_its_sweep_count():
    """The kernel resumes a row from its state: with the sweeps already at ``max_iter`` it makes none
    (the codes stay as they were); from zero it makes some. ``max_iter`` bounds a row's sweeps across
    its stops for rows of G."""
    from slics.core._lasso_kernels import _solve_chunk

    X, D = many_atoms(4, 20, 60, seed=1, coherent=True)
    G, B = D @ D.T, X @ D.T
    xx = np.einsum("ij,ij->i", X, X)
    rows, slot = np.arange(4), np.arange(60)
    made = []
    for before in (0, 7):
        W = np.zeros((4, 60))
        state = np.zeros((4, 3), np.int64)
        state[:, 0] = before
        need, n_need, gaps = np.empty((4, 1), np.int64), np.zeros(4, np.int64), np.empty(4)
        _solve_chunk(G, slot, B, W, rows, xx, lam_at(X, D, 0.05), False, 1e-12, 7, gaps, state, need, n_need,
                     D.shape[1])
        made.append((state[:, 0] - before, np.count_nonzero(W)))
    assert np.all(made[0][0] > 0) and made[0][1] > 0
    assert np.all(made[1][0] == 0) and made[1][1] == 0


def test_rows_formed_apart_are_exactly_symmetric(monkeypatch):
    """G[i, j] and G[j, i] come from products formed at different times; a BLAS that rounds them
    differently (simulated: each product's entries moved by a different last-bit amount) must still
    leave the rows present exactly symmetric, as the support solves factor blocks of G."""
    product = _gram_rows._product
    calls = []

    def rounded_apart(A, B, out):
        product(A, B, out)
        calls.append(1)
        out *= np.float32(1 + len(calls) * 2 ** -20)

    monkeypatch.setattr(_gram_rows, "_product", rounded_apart)
    monkeypatch.setattr(_gram_rows, "WHOLE_COST", 2.0)
    D = np.random.default_rng(0).normal(size=(209, 82)).astype(np.float32)
    G = _gram_rows.GramRows(D)
    for atoms in (np.arange(0, 209, 3), np.arange(1, 209, 2), np.arange(100, 150)):
        G.ensure(atoms)
        present = np.flatnonzero(G.slot >= 0)
        block = G.buffer[np.ix_(G.slot[present], present)]
        assert np.array_equal(block, block.T)
    assert len(calls) == 3
