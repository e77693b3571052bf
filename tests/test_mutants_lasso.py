"""Tests written for the survivors of `make mutation` over slics.core.lasso, class by class: the
duality gap by hand and against scikit-learn's Lasso (its own objective scale converted), which
argument an error names and its whole message, the working dtype, warm starts for the
non-negative lasso, the convergence warning and info, lasso_path's order and checks, and the
dask entry point.
"""

import re

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from slics.core.lasso import duality_gap, lasso, lasso_path


def _exactly(message):
    return "^" + re.escape(message) + "$"


def _problem(seed=0, n=20, m=8, d=6):
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(m, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return rng.normal(size=(n, d)), D


# ------------------------------------------------------------------ the duality gap
def test_duality_gap_by_hand():
    """x = (3, 0), D = I, lam = 2. At w = 0: r = x, 2 D r = (6, 0), s = 1/3, primal 9,
    dual 2 s 9 - s^2 9 = 5, gap 4/9. At the optimum w = (2, 0): r = (1, 0), s = 1, primal
    1 + 4 = 5, dual 6 - 1 = 5, gap 0. A zero row with zero codes has primal 0: gap 0."""
    D = np.eye(2)
    X = np.array([[3.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    W = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(duality_gap(X, D, W, 2.0), [4 / 9, 0.0, 0.0], atol=1e-15)


def test_duality_gap_of_the_non_negative_lasso_by_hand():
    """x = (-3, 0): the non-negative optimum is w = 0 (gap 0: no atom correlates positively with
    the residual, s = 1), while for the signed lasso w = 0 has gap 4/9 as above."""
    D, X, W = np.eye(2), np.array([[-3.0, 0.0]]), np.zeros((1, 2))
    assert duality_gap(X, D, W, 2.0, positive=True)[0] == pytest.approx(0.0, abs=1e-15)
    assert duality_gap(X, D, W, 2.0)[0] == pytest.approx(4 / 9, rel=1e-14)


@pytest.mark.parametrize("positive", [False, True])
def test_duality_gap_certifies_scikit_learns_lasso_and_bounds_the_suboptimality(positive):
    """scikit-learn minimises (1 / 2d) ||x - D^T w||^2 + alpha ||w||_1 per row (d samples), which is
    this objective divided by 2d when lam = 2 d alpha."""
    X, D = _problem(1, n=6)
    lam, d = 0.3, D.shape[1]
    W = np.array([Lasso(alpha=lam / (2 * d), fit_intercept=False, positive=positive, tol=1e-14,
                        max_iter=100000).fit(D.T, x).coef_ for x in X])
    assert np.all(duality_gap(X, D, W, lam, positive=positive) < 1e-9)
    primal = lambda V: np.sum((X - V @ D) ** 2, axis=1) + lam * np.abs(V).sum(axis=1)
    V = W + 0.05 * np.random.default_rng(2).random(W.shape)           # feasible for both
    gap = duality_gap(X, D, V, lam, positive=positive)
    assert np.all(gap >= (primal(V) - primal(W)) / primal(V) - 1e-12)  # weak duality
    assert np.all(gap > 1e-6)


def test_duality_gap_names_its_bad_argument():
    X, D = _problem(3, n=2)
    with pytest.raises(ValueError, match=r"^D contains"):
        duality_gap(X, np.full_like(D, np.nan), np.zeros((2, 8)), 0.1)
    with pytest.raises(ValueError, match=r"^X has 5 columns but 6 are expected"):
        duality_gap(X[:, :5], D, np.zeros((2, 8)), 0.1)
    with pytest.raises(ValueError, match=r"^W has 7 columns but 8 are expected"):
        duality_gap(X, D, np.zeros((2, 7)), 0.1)


# ------------------------------------------------------------------ checks of lasso
def test_lasso_names_its_bad_argument_with_the_whole_rule():
    X, D = _problem(4, n=3)
    cases = [
        (dict(lam=0.0), r"^lam \(lambda\) must be"),
        (dict(tol=0.0), r"^tol must be"),
        (dict(max_iter=0), r"^max_iter must be at least 1, got 0"),
        (dict(method="ista"), _exactly("method must be 'auto', 'cd' or 'fista+cd', got 'ista'.")),
        (dict(method="fista+cd", positive=True),
         _exactly("method='fista+cd' solves the signed lasso only; use 'cd' with positive=True.")),
        (dict(init=np.zeros((2, 8))), _exactly("init has 2 rows but X has 3; one code per row is expected.")),
        (dict(init=np.zeros((3, 7))), r"^init has 7 columns but 8 are expected"),
        (dict(init=np.full((3, 8), np.nan)), r"^init contains"),
        (dict(X=np.full((3, 6), np.nan)), r"^X contains"),
        (dict(D=np.full((8, 6), np.nan)), r"^D contains"),
    ]
    for kwargs, match in cases:
        args = dict(X=X, D=D, lam=0.1)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            lasso(args.pop("X"), args.pop("D"), args.pop("lam"), **args)


@pytest.mark.parametrize("x_dtype, d_dtype, dtype, expect", [
    (np.float32, np.float32, None, np.float32), (np.float32, np.float64, None, np.float64),
    (np.float64, np.float32, None, np.float64), (np.float32, np.float32, np.float64, np.float64),
    (np.float64, np.float64, np.float32, np.float32)])
def test_the_working_dtype(x_dtype, d_dtype, dtype, expect):
    X, D = _problem(5, n=4)
    W = lasso(X.astype(x_dtype), D.astype(d_dtype), 0.1, dtype=dtype, method="cd")
    assert W.dtype == expect


def test_non_negative_lasso_from_a_negative_warm_start_matches_the_cold_start():
    X, D = _problem(6)
    cold, info = lasso(X, D, 0.1, positive=True, method="cd", return_info=True)
    warm = lasso(X, D, 0.1, positive=True, method="cd", init=-np.ones((20, 8)))
    assert np.all(warm >= 0) and info["converged"].all()
    assert np.all(duality_gap(X, D, warm, 0.1, positive=True) <= 1e-6)
    np.testing.assert_allclose(warm, cold, atol=1e-5)


def test_unconverged_rows_are_counted_in_the_warning_and_the_info():
    X, D = _problem(7, n=30, m=40, d=10)
    with pytest.warns(ConvergenceWarning) as caught:
        W, info = lasso(X, D, 0.01, method="cd", max_iter=1, tol=1e-12, return_info=True)
    bad = int((~info["converged"]).sum())
    assert bad > 0 and set(info) == {"gap", "n_iter", "converged", "tol", "method", "pilot", "gram_rows",
                                     "subproblem_rows"}
    assert info["tol"] == 1e-12 and info["method"] == "cd" and info["pilot"] is None and info["gram_rows"] == 40
    assert info["subproblem_rows"] == 0
    assert info["n_iter"].dtype == np.int64 and info["gap"].dtype == np.float64
    np.testing.assert_array_equal(info["converged"], info["gap"] <= 1e-12)
    message = str(caught[0].message)
    assert message.startswith(f"lasso (lam=0.01): {bad} of 30 rows did not reach the relative duality gap tol=1e-12 "
                              f"(largest {info['gap'].max():.3g}); raise max_iter.")


# ------------------------------------------------------------------ lasso_path
def test_lasso_path_returns_the_callers_order_and_checks_each_lambda():
    X, D = _problem(8)
    lams = [0.05, 0.4, 0.1]
    Ws, infos = lasso_path(X, D, lams, return_info=True)
    assert len(Ws) == 3 and len(infos) == 3
    for W, lam, info in zip(Ws, lams, infos):
        assert np.all(duality_gap(X, D, W, lam) <= 1e-6) and info["converged"].all()
        np.testing.assert_allclose(W, lasso(X, D, lam, method="cd"), atol=1e-4)
    assert isinstance(lasso_path(X, D, 0.1), list)
    assert lasso_path(X, D, [0.1], dtype=np.float32)[0].dtype == np.float32
    with pytest.warns(ConvergenceWarning, match=r"^lasso \(lam=0\.01\): \d+ of 20 rows did not reach"):
        lasso_path(X, D, [0.01], max_iter=1, tol=1e-12)
    with pytest.raises(ValueError, match=_exactly("lams is empty; pass at least one lambda.")):
        lasso_path(X, D, [])
    with pytest.raises(ValueError, match=r"^lams must be a number or a 1-D sequence of numbers, got shape \(1, 2\)"):
        lasso_path(X, D, [[0.1, 0.2]])
    with pytest.raises(ValueError, match=r"^lams \(lambda\) must be"):
        lasso_path(X, D, [0.1, -1.0])
    with pytest.raises(ValueError, match=r"^tol must be"):
        lasso_path(X, D, [0.1], tol=-1)
    with pytest.raises(ValueError, match=r"^max_iter must be at least 1"):
        lasso_path(X, D, [0.1], max_iter=0)


# ------------------------------------------------------------------ dask arrays
da = pytest.importorskip("dask.array")


def test_a_dask_array_is_coded_lazily_as_in_memory_and_refuses_init_info_and_gram():
    X, D = _problem(9, n=400)
    lazy = lasso(da.from_array(X, chunks=(192, 6)), D, 0.1, method="cd", positive=True, tol=1e-8)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(scheduler="synchronous"),       # another BLAS call per block
                               lasso(X, D, 0.1, method="cd", positive=True, tol=1e-8), atol=1e-7)
    message = "lasso on a dask array takes neither init, return_info nor gram; compute X first to use them."
    for kwargs in (dict(init=np.zeros((400, 8))), dict(return_info=True), dict(gram=D @ D.T)):
        with pytest.raises(ValueError, match=_exactly(message)):
            lasso(da.from_array(X, chunks=(192, 6)), D, 0.1, **kwargs)


def test_a_dask_array_passes_dtype_and_the_solver_options_to_every_block():
    import warnings

    X, D = _problem(10, n=300)
    lazy = lasso(da.from_array(X, chunks=(192, 6)), D, 0.1, dtype=np.float32, method="cd")
    assert lazy.dtype == np.float32 and lazy.compute(scheduler="synchronous").dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for options in (dict(max_iter=1, tol=1e-12), dict(max_iter=1000, tol=0.5)):
            got = lasso(da.from_array(X, chunks=(192, 6)), D, 0.01, method="cd", **options).compute(scheduler="synchronous")
            ref = lasso(X, D, 0.01, method="cd", **options)
            np.testing.assert_allclose(got, ref, atol=1e-9)
            assert not np.allclose(ref, lasso(X, D, 0.01, method="cd"), atol=1e-4)     # the options matter here


# ------------------------------------------------------------------ the FISTA warm start and chunks
@pytest.fixture
def fista_calls(monkeypatch):
    """Spy on the batched FISTA warm start of method="fista+cd": the rows and start of each call."""
    import slics.core.lasso as module

    calls, real = [], module._fista_rows

    def spy(Z, lam, W0, prepared, tol, dtype, stop=None):
        calls.append((Z.shape[0], W0 is None, tol))
        return real(Z, lam, W0, prepared, tol, dtype, stop)

    monkeypatch.setattr(module, "_fista_rows", spy)
    return calls


def test_fista_plus_cd_warm_starts_each_chunk_with_fista_then_certifies(fista_calls):
    X, D = _problem(11, n=30)
    W, info = lasso(X, D, 0.05, method="fista+cd", tol=1e-8, return_info=True)
    assert fista_calls == [(30, True, 1e-3)]                  # one chunk, from zero, at FISTA's loose tolerance
    assert info["method"] == "fista+cd" and info["converged"].all()
    assert np.all(duality_gap(X, D, W, 0.05) <= 1e-8)
    np.testing.assert_allclose(W, lasso(X, D, 0.05, method="cd", tol=1e-8), atol=1e-6)


@pytest.mark.parametrize("method", ["cd", "fista+cd"])
def test_several_chunks_give_the_rows_codes(monkeypatch, fista_calls, method):
    import slics.core.lasso as module

    X, D = _problem(12, n=22)
    whole = lasso(X, D, 0.05, method=method, tol=1e-9)
    fista_calls.clear()
    monkeypatch.setattr(module, "_CHUNK_ELEMENTS", 40)        # 5 rows a chunk for 8 atoms: 5 chunks
    W, info = lasso(X, D, 0.05, method=method, tol=1e-9, return_info=True)
    assert info["converged"].all() and np.all(duality_gap(X, D, W, 0.05) <= 1e-9)
    np.testing.assert_allclose(W, whole, atol=1e-7)
    if method == "fista+cd":
        assert [c[0] for c in fista_calls] == [5, 5, 5, 5, 2]


# ------------------------------------------------------------------ method="auto": the timed pilot
@pytest.fixture
def fake_clock(monkeypatch):
    """A clock that advances only by simulated work: ``cost`` seconds per row of each step (cd
    from zero or from a warm start such as FISTA's, FISTA itself) and a fixed FISTA set-up; the
    solvers run for real. Every timing counts as short (``_STEADY`` out of reach) unless a test
    sets it."""
    import slics.core.lasso as module

    now, cost = [0.0], {"cd": 1.0, "cd_warm": 0.1, "fista": 0.1, "setup": 0.5, "fista_rows": []}
    real_solve, real_fista, real_prepare = module._solve, module._fista_rows, module._prepare

    def solve(X, D, G, W, lam, positive, tol, max_iter, fista=None, fista_init=False):
        warm = fista is not None or W.any()
        out = real_solve(X, D, G, W, lam, positive, tol, max_iter, fista, fista_init)
        now[0] += X.shape[0] * (cost["fista"] if fista is not None else 0.0) + X.shape[0] * cost["cd_warm" if warm else "cd"]
        return out

    def fista_rows(Z, lam, W0, prepared, tol, dtype, stop=None):
        cost["fista_rows"].append(Z.shape[0])
        now[0] += Z.shape[0] * cost["fista"]
        if stop is not None and stop():
            return None
        return real_fista(Z, lam, W0, prepared, tol, dtype)

    def prepare(D, dtype, G=None):
        now[0] += cost["setup"]
        return real_prepare(D, dtype, G)

    monkeypatch.setattr(module, "_clock", lambda: now[0])
    monkeypatch.setattr(module, "_solve", solve)
    monkeypatch.setattr(module, "_fista_rows", fista_rows)
    monkeypatch.setattr(module, "_prepare", prepare)
    monkeypatch.setattr(module, "_STEADY", np.inf)     # short timings, unless a test sets the threshold
    return cost


def _auto_problem(n=256):
    return _problem(13, n=n, m=12, d=8)


def test_auto_takes_fista_plus_cd_when_its_pilot_is_faster(fake_clock):
    X, D = _auto_problem()
    W, info = lasso(X, D, 0.05, tol=1e-8, return_info=True)
    # 16 pilot rows each (256 // 32 = 8, raised to 16): cd 16 x 1.0 s; fista+cd 16 x (0.1 + 0.1) s,
    # its set-up (0.5 s, paid once) left out of the comparison
    assert info["method"] == "fista+cd"
    assert info["pilot"]["rows_per_method"] == 16 and info["pilot"]["fista_setup_seconds"] == 0.5
    assert info["pilot"]["seconds"] == {"cd": 16.0, "fista+cd": pytest.approx(3.2)}
    assert info["converged"].all() and info["gap"].shape == (256,) and info["n_iter"].shape == (256,)
    assert np.all(duality_gap(X, D, W, 0.05) <= 1e-8)
    assert fake_clock["fista_rows"] == [16, 208]       # its pilot rows, then the rows after the pilots (cd timed twice)


def test_auto_runs_the_fista_pilot_under_the_thread_rule_of_its_own_products(fake_clock, monkeypatch):
    """The pilot's FISTA products (``p`` rows) take BLAS threads by ``blas_threads_for(p m d)``: woken
    for small products, OpenBLAS's threads spin on into the solver's next kernel. The bulk's FISTA
    (the rows after the pilots) is not under that limit."""
    from contextlib import contextmanager

    import slics.core.lasso as module

    limits, seen = [], []
    real_limit, fista = module.blas_threads_for, module._fista_rows

    @contextmanager
    def limit(madds):
        limits.append(madds)
        with real_limit(madds):
            yield
        limits.pop()

    monkeypatch.setattr(module, "blas_threads_for", limit)
    monkeypatch.setattr(module, "_fista_rows", lambda Z, *a, **k: seen.append((Z.shape[0], list(limits))) or
                        fista(Z, *a, **k))
    X, D = _auto_problem()
    info = lasso(X, D, 0.05, tol=1e-8, return_info=True)[1]
    assert info["method"] == "fista+cd"
    assert seen == [(16, [16 * D.shape[0] * D.shape[1]]), (208, [])]


def test_auto_times_slow_rows_on_a_quarter_of_the_pilot(fake_clock, monkeypatch):
    """cd's first p // 4 rows took at least ``_STEADY`` (4 x 1 s against 3 s): each candidate is
    timed on 4 rows alone (each further pilot row of the slower method would be time lost), cd once
    (a long timing is not moved by the machine's noise), and the rest go to the faster: fista+cd,
    4 x (0.1 + 0.1) s against cd's 4 s."""
    import slics.core.lasso as module

    monkeypatch.setattr(module, "_STEADY", 3.0)
    X, D = _auto_problem()
    W, info = lasso(X, D, 0.05, tol=1e-8, return_info=True)
    assert info["method"] == "fista+cd" and info["pilot"]["rows_per_method"] == 4
    assert info["pilot"]["seconds"] == {"cd": 4.0, "fista+cd": pytest.approx(0.8)}
    assert info["pilot"]["cd_again_seconds"] is None and fake_clock["fista_rows"] == [4, 248]
    assert np.all(duality_gap(X, D, W, 0.05) <= 1e-8)
    monkeypatch.undo()
    assert W[:4].tobytes() == lasso(X[:4], D, 0.05, tol=1e-8, method="cd").tobytes()


def test_auto_times_cd_once_where_its_whole_pilot_took_at_least_steady(fake_clock, monkeypatch):
    """cd's first 4 rows under ``_STEADY`` (2 s against 3 s), its 16 over it (8 s): no second timing
    of cd, and FISTA's pilot takes the 16 rows after cd's."""
    import slics.core.lasso as module

    monkeypatch.setattr(module, "_STEADY", 3.0)
    fake_clock["cd"] = 0.5
    X, D = _auto_problem()
    info = lasso(X, D, 0.05, tol=1e-8, return_info=True)[1]
    assert info["method"] == "fista+cd" and info["pilot"]["rows_per_method"] == 16
    assert info["pilot"]["seconds"] == {"cd": 8.0, "fista+cd": pytest.approx(3.2)}
    assert info["pilot"]["cd_again_seconds"] is None and fake_clock["fista_rows"] == [16, 224]


def test_auto_keeps_cd_when_the_fista_pilot_runs_past_cds_time(fake_clock):
    fake_clock["fista"] = 2.0                                  # 16 x 2 s > cd's 16 s: stopped at the deadline
    X, D = _auto_problem()
    W, info = lasso(X, D, 0.05, tol=1e-8, return_info=True)
    assert info["method"] == "cd" and info["pilot"]["seconds"] == {"cd": 16.0, "fista+cd": None}
    np.testing.assert_allclose(W, lasso(X, D, 0.05, tol=1e-8, method="cd"), atol=1e-9)


def test_auto_keeps_cd_when_fista_plus_cd_is_slower_on_its_pilot(fake_clock):
    fake_clock["cd_warm"] = 1.5                                # fista 1.6 s, then 24 s of cd: 25.6 > 16
    X, D = _auto_problem()
    W, info = lasso(X, D, 0.05, tol=1e-8, return_info=True)
    assert info["method"] == "cd" and info["pilot"]["seconds"]["fista+cd"] == pytest.approx(25.6)
    assert np.all(duality_gap(X, D, W, 0.05) <= 1e-8)


@pytest.mark.parametrize("bulk, method", [(0.3, "fista+cd"), (0.6, "cd"), (None, "cd")])
def test_auto_scales_a_losing_fista_pilot_to_the_bulks_cost_per_row(fake_clock, monkeypatch, bulk, method):
    """FISTA 16 x 0.6 s, then 16 x 0.5 s of cd: 17.6 s, over cd's 16 s, with the certification alone
    under it. FISTA's part is then scaled by its cost per row and iteration on rows after the pilots
    (0.3 s against the pilot's 0.6 s: 4.8 + 8 = 12.8 s, fista+cd wins) and not where the bulk is no
    cheaper per row or its cost is unknown."""
    import slics.core.lasso as module

    fake_clock["fista"], fake_clock["cd_warm"] = 0.6, 0.5
    sampled = []
    monkeypatch.setattr(module, "_fista_row_seconds", lambda Z, *a: sampled.append(Z.shape[0]) or bulk)
    X, D = _auto_problem()
    W, info = lasso(X, D, 0.05, tol=1e-8, return_info=True)
    assert info["method"] == method and sampled == [208]        # the rows after the pilots (fewer than 256)
    assert info["pilot"]["seconds"] == {"cd": 16.0, "fista+cd": pytest.approx(17.6)}
    assert info["pilot"]["fista_bulk_scale"] == pytest.approx({0.3: 0.5, 0.6: 1.0, None: 1.0}[bulk])
    assert np.all(duality_gap(X, D, W, 0.05) <= 1e-8)


def test_auto_measures_no_bulk_scale_where_the_pilot_decides_alone(fake_clock, monkeypatch):
    """fista+cd under cd's time on its pilot (3.2 s against 16 s), or certification alone over it
    (FISTA 1.6 s, then 24 s of cd): the scale cannot change the choice and is not measured."""
    import slics.core.lasso as module

    monkeypatch.setattr(module, "_fista_row_seconds", lambda *a: pytest.fail("measured"))
    X, D = _auto_problem()
    assert lasso(X, D, 0.05, tol=1e-8, return_info=True)[1]["pilot"]["fista_bulk_scale"] is None
    fake_clock["cd_warm"] = 1.5
    info = lasso(X, D, 0.05, tol=1e-8, return_info=True)[1]
    assert info["method"] == "cd" and info["pilot"]["fista_bulk_scale"] is None


def test_fista_cost_per_row_and_iteration_and_the_scale():
    """``_fista_row_seconds``: the clock between the first and the last of ``iterations`` iterations
    over rows x iterations (real FISTA, fake clock); None where the rows converge first. ``_scale``:
    bulk over pilot, at most 1, and 1 where either is unknown."""
    import slics.core.lasso as module
    from slics.core.sparse_coding import _prepare

    X, D = _auto_problem(40)
    prepared = _prepare(D, np.float64)
    ticks = iter(np.arange(100.0) * 0.5)
    real = module._clock
    try:
        module._clock = lambda: next(ticks)
        # the clock is read at the first iteration and after the fourth: one tick (0.5 s) apart here
        assert module._fista_row_seconds(X, 0.05, prepared, np.float64, iterations=4) == pytest.approx(0.5 / (4 * 40))
        assert module._fista_row_seconds(X, 50.0, prepared, np.float64, iterations=4) is None   # zero codes at once
    finally:
        module._clock = real
    assert module._scale(0.3, 0.6) == 0.5 and module._scale(0.9, 0.6) == 1.0
    assert module._scale(None, 0.6) == 1.0 and module._scale(0.3, 0.0) == 1.0


def test_auto_skips_a_fista_set_up_that_would_outlast_cds_pilot(fake_clock, monkeypatch):
    import slics.core.lasso as module

    monkeypatch.setattr(module, "_setup_seconds", lambda D, gram_seconds: 17.0)     # > cd's 16 s
    X, D = _auto_problem()
    info = lasso(X, D, 0.05, tol=1e-8, return_info=True)[1]
    assert info["method"] == "cd" and fake_clock["fista_rows"] == []
    assert info["pilot"] == {"rows_per_method": 16, "seconds": {"cd": 16.0, "fista+cd": None}, "cd_again_seconds": None,
                             "fista_setup_seconds": 0.0, "fista_bulk_scale": None}


@pytest.mark.parametrize("n, rows", [(127, None), (128, 16), (640, 20), (9600, 256)])
def test_auto_pilot_rows_are_n_over_32_within_16_and_256_and_need_8_times_that(fake_clock, n, rows):
    X, D = _auto_problem(n)
    info = lasso(X, D, 0.2, tol=1e-6, return_info=True)[1]
    assert (info["pilot"] is None) if rows is None else (info["pilot"]["rows_per_method"] == rows)


def test_auto_has_no_pilot_for_the_non_negative_lasso(fake_clock):
    X, D = _auto_problem()
    info = lasso(X, D, 0.05, positive=True, return_info=True)[1]
    assert info["pilot"] is None and info["method"] == "cd"


def test_the_fista_set_up_time_model(monkeypatch):
    """k = min(m, d): gram_seconds * k / m * precision * (2.5 + 4 k^2 / (m d)), precision 2.6 for
    float32, times the BLAS threads where the set-up's product (m d k) is under THREADED_FROM."""
    import slics.core.lasso as module

    monkeypatch.setattr(module, "blas_threads", lambda: 3)
    assert module._setup_seconds(np.zeros((1000, 400)), 1.0) == pytest.approx(0.4 * (2.5 + 4 * 400 / 1000) * 3)
    assert module._setup_seconds(np.zeros((300, 500), np.float32), 2.0) == pytest.approx(
        2.0 * 2.6 * (2.5 + 4 * 300 / 500) * 3)
    monkeypatch.setattr(module, "THREADED_FROM", 1000 * 400 * 400)       # the product now on every thread
    assert module._setup_seconds(np.zeros((1000, 400)), 1.0) == pytest.approx(0.4 * (2.5 + 4 * 400 / 1000))


def test_a_row_converges_exactly_when_its_gap_is_at_most_tol():
    """Gaps just below, at and just above tol (a hand-made mutant, ``gaps <= 10 * tol``, had survived)."""
    from slics.core.lasso import _finish

    gaps = np.array([0.5e-6, 1e-6, 2e-6, 9e-6])
    with pytest.warns(ConvergenceWarning, match=r"^lasso \(lam=0\.1\): 2 of 4 rows did not reach"):
        W, info = _finish(np.zeros((4, 2)), gaps, np.ones(4, np.int64), 1e-6, 0.1, True)
    np.testing.assert_array_equal(info["converged"], [True, True, False, False])
