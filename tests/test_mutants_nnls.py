"""Tests written for the survivors of `make mutation` over slics.core.nnls, class by class: the
support masks accepted, the dask entry point's checks and results, paths that only run on more
than one chunk or on degenerate groups (empty and one-atom supports, singular Gram blocks), the
default of ``overwrite_init``, which argument an error names, and the info a solve reports.
Results are checked against row-by-row scipy.optimize.nnls (tests/test_nnls.py's reference).
"""

import re

import numpy as np
import pytest

from slics import nnls_batch
from slics.core import nnls as nnls_module
from test_nnls import assert_kkt, assert_matches_scipy


def _problem(seed=0, n=60, m=8, d=12):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, d)), rng.normal(size=(n, d)), rng


# ------------------------------------------------------------------ support masks
@pytest.mark.parametrize("method", ["lh", "active_set"])
def test_integer_support_of_zeros_and_ones_is_read_as_the_boolean_mask(method):
    D, X, rng = _problem(1)
    mask = rng.random((X.shape[0], D.shape[0])) < 0.6
    W_bool = nnls_batch(D, X, mask, method=method)
    W_int = nnls_batch(D, X, mask.astype(np.int64), method=method)
    assert W_int.tobytes() == W_bool.tobytes()
    assert np.all(W_int[~mask] == 0)


def test_support_with_other_values_is_refused_with_the_whole_rule():
    D, X, _ = _problem(2, n=3)
    with pytest.raises(ValueError, match="^" + re.escape("support must be boolean (or 0/1): True where an atom may be used.") + "$"):
        nnls_batch(D, X, np.full((3, D.shape[0]), 2))


