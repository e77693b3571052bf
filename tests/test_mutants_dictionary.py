"""Tests written for the survivors of `make mutation` over slics.core.dictionary, class by class:
the streamed fit (`partial_fit`) step by step against `fit`'s own batch, the lazy (dask) entry
points against the in-memory ones (dask's synchronous scheduler: no cluster, so these run where
mutmut runs), the memory bound against its formula, the Lanczos solver against LAPACK's SVD on
matrices that need its restarts and its early exits, and each atom update against its definition.
"""

import re
import warnings

import numpy as np
import pytest

from slics import SLiCS, nnls_batch
from slics.core import dictionary as dictionary_module
from slics.core.dictionary import _atom_step, _check_memory, _new_atom, _residual, top_singular_pair

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


def _data(n=240, d=12, C=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = rng.random((n, C)) < 0.4
    Y[np.arange(n), rng.integers(0, C, n)] = True
    return X, Y


@pytest.fixture(scope="module")
def small():
    return _data()


@pytest.fixture
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _one_step_by_hand(D0, X, Y, K, update="ksvd", monotone=False):
    """One batch step spelled out: NNLS on the labelled atoms, then every atom once."""
    D = D0.copy()
    W = nnls_batch(D, X, np.repeat(Y, K, axis=1))
    E = X - W @ D
    rejected = _atom_step(D, W, E, Y, K, update, monotone)
    return D, np.sqrt(np.sum(E ** 2) / np.sum(X ** 2)), rejected


# ------------------------------------------------------------------ partial_fit
@pytest.mark.parametrize("update", ["ksvd", "bcd"])
def test_one_partial_fit_is_one_step_from_the_given_dictionary(small, update):
    X, Y = small
    D0 = SLiCS(2, n_iter=0).fit(X, Y).dictionary_
    D0_before = D0.copy()
    model = SLiCS(2, update=update).partial_fit(X, Y, init_dictionary=D0)
    D, err, _ = _one_step_by_hand(D0, X, Y, 2, update)
    np.testing.assert_allclose(model.dictionary_, D, rtol=0, atol=1e-12)
    assert model.error_history_ == pytest.approx([err], rel=1e-12)
    assert np.array_equal(D0, D0_before)                           # the caller's array is copied
    assert np.array_equal(model.init_dictionary_, D0)
    assert model.dictionary_.flags.c_contiguous and model.dictionary_.dtype == np.float64
    assert model.n_iter_ == 1 and model.n_rejected_ == 0
    assert (model.n_features_in_, model.n_concepts_) == (12, 3)
    assert np.array_equal(model.atom_concept_, [0, 0, 1, 1, 2, 2])
    # a full-batch fit of one iteration from the same start does the same step
    np.testing.assert_allclose(SLiCS(2, n_iter=1, update=update).fit(X, Y).dictionary_, D, rtol=0, atol=1e-12)


def test_later_calls_step_on_from_the_current_dictionary(small):
    X, Y = small
    model = SLiCS(2, monotone=True)
    model.partial_fit(X[:120], Y[:120])
    D1 = model.dictionary_.copy()
    init = model.init_dictionary_.copy()
    model.partial_fit(X[120:], Y[120:])
    D2, err, rejected = _one_step_by_hand(D1, X[120:], Y[120:], 2, monotone=True)
    np.testing.assert_allclose(model.dictionary_, D2, rtol=0, atol=1e-12)
    assert model.error_history_.shape == (2,) and model.error_history_[1] == pytest.approx(err, rel=1e-12)
    assert model.n_iter_ == 2
    assert np.array_equal(model.init_dictionary_, init)           # the start is kept, not the last step
    assert not np.allclose(model.dictionary_, init)


def test_monotone_partial_fit_counts_its_rejections(monkeypatch, small):
    X, Y = small
    counts = iter([2, 5])
    monkeypatch.setattr(dictionary_module, "_atom_step", lambda *a, **k: next(counts))
    model = SLiCS(2, monotone=True).partial_fit(X, Y)
    assert model.n_rejected_ == 2
    assert model.partial_fit(X, Y).n_rejected_ == 7


def test_partial_fit_starts_with_the_ssvd_of_its_first_batch(small):
    X, Y = small
    Y = Y.copy()
    Y[:, 2] = False
    Y[:1, 2] = True                                  # one sample: its second atom starts random
    with pytest.warns(UserWarning, match="concept 2 has 1 training sample"):
        model = SLiCS(2, random_state=7).partial_fit(X, Y)
    with pytest.warns(UserWarning, match="concept 2 has 1 training sample"):
        ssvd = SLiCS(2, n_iter=0, random_state=7).fit(X, Y).dictionary_
    assert np.array_equal(model.init_dictionary_, ssvd)


def test_partial_fit_drops_unlabelled_rows_and_checks_its_input(small):
    X, Y = small
    Y0 = Y.copy()
    Y0[:10] = False
    with pytest.warns(UserWarning, match="dropping 10 sample"):
        model = SLiCS(2).partial_fit(X, Y0)
    ref = SLiCS(2).partial_fit(X[10:], Y[10:])
    assert np.array_equal(model.dictionary_, ref.dictionary_)
    with pytest.raises(ValueError, match="all zeros"):
        SLiCS(2).partial_fit(np.zeros_like(X), Y)
    with pytest.raises(ValueError, match=r"n_atoms \(K, atoms per concept\)"):
        SLiCS(0).partial_fit(X, Y)
    with pytest.raises(ValueError, match=re.escape("concept(s) [1] have no training samples")):
        SLiCS(2).partial_fit(X, np.c_[Y[:, :1], np.zeros(len(Y), bool), Y[:, 2:]])


def test_a_fortran_ordered_start_gives_the_same_c_ordered_dictionary(small):
    X, Y = small
    D0 = SLiCS(2, n_iter=0).fit(X, Y).dictionary_
    c = SLiCS(2).partial_fit(X, Y, init_dictionary=D0)
    f = SLiCS(2).partial_fit(X, Y, init_dictionary=np.asfortranarray(D0))
    assert f.dictionary_.flags.c_contiguous and f.init_dictionary_.flags.c_contiguous
    assert np.array_equal(f.dictionary_, c.dictionary_)


def test_partial_fit_from_a_dictionary_needs_no_sample_of_every_concept(small):
    X, Y = small
    D0 = SLiCS(2, n_iter=0).fit(X, Y).dictionary_
    Yc = Y.copy()
    Yc[:, 1] = False
    Yc[~Yc.any(axis=1), 0] = True
    model = SLiCS(2).partial_fit(X, Yc, init_dictionary=D0)
    assert np.array_equal(model.dictionary_[2:4], D0[2:4])        # concept 1's atoms are not used


def test_partial_fit_errors_name_what_is_wrong(small):
    X, Y = small
    D0 = SLiCS(2, n_iter=0).fit(X, Y).dictionary_
    with pytest.raises(ValueError, match=re.escape("init_dictionary has 5 atoms; 3 concepts x n_atoms=2 = 6 are "
                                                   "expected.")):
        SLiCS(2).partial_fit(X, Y, init_dictionary=D0[:5])
    with pytest.raises(ValueError, match="^init_dictionary has 5 columns but 12 are expected"):
        SLiCS(2).partial_fit(X, Y, init_dictionary=D0[:, :5])
    model = SLiCS(2).partial_fit(X, Y, init_dictionary=D0)
    with pytest.raises(ValueError) as err:
        model.partial_fit(X, Y, init_dictionary=D0)
    assert str(err.value) == "init_dictionary starts a partial fit; this model already has a dictionary."
    with pytest.raises(ValueError, match=re.escape("Y has 2 concepts but the model was fitted with 3.")):
        model.partial_fit(X, Y[:, :2])
    with pytest.raises(ValueError, match=r"\bX\b"):
        model.partial_fit(X[:, :5], Y)
    assert model.n_iter_ == 1                                      # the failed calls changed nothing


def test_partial_fit_on_a_dask_array_is_one_step_per_chunk(small, synchronous):
    X, Y = small
    D0 = SLiCS(2, n_iter=0).fit(X, Y).dictionary_
    lazy = SLiCS(2).partial_fit(da.from_array(X, chunks=(100, -1)), Y, init_dictionary=D0)
    eager = SLiCS(2)
    for i, rows in enumerate([slice(0, 100), slice(100, 200), slice(200, 240)]):
        eager.partial_fit(X[rows], Y[rows], init_dictionary=D0 if i == 0 else None)
    assert lazy.n_iter_ == 3
    assert np.array_equal(lazy.dictionary_, eager.dictionary_)
    assert np.array_equal(lazy.error_history_, eager.error_history_)
    assert np.array_equal(lazy.init_dictionary_, D0)


# ------------------------------------------------------------------ lazy entry points
@pytest.mark.parametrize("method", ["transform", "components", "project"])
def test_dask_input_gives_the_in_memory_rows(small, synchronous, method):
    X, Y = small
    model = SLiCS(2, n_iter=1).fit(X, Y)
    lazy = da.from_array(X, chunks=(96, -1))
    args = (1,) if method == "project" else (Y,)
    out = getattr(model, method)(lazy, *args)
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(out.compute(), getattr(model, method)(X, *args), rtol=0, atol=1e-12)


def test_dask_input_is_checked_like_an_array(small, synchronous):
    X, Y = small
    with pytest.raises(Exception, match="not fitted"):
        SLiCS(2).transform(da.from_array(X), Y)
    model = SLiCS(2, n_iter=0).fit(X, Y)
    with pytest.raises(ValueError, match=re.escape("Y has 2 concepts but the model was fitted with 3.")):
        model.components(da.from_array(X), Y[:, :2])
    with pytest.raises(ValueError, match=re.escape("Y has 20 rows but X has 240; they must describe the same")):
        model.transform(da.from_array(X, chunks=(100, -1)), Y[:20])
    with pytest.raises(ValueError, match="^" + re.escape("concept must be an integer in [0, 3), got 3.")):
        model.project(da.from_array(X), 3)


# ------------------------------------------------------------------ memory bound
def test_memory_bound_is_the_formula_at_its_boundary(monkeypatch):
    K, C, n, d = 3, 5, 100, 16
    need = 8 * (2 * C * K * d + 3 * n * C * K + n * d)
    monkeypatch.setattr(dictionary_module, "_available_memory", lambda: need)
    _check_memory(K, C, n, d)                                      # exactly enough: accepted
    monkeypatch.setattr(dictionary_module, "_available_memory", lambda: need - 1)
    with pytest.raises(ValueError) as err:
        _check_memory(K, C, n, d)
    gib = f"{need / 2 ** 30:.3g}"
    assert str(err.value) == (f"n_atoms=3 needs about {gib} GiB for 5 concepts, 100 samples and 16 features, "
                              f"more than this machine's {(need - 1) / 2 ** 30:.3g} GiB; lower n_atoms "
                              f"(atoms per concept).")


@pytest.mark.parametrize("args", [(2, 3, 7, 5), (1, 1, 1, 1), (4, 2, 3, 9)])
def test_memory_bound_grows_with_every_size(monkeypatch, args):
    need = 8 * (2 * args[1] * args[0] * args[3] + 3 * args[2] * args[1] * args[0] + args[2] * args[3])
    monkeypatch.setattr(dictionary_module, "_available_memory", lambda: need)
    _check_memory(*args)
    for i in range(4):
        bigger = list(args)
        bigger[i] += 1
        with pytest.raises(ValueError, match="lower n_atoms"):
            _check_memory(*bigger)


def test_fit_refuses_a_dictionary_larger_than_memory(monkeypatch, small):
    X, Y = small
    monkeypatch.setattr(dictionary_module, "_available_memory", lambda: 2 ** 16)
    with pytest.raises(ValueError, match="n_atoms=50 needs about"):
        SLiCS(50).fit(X, Y)


def test_available_memory_is_the_physical_memory(monkeypatch):
    import os

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1000}
    monkeypatch.setattr(os, "sysconf", lambda key: pages[key])
    assert dictionary_module._available_memory() == 4096 * 1000
    for error in (ValueError, OSError, AttributeError):
        def broken(key, error=error):
            raise error(key)
        monkeypatch.setattr(os, "sysconf", broken)
        assert dictionary_module._available_memory() == 1 << 62


