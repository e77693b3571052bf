"""Tests written for the survivors of `make mutation` over slics.core (alignment, splice, planted,
omp, normalise, zero_shot, retrieval, storage), class by class: dtype handling of the inputs, the scale of the rows, which argument an
error names, the default parameters, the code formats accepted, and that atoms are only
matched within their concept. Each test compares against the formula or a hand-made case.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from slics.core.alignment import ProcrustesAlignment, alignment_errors, rotation_error
from slics.core.normalise import normalise_rows
from slics.core.zero_shot import cosine_similarity, zero_shot_accuracy, zero_shot_pseudo_labels
from slics.core.planted import atom_recovery, make_planted, relative_error, support_recovery
from slics.core.retrieval import (average_precision_at_k, filtered_retrieval, mean_average_precision, top_k,
                                  unit_candidates)
from slics.core.storage import implied_nonzeros_per_row, storage_bytes
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


# ------------------------------------------------------------------ alignment (second pass)
def test_procrustes_scale_is_the_sum_of_singular_values():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
    model = __import__("slics.core.alignment", fromlist=["x"]).ProcrustesAlignment().fit(X, Y)
    assert isinstance(model.scale_, float)
    assert model.scale_ == pytest.approx(np.linalg.svd(X.T @ Y, compute_uv=False).sum(), rel=1e-12)


def test_linear_map_transform_checks_x_against_the_source_width():
    from slics.core.alignment import LeastSquaresAlignment

    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(12, 5)), rng.normal(size=(12, 3))
    model = LeastSquaresAlignment().fit(X, Y)                          # map_ is (5, 3)
    assert np.allclose(model.transform(X), X @ model.map_)
    with pytest.raises(ValueError, match="^X has 3 columns but 5 are expected"):
        model.transform(Y)
    with pytest.raises(ValueError, match="^X contains 1 NaN"):
        model.transform(np.where(np.arange(60).reshape(12, 5) == 0, np.nan, X))


def test_random_rotation_seed_must_be_non_negative():
    from slics.core.alignment import random_rotation

    with pytest.raises(ValueError, match="^seed must be at least 0, got -1"):
        random_rotation(3, -1)
    R = random_rotation(3, 0)
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)


# ------------------------------------------------------------------ omp
def _positive_problem():
    rng = np.random.default_rng(6)
    D = np.abs(rng.normal(size=(6, 5)))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    W = np.zeros((8, 6))
    W[np.arange(8), np.arange(8) % 6] = 1.0
    W[np.arange(8), (np.arange(8) + 2) % 6] = 0.5
    return D, W @ D


@pytest.mark.parametrize("k", [1, 2])
def test_nn_omp_selects_exactly_the_requested_atoms(k):
    from slics.core.omp import nn_omp

    D, X = _positive_problem()
    W, selected = nn_omp(D, X, k, return_selection=True)
    assert np.array_equal(selected.sum(axis=1), np.full(8, k))         # 2-sparse positive rows: no early stop
    assert np.all(W[~selected] == 0) and np.all(W >= 0)
    W, selected = nn_omp(D, X, 3, return_selection=True)                # exact after 2 atoms: may stop there
    assert np.all((selected.sum(axis=1) >= 2) & (selected.sum(axis=1) <= 3))


def test_nn_omp_stops_where_no_atom_correlates_positively():
    """A row orthogonal to every atom (correlation 0) or opposite to them selects nothing."""
    from slics.core.omp import nn_omp

    D = np.eye(4)[:3]                                                   # atoms e0, e1, e2
    X = np.array([[0, 0, 0, 1.0], [-1.0, -1.0, 0, 0], [1.0, 0.5, 0, 0]])
    W, selected = nn_omp(D, X, 3, return_selection=True)
    assert not selected[0].any() and not selected[1].any()
    assert np.array_equal(selected[2], [True, True, False]) and np.allclose(W[2], [1.0, 0.5, 0])
    W, selected = nn_omp(D, X[:2], 2, return_selection=True)           # every row stops at once
    assert isinstance(W, np.ndarray) and np.all(W == 0) and not selected.any()


def test_nn_omp_names_d_and_x():
    from slics.core.omp import nn_omp

    with pytest.raises(ValueError, match="^D contains 1 NaN"):
        nn_omp(np.array([[np.nan, 0.0], [0.0, 1.0]]), np.ones((1, 2)), 1)
    with pytest.raises(ValueError, match="^X has 3 columns but 2 are expected"):
        nn_omp(np.eye(2), np.ones((1, 3)), 1)
    with pytest.raises(ValueError, match="^X contains 1 NaN"):
        nn_omp(np.eye(2), np.array([[np.nan, 1.0]]), 1)


# ------------------------------------------------------------------ planted (second pass)
def test_make_planted_boundaries_of_its_ranges():
    from slics.core.planted import make_planted

    X, Y, D, W = make_planted(n_samples=1, n_features=1, n_concepts=1, n_atoms=1, concepts_per_sample=(1, 1))
    assert X.shape == (1, 1) and Y.tolist() == [[True]] and D.shape == (1, 1)
    X, Y, D, W = make_planted(n_samples=50, n_concepts=4, concepts_per_sample=(2, 2), atom_coherence=0.0,
                              concept_coherence=0.0, noise=0.0)
    assert np.array_equal(Y.sum(axis=1), np.full(50, 2)) and np.allclose(X, W @ D)
    with pytest.raises(ValueError, match=r"^n_samples, n_features, n_concepts and n_atoms must all be >= 1\.$"):
        make_planted(n_features=0)
    with pytest.raises(ValueError, match=r"^concept_coherence must be in \[0, 1\), got 1"):
        make_planted(concept_coherence=1.0)
    with pytest.raises(ValueError, match=r"^atom_coherence must be in \[0, 1\), got 1"):
        make_planted(atom_coherence=1.0)


@pytest.mark.parametrize("kw, match", [({"concepts_per_sample": (1.5, 3)}, "^concepts_per_sample must be an integer"),
                                       ({"noise": -0.1}, "^noise must be a finite non-negative number"),
                                       ({"noise": "0.1"}, "^noise must be a real number")])
def test_make_planted_names_its_other_parameters(kw, match):
    from slics.core.planted import make_planted

    with pytest.raises((ValueError, TypeError), match=match):
        make_planted(n_samples=10, **kw)


# ------------------------------------------------------------------ omp (second pass: per-row counts, group pursuit)
def test_nn_omp_keeps_each_rows_own_count():
    """Rows whose count is reached stay out of later steps (counts 0, 1, 2, 3 in one call)."""
    from slics.core.omp import nn_omp

    D, X = _positive_problem()
    D4 = np.vstack([D, np.abs(np.random.default_rng(7).normal(size=(4, 5)))])
    X = X + 0.3 * np.abs(np.random.default_rng(8).normal(size=X.shape))   # no row is exact after 3 atoms
    counts = np.arange(8) % 4
    W, selected = nn_omp(D4, X, counts, return_selection=True)
    assert np.array_equal(selected.sum(axis=1), counts)
    assert not W[counts == 0].any()


def test_nn_omp_returns_coefficients_when_every_row_stops_early():
    """All rows stop before their count (a step with no row left ends the loop, it does not return)."""
    from slics.core.omp import nn_omp

    D = np.eye(3)
    W = nn_omp(D, np.array([[1.0, 0, 0], [0, 2.0, 0]]), 3)
    assert isinstance(W, np.ndarray) and np.allclose(W, [[1, 0, 0], [0, 2, 0]])
    # the row of count 3 stops after one atom while the row of count 2 goes on: at step 3 no row is left
    W = nn_omp(D, np.array([[1.0, 0, 0], [0, 2.0, 1.0]]), np.array([3, 2]))
    assert isinstance(W, np.ndarray) and np.allclose(W, [[1, 0, 0], [0, 2, 1]])


def _grouped_problem():
    """Atoms e0..e5 of R^8 in groups of two: every group with a positive entry of the residual
    lowers the error, so a positive row never stops early while it has such a group."""
    return np.eye(8)[:6], np.array([0, 0, 1, 1, 2, 2])


def test_group_nn_omp_returns_only_the_codes_by_default():
    from slics.core.omp import group_nn_omp

    D, groups = _grouped_problem()
    W = group_nn_omp(D, groups, D[:2] + D[2:4], 2)
    assert isinstance(W, np.ndarray) and W.shape == (2, 6)


@pytest.mark.parametrize("scale", [1e-9, 1.0, 1e9])
def test_group_nn_omp_selection_does_not_depend_on_the_scale(scale):
    """The stopping threshold is relative to the residual's energy, so a scaled X selects the same."""
    from slics.core.omp import group_nn_omp

    D, groups = _grouped_problem()
    X = np.abs(np.random.default_rng(10).normal(size=(5, 8)))
    W1, sel1 = group_nn_omp(D, groups, X, 2, return_selection=True)
    Ws, sels = group_nn_omp(D, groups, scale * X, 2, return_selection=True)
    assert np.array_equal(sels, sel1) and sel1.sum() == 10
    np.testing.assert_allclose(Ws, scale * W1, rtol=1e-9, atol=0)


