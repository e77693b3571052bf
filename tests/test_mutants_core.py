"""Tests written for the survivors of `make mutation` over slics.core (alignment, splice, planted,
omp), class by class: dtype handling of the inputs, the scale of the rows, which argument an
error names, the default parameters, the code formats accepted, and that atoms are only
matched within their concept. Each test compares against the formula or a hand-made case.
"""

import numpy as np
import pytest
import scipy.sparse

from slics.core.alignment import alignment_errors, rotation_error
from slics.core.planted import atom_recovery
from slics.core.splice import SpLiCE, group_vocabulary


# ------------------------------------------------------------------ alignment
@pytest.mark.parametrize("dtype", [bool, np.int8, np.int64])
def test_rotation_error_reads_any_numeric_maps_as_float(dtype):
    """Boolean or integer maps are read as numbers (a boolean subtraction would raise)."""
    eye, zero = np.eye(3, dtype=dtype), np.zeros((3, 3), dtype=dtype)
    assert rotation_error(eye, zero) == pytest.approx(1.0)          # ||I||_F / sqrt(3)
    assert rotation_error(zero, eye) == pytest.approx(1.0)
    assert rotation_error(eye, eye) == 0.0


@pytest.mark.parametrize("scale", [1e-3, 1e-150, 1e3])
def test_alignment_errors_cosines_do_not_depend_on_the_scale(scale):
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(6, 4))
    M = Y + 0.1 * rng.normal(size=Y.shape)
    cos = np.sum(M * Y, axis=1) / (np.linalg.norm(M, axis=1) * np.linalg.norm(Y, axis=1))
    out = alignment_errors(scale * M, scale * Y)
    assert out["mean_cosine"] == pytest.approx(cos.mean(), rel=1e-12)
    assert out["top1_match"] == 1.0
    assert out["relative_error"] == pytest.approx(np.linalg.norm(M - Y) / np.linalg.norm(Y), rel=1e-12)


def test_alignment_errors_names_a_width_mismatch():
    with pytest.raises(ValueError, match=r"^mapped rows have 3 features but Y has 4\.$"):
        alignment_errors(np.ones((2, 3)), np.ones((2, 4)))


# ------------------------------------------------------------------ SpLiCE
def test_splice_default_lam_is_the_papers():
    assert SpLiCE().get_params() == {"lam": 0.25}


def test_group_vocabulary_names_its_arguments():
    V = np.random.default_rng(1).normal(size=(5, 4))
    with pytest.raises(ValueError, match="^vocab_centred contains 1 NaN"):
        group_vocabulary(np.vstack([V[:4], [np.nan, 0, 0, 0]]), V[:2], np.zeros(4))
    with pytest.raises(ValueError, match="^concept_emb has 3 columns but 4 are expected"):
        group_vocabulary(V, V[:2, :3], np.zeros(4))
    with pytest.raises(ValueError, match="^concept_emb contains"):
        group_vocabulary(V, np.full((2, 4), np.inf), np.zeros(4))


@pytest.fixture(scope="module")
def grouped():
    rng = np.random.default_rng(2)
    vocab, concepts = rng.normal(size=(12, 6)), rng.normal(size=(3, 6))
    model = SpLiCE(lam=0.05).fit(vocab, concepts)
    return model, model.transform(rng.normal(size=(4, 6)))


def test_splice_reconstruct_accepts_sparse_and_list_codes(grouped):
    model, W = grouped
    dense = model.reconstruct(W)
    assert np.allclose(dense, W @ model.vocab_)
    assert np.allclose(model.reconstruct(scipy.sparse.csr_matrix(W)), dense)
    assert np.allclose(model.reconstruct(W.tolist()), dense)
    part = model.reconstruct(scipy.sparse.csr_matrix(W), concept=1)
    keep = model.groups_ == 1
    assert np.allclose(part, W[:, keep] @ model.vocab_[keep])


def test_splice_partial_reconstruction_without_groups_says_how():
    rng = np.random.default_rng(3)
    model = SpLiCE(lam=0.05).fit(rng.normal(size=(6, 4)))
    W = model.transform(rng.normal(size=(2, 4)))
    with pytest.raises(ValueError, match=r"^fit with concept_emb to group the vocabulary before partial "
                                         r"reconstructions\.$"):
        model.reconstruct(W, concept=0)


# ------------------------------------------------------------------ planted
def test_atom_recovery_matches_atoms_only_within_their_concept():
    """Concepts 0 and 1 learned each other's atoms: they count 0, however well the atoms match across."""
    true_D = np.eye(6)
    learned = true_D[[2, 3, 0, 1, 4, 5]]
    assert atom_recovery(true_D, learned, np.array([0, 0, 1, 1, 2, 2])) == pytest.approx(2 / 6)
    assert atom_recovery(true_D, true_D[[1, 0, 3, 2, 5, 4]], np.array([0, 0, 1, 1, 2, 2])) == 1.0  # order, sign free
    assert atom_recovery(true_D, -true_D, np.array([0, 0, 1, 1, 2, 2])) == 1.0


def test_atom_recovery_names_its_arguments():
    D = np.eye(4)
    with pytest.raises(ValueError, match="^true_D contains 1 NaN"):
        atom_recovery(np.vstack([D[:3], [np.nan, 0, 0, 0]]), D, np.zeros(4, int))
    with pytest.raises(ValueError, match="^learned_D has 3 columns but 4 are expected"):
        atom_recovery(D, D[:, :3], np.zeros(4, int))
    with pytest.raises(ValueError, match="^learned_D contains"):
        atom_recovery(D, np.full((4, 4), np.inf), np.zeros(4, int))


@pytest.fixture(scope="module")
def planted_default():
    from slics.core.planted import make_planted

    return make_planted()


def test_make_planted_defaults_are_the_documented_ones(planted_default):
    """n_samples=1000, n_features=64, 6 concepts of 4 atoms, (1, 3) concepts per sample, noise 0.05,
    atom_coherence 0.3, concept_coherence 0, random_state 0, measured from the draw itself."""
    from slics.core.planted import make_planted

    X, Y, D, W = planted_default
    assert X.shape == (1000, 64) and Y.shape == (1000, 6) and D.shape == (24, 64) and W.shape == (1000, 24)
    counts = Y.sum(axis=1)
    assert counts.min() == 1 and counts.max() == 3 and abs(counts.mean() - 2) < 0.1
    S = W @ D
    noise = np.linalg.norm(X - S, axis=1) / np.linalg.norm(S, axis=1)
    assert abs(noise.mean() - 0.05) < 0.005                          # ||E|| is about 1
    G = D @ D.T
    same = np.kron(np.eye(6), np.ones((4, 4))).astype(bool) & ~np.eye(24, dtype=bool)
    assert abs(G[same].mean() - 0.3) < 0.1 and abs(G[~same & ~np.eye(24, dtype=bool)].mean()) < 0.05
    again = make_planted(random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(planted_default, again))


@pytest.mark.parametrize("name", ["n_samples", "n_features", "n_concepts", "n_atoms"])
def test_make_planted_names_each_size(name):
    from slics.core.planted import make_planted

    with pytest.raises(ValueError, match=f"^{name} must be an integer, got 2.5"):
        make_planted(**{name: 2.5})
    with pytest.raises(ValueError, match="must all be >= 1"):
        make_planted(**{name: 0})
