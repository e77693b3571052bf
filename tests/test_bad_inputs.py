"""Bad inputs that used to give silent wrong answers or unclear errors (issue 18).

Each test pins one defect class: the call either raises a ValueError/TypeError that names
the parameter, the value and the rule, or (for valid inputs near the boundary) still works.
"""

import warnings

import numpy as np
import pytest

from slics.core import storage
from slics.core.dictionary import SLiCS
from slics.core.lasso import lasso
from slics.core.retrieval import top_k
from slics.core.sparse_coding import fista, ista
from slics.core.splice import SpLiCE
from slics.utils.validation import (check_choice, check_float_dtype, check_index, check_indices, check_int,
                                    check_positive)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 6))
    Y = np.zeros((24, 3), bool)
    Y[np.arange(24), np.arange(24) % 3] = True
    return X, Y


@pytest.fixture(scope="module")
def model(data):
    X, Y = data
    return SLiCS(2, n_iter=1).fit(X, Y)


# ------------------------------------------------------------------ silent wrong answers
@pytest.mark.parametrize("k", [2.5, 1.2, "2", None, True])
def test_top_k_rejects_non_integer_k(k):
    X = np.eye(4)
    with pytest.raises(ValueError, match=r"^k must be an integer"):
        top_k(X, X, k)


def test_top_k_accepts_integral_float_k():
    X = np.eye(4)
    np.testing.assert_array_equal(top_k(X, X, 2.0), top_k(X, X, 2))


@pytest.mark.parametrize("k", [0, -1, 5])
def test_top_k_rejects_k_out_of_range(k):
    with pytest.raises(ValueError, match=r"^k must be "):
        top_k(np.eye(4), np.eye(4), k)


@pytest.mark.parametrize("concept", [-1, -3, 3, np.int64(-1), 1.5, True, "0"])
def test_project_rejects_out_of_range_or_non_integer_concept(model, data, concept):
    with pytest.raises(ValueError, match=r"concept must be an integer in \[0, 3\)"):
        model.project(data[0], concept)


def test_project_negative_message_says_no_wraparound(model, data):
    with pytest.raises(ValueError, match="negative indices do not count from the end"):
        model.project(data[0], -1)


def test_project_last_concept_still_works(model, data):
    X = data[0]
    out = model.project(X, 2)
    assert out.shape == X.shape and np.all(np.isfinite(out))


@pytest.mark.parametrize("vocab", [np.ones((1, 5)), np.tile(np.arange(1.0, 6.0), (3, 1))])
def test_splice_rejects_vocabulary_that_centres_to_zero(vocab):
    with pytest.raises(ValueError, match="vocab_emb: centring .* all-zero"):
        SpLiCE(0.1).fit(vocab)


def test_splice_two_word_vocabulary_gives_non_zero_codes():
    rng = np.random.default_rng(1)
    model = SpLiCE(0.01).fit(rng.standard_normal((2, 5)))
    Z = model.vocab_[:1] * 3.0
    assert np.any(model.transform(Z) > 0)


@pytest.mark.parametrize("concept", [-1, 2, 0.5])
def test_splice_reconstruct_rejects_bad_concept(concept):
    rng = np.random.default_rng(2)
    model = SpLiCE(0.1).fit(rng.standard_normal((6, 5)), rng.standard_normal((2, 5)))
    W = model.transform(rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match=r"concept must be an integer in \[0, 2\)"):
        model.reconstruct(W, concept)
    full = sum(model.reconstruct(W, j) for j in range(2))
    np.testing.assert_allclose(full, model.reconstruct(W), atol=1e-12)


def test_splice_reconstruct_checks_code_width():
    rng = np.random.default_rng(3)
    model = SpLiCE(0.1).fit(rng.standard_normal((6, 5)))
    with pytest.raises(ValueError, match=r"W must be codes of shape \(n, 6\)"):
        model.reconstruct(np.zeros((2, 5)))


@pytest.mark.parametrize("args, match", [
    ((-1, 2, 2), "nnz must be at least 0, got -1"),
    ((1.5, 2, 2), "nnz must be an integer, got 1.5"),
    ((1, 2.7, 2), "n_rows must be an integer, got 2.7"),
    ((1, 2, 0), "n_cols must be at least 1, got 0"),
    ((5, 2, 2), "nnz must be between 0 and n_rows"),
])
def test_storage_bytes_rejects_bad_counts(args, match):
    with pytest.raises(ValueError, match=match):
        storage.storage_bytes(*args)


def test_storage_bytes_rejects_bad_value_bytes():
    with pytest.raises(ValueError, match="value_bytes must be at least 1, got -4"):
        storage.storage_bytes(1, 2, 2, value_bytes=-4)
    with pytest.raises(ValueError, match="value_bytes must be an integer, got 2.5"):
        storage.storage_bytes(1, 2, 2, value_bytes=2.5)


