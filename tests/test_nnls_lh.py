"""Tests for nnls_batch(method="lh"), the compiled per-row Lawson-Hanson solver (the default),
and what it shares with the reference coordinate-descent solver (slics.core.reference.nnls_cd)."""

import numba
import numpy as np
import pytest

from slics import nnls_batch
from slics.core.planted import make_planted
from slics.core.reference.nnls_cd import nnls_cd

from test_nnls import assert_kkt, assert_matches_scipy, scipy_reference


@pytest.mark.parametrize("method", ["lh", "cd"])
@pytest.mark.parametrize("seed", [0, 1])
def test_per_row_supports_match_scipy(seed, method):
    """The default solver and the reference coordinate descent (``"cd"``) against scipy."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((25, 30))
    X = rng.standard_normal((200, 30))
    support = rng.random((200, 25)) < 0.5
    support[0] = False                                   # an empty support gives zeros
    X[1] = 0.0                                           # a zero row gives zeros
    solve = nnls_cd if method == "cd" else lambda *a, **k: nnls_batch(*a, method=method, **k)
    W, info = solve(D, X, support, return_info=True)
    assert info["n_fallback"] == 0
    assert np.all(W[0] == 0) and np.all(W[1] == 0)
    assert_matches_scipy(D, X, W, support)
    assert_kkt(D, X, W, support)
    np.testing.assert_allclose(W, scipy_reference(D, X, support), atol=1e-7)   # unique: independent atoms


def test_coherent_ssvd_dictionary_matches_scipy_and_active_set():
    X, Y, _, _ = make_planted(400, 32, 6, 5, noise=0.1, random_state=0)
    D = np.vstack([np.linalg.svd(X[Y[:, j]], full_matrices=False)[2][:5] for j in range(6)])
    support = np.repeat(Y, 5, axis=1)
    W = nnls_batch(D, X, support, method="lh")
    assert_matches_scipy(D, X, W, support)
    assert_kkt(D, X, W, support)
    np.testing.assert_allclose(W, nnls_batch(D, X, support, method="active_set"), atol=1e-7)


def test_duplicate_atoms_single_atom_and_warm_start():
    rng = np.random.default_rng(3)
    D = rng.standard_normal((8, 12))
    D[5] = D[2]                                          # an exact duplicate
    X = rng.standard_normal((60, 12))
    W = nnls_batch(D, X, method="lh")
    assert_matches_scipy(D, X, W)
    warm = nnls_batch(D, X, method="lh", init=W + 0.5)   # any feasible warm start
    assert_matches_scipy(D, X, warm)
    one = nnls_batch(D[:1], X, method="lh")
    np.testing.assert_allclose(one[:, 0], np.maximum(X @ D[0], 0) / (D[0] @ D[0]), rtol=1e-12, atol=1e-15)


def test_ridge_float32_and_fallback():
    rng = np.random.default_rng(4)
    D = rng.standard_normal((15, 20))
    X = rng.standard_normal((40, 20))
    assert_matches_scipy(D, X, nnls_batch(D, X, ridge=0.3, method="lh"), ridge=0.3)
    W32 = nnls_batch(D.astype(np.float32), X.astype(np.float32), method="lh")
    assert_matches_scipy(D.astype(np.float32).astype(float), X.astype(np.float32).astype(float), W32, rel=1e-6)
    W, info = nnls_batch(D, X, method="lh", max_iter=1, return_info=True)   # too few iterations
    assert info["n_fallback"] > 0
    assert_matches_scipy(D, X, W)


def test_bitwise_identical_under_one_and_two_threads():
    X, Y, _, _ = make_planted(300, 32, 6, 5, noise=0.1, random_state=2)
    D = np.vstack([np.linalg.svd(X[Y[:, j]], full_matrices=False)[2][:5] for j in range(6)])
    support = np.repeat(Y, 5, axis=1)
    before = numba.get_num_threads()
    try:
        out = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out.append(nnls_batch(D, X, support, method="lh"))
    finally:
        numba.set_num_threads(before)
    assert out[0].tobytes() == out[1].tobytes()


def _row_objective(Gs, b, x):
    return 0.5 * x @ Gs @ x - b @ x


@pytest.mark.parametrize("start", ["uniform", "near_optimum"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_objective_never_rises_from_one_iteration_to_the_next(seed, start):
    """Lawson-Hanson steps from x towards the passive-set minimiser only as far as feasibility
    allows, so the objective never rises (the reason it cannot cycle). Checked on the kernel of
    one row, stopped after 0, 1, 2, ... iterations, on a coherent block where many coefficients
    of the first minimiser are negative, from warm starts with every coefficient positive: uniform
    ones, and scipy's optimum with 0.01 added to its zeros (there, jumping to the minimiser and
    clipping it would rise above the start)."""
    from slics.core._nnls_lh import _lh_row

    rng = np.random.default_rng(seed)
    D = rng.standard_normal((24, 30)) + 1.5 * rng.standard_normal(30)      # a shared direction
    y = rng.standard_normal(30)
    Gs, b = D @ D.T, D @ y                     # 0.5 x Gs x - b x = 0.5 ||x D - y||^2 - 0.5 ||y||^2
    if start == "uniform":
        start = rng.uniform(0.1, 1.0, 24)
    else:
        start = scipy_reference(D, y[None, :])[0]
        start[start == 0] = 0.01
    values, steps = [], None
    for max_iter in range(60):
        x = start.copy()
        status = _lh_row(Gs, b, x, 1e-10, max_iter, False)
        assert np.all(x >= 0)
        values.append(_row_objective(Gs, b, x))
        if status >= 0:
            steps = status
            break
    assert steps is not None, "did not finish within 60 iterations"
    rises = np.diff(values) > 1e-12 * np.abs(values[:-1]).max()
    assert not rises.any(), np.flatnonzero(rises)
    reference = scipy_reference(D, y[None, :])[0]
    assert abs(values[-1] - _row_objective(Gs, b, reference)) <= 1e-9 * abs(values[-1])


@pytest.mark.parametrize("seed", range(6))
def test_nearly_dependent_atoms_are_left_out_not_factored(seed):
    """Atoms numerically dependent on the passive ones (exact copies, scaled copies, copies with
    1e-13 noise, sums of two atoms) must not enter the factor: a pivot of rounding size would
    spoil the factor for every later atom. The result is optimal (KKT, scipy's objective) with no
    row sent to the fallback."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((16, 12))
    D[5] = D[2]
    D[7] = 3.0 * D[1]
    D[9] = D[4] + 1e-13 * rng.standard_normal(12)
    D[11] = D[0] + D[3]
    X = rng.standard_normal((80, 12))
    W, info = nnls_batch(D, X, method="lh", return_info=True)
    assert info["n_fallback"] == 0
    assert_matches_scipy(D, X, W)
    assert_kkt(D, X, W)


def test_float32_rows_give_bitwise_the_float64_solution_without_a_float64_copy():
    """float32 rows are converted chunk by chunk (exactly): the same bits as the float64 rows,
    with no float64 copy of the whole input at the peak (40,000 rows are several chunks)."""
    import tracemalloc

    rng = np.random.default_rng(7)
    D = rng.standard_normal((32, 256))
    X = rng.standard_normal((40_000, 256)).astype(np.float32)
    support = rng.random((40_000, 32)) < 0.5
    want = nnls_batch(D, X.astype(np.float64), support)
    tracemalloc.start()
    try:
        got = nnls_batch(D, X, support)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got, want)
    assert peak < 2 * X.nbytes, f"peak {peak / 2**20:.0f} MiB: a float64 copy of X is {2 * X.nbytes / 2**20:.0f} MiB"