# ------------------------------------------------------------------ Lanczos (top_singular_pair)
def _spectrum_matrix(m, d, decay, seed=0):
    """``U diag(s) V^T`` with ``s_k = 1 / (1 + decay k)``: slow decay needs many Lanczos steps."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((m, min(m, d))))[0]
    V = np.linalg.qr(rng.standard_normal((d, min(m, d))))[0]
    s = 1.0 / (1.0 + decay * np.arange(min(m, d)))
    return (U * s) @ V.T, s, V.T


def _krylov_ritz(R, start, steps):
    """Largest Ritz value of ``R^T R`` on the Krylov space of ``start`` (Arnoldi, reorthogonalised twice)."""
    G = R.T @ R
    Q = [start / np.linalg.norm(start)]
    for _ in range(steps - 1):
        z = G @ Q[-1]
        for _ in range(2):
            z -= np.array(Q).T @ (np.array(Q) @ z)
        Q.append(z / np.linalg.norm(z))
    Q = np.array(Q).T
    return float(np.sqrt(np.linalg.eigvalsh(Q.T @ G @ Q)[-1]))


def _ritz_residual(R, sigma, v):
    """``||R^T u - sigma v|| / sigma`` with ``u = R v / sigma``."""
    return float(np.linalg.norm(R.T @ (R @ v) / sigma - sigma * v) / sigma)


@pytest.mark.parametrize("shape", [(30, 24), (24, 30), (24, 24), (5, 3), (3, 60)])
def test_small_matrices_get_lapack_svd_whatever_the_tolerance(shape):
    R = np.random.default_rng(2).standard_normal(shape)
    _, S, Vt = np.linalg.svd(R)
    sigma, v = top_singular_pair(R, tol=0.5, max_steps=1)
    assert isinstance(sigma, float) and sigma == pytest.approx(S[0], rel=1e-14)
    assert v.shape == (shape[1],) and abs(v @ Vt[0]) == pytest.approx(1.0, abs=1e-14)


def test_lanczos_steps_are_the_ritz_values_of_the_krylov_space_restarted_every_ten():
    R, s, _ = _spectrum_matrix(70, 50, 0.02)
    v0 = np.random.default_rng(3).standard_normal(50)
    start = v0 / np.linalg.norm(v0) + 1e-3 * dictionary_module._jitter(50)      # the documented start
    sigmas = [top_singular_pair(R, v0=v0, tol=0.0, max_steps=k)[0] for k in range(1, 13)]
    for k in range(1, 11):
        assert sigmas[k - 1] == pytest.approx(_krylov_ritz(R, start, k), rel=1e-12)
    assert sigmas[10] == pytest.approx(sigmas[9], rel=1e-13)      # a restart from the Ritz vector adds nothing
    assert sigmas[11] > sigmas[10] * (1 + 1e-9)                    # the next step of the new cycle does
    assert max(sigmas) < s[0]


def test_from_25_rows_and_columns_the_lanczos_steps_run():
    R = np.random.default_rng(2).standard_normal((25, 60))
    v0 = np.ones(60)
    start = v0 / np.linalg.norm(v0) + 1e-3 * dictionary_module._jitter(60)
    sigma, _ = top_singular_pair(R, v0=v0, tol=0.0, max_steps=1)
    assert sigma == pytest.approx(_krylov_ritz(R, start, 1), rel=1e-12)
    assert sigma < 0.9 * np.linalg.norm(R, 2)


def test_lanczos_stops_at_the_first_step_whose_residual_meets_tol():
    R, s, _ = _spectrum_matrix(60, 40, 0.05, seed=4)
    runs = [top_singular_pair(R, tol=0.0, max_steps=k) for k in range(1, 31)]
    rho = np.array([_ritz_residual(R, *run) for run in runs])
    # steps whose residual is a new minimum by a clear margin: a threshold between it and every
    # earlier residual is met first at that step, whatever rounding does
    clear = [k for k in range(1, len(rho)) if rho[k] * 2.25 < rho[:k].min()]
    assert len(clear) >= 3
    for first in (clear[0], clear[len(clear) // 2], clear[-1]):
        tol = float(np.sqrt(rho[first] * rho[:first].min()))
        sigma, v = top_singular_pair(R, tol=tol)
        assert sigma == runs[first][0] and np.array_equal(v, runs[first][1])


@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e6])
def test_lanczos_converges_through_restarts_on_a_slowly_decaying_spectrum(scale):
    R, s, Vt = _spectrum_matrix(80, 60, 0.002, seed=5)           # s_1 / s_0 = 0.998
    R *= scale
    for v0 in (None, Vt[3], np.ones(60)):
        sigma, v = top_singular_pair(R, v0=v0)
        assert sigma == pytest.approx(scale * s[0], rel=1e-12)
        assert abs(v @ Vt[0]) > 1 - 1e-9
        assert _ritz_residual(R, sigma, v) <= 1e-8 * (1 + 1e-6)


@pytest.mark.parametrize("scale", [1e8, 1e-8])
def test_a_start_on_another_singular_vector_finds_the_leading_one_at_any_scale(scale):
    R, s, Vt = _spectrum_matrix(50, 40, 0.3, seed=6)
    sigma, v = top_singular_pair(R, v0=scale * Vt[1])
    assert sigma == pytest.approx(s[0], rel=1e-12) and abs(v @ Vt[0]) == pytest.approx(1.0, abs=1e-8)


def test_zero_and_zero_first_row_matrices():
    sigma, v = top_singular_pair(np.zeros((30, 40)))
    assert sigma == 0.0 and isinstance(sigma, float)
    assert np.array_equal(v, np.eye(40)[0])
    R, s, Vt = _spectrum_matrix(40, 30, 0.3, seed=7)
    R[0] = 0.0                                                     # the default start is the largest row
    _, S, Vt = np.linalg.svd(R)
    sigma, v = top_singular_pair(R)
    assert sigma == pytest.approx(S[0], rel=1e-12) and abs(v @ Vt[0]) == pytest.approx(1.0, abs=1e-8)


# ------------------------------------------------------------------ atom candidates (_new_atom)
def _residual_matrix(seed=8, m=60, d=40):
    R, _, _ = _spectrum_matrix(m, d, 0.3, seed=seed)
    c = np.abs(np.random.default_rng(seed).standard_normal(m))
    return R, c, np.linalg.qr(np.random.default_rng(seed + 1).standard_normal((d, 1)))[0][:, 0]


def test_ksvd_candidate_is_the_signed_leading_singular_pair_at_its_default_tolerance():
    R, c, d_old = _residual_matrix()
    U, S, Vt = np.linalg.svd(R, full_matrices=False)
    atom, coef = _new_atom(R, c, d_old, "ksvd")
    sign = majority_sign_ref(S[0] * U[:, 0])
    assert abs(atom @ Vt[0]) > 1 - 1e-9 and _ritz_residual(R, S[0], atom) <= 1e-6
    assert atom @ Vt[0] * sign > 0
    np.testing.assert_allclose(coef, np.maximum(0.0, R @ atom), rtol=0, atol=0)


def majority_sign_ref(p):
    """The sign that removes more energy with non-negative coefficients, by trying both."""
    return 1.0 if np.sum(np.maximum(0, p) ** 2) >= np.sum(np.maximum(0, -p) ** 2) else -1.0


def test_bcd_candidate_is_the_normalised_least_squares_atom():
    R, c, d_old = _residual_matrix()
    atom, coef = _new_atom(R, c, d_old, "bcd")
    ls = np.linalg.lstsq(c[:, None], R, rcond=None)[0][0]          # argmin_a ||R - c a^T||
    np.testing.assert_allclose(atom, ls / np.linalg.norm(ls), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(coef, np.maximum(0.0, R @ atom))


def test_power_candidate_is_a_fixed_point_of_the_modified_power_method():
    R, c, d_old = _residual_matrix()
    atom, coef = _new_atom(R, c, d_old, "power")
    g = R.T @ np.maximum(0.0, R @ atom)
    assert np.linalg.norm(g / np.linalg.norm(g) - atom) <= 1e-8
    np.testing.assert_array_equal(coef, np.maximum(0.0, R @ atom))
    assert not np.allclose(atom, _new_atom(R, c, d_old, "bcd")[0], atol=1e-3)   # not the bcd atom


@pytest.mark.parametrize("update", ["bcd", "power"])
def test_a_zero_residual_has_no_candidate(update):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _new_atom(np.zeros((5, 4)), np.ones(5), np.eye(4)[0], update) is None


# ------------------------------------------------------------------ atom step (_atom_step)
def _step_inputs(seed=9, n=90, d=10, C=3, K=2, scale=1.0):
    X, Y = _data(n, d, C, seed)
    X *= scale
    D = SLiCS(K, n_iter=0).fit(X, Y).dictionary_
    W = nnls_batch(D, X, np.repeat(Y, K, axis=1))
    return D, W, _residual(X, W, D), Y, K


@pytest.mark.parametrize("case", ["float64", "update", "E_order", "W_order", "D_order", "W_dtype", "D_dtype",
                                  "compiled"])
def test_the_compiled_ksvd_runs_exactly_on_contiguous_float64_ksvd_steps(monkeypatch, case):
    D, W, E, Y, K = _step_inputs()
    calls = []
    real = dictionary_module.ksvd_step
    monkeypatch.setattr(dictionary_module, "ksvd_step", lambda *a: calls.append(1) or real(*a))
    kwargs, update = {}, "ksvd"
    if case == "update":
        update = "power"
    elif case == "E_order":
        E = np.asfortranarray(E)
    elif case == "W_order":
        W = np.asfortranarray(W)
    elif case == "D_order":
        D = np.asfortranarray(D)
    elif case == "W_dtype":
        W = W.astype(np.float32)
    elif case == "D_dtype":
        D = D.astype(np.float32)
    elif case == "compiled":
        kwargs = {"compiled": False}
    _atom_step(D, W, E, Y, K, update, False, **kwargs)
    assert len(calls) == (case == "float64")


@pytest.mark.parametrize("scale", [1.0, 0.05])
def test_the_python_step_equals_the_compiled_one_at_any_coefficient_scale(scale):
    D, W, E, Y, K = _step_inputs(scale=scale)
    out = [(D.copy(), W.copy(), E.copy()) for _ in range(2)]
    for (Dc, Wc, Ec), compiled in zip(out, (True, False)):
        _atom_step(Dc, Wc, Ec, Y, K, "ksvd", False, compiled=compiled)
    assert not np.allclose(out[0][0], D)
    for a, b in zip(out[0], out[1]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * scale)


def test_every_concept_and_atom_is_visited_past_skipped_ones(monkeypatch):
    """An unused concept, an unused atom and an atom without a candidate are each skipped alone."""
    D, W, E, Y, K = _step_inputs()
    X = E + W @ D
    W[:, 0:2] = 0.0                      # concept 0: no coefficient at all
    W[:, 4] = 0.0                        # concept 2: its first atom unused
    E = X - W @ D
    real, seen = _new_atom, []

    def first_has_none(R, c_old, d_old, update, tol=1e-6):
        seen.append(1)
        return None if len(seen) == 1 else real(R, c_old, d_old, update, tol)

    monkeypatch.setattr(dictionary_module, "_new_atom", first_has_none)
    D1, W1, E1 = D.copy(), W.copy(), E.copy()
    _atom_step(D1, W1, E1, Y, K, "ksvd", False, compiled=False)
    assert len(seen) == 3                                          # atoms 2 (no candidate), 3 and 5
    unchanged = [0, 1, 2, 4]
    assert np.array_equal(D1[unchanged], D[unchanged])
    assert not np.allclose(D1[3], D[3]) and not np.allclose(D1[5], D[5])
    np.testing.assert_allclose(E1, X - W1 @ D1, atol=1e-12)


def test_monotone_python_step_rejects_and_counts_every_worse_candidate(monkeypatch):
    D, W, E, Y, K = _step_inputs()
    monkeypatch.setattr(dictionary_module, "_new_atom", lambda R, c, d, u, tol=1e-6: (-d, np.zeros(len(c))))
    D1, W1, E1 = D.copy(), W.copy(), E.copy()
    rejected = _atom_step(D1, W1, E1, Y, K, "bcd", True, compiled=False)
    used = int(sum(np.any(W[:, k] > 0) for k in range(D.shape[0])))
    assert rejected == used == 6
    assert np.array_equal(D1, D) and np.array_equal(W1, W) and np.array_equal(E1, E)


def test_residual_is_written_into_out():
    D, W, E, Y, K = _step_inputs()
    X = E + W @ D
    out = np.empty_like(X)
    assert _residual(X, W, D, out=out) is out
    np.testing.assert_allclose(out, X - W @ D, atol=1e-14)


# ------------------------------------------------------------------ the estimator's fit
def test_defaults_are_the_papers():
    assert SLiCS(3).get_params() == {"n_atoms": 3, "n_iter": 10, "batch_size": None, "update": "ksvd",
                                     "monotone": False, "ridge": 0.0, "random_state": 0, "tol": None}
    assert SLiCS(3, monotone=True).get_params()["monotone"] is True


def test_fit_shows_its_progress_as_one_slics_bar(monkeypatch, small):
    X, Y = small
    bars = []

    def recorder(iterable, **kwargs):
        bars.append(kwargs)
        return iterable

    monkeypatch.setattr(dictionary_module, "tqdm", recorder)
    SLiCS(2, n_iter=2).fit(X, Y)
    assert bars == [{"desc": "SLiCS", "disable": None, "leave": False}]


@pytest.mark.parametrize("ridge", [0.0, 0.3])
def test_error_history_uses_the_ridge_coefficients_of_each_dictionary(small, ridge):
    X, Y = small
    model = SLiCS(2, n_iter=2, ridge=ridge).fit(X, Y)
    S = np.repeat(Y, 2, axis=1)

    def error(D):
        return np.linalg.norm(X - nnls_batch(D, X, S, ridge=ridge) @ D) / np.linalg.norm(X)

    assert model.error_history_[0] == pytest.approx(error(model.init_dictionary_), rel=1e-9)
    assert model.error_history_[-1] == pytest.approx(error(model.dictionary_), rel=1e-9)
    np.testing.assert_allclose(model.transform(X, Y), nnls_batch(model.dictionary_, X, S, ridge=ridge), atol=1e-10)


def test_rejections_add_up_over_iterations_and_batches(monkeypatch, small):
    X, Y = small
    counts = iter(range(1, 100))
    seen = []

    def fake(D, W, E, Y, K, update, monotone, compiled=True):
        seen.append((update, monotone))
        return next(counts)

    monkeypatch.setattr(dictionary_module, "_atom_step", fake)
    assert SLiCS(2, n_iter=3, monotone=True).fit(X, Y).n_rejected_ == 1 + 2 + 3
    assert SLiCS(2, n_iter=2, batch_size=100, update="bcd").fit(X, Y).n_rejected_ == sum(range(4, 10))
    assert seen == [("ksvd", True)] * 3 + [("bcd", False)] * 6
    assert SLiCS(2, n_iter=0).fit(X, Y).n_rejected_ == 0


def test_a_decrease_of_exactly_zero_does_not_stop_tol_zero(monkeypatch, small):
    X, Y = small
    monkeypatch.setattr(dictionary_module, "_atom_step", lambda *a, **k: 0)     # the error never moves
    model = SLiCS(2, n_iter=4, tol=0.0).fit(X, Y)
    assert model.n_iter_ == 4 and np.ptp(model.error_history_) == 0.0
    assert SLiCS(2, n_iter=4, tol=1e-12).fit(X, Y).n_iter_ == 1


@pytest.mark.parametrize("extra", [0, 5])
def test_a_batch_as_large_as_the_data_is_the_full_batch(small, extra):
    X, Y = small
    full = SLiCS(2, n_iter=2).fit(X, Y)
    batch = SLiCS(2, n_iter=2, batch_size=len(X) + extra).fit(X, Y)
    assert np.array_equal(batch.dictionary_, full.dictionary_)
    assert np.array_equal(batch.error_history_, full.error_history_)


def test_minibatch_steps_use_the_ridge(small):
    X, Y = small
    D0 = SLiCS(2, n_iter=0).fit(X, Y).dictionary_
    model = SLiCS(2, ridge=0.5).partial_fit(X, Y, init_dictionary=D0)
    D = D0.copy()
    W = nnls_batch(D, X, np.repeat(Y, 2, axis=1), ridge=0.5)
    _atom_step(D, W, X - W @ D, Y, 2, "ksvd", False)
    np.testing.assert_allclose(model.dictionary_, D, rtol=0, atol=1e-12)
    assert not np.allclose(D, SLiCS(2).partial_fit(X, Y, init_dictionary=D0).dictionary_, atol=1e-6)


# ------------------------------------------------------------------ initialisation and checks
def test_enough_samples_for_every_atom_gives_no_warning(small):
    X, Y = small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SLiCS(2, n_iter=0).fit(X, Y)


def test_the_random_atom_warning_counts_them():
    X, Y = _data(60, 8, 2, seed=3)
    Y[:, 1] = False
    Y[:2, 1] = True
    with pytest.warns(UserWarning, match=re.escape("concept 1 has 2 training sample(s), fewer than n_atoms=5 "
                                                   "(or d=8 < K): its other 3 atoms start")):
        SLiCS(5, n_iter=0).fit(X, Y)


@pytest.mark.parametrize("params, message", [
    ({"n_atoms": 1.5}, "n_atoms (K, atoms per concept)"),
    ({"batch_size": 0}, "batch_size (None or an integer)"),
    ({"tol": -1.0}, "tol"),
    ({"random_state": -1}, "random_state"),
])
def test_parameter_errors_name_the_parameter_in_partial_fit_too(small, params, message):
    X, Y = small
    D0 = SLiCS(2, n_iter=0).fit(X, Y).dictionary_
    kwargs = {"n_atoms": 2, **params}
    for call in (lambda m: m.fit(X, Y), lambda m: m.partial_fit(X, Y, init_dictionary=D0)):
        with pytest.raises(ValueError) as err:
            call(SLiCS(**kwargs))
        assert str(err.value).startswith(message)


@pytest.mark.parametrize("method", ["fit", "transform", "components", "project", "partial_fit"])
def test_input_errors_name_x(small, method):
    X, Y = small
    model = SLiCS(2, n_iter=0).fit(X, Y)
    bad = X.copy()
    bad[0, 0] = np.nan
    args = (1,) if method == "project" else (Y,)
    with pytest.raises(ValueError, match=r"^X contains 1 NaN"):
        getattr(SLiCS(2) if method in ("fit", "partial_fit") else model, method)(bad, *args)
    if method not in ("fit", "partial_fit"):
        with pytest.raises(ValueError, match=r"^X has 5 columns but 12 are expected"):
            getattr(model, method)(X[:, :5], *args)


def test_a_model_is_refitted_without_keeping_its_width(small):
    X, Y = small
    model = SLiCS(2, n_iter=0).fit(X, Y)
    assert model.fit(X[:, :7], Y).n_features_in_ == 7


def test_labels_with_no_row_left_are_refused_with_the_reason(small):
    X, Y = small
    with pytest.raises(ValueError) as err:
        SLiCS(2).fit(X, np.zeros_like(Y))
    assert str(err.value) == "every row of Y is all-zero: there is nothing to learn from."


@pytest.mark.parametrize("norm", [1e-60, 1e60])
def test_scale_range_is_inclusive(norm):
    X = np.array([[norm, 0.0]])
    assert dictionary_module._check_scale(X) == norm ** 2
    with pytest.raises(ValueError) as err:
        dictionary_module._check_scale(X * (4.0 if norm > 1 else 0.25))
    assert "must lie in [1e-60, 1e+60], else float64 " + ("overflows" if norm > 1 else "underflows") in str(err.value)


def test_majority_sign_reads_integers_as_numbers():
    p = np.array([89, 35, 2], dtype=np.int8)        # p * |p| wraps around in int8 (89^2 > 127)
    assert majority_sign_ref(p.astype(float)) == 1.0
    assert dictionary_module.majority_sign(p) == 1.0
    out = dictionary_module.majority_sign([1.0, -2.0])
    assert out == -1.0 and type(out) is float


def test_an_increase_of_the_error_stops_a_fit_with_tol(monkeypatch, small):
    X, Y = small
    calls = []

    def improve_then_damage(D, W, E, Y, K, update, monotone, compiled=True):
        calls.append(1)
        if len(calls) != 2:
            return _atom_step(D, W, E, Y, K, update, monotone)
        D[:] = np.random.default_rng(0).standard_normal(D.shape)
        D /= np.linalg.norm(D, axis=1, keepdims=True)
        return 0

    monkeypatch.setattr(dictionary_module, "_atom_step", improve_then_damage)
    model = SLiCS(2, n_iter=6, tol=1e-12).fit(X, Y)
    assert model.error_history_[2] > model.error_history_[1]
    assert model.n_iter_ == 2 and len(calls) == 2
