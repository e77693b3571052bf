import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from slics import SLiCS, nnls_batch
from slics.core.dictionary import _atom_step, _new_atom, majority_sign, top_singular_pair
from slics.core.planted import atom_recovery, make_planted, relative_error


@pytest.fixture(scope="module")
def small():
    """Two or three concepts per sample, coherent (non-orthogonal) atoms within concepts."""
    return make_planted(800, 24, 4, 3, concepts_per_sample=(1, 3), noise=0.05, atom_coherence=0.3,
                        atom_density=0.4, random_state=0)


@pytest.fixture(scope="module")
def fitted(small):
    X, Y, _, _ = small
    return SLiCS(3, n_iter=5).fit(X, Y)


# ---------------------------------------------------------------- majority sign
def removed_energy(R, atom, coef):
    return float(np.sum(R * R) - np.sum((R - np.outer(coef, atom)) ** 2))


def test_majority_sign_equals_brute_force_best_sign():
    rng = np.random.default_rng(0)
    for trial in range(300):
        m, d = rng.integers(2, 30), rng.integers(2, 12)
        R = rng.standard_normal((m, d))
        if trial % 3 == 0:                       # mostly-negative projections on a direction
            R -= 2 * np.outer(rng.random(m), rng.standard_normal(d))
        U, S, Vt = np.linalg.svd(R, full_matrices=False)
        sigma_v, u = S[0] * U[:, 0], Vt[0]        # R ≈ (sigma v) u^T, rows are samples
        energies = {s: removed_energy(R, s * u, np.maximum(0, s * sigma_v)) for s in (1.0, -1.0)}
        best = max(energies, key=energies.get)
        if abs(energies[1.0] - energies[-1.0]) > 1e-12:
            assert majority_sign(sigma_v) == best
        # the K-SVD atom update attains the brute-force optimum
        atom, coef = _new_atom(R, np.ones(m), Vt[1] if d > 1 else Vt[0], "ksvd")
        assert removed_energy(R, atom, coef) == pytest.approx(energies[best], rel=1e-9, abs=1e-12)


def test_majority_sign_along_an_axis_and_ties():
    p = np.array([[3.0, -1.0], [-2.0, 1.0], [0.0, -1.0]])
    np.testing.assert_array_equal(majority_sign(p, axis=0), [1.0, -1.0])
    assert majority_sign([2.0, -2.0]) == 1.0     # ties go to +1
    assert majority_sign([1.0, 1.0, -1.2]) == 1.0   # 2 > 1.44: energy, not count or sum
    assert majority_sign([1.0, 1.0, -1.5]) == -1.0  # 2 < 2.25
    assert majority_sign([3.0, -1.0, -1.0, -1.0]) == 1.0
    assert majority_sign([1.0, -1.5]) == -1.0


@pytest.mark.parametrize("shape", [(300, 40), (40, 300), (500, 64)])
def test_top_singular_pair_matches_numpy(shape):
    rng = np.random.default_rng(1)
    R = rng.standard_normal(shape) + 0.5 * np.outer(rng.standard_normal(shape[0]), rng.standard_normal(shape[1]))
    _, S, Vt = np.linalg.svd(R, full_matrices=False)
    for v0 in (None, rng.standard_normal(shape[1]), Vt[-1]):
        sigma, v = top_singular_pair(R, v0=v0)
        assert sigma == pytest.approx(S[0], rel=1e-12)
        assert abs(v @ Vt[0]) == pytest.approx(1.0, abs=1e-8)


# ---------------------------------------------------------------- atom step
def test_monotone_check_rejects_an_update_that_raises_the_error():
    # Half the rows are +-e1 (the top singular direction, but half is lost by the
    # non-negativity), the rest are 0.9 e2; the current atom e2 removes more energy.
    X = np.zeros((20, 2))
    X[:10, 0] = np.tile([1.0, -1.0], 5)
    X[10:, 1] = 0.9
    Y = np.ones((20, 1), bool)
    for monotone in (False, True):
        D = np.array([[0.0, 1.0]])
        W = np.full((20, 1), 1e-3)
        W[10:] = 0.9
        E = X - W @ D
        before = np.sum(E ** 2)
        rejected = _atom_step(D, W, E, Y, 1, "ksvd", monotone)
        np.testing.assert_allclose(E, X - W @ D, atol=1e-12)      # residual kept consistent
        if monotone:
            assert rejected == 1 and np.sum(E ** 2) == before
            np.testing.assert_array_equal(D, [[0.0, 1.0]])
        else:
            assert rejected == 0 and np.sum(E ** 2) > before + 1.0