def test_group_nn_omp_single_row_and_early_stop():
    """One row gets all its groups; a row explained exactly by one group stops there and the call
    still returns its codes (one row left, then none)."""
    from slics.core.omp import group_nn_omp

    D, groups = _grouped_problem()
    x = np.abs(np.random.default_rng(11).normal(size=(1, 8)))
    W, sel = group_nn_omp(D, groups, x, 3, return_selection=True)
    assert sel.all() and np.allclose(W, x[:, :6])
    exact = 0.7 * D[[2]] + 0.2 * D[[3]]                                  # group 1 alone, exactly
    W, sel = group_nn_omp(D, groups, exact, 3, return_selection=True)
    assert np.array_equal(sel, [[False, True, False]])
    np.testing.assert_allclose(W, [[0, 0, 0.7, 0.2, 0, 0]], atol=1e-10)
    W, sel = group_nn_omp(D, groups, np.vstack([exact, 0.5 * D[[4]]]), 3, return_selection=True)
    assert np.array_equal(sel, [[False, True, False], [False, False, True]])
    both = 0.5 * D[[4]] + 0.3 * D[[0]]                                    # groups 2 and 0
    W, sel = group_nn_omp(D, groups, np.vstack([exact, both]), np.array([3, 2]), return_selection=True)
    assert np.array_equal(sel, [[False, True, False], [True, False, True]])
    np.testing.assert_allclose(W @ D, np.vstack([exact, both]), atol=1e-10)