# ------------------------------------------------------------------ degenerate groups (active_set)
def test_grouped_rows_with_empty_and_one_atom_supports_match_scipy():
    """Many rows share few supports (the shared-factorisation path): an empty support, supports of
    one atom, and wider ones, in an order where the empty group is not the last one built."""
    D, X, rng = _problem(3, n=160, m=6, d=10)
    patterns = np.array([[0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0],
                         [1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    support = patterns[rng.integers(0, len(patterns), X.shape[0])]
    W, info = nnls_batch(D, X, support, method="active_set", return_info=True)
    assert info["n_groups"] == len(patterns)
    assert np.all(W[~support.any(axis=1)] == 0)
    one = support.sum(axis=1) == 1          # one atom: the closed form max(0, <x, d> / ||d||^2)
    a = support[one].argmax(axis=1)
    expect = np.maximum(0.0, np.einsum("ij,ij->i", X[one], D[a]) / np.einsum("ij,ij->i", D[a], D[a]))
    np.testing.assert_allclose(W[one, a], expect, rtol=1e-12, atol=1e-15)
    assert_matches_scipy(D, X, W, support, rel=1e-10)
    assert_kkt(D, X, W, support, tol=1e-9)


def test_grouped_rows_with_a_singular_gram_block_match_scipy():
    """A duplicated atom makes the shared Gram block singular: that group takes the least-squares
    start and the passive-set form, and still reaches the optimum."""
    D, X, rng = _problem(4, n=120, m=5, d=10)
    D[1] = D[0]
    support = np.tile(np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], bool), (60, 1))
    W, info = nnls_batch(D, X, support, method="active_set", return_info=True)
    assert info["n_groups"] == 2
    assert_matches_scipy(D, X, W, support, rel=1e-10)


# ------------------------------------------------------------------ more than one chunk (lh)
def test_lh_over_several_chunks_matches_scipy_on_every_row():
    """m = 3,000 atoms makes a chunk of 192 rows: 500 rows are 3 chunks, the last one shorter."""
    rng = np.random.default_rng(5)
    D = np.abs(rng.normal(size=(3000, 6)))
    X = np.abs(rng.normal(size=(500, 6)))
    support = np.zeros((500, 3000), bool)
    for i in range(500):                                  # 4 random atoms a row: a small exact problem
        support[i, rng.choice(3000, 4, replace=False)] = True
    W, info = nnls_batch(D, X, support, return_info=True)
    assert np.all(W[~support] == 0)
    assert_matches_scipy(D, X, W, support, rel=1e-10)
    assert set(info) == {"n_iter", "n_fallback"} and info["n_fallback"] == 0 and info["n_iter"] >= 1


def test_lh_hands_unfinished_rows_to_the_active_set_solver_with_their_support_and_ridge():
    """max_iter=0 leaves every row unfinished in the compiled solver: all go to the active-set
    method, which must keep each row's support and the ridge."""
    D, X, rng = _problem(6, n=40, m=7)
    support = rng.random((40, 7)) < 0.5
    W, info = nnls_batch(D, X, support, ridge=0.3, max_iter=0, return_info=True)
    assert info["n_fallback"] == 40
    assert np.all(W[~support] == 0)
    assert_matches_scipy(D, X, W, support, ridge=0.3, rel=1e-9)


def test_lh_loose_tol_reaches_the_active_set_fallback_with_the_same_tol():
    """The fallback solves with the caller's tol: at a loose tol its KKT check stops earlier."""
    D, X, rng = _problem(7, n=30, m=7)
    support = rng.random((30, 7)) < 0.6
    strict = nnls_batch(D, X, support, max_iter=0, method="lh", tol=1e-10)
    loose = nnls_batch(D, X, support, max_iter=0, method="lh", tol=0.5)
    direct = nnls_batch(D, X, support, method="active_set", tol=0.5)
    assert loose.tobytes() == direct.tobytes()
    assert not np.array_equal(loose, strict)


# ------------------------------------------------------------------ warm starts and overwrite_init
def test_init_is_left_as_it_was_by_default():
    D, X, rng = _problem(8, n=20, m=6)
    init = rng.normal(size=(20, 6))
    before = init.copy()
    W = nnls_batch(D, X, init=init)
    assert W is not init and np.array_equal(init, before)
    assert_matches_scipy(D, X, W, rel=1e-10)


def test_a_read_only_init_is_not_written_even_when_allowed():
    D, X, rng = _problem(9, n=20, m=6)
    init = np.abs(rng.normal(size=(20, 6)))
    init.flags.writeable = False
    W = nnls_batch(D, X, init=init, overwrite_init=True)
    assert W is not init
    assert_matches_scipy(D, X, W, rel=1e-10)


@pytest.mark.parametrize("layout", ["fortran", "float32"])
def test_a_warm_start_of_another_layout_is_copied_and_clipped(layout):
    """An F-ordered or float32 init is not written; its negative entries and those off the support
    are cleared in the solver's own float64 copy."""
    D, X, rng = _problem(10, n=25, m=6)
    support = rng.random((25, 6)) < 0.7
    init = rng.normal(size=(25, 6))
    init = np.asfortranarray(init) if layout == "fortran" else init.astype(np.float32)
    before = init.copy()
    start = nnls_module._start(init, support, overwrite=True)
    assert start is not init and start.dtype == np.float64 and np.array_equal(init, before)
    np.testing.assert_array_equal(start, np.where(support, np.maximum(init.astype(np.float64), 0), 0))
    W = nnls_batch(D, X, support, init=init, overwrite_init=True)
    assert_matches_scipy(D, X, W, support, rel=1e-10)


def test_start_in_place_clips_negatives_and_clears_off_support():
    support = np.array([[True, False, True]])
    init = np.array([[-1.0, 2.0, 3.0]])
    start = nnls_module._start(init, support, overwrite=True)
    assert start is init
    np.testing.assert_array_equal(init, [[0.0, 0.0, 3.0]])


# ------------------------------------------------------------------ row_products
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_row_products_is_the_float64_product_of_any_float_rows(dtype):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, 9)).astype(dtype)
    D = rng.normal(size=(5, 9))
    B = nnls_module.row_products(X, D)
    assert B.dtype == np.float64
    np.testing.assert_allclose(B, X.astype(np.float64) @ D.T, rtol=1e-13, atol=1e-13)