def test_unused_atom_is_kept_unchanged():
    X, Y, D, _ = make_planted(200, 12, 2, 3, concepts_per_sample=(1, 2), random_state=2)
    W = nnls_batch(D, X, np.repeat(Y, 3, axis=1))
    W[:, 4] = 0.0                                  # nobody uses atom 4
    E = X - W @ D
    D2 = D.copy()
    _atom_step(D2, W, E, Y, 3, "ksvd", False)
    np.testing.assert_array_equal(D2[4], D[4])
    assert not np.allclose(D2[0], D[0])
    np.testing.assert_allclose(np.linalg.norm(D2, axis=1), 1.0)


# ---------------------------------------------------------------- fitting
def test_ssvd_initialisation_is_the_top_singular_vectors(small):
    X, Y, _, _ = small
    model = SLiCS(3, n_iter=0).fit(X, Y)
    assert model.error_history_.shape == (1,)
    np.testing.assert_array_equal(model.dictionary_, model.init_dictionary_)
    for j in range(4):
        Xj = X[Y[:, j]]
        Vt = np.linalg.svd(Xj, full_matrices=False)[2][:3]
        atoms = model.dictionary_[model.atom_concept_ == j]
        np.testing.assert_allclose(np.abs(np.sum(atoms * Vt, axis=1)), 1.0, atol=1e-8)
        proj = Xj @ atoms.T                        # polarity: majority of the energy positive
        assert np.all(np.sum(proj * np.abs(proj), axis=0) >= 0)


@pytest.mark.parametrize("update", ["ksvd", "bcd", "power"])
def test_monotone_error_history_never_increases(small, update):
    X, Y, _, _ = small
    model = SLiCS(3, n_iter=8, update=update, monotone=True).fit(X, Y)
    h = model.error_history_
    assert h.shape == (9,)
    assert np.all(np.diff(h) <= 1e-12)
    assert h[-1] < 0.7 * h[0]                      # SLiCS ends well below its S-SVD start
    np.testing.assert_allclose(np.linalg.norm(model.dictionary_, axis=1), 1.0)


def test_error_history_is_the_training_transform_error(small, fitted):
    X, Y, _, _ = small
    W = fitted.transform(X, Y)
    assert fitted.error_history_[-1] == pytest.approx(relative_error(X, W, fitted.dictionary_), rel=1e-9)


def test_minibatch_fit_ends_near_full_batch():
    # Both reach the same error level here (the noise floor is 0.050). Like K-SVD, either
    # mode can stop in a poorer local minimum on some draws: with random_state=0 for the
    # data the full-batch fit stalls at 0.11 while batches of 200 reach 0.044.
    X, Y, _, _ = make_planted(800, 24, 4, 3, concepts_per_sample=(1, 3), noise=0.05, atom_coherence=0.3,
                              atom_density=0.4, random_state=1)
    full = SLiCS(3, n_iter=40).fit(X, Y)
    mini = SLiCS(3, n_iter=15, batch_size=200, random_state=1).fit(X, Y)
    assert mini.error_history_[-1] < 0.2 * mini.error_history_[0]
    assert mini.error_history_[-1] == pytest.approx(full.error_history_[-1], rel=0.1)


def test_fit_is_reproducible(small):
    X, Y, _, _ = small
    a = SLiCS(3, n_iter=3, batch_size=300, random_state=5).fit(X, Y)
    b = clone(a).fit(X, Y)
    np.testing.assert_array_equal(a.dictionary_, b.dictionary_)
    assert a.get_params()["batch_size"] == 300