def test_group_nn_omp_names_d_x_and_the_atom_count():
    from slics.core.omp import group_nn_omp

    D, groups = _grouped_problem()
    with pytest.raises(ValueError, match="^D contains 1 NaN"):
        group_nn_omp(np.where(np.arange(48).reshape(6, 8) == 0, np.nan, D), groups, D[:1], 1)
    with pytest.raises(ValueError, match="^X has 4 columns but 8 are expected"):
        group_nn_omp(D, groups, np.ones((1, 4)), 1)
    with pytest.raises(ValueError, match="^X contains 1 NaN"):
        group_nn_omp(D, groups, np.array([[np.nan, 1, 1, 1, 1, 1, 1, 1]]), 1)
    with pytest.raises(ValueError, match=r"^groups must have one label per atom \(6\), got shape \(5,\)\.$"):
        group_nn_omp(D, groups[:5], D[:1], 1)


# ------------------------------------------------------------------ SpLiCE (second pass: the solver call, dask)
def test_nonneg_lasso_hands_its_settings_to_the_exact_solver(monkeypatch):
    """The one place that names SpLiCE's solver passes lam, positivity, tol, max_iter, the pinned
    method and a shared Gram through, in memory and for a dask array, and clips at zero."""
    import inspect

    from slics.core import lasso as lasso_module
    from slics.core.splice import nonneg_lasso

    assert inspect.signature(nonneg_lasso).parameters["max_iter"].default == 10_000
    assert inspect.signature(nonneg_lasso).parameters["tol"].default == 1e-7
    calls = []

    def spy(X, D, lam, **kw):
        calls.append((np.asarray(X).shape, np.asarray(D).shape, lam, kw))
        return np.full((np.asarray(X).shape[0], np.asarray(D).shape[0]), -0.5)

    monkeypatch.setattr(lasso_module, "lasso", spy)
    W = nonneg_lasso(np.ones((3, 4)), np.eye(4)[:2], 0.3, tol=1e-4, max_iter=77)
    assert calls == [((3, 4), (2, 4), 0.3,
                      {"positive": True, "tol": 1e-4, "max_iter": 77, "method": "cd", "gram": None})]
    assert np.array_equal(W, np.zeros((3, 2)))
    calls.clear()
    G = np.eye(2)
    nonneg_lasso(np.ones((3, 4)), np.eye(4)[:2], 0.3, gram=G)
    assert len(calls) == 1 and calls[0][3]["gram"] is G       # a shared Gram goes through untouched
    da = pytest.importorskip("dask.array")
    calls.clear()
    W = nonneg_lasso(da.from_array(np.ones((3, 4))), np.eye(4)[:2], 0.3, tol=1e-4, max_iter=77)
    assert calls == [((3, 4), (2, 4), 0.3, {"positive": True, "tol": 1e-4, "max_iter": 77, "gram": None})]
    assert np.array_equal(W, np.zeros((3, 2)))