# ------------------------------------------------------------------ which argument an error names
def test_an_invalid_tol_is_named():
    D, X, _ = _problem(12, n=3)
    with pytest.raises(ValueError, match=r"^tol must be"):
        nnls_batch(D, X, tol=0.0)


def test_an_invalid_dictionary_is_named_d():
    with pytest.raises(ValueError, match=r"^D contains 1 NaN"):
        nnls_batch(np.array([[1.0, np.nan]]), np.ones((2, 2)))


# ------------------------------------------------------------------ dask arrays
da = pytest.importorskip("dask.array")


def _lazy(X, rows=192):
    return da.from_array(X, chunks=(rows, X.shape[1]))


@pytest.mark.parametrize("method", ["auto", "lh", "active_set"])
def test_a_dask_array_is_solved_block_by_block_as_in_memory(method):
    D, X, rng = _problem(13, n=500, m=7)
    support = rng.random((500, 7)) < 0.6
    options = dict(method=method, max_iter=0 if method == "active_set" else None, ridge=0.2,
                   tol=1e-3 if method == "lh" else 1e-10)
    out = nnls_batch(D, _lazy(X), support, **options)
    assert isinstance(out, da.Array) and out.shape == (500, 7)
    got = out.compute(scheduler="synchronous")
    ref = nnls_batch(D, X, support, **options)
    assert ref.tobytes() != nnls_batch(D, X, support, **dict(options, ridge=0.0)).tobytes()   # both options count
    if method == "lh":
        assert ref.tobytes() != nnls_batch(D, X, support, **dict(options, tol=1e-10)).tobytes()
    assert got.tobytes() == ref.tobytes()


def test_a_dask_array_without_support_uses_every_atom():
    D, X, _ = _problem(14, n=300, m=5)
    got = nnls_batch(D, _lazy(X)).compute(scheduler="synchronous")
    assert got.tobytes() == nnls_batch(D, X).tobytes()


_DASK_ONLY_COLD = ("nnls_batch on a dask array takes neither init nor return_info (each block is solved "
                   "cold, as one in-memory call); compute X first to use them.")


@pytest.mark.parametrize("kwargs", [dict(init=np.zeros((20, 4))), dict(return_info=True)])
def test_a_dask_array_refuses_init_and_return_info(kwargs):
    D, X, _ = _problem(15, n=20, m=4)
    with pytest.raises(ValueError, match=re.escape(_DASK_ONLY_COLD)):
        nnls_batch(D, _lazy(X, 10), **kwargs)


def test_a_dask_array_checks_max_iter_and_method_before_any_work():
    D, X, _ = _problem(16, n=20, m=4)
    with pytest.raises(ValueError, match=r"^max_iter must be at least 0, got -1"):
        nnls_batch(D, _lazy(X, 10), max_iter=-1)
    with pytest.raises(ValueError, match=r"^max_iter must be an integer"):
        nnls_batch(D, _lazy(X, 10), max_iter=2.5)
    with pytest.raises(ValueError, match=re.escape("method must be 'auto', 'lh' or 'active_set', got 'fista'.")):
        nnls_batch(D, _lazy(X, 10), method="fista")
    lazy = nnls_batch(D, _lazy(X, 10), max_iter=0)            # 0 is allowed: every row falls back
    assert lazy.compute(scheduler="synchronous").tobytes() == nnls_batch(D, X, max_iter=0).tobytes()


# ------------------------------------------------------------------ in-memory checks and info
def test_in_memory_max_iter_and_init_errors_are_named():
    D, X, _ = _problem(17, n=4, m=3)
    with pytest.raises(ValueError, match=r"^max_iter must be at least 0, got -1"):
        nnls_batch(D, X, max_iter=-1)
    with pytest.raises(ValueError, match=r"^init contains 1 NaN"):
        init = np.zeros((4, 3))
        init[2, 1] = np.nan
        nnls_batch(D, X, init=init)