def test_planted_recovery_at_low_noise():
    """Setting: n=1500, d=48, C=5 concepts, K=4 atoms (cosine ~0.3 within a concept, concept
    directions with cosine ~0.3), 1-3 concepts per sample (about 2 on average), noise 0.02,
    30 iterations."""
    X, Y, D, W = make_planted(1500, 48, 5, 4, concepts_per_sample=(1, 3), noise=0.02, atom_coherence=0.3,
                              atom_density=0.3, concept_coherence=0.3, random_state=0)
    floor = relative_error(X, W, D)
    model = SLiCS(4, n_iter=30).fit(X, Y)
    learned = atom_recovery(D, model.dictionary_, model.atom_concept_)
    init = atom_recovery(D, model.init_dictionary_, model.atom_concept_)
    print(f"planted recovery: mean |cos| learned {learned:.3f} vs S-SVD init {init:.3f}; "
          f"rel. error {model.error_history_[-1]:.4f} (init {model.error_history_[0]:.4f}) vs floor {floor:.4f}")
    assert learned > init + 0.15 and learned > 0.7
    assert model.error_history_[-1] < 1.15 * floor
    assert model.error_history_[0] > 10 * floor


# ---------------------------------------------------------------- using
def test_transform_is_supported_on_the_labels(small, fitted):
    X, Y, _, _ = small
    W = fitted.transform(X[:100], Y[:100])
    assert W.shape == (100, 12) and np.all(W >= 0)
    assert np.all(W[~np.repeat(Y[:100], 3, axis=1)] == 0)


def test_components_sum_to_the_nnls_reconstruction(small, fitted):
    X, Y, _, _ = small
    comps = fitted.components(X[:50], Y[:50])
    assert comps.shape == (50, 4, 24)
    np.testing.assert_allclose(comps.sum(axis=1), fitted.transform(X[:50], Y[:50]) @ fitted.dictionary_,
                               atol=1e-12)
    assert np.all(comps[~Y[:50]] == 0)


def test_project_is_the_closest_point_of_the_cone(small, fitted):
    X, _, _, _ = small
    rng = np.random.default_rng(3)
    for j in range(4):
        Dj = fitted.dictionary_[fitted.atom_concept_ == j]
        P = fitted.project(X[:40], j)
        for i in range(40):
            ref = scipy_nnls(Dj.T, X[i])[0] @ Dj
            np.testing.assert_allclose(P[i], ref, atol=1e-8)
            others = rng.random((200, 3)) * 2 * np.abs(scipy_nnls(Dj.T, X[i])[0]).max() @ Dj
            assert np.linalg.norm(X[i] - P[i]) <= np.linalg.norm(X[i] - others, axis=1).min() + 1e-12


def test_concept_with_fewer_samples_than_atoms_gets_random_atoms():
    X, Y, _, _ = make_planted(200, 16, 3, 2, random_state=1)
    Y = Y.copy()
    Y[:, 2] = False
    Y[:2, 2] = True                                # only 2 samples, K = 4
    Y[~Y.any(axis=1), 0] = True
    with pytest.warns(UserWarning, match="concept 2 has 2 training sample"):
        model = SLiCS(4, n_iter=2).fit(X, Y)
    np.testing.assert_allclose(np.linalg.norm(model.dictionary_, axis=1), 1.0)
    assert np.all(np.isfinite(model.error_history_))


def test_all_zero_label_rows_are_dropped_with_a_warning(small):
    X, Y, _, _ = small
    Y0 = Y.copy()
    Y0[:10] = False
    with pytest.warns(UserWarning, match="dropping 10 sample"):
        a = SLiCS(3, n_iter=1).fit(X, Y0)
    b = SLiCS(3, n_iter=1).fit(X[10:], Y[10:])
    np.testing.assert_allclose(a.dictionary_, b.dictionary_)
    assert np.all(a.transform(X[:10], Y0[:10]) == 0)


# ---------------------------------------------------------------- invalid input
def test_invalid_fit_input(small):
    X, Y, _, _ = small
    cases = [
        (SLiCS(3), X[:-1], Y, "Y has 800 rows but X has 799"),
        (SLiCS(3), X, np.where(Y, 2, 0), "binary"),
        (SLiCS(3), np.where(np.arange(24) == 5, np.nan, X), Y, "NaN"),
        (SLiCS(0), X, Y, "n_atoms"),
        (SLiCS(2.5), X, Y, "n_atoms"),
        (SLiCS(3, update="svd"), X, Y, "update must be one of"),
        (SLiCS(3, n_iter=-1), X, Y, "n_iter"),
        (SLiCS(3, batch_size=0), X, Y, "batch_size"),
        (SLiCS(3, ridge=-1), X, Y, "ridge"),
        (SLiCS(3), X, np.c_[Y, np.zeros(800, bool)], r"concept\(s\) \[4\] have no training samples"),
        (SLiCS(3), X[:5], np.zeros((5, 4)), "every row of Y is all-zero"),
    ]
    for model, Xb, Yb, match in cases:
        with pytest.raises(ValueError, match=match):
            with pytest.warns(UserWarning) if "all-zero" in match else _nullcontext():
                model.fit(Xb, Yb)