def test_storage_sizes_reject_negative_bytes():
    with pytest.raises(ValueError, match="size_bytes must be a finite non-negative number, got -5"):
        storage.implied_nonzeros_per_row(-5, 2, 2)
    with pytest.raises(ValueError, match="n_bytes must be a finite non-negative number"):
        storage.mib(-1)
    assert storage.mib(3 * 2 ** 20) == 3.0
    assert storage.storage_bytes(2.0, 2, np.int64(3)) == storage.storage_bytes(2, 2, 3)


# ------------------------------------------------------------------ unclear errors
@pytest.mark.parametrize("value, error", [("a", TypeError), (None, TypeError), ([1.0], TypeError),
                                          (True, TypeError), (-1.0, ValueError), (float("nan"), ValueError)])
def test_check_positive_names_parameter_before_converting(value, error):
    with pytest.raises(error, match=r"^lam must be a"):
        check_positive(value, "lam")


def test_check_positive_accepts_numpy_scalars():
    assert check_positive(np.float32(0.5), "lam") == 0.5
    assert check_positive(np.array(2), "lam") == 2.0
    assert check_positive(0, "lam", allow_zero=True) == 0.0


def test_check_int_maximum_and_index_helpers():
    assert check_int(3, "n", maximum=3) == 3
    with pytest.raises(ValueError, match="n must be at most 3, got 4"):
        check_int(4, "n", maximum=3)
    assert check_index(np.int32(2), "concept", 3) == 2
    with pytest.raises(ValueError, match=r"concept must be an integer in \[0, 3\), got 3"):
        check_index(3, "concept", 3)
    np.testing.assert_array_equal(check_indices([0, 2], "concepts", 3), [0, 2])
    for bad in ([-1], [3], [0.5], [[0]]):
        with pytest.raises(ValueError, match="concepts must"):
            check_indices(bad, "concepts", 3)
    assert check_choice("ksvd", "update", ("ksvd", "bcd")) == "ksvd"
    with pytest.raises(ValueError, match=r"update must be one of \('ksvd', 'bcd'\), got 'svd'"):
        check_choice("svd", "update", ("ksvd", "bcd"))


@pytest.mark.parametrize("dtype", [np.int64, int, bool, np.float16, np.complex128, "int32"])
def test_float_dtype_rejects_other_dtypes(dtype):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        check_float_dtype(dtype)


@pytest.mark.parametrize("solver", [ista, fista, lasso])
def test_solvers_reject_integer_dtype(solver):
    """An int dtype used to truncate the unit-norm dictionary to zeros (ista returned all-zero codes)."""
    Z = np.random.default_rng(0).standard_normal((2, 4))
    args = (Z, np.eye(4), 0.1) if solver is not lasso else (Z, np.eye(4), 0.1)
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got int64"):
        solver(*args, dtype=np.int64)


@pytest.mark.parametrize("scale, word", [(1e-200, "underflows"), (1e-70, "underflows"),
                                         (1e70, "overflows"), (1e200, "overflows")])
def test_fit_reports_scale_out_of_range(data, scale, word):
    X, Y = data
    with pytest.raises(ValueError, match=rf"X's scale is out of range: .* {word}"):
        SLiCS(2, n_iter=1).fit(X * scale, Y)


@pytest.mark.parametrize("scale", [1e-40, 1e40])
def test_fit_is_scale_invariant_inside_the_range(data, scale):
    X, Y = data
    ref = SLiCS(2, n_iter=2).fit(X, Y).error_history_
    np.testing.assert_allclose(SLiCS(2, n_iter=2).fit(X * scale, Y).error_history_, ref, rtol=1e-6)


def test_fit_all_zero_x_is_named(data):
    X, Y = data
    with pytest.raises(ValueError, match="X is all zeros"):
        SLiCS(2, n_iter=0).fit(np.zeros_like(X), Y)


def test_fit_huge_n_atoms_is_named_before_allocating(data):
    X, Y = data
    with pytest.raises(ValueError, match=r"n_atoms=1000000000000 needs about .* GiB .* lower n_atoms"):
        SLiCS(10 ** 12, n_iter=0).fit(X, Y)


@pytest.mark.parametrize("params, match", [
    (dict(n_atoms=2.5), "n_atoms .* must be an integer"),
    (dict(n_atoms=0), "n_atoms .* must be at least 1"),
    (dict(n_atoms=2, n_iter=-1), "n_iter must be at least 0"),
    (dict(n_atoms=2, update="svd"), "update must be one of"),
    (dict(n_atoms=2, batch_size=0), "batch_size .* must be at least 1"),
    (dict(n_atoms=2, ridge="x"), "ridge must be a real number"),
])
def test_fit_parameters_are_named(data, params, match):
    X, Y = data
    with pytest.raises((ValueError, TypeError), match=match):
        SLiCS(**params).fit(X, Y)