@pytest.mark.parametrize("n_rows, grouped", [(40, True), (39, False), (3, True)])
def test_rows_are_grouped_by_support_from_eight_rows_a_support_or_when_all_share_one(n_rows, grouped):
    """5 supports need 40 rows (8 a group) to be grouped; a single support is grouped at any count."""
    D, X, rng = _problem(18, n=n_rows, m=6)
    patterns = (np.array([[1, 1, 1, 1, 1, 1]], bool) if n_rows == 3 else
                np.array([[1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1], [1, 1, 0, 0, 1, 1], [1, 1, 1, 0, 0, 0],
                          [0, 0, 1, 1, 1, 1]], bool))
    support = patterns[np.arange(n_rows) % len(patterns)]
    W, info = nnls_batch(D, X, support, method="active_set", return_info=True)
    assert info["n_groups"] == (len(patterns) if grouped else 0)
    assert_matches_scipy(D, X, W, support, rel=1e-10)


@pytest.mark.parametrize("grouped", [True, False])
def test_active_set_warm_started_at_the_solution_needs_no_exchange(grouped):
    """The passive sets of the solution are optimal at once: no block-pivoting step, no hand-over."""
    D, X, rng = _problem(19, n=64, m=8)
    support = np.tile(rng.random((2, 8)) < 0.8, (32, 1)) if grouped else rng.random((64, 8)) < 0.8
    W = nnls_batch(D, X, support, method="active_set")
    cold = nnls_batch(D, X, support, method="active_set", return_info=True)[1]
    W2, info = nnls_batch(D, X, support, init=W, method="active_set", return_info=True)
    assert cold["n_iter"] >= 1
    assert info["n_iter"] == 0 and info["n_lawson_hanson"] == 0 and info["n_fallback"] == 0
    np.testing.assert_allclose(W2, W, rtol=1e-10, atol=1e-12)


def test_lh_reports_no_iteration_where_the_start_is_already_optimal():
    """Rows whose every correlation is non-positive are solved by the zero start itself."""
    D = np.eye(3)
    W, info = nnls_batch(D, -np.abs(np.random.default_rng(23).normal(size=(5, 3))), return_info=True)
    assert np.all(W == 0) and info == {"n_iter": 0, "n_fallback": 0}


def test_lh_warm_started_at_the_solution_takes_fewer_iterations_than_cold():
    D, X, rng = _problem(20, n=64, m=12)
    W, cold = nnls_batch(D, X, return_info=True)
    W2, warm = nnls_batch(D, X, init=W, return_info=True)
    assert warm["n_iter"] < cold["n_iter"]
    np.testing.assert_allclose(W2, W, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fault", ["scaled", "zeroed"])
def test_zero_form_rows_that_fail_their_kkt_check_are_solved_again(monkeypatch, fault):
    """The shared-factorisation form uses explicit inverses; its rows are verified and re-solved
    where rounding broke the optimality conditions. Simulated here by a corrupted form: every
    other row scaled by 1.001 (its positive coefficients' gradients fail) or set to zero (only the
    zero coefficients' gradients can tell)."""
    D, X, rng = _problem(21, n=80, m=6)
    support = np.tile(np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], bool), (40, 1))
    honest = nnls_module._Groups.solve_zero

    def corrupted(self, rows, F, S):
        Xz, Yz = honest(self, rows, F, S)
        every_other = (np.arange(rows.size) % 2 == 0)[:, None]
        return Xz * np.where(every_other, 1.001 if fault == "scaled" else 0.0, 1.0), Yz

    monkeypatch.setattr(nnls_module._Groups, "solve_zero", corrupted)
    W, info = nnls_batch(D, X, support, method="active_set", return_info=True)
    assert info["n_zero_form"] > 0
    assert np.all(W[~support] == 0)
    assert_matches_scipy(D, X, W, support, rel=1e-10)
    assert_kkt(D, X, W, support, tol=1e-9)


def test_scipy_fallback_keeps_each_rows_support():
    D, X, rng = _problem(22, n=30, m=7)
    support = rng.random((30, 7)) < 0.5
    W, info = nnls_batch(D, X, support, max_iter=0, method="active_set", return_info=True)
    assert info["n_fallback"] > 0
    assert np.all(W[~support] == 0)
    assert_matches_scipy(D, X, W, support, rel=1e-9)