def test_invalid_use_input(small, fitted):
    X, Y, _, _ = small
    with pytest.raises(ValueError, match="columns but 24 are expected"):
        fitted.transform(X[:, :20], Y)
    with pytest.raises(ValueError, match="Y has 3 concepts but the model was fitted with 4"):
        fitted.transform(X, Y[:, :3])
    with pytest.raises(ValueError, match="concept must be an integer"):
        fitted.project(X, 4)
    with pytest.raises(NotFittedError):
        SLiCS(3).transform(X, Y)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_fit_on_all_zero_data_raises():
    Y = np.eye(3, dtype=bool)[np.arange(12) % 3]
    with pytest.raises(ValueError, match="all zeros"):
        SLiCS(n_atoms=1, n_iter=1).fit(np.zeros((12, 5)), Y)


@pytest.mark.parametrize("param", [{"n_atoms": 1.5}, {"n_atoms": 2, "n_iter": 2.9}])
def test_fractional_integer_parameters_rejected(param):
    Y = np.eye(3, dtype=bool)[np.arange(12) % 3]
    X = np.random.default_rng(0).normal(size=(12, 5))
    with pytest.raises(ValueError, match="integer"):
        SLiCS(**param).fit(X, Y)


def test_error_tolerance_stops_early_with_the_same_history():
    X, Y, _, _ = make_planted(n_samples=400, n_features=24, n_concepts=4, n_atoms=3, random_state=1)
    full = SLiCS(3, n_iter=6).fit(X, Y)
    assert full.n_iter_ == 6
    dec = -np.diff(full.error_history_) / full.error_history_[:-1]
    tol = float(dec[2]) * 1.0001            # the third iteration's decrease is just below tol
    early = SLiCS(3, n_iter=6, tol=tol).fit(X, Y)
    k = int(np.argmax(dec < tol)) + 1
    assert early.n_iter_ == k < 6
    np.testing.assert_allclose(early.error_history_, full.error_history_[:k + 1], rtol=1e-12)
    assert SLiCS(3, n_iter=6, tol=0.0).fit(X, Y).n_iter_ <= 6
    with pytest.raises(ValueError, match="tol"):
        SLiCS(3, tol=-1.0).fit(X, Y)


# ---------------------------------------------------------------- compiled K-SVD step
# The error history of this case from the previous solver (Python Golub-Kahan-Lanczos to a
# singular-vector tolerance of 1e-6, scipy-free batched NNLS), recorded before the compiled
# atom step and NNLS replaced it: the new solvers must reproduce it to that tolerance.
PREVIOUS_HISTORY = [0.4908176847575961, 0.34129515542259703, 0.2677192304883938, 0.21552446369818734,
                    0.18294953469568798, 0.1588316579340567, 0.13742362343473155, 0.11866993129421241,
                    0.10305291143540907, 0.09046163064116171, 0.08042465303301045]


@pytest.fixture(scope="module")
def history_case():
    return make_planted(600, 32, 4, 3, concepts_per_sample=(1, 3), noise=0.05, atom_coherence=0.3,
                        atom_density=0.4, random_state=3)


def test_error_history_matches_the_previous_solver(history_case):
    X, Y, _, _ = history_case
    model = SLiCS(3, n_iter=10).fit(X, Y)
    np.testing.assert_allclose(model.error_history_, PREVIOUS_HISTORY, rtol=2e-6)