def test_nonneg_lasso_names_x_d_and_lam():
    from slics.core.splice import nonneg_lasso

    with pytest.raises(ValueError, match="^X contains 1 NaN"):
        nonneg_lasso(np.array([[np.nan, 1.0]]), np.eye(2), 0.1)
    with pytest.raises(ValueError, match="^D has 3 columns but 2 are expected"):
        nonneg_lasso(np.ones((1, 2)), np.eye(3), 0.1)
    with pytest.raises(ValueError, match="^D contains"):
        nonneg_lasso(np.ones((1, 2)), np.full((2, 2), np.inf), 0.1)
    with pytest.raises(ValueError, match="^lam must be"):
        nonneg_lasso(np.ones((1, 2)), np.eye(2), -0.1)


def test_splice_on_a_dask_array_equals_the_in_memory_codes(grouped):
    """The lazy path (slics.distributed) gives the in-memory codes, block by block, for
    nonneg_lasso and SpLiCE.transform (the synchronous scheduler: no cluster needed)."""
    da = pytest.importorskip("dask.array")
    from slics.core.splice import nonneg_lasso

    model, _ = grouped
    Z = np.random.default_rng(12).normal(size=(7, 6))
    lazy = da.from_array(Z, chunks=(3, 6))
    codes = model.transform(lazy)
    assert isinstance(codes, da.Array) and codes.shape == (7, model.vocab_.shape[0])
    np.testing.assert_allclose(codes.compute(scheduler="sync"), model.transform(Z), atol=1e-9)
    W = nonneg_lasso(lazy, model.vocab_, 0.05)
    assert isinstance(W, da.Array)
    W = W.compute(scheduler="sync")
    np.testing.assert_allclose(W, nonneg_lasso(Z, model.vocab_, 0.05), atol=1e-9)
    assert W.min() == 0.0
    with pytest.raises(ValueError, match="^lam must be"):
        nonneg_lasso(lazy, model.vocab_, -1.0)


@pytest.mark.parametrize("n_words", [3, 7])
def test_splice_fit_counts_every_word_a_constant_vocabulary_loses(n_words):
    word = np.random.default_rng(13).normal(size=(1, 4))
    rows = list(range(min(n_words, 5)))
    expected = f"leaves {n_words} of {n_words} word(s) all-zero up to rounding (rows {rows});"
    with pytest.raises(ValueError, match=re.escape(expected)):
        SpLiCE().fit(np.repeat(word, n_words, axis=0))


# ------------------------------------------------------------------ alignment: messages
def test_alignment_pair_errors_name_the_argument_and_both_counts():
    with pytest.raises(ValueError, match=r"^Y contains 1 NaN"):
        ProcrustesAlignment().fit(np.ones((4, 3)), np.array([[np.nan, 1, 1]] + [[1, 1, 1]] * 3))
    with pytest.raises(ValueError) as err:
        ProcrustesAlignment().fit(np.ones((5, 3)), np.ones((4, 3)))
    assert str(err.value) == "X has 5 rows but Y has 4: they must be the same images."