def test_fit_accepts_integral_float_n_atoms(data):
    X, Y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = SLiCS(2.0, n_iter=1).fit(X, Y).dictionary_
    np.testing.assert_array_equal(a, SLiCS(2, n_iter=1).fit(X, Y).dictionary_)


# ------------------------------------------------------------------ indices and counts elsewhere in the API
def _retrieval_inputs():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((10, 4))
    Y = np.zeros((10, 3), bool)
    Y[np.arange(10), np.arange(10) % 3] = True
    return X, Y


@pytest.mark.parametrize("concepts", [[-1], [3], [0.5]])
def test_filtered_retrieval_rejects_bad_concepts(concepts):
    from slics.core.retrieval import filtered_retrieval

    X, Y = _retrieval_inputs()
    with pytest.raises(ValueError, match=r"concepts must .*\[0, 3\)"):
        filtered_retrieval(X, X, Y, Y, k=2, concepts=concepts)


def test_filtered_retrieval_rejects_fractional_k_and_bad_sub_parent():
    from slics.core.retrieval import filtered_retrieval

    X, Y = _retrieval_inputs()
    with pytest.raises(ValueError, match="k must be an integer, got 2.5"):
        filtered_retrieval(X, X, Y, Y, k=2.5)
    with pytest.raises(ValueError, match=r"sub_parent must hold indices in \[0, 3\), got \[-1\]"):
        filtered_retrieval(X, X, Y, Y, query_sub=Y[:, :1], pool_sub=Y[:, :1], sub_parent=[-1], k=2)
    out = filtered_retrieval(X, X, Y, Y, k=2, concepts=[2])
    assert set(out["concept"]) == {2} and len(out) == Y[:, 2].sum()


def test_quantised_pool_top_k_rejects_fractional_k():
    from slics.core.pq import QuantisedPool

    pool = QuantisedPool(np.array([[0], [1], [0]]), np.eye(2))
    with pytest.raises(ValueError, match="k must be an integer, got 1.5"):
        pool.top_k(np.eye(2), 1.5)
    assert pool.top_k(np.eye(2), 2.0).shape == (2, 2)


@pytest.mark.parametrize("params, match", [
    (dict(n_tokens=2, codebook_size=2.5), "codebook_size must be an integer, got 2.5"),
    (dict(n_tokens="2", codebook_size=2), "n_tokens must be an integer, got '2'"),
    (dict(n_tokens=2, codebook_size=2, max_iter=0), "max_iter must be at least 1"),
    (dict(n_tokens=2, codebook_size=2, max_tokens=-3), "max_tokens must be at least 1"),
])
def test_token_quantiser_parameters_are_named(params, match):
    from slics.core.pq import TokenQuantiser

    X = np.random.default_rng(5).standard_normal((8, 4))
    with pytest.raises(ValueError, match=match):
        TokenQuantiser(**params).fit(X)


# ------------------------------------------------------------------ shrunk examples of tests/test_properties.py
def test_lasso_on_collinear_atoms_converges():
    """Two collinear atoms in 1-D: coordinate descent alone needed ~1e5 sweeps (it warned at 5000);
    the null-space reduction of a dependent support now finishes it (issue #19)."""
    from slics.core.objectives import lasso_objective

    D, X, lam = np.array([[2.0], [2.25]]), np.array([[2.0]]), 0.01171875
    W, info = lasso(X, D, lam, tol=1e-12, max_iter=5000, return_info=True)
    assert info["converged"].all()
    optimum = lam * 2 / 2.25 - lam ** 2 / (4 * 2.25 ** 2)       # all weight on the longer atom
    np.testing.assert_allclose(lasso_objective(X, D, W, lam), optimum, rtol=1e-12)
    W = fista(X, D, lam, tol=1e-12, n_iter=20000)
    np.testing.assert_allclose(lasso_objective(X, D, W, lam), optimum, rtol=1e-6)


def test_omp_all_zero_atom_is_named():
    from slics.core.omp import nn_omp

    with pytest.raises(ValueError, match="D has an all-zero atom"):
        nn_omp(np.zeros((1, 1)), np.zeros((1, 1)), 0)


# ------------------------------------------------------------------ scalars elsewhere in the public API
@pytest.mark.parametrize("lams, error, match", [
    (["a"], TypeError, "lams .* must be a real number, got str 'a'"),
    ("0.1", TypeError, "lams .* must be a real number"),
    ([0.1, -1.0], ValueError, "lams .* must be a finite positive number, got -1.0"),
    ([[0.1]], ValueError, r"lams must be a number or a 1-D sequence"),
])
def test_lasso_path_checks_each_lambda_before_converting(lams, error, match):
    from slics.core.lasso import lasso_path

    with pytest.raises(error, match=match):
        lasso_path(np.ones((1, 2)), np.eye(2), lams)