def test_compiled_atom_step_matches_the_python_reference(history_case, monkeypatch):
    """The compiled step against the straightforward Python one (gathered copies, numpy
    Golub-Kahan-Lanczos, both to the same tight tolerance) over a whole fit."""
    import slics.core.dictionary as dictionary

    X, Y, _, _ = history_case
    fast = SLiCS(3, n_iter=10).fit(X, Y)
    python_step = dictionary._atom_step
    monkeypatch.setattr(dictionary, "_atom_step", lambda *a: python_step(*a, compiled=False))
    ref = SLiCS(3, n_iter=10).fit(X, Y)
    np.testing.assert_allclose(fast.error_history_, ref.error_history_, rtol=1e-10)
    np.testing.assert_allclose(fast.dictionary_, ref.dictionary_, atol=1e-9)
    for monotone in (False, True):                       # and the monotone check, atom by atom
        D0, W0 = fast.init_dictionary_.copy(), nnls_batch(fast.init_dictionary_, X, np.repeat(Y, 3, axis=1))
        out = []
        for compiled in (True, False):
            D, W, E = D0.copy(), W0.copy(), X - W0 @ D0
            rejected = python_step(D, W, E, Y, 3, "ksvd", monotone, compiled=compiled)
            out.append((D, W, E, rejected))
        assert out[0][3] == out[1][3]
        for a, b in zip(out[0][:3], out[1][:3]):
            np.testing.assert_allclose(a, b, atol=1e-9)


def test_fit_is_bitwise_identical_under_one_and_two_threads(history_case):
    import numba

    X, Y, _, _ = history_case
    before = numba.get_num_threads()
    try:
        fits = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            fits.append(SLiCS(3, n_iter=4).fit(X, Y))
    finally:
        numba.set_num_threads(before)
    assert fits[0].dictionary_.tobytes() == fits[1].dictionary_.tobytes()
    assert fits[0].error_history_.tobytes() == fits[1].error_history_.tobytes()


@pytest.mark.parametrize("batch_size", [None, 200])
def test_products_before_the_compiled_kernels_are_sized_for_their_blas_threads(history_case, monkeypatch,
                                                                                batch_size):
    """The fit's products that a compiled kernel follows (NNLS's Gram matrix, the residual before
    the atom step) ask ``blas_threads_for`` with their own multiply-adds, so that a small one runs on
    one BLAS thread (OpenBLAS's threads spin after a call and take the kernel's cores); the fit's
    bits do not depend on the BLAS threads."""
    from threadpoolctl import threadpool_limits

    import slics.core.dictionary as dictionary
    import slics.core.nnls as nnls
    from slics.utils.threads import blas_threads_for

    X, Y, _, _ = history_case
    asked = []

    def recording(madds):
        asked.append(madds)
        return blas_threads_for(madds)

    for module in (dictionary, nnls):
        monkeypatch.setattr(module, "blas_threads_for", recording)
    fit = SLiCS(3, n_iter=2, batch_size=batch_size).fit(X, Y)
    n, d = X.shape
    m = 3 * Y.shape[1]
    rows = [n] + ([] if batch_size is None else [len(b) for b in np.array_split(np.arange(n), n // batch_size)])
    gram, residual = m * m * d, {r * m * d for r in rows}      # every pass's, and every batch's
    assert gram in asked and residual <= set(asked)
    assert set(asked) <= {gram} | residual
    with threadpool_limits(1, user_api="blas"):
        one = SLiCS(3, n_iter=2, batch_size=batch_size).fit(X, Y)
    assert one.dictionary_.tobytes() == fit.dictionary_.tobytes()


def test_parallel_atom_passes_are_bitwise_identical_under_one_and_two_threads():
    """Atoms active on more than ``_PARALLEL_ROWS`` rows take the parallel gather, ``R^T R q`` and
    write-back: their blocks are added in the one-thread order, so the bytes match."""
    import numba

    from slics.core import _ksvd

    X, Y, _, _ = make_planted(6000, 32, 2, 2, concepts_per_sample=(1, 2), noise=0.05, atom_coherence=0.3,
                              atom_density=0.6, random_state=5)
    model = SLiCS(2, n_iter=0).fit(X, Y)
    D0 = model.init_dictionary_
    W0 = nnls_batch(D0, X, np.repeat(Y, 2, axis=1))
    assert (W0 > 0).sum(axis=0).min() > _ksvd._PARALLEL_ROWS          # the parallel path runs
    before = numba.get_num_threads()
    out = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            D, W = D0.copy(), W0.copy()
            E = X - W @ D
            _atom_step(D, W, E, Y, 2, "ksvd", False)
            out.append((D, W, E))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*out):
        assert a.tobytes() == b.tobytes()
    ref = [D0.copy(), W0.copy(), X - W0 @ D0]                          # and the Python reference
    _atom_step(*ref, Y, 2, "ksvd", False, compiled=False)
    for a, b in zip(out[0], ref):
        np.testing.assert_allclose(a, b, atol=1e-9)
