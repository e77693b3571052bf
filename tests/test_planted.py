import numpy as np
import pytest

from slics.core.planted import atom_recovery, make_planted, relative_error, support_recovery


def test_shapes_and_model_constraints():
    X, Y, D, W = make_planted(500, 20, 5, 3, concepts_per_sample=(2, 3), noise=0.1, random_state=0)
    assert X.shape == (500, 20) and Y.shape == (500, 5) and D.shape == (15, 20) and W.shape == (500, 15)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0)
    counts = Y.sum(axis=1)
    assert counts.min() == 2 and counts.max() == 3
    assert np.all(W >= 0)
    assert np.all(W[~np.repeat(Y, 3, axis=1)] == 0)
    # every active concept uses at least one atom
    assert np.all(W.reshape(500, 5, 3).any(axis=2) == Y)


def test_noise_level_and_concept_probabilities():
    X, Y, D, W = make_planted(4000, 64, 6, 4, concept_probs=(0.2, 0.3, 0.5), noise=0.1, random_state=1)
    assert Y.sum(axis=1).mean() == pytest.approx(2.3, abs=0.05)
    assert relative_error(X, W, D) == pytest.approx(0.1 / np.sqrt(1 + 0.01), rel=0.05)
    X0, _, D0, W0 = make_planted(50, 16, 3, 2, noise=0.0, random_state=1)
    assert relative_error(X0, W0, D0) < 1e-12


def test_within_concept_atoms_are_coherent_not_orthogonal():
    _, _, D, _ = make_planted(10, 256, 8, 4, atom_coherence=0.4, concept_coherence=0.25, random_state=2)
    G = D @ D.T
    same = np.kron(np.eye(8), np.ones((4, 4))).astype(bool) & ~np.eye(32, dtype=bool)
    other = ~np.kron(np.eye(8), np.ones((4, 4))).astype(bool)
    assert G[same].mean() == pytest.approx(0.4, abs=0.08)
    assert G[other].mean() == pytest.approx(0.4 * 0.25, abs=0.05)


def test_reproducible_and_seed_dependent():
    a = make_planted(100, 8, 3, 2, random_state=3)
    b = make_planted(100, 8, 3, 2, random_state=3)
    c = make_planted(100, 8, 3, 2, random_state=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


def test_atom_recovery_is_invariant_to_order_and_sign_within_concepts():
    rng = np.random.default_rng(0)
    _, _, D, _ = make_planted(10, 30, 4, 3, random_state=5)
    concept = np.repeat(np.arange(4), 3)
    perm = np.concatenate([j * 3 + rng.permutation(3) for j in range(4)])
    signs = rng.choice([-1.0, 1.0], size=(12, 1))
    assert atom_recovery(D, signs * D[perm], concept) == pytest.approx(1.0)
    # matching is only within concepts: swapping two concepts is not a recovery
    swapped = np.vstack([D[3:6], D[0:3], D[6:]])
    assert atom_recovery(D, swapped, concept) < 0.9
    random = rng.standard_normal((12, 30))
    assert atom_recovery(D, random, concept) < 0.4
    # Hungarian matching beats (or equals) the identity matching
    noisy = D + 0.3 * rng.standard_normal(D.shape)
    identity = np.mean(np.abs(np.sum(D * noisy, axis=1)) / np.linalg.norm(noisy, axis=1))
    assert atom_recovery(D, noisy[perm], concept) >= identity - 1e-12


def test_support_recovery_values():
    t = np.array([[1, 1, 0], [0, 1, 0]], bool)
    e = np.array([[1, 0, 1], [0, 1, 0]], bool)
    r = support_recovery(t, e)
    assert r == {"recall": 0.75, "precision": 0.75, "exact": 0.5}


@pytest.mark.parametrize("kwargs, match", [
    (dict(concepts_per_sample=(1, 5)), "concepts_per_sample"),
    (dict(noise=-0.1), "noise"),
    (dict(atom_coherence=1.0), "atom_coherence"),
    (dict(atom_density=0.0), "atom_density"),
    (dict(concept_coherence=-0.1), "concept_coherence"),
    (dict(n_atoms=0), "must all be >= 1"),
])
def test_invalid_generator_arguments(kwargs, match):
    args = dict(n_samples=10, n_features=8, n_concepts=4, n_atoms=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_planted(**args)


def test_atom_recovery_shape_errors():
    with pytest.raises(ValueError, match="same atoms"):
        atom_recovery(np.ones((4, 3)), np.ones((4, 3)), [0, 0, 1])
    with pytest.raises(ValueError, match="columns"):
        atom_recovery(np.ones((4, 3)), np.ones((4, 2)), [0, 0, 1, 1])