def test_lasso_path_accepts_a_scalar_and_numpy_lambdas():
    from slics.core.lasso import lasso_path

    X, D = np.array([[1.0, 0.5]]), np.eye(2)
    a, b = lasso_path(X, D, 0.1), lasso_path(X, D, np.array([0.1]))
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("dim, seed, match", [(2.5, 0, "dim must be an integer, got 2.5"),
                                              (1, 0, "dim must be at least 2, got 1"),
                                              (3, 0.5, "seed must be an integer, got 0.5")])
def test_random_rotation_does_not_truncate(dim, seed, match):
    from slics.core.alignment import random_rotation

    with pytest.raises(ValueError, match=match):
        random_rotation(dim, seed)
    R = random_rotation(3.0, 1)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)


def test_save_model_does_not_truncate_n_tokens(model, tmp_path):
    from slics.model_io import save_model

    with pytest.raises(ValueError, match="n_tokens must be an integer, got 2.5"):
        save_model(model, tmp_path / "m.npz", preprocessing="tokens", n_tokens=2.5)
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("atom_concept, match", [
    ([0, -1], r"atom_concept must hold indices in \[0, 2\), got \[-1\]"),
    ([0.0, 0.5], "atom_concept must hold integer indices"),
    ([0, 0, 1], r"atom_concept must hold one concept index per atom \(2\)"),
])
def test_word_captions_checks_atom_concept(atom_concept, match):
    """A negative or fractional concept index used to drop atoms silently; a concept without atoms
    used to fail inside the NNLS solver, blaming its ``D``."""
    from slics.captions import word_captions

    rng = np.random.default_rng(6)
    D, V = np.eye(2, 3), rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=match):
        word_captions(D, V, list("abcd"), n_words=2, atom_concept=atom_concept)
    out = word_captions(D, V, list("abcd"), n_words=2, atom_concept=[0, 1])
    assert list(out) == ["concept 0", "concept 1"] and all(len(w) == 2 for w in out.values())
    # a concept without atoms (one U-SLiCS skipped) gets an empty caption, not a solver error
    out = word_captions(D, V, list("abcd"), n_words=2, atom_concept=[1, 1], concept_names=["a", "b"])
    assert out["a"] == [] and len(out["b"]) == 2
    with pytest.raises(ValueError, match=r"atom_concept must hold indices in \[0, 2\), got \[2\]"):
        word_captions(D, V, list("abcd"), n_words=2, atom_concept=[0, 2], concept_names=["a", "b"])


@pytest.mark.parametrize("name, rows, match", [("queries", [0, -1], r"queries must hold indices in \[0, 12\), got \[-1\]"),
                                               ("pool", [3, 12], r"pool must hold indices in \[0, 12\), got \[12\]"),
                                               ("queries", [0.5], "queries must hold integer indices")])
def test_evaluate_checks_row_indices_before_fitting(name, rows, match):
    from slics.embedding.retrieval_set import RetrievalSet
    from slics.evaluation import evaluate

    rng = np.random.default_rng(7)
    Y = np.zeros((12, 2), bool)
    Y[np.arange(12), np.arange(12) % 2] = True
    rs = RetrievalSet.from_arrays(rng.standard_normal((12, 4)), Y, np.array(["train"] * 4 + ["query"] * 4 + ["pool"] * 4),
                                  general_names=["a", "b"])
    with pytest.raises(ValueError, match=match):
        evaluate(rs, ["UF"], k=2, **{name: rows})
    assert len(evaluate(rs, ["UF"], k=2, queries=[4, 5], pool=[8, 9, 10])) == 1


def test_zero_token_names_x_and_where():
    """Shrunk from tests/test_properties.py: preprocess(kind='tokens') of a zero token."""
    from slics.preprocess import preprocess

    with pytest.raises(ValueError, match=r"^X has 1 zero token\(s\) \(first: row 1, token 0\)"):
        preprocess(np.array([[1.0, 2.0], [0.0, 3.0]]), "tokens", n_tokens=2)


@pytest.mark.parametrize("block", [0, 2.5, None])
def test_block_sizes_are_checked(block):
    from slics.core.pq import QuantisedPool

    with pytest.raises(ValueError, match="block must be"):
        top_k(np.eye(3), np.eye(3), 1, block=block)
    with pytest.raises(ValueError, match="block must be"):
        QuantisedPool(np.array([[0], [1]]), np.eye(2)).scores(np.eye(2), block=block)
    np.testing.assert_array_equal(top_k(np.eye(3), np.eye(3), 1, block=1), [[0], [1], [2]])