@pytest.mark.parametrize("n", [2, 3, 7])
def test_top1_match_counts_the_rows_nearest_their_own_target(n):
    Y = np.eye(n) + 0.1                                # distinct targets, none orthogonal
    swapped = np.r_[1, 0, np.arange(2, n)]             # rows 0 and 1 mapped onto each other's target
    assert alignment_errors(Y[swapped], Y)["top1_match"] == pytest.approx((n - 2) / n)
    assert alignment_errors(Y, Y)["top1_match"] == 1.0


def test_alignment_errors_of_an_all_zero_target_say_why():
    with pytest.raises(ValueError) as err:
        alignment_errors(np.ones((2, 3)), np.zeros((2, 3)))
    assert str(err.value) == "Y is all zeros: the relative error ||M - Y|| / ||Y|| is undefined."


# ------------------------------------------------------------------ normalise_rows
def test_normalise_rows_errors_name_x_and_dtype():
    with pytest.raises(TypeError, match=r"^X must hold real numbers"):
        normalise_rows(np.ones((2, 2), complex))
    with pytest.raises(ValueError, match=r"^dtype must be float32 or float64"):
        normalise_rows(np.ones((2, 2)), dtype=np.int32)


@pytest.mark.parametrize("shape", [(300,), (300, 4, 5), (3, 300, 2), (257, 3), (256, 3), (2, 3)])
def test_normalise_rows_is_the_formula_on_the_last_axis_of_any_shape(shape):
    X = np.random.default_rng(0).standard_normal(shape)
    X[(0,) * (len(shape) - 1)] = 0.0                               # a zero row stays zero
    norms = np.sqrt(np.sum(X * X, axis=-1, keepdims=True))
    expected = X / np.where(norms == 0, 1.0, norms)
    np.testing.assert_allclose(normalise_rows(X), expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("n", [3, 600])
def test_normalise_rows_returns_the_dtype_asked_for_at_any_size(n):
    X = np.random.default_rng(1).standard_normal((n, 5))
    out = normalise_rows(X, dtype=np.float32)
    assert out.dtype == np.float32
    assert np.array_equal(out, normalise_rows(X.astype(np.float32)))


# ------------------------------------------------------------------ zero_shot
def test_cosine_similarity_names_the_array_that_is_not_2d():
    with pytest.raises(ValueError, match=r"^B must be a 2-D array"):
        cosine_similarity(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"^A must be a 2-D array"):
        cosine_similarity(np.ones(3), np.ones((2, 3)))


def test_zero_shot_accuracy_reads_integral_floats_and_refuses_fractions():
    rng = np.random.default_rng(2)
    images, classes = rng.standard_normal((20, 4)), rng.standard_normal((3, 4))
    labels = rng.integers(0, 3, 20)
    assert zero_shot_accuracy(images, classes, labels.astype(float)) == zero_shot_accuracy(images, classes, labels)
    with pytest.raises(ValueError, match="non-integer"):
        zero_shot_accuracy(images, classes, labels + 0.5)


def test_pseudo_labels_break_exact_ties_by_the_lower_concept_index():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 3, (60, 3)).astype(float) + np.eye(3)[rng.integers(0, 3, 60)]
    concepts = np.eye(3)[rng.integers(0, 3, 40)]            # 40 concepts, 3 distinct: exact ties
    sims = (images / np.linalg.norm(images, axis=1, keepdims=True)) @ concepts.T
    labels = zero_shot_pseudo_labels(images, concepts, k=5)
    for i in range(60):
        best = sorted(range(40), key=lambda j: (-sims[i, j], j))[:5]
        assert np.flatnonzero(labels[i]).tolist() == sorted(best)