def test_slics_transform_of_float32_rows_is_bitwise_that_of_float64_rows():
    from slics import SLiCS

    X, Y, _, _ = make_planted(3000, 24, 5, 3, noise=0.1, random_state=3)
    model = SLiCS(3, n_iter=2, random_state=0).fit(X, Y)
    X32 = X.astype(np.float32)
    assert np.array_equal(model.transform(X32, Y), model.transform(X32.astype(np.float64), Y))


@pytest.mark.parametrize("m", [3, 40])
def test_rows_get_the_same_bits_in_any_call_of_whole_192_row_blocks(m):
    """The product X @ D.T is taken 192 rows per BLAS call (row_products), and the solver's chunks
    are whole blocks of 192, so a row's code does not depend on the call: calls over row blocks of
    a multiple of 192 (Dask's) give the bits of one call over all rows (14,000 rows are two chunks
    at m = 40). A BLAS may sum a row differently in calls of other lengths (OpenBLAS's AVX-512
    small-matrix path does for m = 3)."""
    from slics.core.nnls import ROW_BLOCK

    rng = np.random.default_rng(m)
    D = rng.standard_normal((m, 32))
    X = rng.standard_normal((14_000, 32))
    support = rng.random((14_000, m)) < 0.6
    whole = nnls_batch(D, X, support)
    for rows in (ROW_BLOCK, 2 * ROW_BLOCK, 7 * ROW_BLOCK):
        blocks = np.vstack([nnls_batch(D, X[s:s + rows], support[s:s + rows]) for s in range(0, len(X), rows)])
        assert np.array_equal(blocks, whole), rows
