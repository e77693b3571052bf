import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from slics import SLiCS, group_nn_omp, nn_omp, nnls_batch
from slics.core.planted import make_planted, support_recovery


@pytest.fixture(scope="module")
def planted():
    """1-3 concepts per sample, coherent atoms (cosine ~0.4 within, ~0.2 across concepts), noise 0.2."""
    return make_planted(1200, 32, 6, 4, concepts_per_sample=(1, 3), noise=0.2, atom_coherence=0.4,
                        atom_density=0.5, concept_coherence=0.5, random_state=5)


def concepts_of(selected_atoms, K):
    return selected_atoms.reshape(selected_atoms.shape[0], -1, K).any(axis=2)


def test_first_atom_is_the_best_positive_correlation():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((12, 8)) * rng.uniform(0.5, 2.0, (12, 1))    # unequal atom norms
    X = rng.standard_normal((50, 8))
    W, sel = nn_omp(D, X, 1, return_selection=True)
    corr = X @ (D / np.linalg.norm(D, axis=1, keepdims=True)).T
    for i in range(50):
        if corr[i].max() > 0:
            a = np.argmax(corr[i])
            assert sel[i].sum() == 1 and sel[i, a]
            assert W[i, a] == pytest.approx(max(0.0, X[i] @ D[a]) / (D[a] @ D[a]))
        else:
            assert not sel[i].any() and not W[i].any()


def test_coefficients_are_the_nnls_refit_on_the_selection(planted):
    X, _, D, _ = planted
    W, sel = nn_omp(D, X[:100], 5, return_selection=True)
    assert np.all(sel.sum(axis=1) <= 5) and np.all(W[~sel] == 0)
    np.testing.assert_allclose(W, nnls_batch(D, X[:100], sel), atol=1e-10)


def test_unlimited_atom_pursuit_reaches_the_full_nnls_optimum(planted):
    # When no atom correlates positively with the residual the KKT conditions of the
    # full problem hold, so the greedy result is an NNLS minimiser.
    X, _, D, _ = planted
    W = nn_omp(D, X[:60], D.shape[0])
    for i in range(60):
        ref = scipy_nnls(D.T, X[i])[0]
        f, f_ref = np.sum((X[i] - W[i] @ D) ** 2), np.sum((X[i] - ref @ D) ** 2)
        assert f == pytest.approx(f_ref, rel=1e-8, abs=1e-14)


def test_first_group_is_the_best_nnls_fit_of_a_group():
    rng = np.random.default_rng(1)
    D = rng.standard_normal((9, 6))
    groups = np.array([2, 2, 2, 7, 7, 7, 9, 9, 9])
    X = rng.standard_normal((40, 6))
    W, sel = group_nn_omp(D, groups, X, 1, return_selection=True)
    for i in range(40):
        energy = [np.sum((scipy_nnls(D[groups == g].T, X[i])[0] @ D[groups == g]) ** 2) for g in (2, 7, 9)]
        assert sel[i].sum() == 1 and sel[i, np.argmax(energy)]
        assert np.all(W[i, groups != (2, 7, 9)[np.argmax(energy)]] == 0)


def test_per_row_counts_and_zero_counts(planted):
    X, Y, D, _ = planted
    counts = np.arange(10) % 3
    W, sel = group_nn_omp(D, np.repeat(np.arange(6), 4), X[:10], counts, return_selection=True)
    np.testing.assert_array_equal(sel.sum(axis=1), counts)
    assert not W[counts == 0].any()


def test_support_recovery_with_the_true_dictionary(planted):
    X, Y, D, W = planted
    K = 4
    _, groups_sel = group_nn_omp(D, np.repeat(np.arange(6), K), X, Y.sum(axis=1), return_selection=True)
    _, atoms_sel = nn_omp(D, X, (W > 0).sum(axis=1), return_selection=True)
    g = support_recovery(Y, groups_sel)
    a = support_recovery(W > 0, atoms_sel)
    ac = support_recovery(Y, concepts_of(atoms_sel, K))
    print(f"true dictionary: group-OMP concept recall {g['recall']:.3f} (exact {g['exact']:.3f}); "
          f"atom-OMP atom recall {a['recall']:.3f}, concept recall {ac['recall']:.3f}")
    assert g["recall"] >= 0.95
    assert a["recall"] >= 0.85
    assert ac["recall"] >= 0.95


def test_support_recovery_with_a_learned_dictionary(planted):
    X, Y, _, _ = planted
    model = SLiCS(4, n_iter=10).fit(X[:800], Y[:800])
    Xt, Yt = X[800:], Y[800:]
    _, sel = group_nn_omp(model.dictionary_, model.atom_concept_, Xt, Yt.sum(axis=1), return_selection=True)
    g = support_recovery(Yt, sel)
    print(f"learned dictionary (held-out): group-OMP concept recall {g['recall']:.3f} (exact {g['exact']:.3f})")
    assert g["recall"] >= 0.9


def test_invalid_input():
    D = np.ones((4, 3))
    with pytest.raises(ValueError, match="n_nonzero must be a non-negative integer"):
        nn_omp(D, np.ones((2, 3)), -1)
    with pytest.raises(ValueError, match="n_groups must be a non-negative integer"):
        group_nn_omp(D, [0, 0, 1, 1], np.ones((2, 3)), np.array([1.5, 1]))
    with pytest.raises(ValueError, match="groups must have one label per atom"):
        group_nn_omp(D, [0, 1], np.ones((2, 3)), 1)
    with pytest.raises(ValueError, match="all-zero atom"):
        nn_omp(np.zeros((2, 3)), np.ones((2, 3)), 1)
    with pytest.raises(ValueError, match="columns but 3 are expected"):
        nn_omp(D, np.ones((2, 4)), 1)