# ------------------------------------------------------------------ planted: checks and the model
@pytest.mark.parametrize("args, message", [
    ((np.ones((3, 4)), np.ones((3, 2)), np.full((2, 4), np.nan)), "D contains 8 NaN"),
    ((np.ones((3, 5)), np.ones((3, 2)), np.ones((2, 4))), "X has 5 columns but 4 are expected"),
    ((np.full((3, 4), np.nan), np.ones((3, 2)), np.ones((2, 4))), "X contains 12 NaN"),
    ((np.ones((3, 4)), np.ones((3, 3)), np.ones((2, 4))), "W has 3 columns but 2 are expected"),
    ((np.ones((3, 4)), np.full((3, 2), np.inf), np.ones((2, 4))), "W contains 6 NaN"),
    ((np.ones((3, 4)), np.ones((2, 3)), np.ones((3, 4))), "W has 2 rows but X has 3; one code per row of X is expected."),
    ((np.zeros((3, 4)), np.ones((3, 2)), np.ones((2, 4))),
     "X is all zeros: the relative error ||X - W D|| / ||X|| is undefined."),
])
def test_relative_error_names_what_is_wrong(args, message):
    with pytest.raises(ValueError) as err:
        relative_error(*args)
    assert str(err.value).startswith(message)


def test_relative_error_is_relative_to_the_data():
    rng = np.random.default_rng(7)
    X, W, D = rng.standard_normal((5, 4)), rng.random((5, 3)), rng.standard_normal((3, 4))
    expected = np.sqrt(np.sum((X - W @ D) ** 2) / np.sum(X ** 2))
    assert relative_error(X, W, D) == pytest.approx(expected, rel=1e-12)
    assert relative_error(X, np.zeros((5, 3)), D) == 1.0


@pytest.mark.parametrize("pair", [(1, 2, 3), "12", 2])
def test_make_planted_wants_a_pair_of_counts(pair):
    with pytest.raises(ValueError) as err:
        make_planted(n_samples=5, concepts_per_sample=pair)
    assert str(err.value) == f"concepts_per_sample must be a pair (lo, hi) of concept counts, got {pair!r}."


@pytest.mark.parametrize("name", ["atom_coherence", "concept_coherence", "atom_density"])
def test_make_planted_names_a_value_that_is_not_a_number(name):
    with pytest.raises((TypeError, ValueError), match=f"^{name} "):
        make_planted(n_samples=5, **{name: "high"})


def test_make_planted_atom_density_is_in_0_1():
    _, Y, _, W = make_planted(n_samples=50, n_concepts=3, n_atoms=4, atom_density=1.0)
    assert np.array_equal(W.reshape(50, 3, 4) > 0, np.repeat(Y[:, :, None], 4, axis=2))   # every atom used
    with pytest.raises(ValueError) as err:
        make_planted(n_samples=5, atom_density=1.5)
    assert str(err.value) == "atom_density must be in (0, 1], got 1.5."


def test_make_planted_accepts_a_zero_probability_count():
    _, Y, _, _ = make_planted(n_samples=200, n_concepts=4, concepts_per_sample=(1, 3), concept_probs=[0.5, 0.0, 0.5])
    assert set(Y.sum(axis=1).tolist()) == {1, 3}


def test_concept_coherence_is_the_cosine_between_concepts():
    c = 0.5
    _, _, D, _ = make_planted(n_samples=5, n_features=4000, n_concepts=6, n_atoms=1, atom_coherence=0.0,
                              concept_coherence=c, atom_density=1.0)
    cos = D @ D.T
    # atoms = normalise(sqrt(a) shared + sqrt(1 - a) own) with a = 0: only their own parts, independent
    assert abs(np.mean(cos[np.triu_indices(6, 1)])) < 0.05
    _, _, D, _ = make_planted(n_samples=5, n_features=4000, n_concepts=6, n_atoms=1, atom_coherence=0.999,
                              concept_coherence=c, atom_density=1.0)
    cos = D @ D.T                                      # atoms ~ their concept's shared part
    assert np.mean(cos[np.triu_indices(6, 1)]) == pytest.approx(c, abs=0.05)


def test_support_recovery_reads_coefficients_as_their_supports():
    rng = np.random.default_rng(4)
    W_true = rng.random((30, 8)) * (rng.random((30, 8)) < 0.3)
    W_est = rng.random((30, 8)) * (rng.random((30, 8)) < 0.3)
    assert support_recovery(W_true, W_est) == support_recovery(W_true != 0, W_est != 0)
    assert support_recovery(W_true * 2.5, W_true)["exact"] == 1.0


# ------------------------------------------------------------------ retrieval: checks and the dask pool
def test_average_precision_wants_whole_counts_of_relevant_items():
    rel = np.array([[1, 0, 1], [0, 1, 0]])
    for bad in ([2.5, 1.0], [True, False], ["a", "b"], [np.nan, 1.0]):
        with pytest.raises(ValueError) as err:
            average_precision_at_k(rel, n_relevant=np.array(bad))
        assert str(err.value).startswith("n_relevant must hold whole counts (relevant items in the pool per row)")
    R = np.array([2.5, 1, 2, 3, 4, 5, 6.0])
    with pytest.raises(ValueError) as err:
        average_precision_at_k(np.ones((7, 3)), n_relevant=R)
    assert str(err.value).endswith("got dtype float64 with values [2.5, 1.0, 2.0, 3.0, 4.0].")


def test_mean_average_precision_of_no_pairs_is_nan_without_a_warning():
    empty = pd.DataFrame({c: pd.Series(dtype=float) for c in
                          ("ap_general", "ap_sub", "ap_general_minkr", "ap_sub_minkr")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = mean_average_precision(empty)
    assert out.pop("n_pairs") == out.pop("n_sub_pairs") == 0 and all(np.isnan(v) for v in out.values())
    with pytest.raises(ValueError) as err:
        mean_average_precision(empty.drop(columns="ap_sub_minkr"))
    assert str(err.value) == "pairs has the column ap_general_minkr but not ap_sub_minkr; pass both or neither."


def _retrieval_case(seed=5):
    rng = np.random.default_rng(seed)
    q, p = rng.standard_normal((6, 5)), rng.standard_normal((40, 5))
    return q, p, rng.random((6, 4)) < 0.5, rng.random((40, 4)) < 0.5


def test_filtered_retrieval_on_chosen_concepts_and_its_dtypes():
    q, p, qg, pg = _retrieval_case()
    every = filtered_retrieval(q, p, qg, pg, k=5)
    some = filtered_retrieval(q, p, qg, pg, k=5, concepts=[0, 2])
    pd.testing.assert_frame_equal(some.reset_index(drop=True),
                                  every[every["concept"].isin([0, 2])].reset_index(drop=True))
    assert all(every[c].dtype == np.float64 for c in ("ap_general", "ap_sub", "ap_general_minkr", "ap_sub_minkr"))
    with pytest.raises(ValueError) as err:
        filtered_retrieval(q, p, qg, pg, k=5, concepts=[0, 1] * 6)
    assert str(err.value) == f"concepts must not repeat a concept, got {([0, 1] * 5)}."


def test_candidates_are_named_and_scored_in_float64():
    assert unit_candidates(np.ones((2, 3), np.float32)).dtype == np.float64
    with pytest.raises(ValueError, match="^candidates contains 1 NaN"):
        unit_candidates(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="^candidates contains 1 NaN"):
        top_k(np.ones((1, 3)), np.array([[np.nan, 1, 1], [1, 1, 1]]), 1)


def test_a_dask_pool_gives_the_in_memory_top_k_and_retrieval():
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    q, p, qg, pg = _retrieval_case(6)
    with dask.config.set(scheduler="synchronous"):
        lazy = da.from_array(p, chunks=(16, -1))
        assert np.array_equal(top_k(q, lazy, 4), top_k(q, p, 4))
        pd.testing.assert_frame_equal(filtered_retrieval(q, lazy, qg, pg, k=5), filtered_retrieval(q, p, qg, pg, k=5))
        with pytest.raises(ValueError, match="^pool_emb has 4 columns but 5 are expected"):
            filtered_retrieval(q, da.from_array(p[:, :4], chunks=(16, -1)), qg, pg, k=5)
        with pytest.raises(ValueError, match=r"^pool_emb must be a 2-D array \(rows are samples\), got shape \(40,\)"):
            filtered_retrieval(q, da.from_array(p[:, 0], chunks=16), qg, pg, k=5)


# ------------------------------------------------------------------ storage
def test_implied_nonzeros_invert_storage_bytes_at_any_value_size():
    for value_bytes in (2, 4, 8):
        size = storage_bytes(7 * 50, 50, 300, value_bytes)
        for fmt in ("values_only", "csr_int32", "csr_int16", "coo_int32"):
            assert implied_nonzeros_per_row(size[fmt], 50, 300, value_bytes)[fmt] == pytest.approx(7.0)
