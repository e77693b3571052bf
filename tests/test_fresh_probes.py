"""Defects found by a fresh probe set of bad inputs (issue 18, after tests/test_bad_inputs.py).

One test per defect class, each fixed at its root: counts truncated by ``int()`` (the PQ
storage and operation counts, block sizes), seeds and estimator parameters checked only when
numpy or scikit-learn choked on them, errors that blamed another argument or did not name the
parameter, a table with missing columns (KeyError), non-NumPy files reported as pickles, and a
file where a folder must be.
"""

import errno
import json

import numpy as np
import pandas as pd
import pytest

from slics.core import pq
from slics.core.alignment import rotation_error
from slics.core.dictionary import SLiCS
from slics.core.planted import make_planted, support_recovery
from slics.core.retrieval import mean_average_precision
from slics.core.splice import SpLiCE
from slics.core.zero_shot import cosine_similarity
from slics.utils.io import NotWritableError, check_writable, numpy_file_kind, write_text
from slics.utils.validation import check_random_state


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(20, 8))


# ------------------------------------------------------------------ silent wrong answers (counts truncated)
@pytest.mark.parametrize("args, name", [
    ((10.5, 2, 4, 16), "n_candidates"), ((-10, 2, 4, 16), "n_candidates"), ((10, 2.5, 4, 16), "n_tokens"),
    ((10, 2, 0, 16), "token_dim"), ((10, 2, 4, 0), "codebook_size"),
])
def test_pq_storage_and_operation_counts_reject_bad_counts(args, name):
    for fn in (pq.storage, pq.operation_counts):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            fn(*args)
    with pytest.raises(ValueError, match="^n_queries must be an integer, got 2.7"):
        pq.operation_counts(10, 2, 4, 16, n_queries=2.7)


def test_pq_counts_still_exact_on_valid_sizes():
    s = pq.storage(10, 2, 4, 16)
    assert (s["indices"], s["floats"], s["index_bits"], s["packed_index_bytes"]) == (20, 80, 4, 10)
    assert pq.storage(0, 2, 4, 1)["index_bits"] == 1                     # documented: at least one bit
    ops = pq.operation_counts(10, 2, 4, 16, n_queries=3)
    assert ops == {"dense_multiply_adds": 240, "lut_multiply_adds": 384, "lut_additions": 60, "lut_total": 444}


@pytest.mark.parametrize("kw, name", [({"block": 0.5}, "block"), ({"block": 0}, "block"), ({"n_jobs": -2}, "n_jobs")])
def test_nearest_codeword_checks_block_and_jobs(X, kw, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        pq.nearest_codeword(X, X[:4], **kw)


def test_index_bits_of_zero_codewords_is_named():
    with pytest.raises(ValueError, match="^codebook_size must be at least 1, got 0"):
        pq.index_bits(0)


def test_splice_checks_lam_when_fitting(X):
    with pytest.raises(ValueError, match="^lam must be a finite positive number, got -1.0"):
        SpLiCE(lam=-1).fit(X)


# ------------------------------------------------------------------ seeds
@pytest.mark.parametrize("seed, match", [(-1, "random_state must be at least 0, got -1"),
                                         (1.5, "random_state must be an integer, got 1.5"),
                                         ("0", "random_state must be an integer")])
def test_seeds_are_checked_by_one_helper_everywhere(X, seed, match):
    Y = np.eye(3, dtype=bool)[np.arange(20) % 3]
    for call in (lambda: check_random_state(seed), lambda: SLiCS(2, n_iter=1, random_state=seed).fit(X, Y),
                 lambda: pq.TokenQuantiser(2, 4, random_state=seed).fit(X),
                 lambda: make_planted(n_samples=20, random_state=seed)):
        with pytest.raises(ValueError, match=match):
            call()


def test_seed_helper_accepts_none_ints_and_generators(X):
    g = np.random.default_rng(5)
    assert check_random_state(g) is g
    assert check_random_state(3).integers(1000) == np.random.default_rng(3).integers(1000)
    assert check_random_state(np.int64(3.0)).integers(1000) == np.random.default_rng(3).integers(1000)
    fitted = pq.TokenQuantiser(2, 4, random_state=None).fit(X)                  # was int(None): TypeError
    assert fitted.codebook_.shape == (4, 4)
    again = pq.TokenQuantiser(2, 4, random_state=np.random.default_rng(1)).fit(X)
    assert np.allclose(np.linalg.norm(again.codebook_, axis=1), 1)


# ------------------------------------------------------------------ errors that named the wrong argument or none
def test_splice_transform_blames_z_not_the_vocabulary(X):
    with pytest.raises(ValueError, match="^Z has 4 columns but 8 are expected"):
        SpLiCE(lam=0.1).fit(X).transform(X[:, :4])


def test_cosine_similarity_names_its_arguments(X):
    with pytest.raises(ValueError, match="^B has 3 columns but A has 8"):
        cosine_similarity(X, X[:, :3])
    with pytest.raises(ValueError, match="^A must be a 2-D array"):
        cosine_similarity(np.ones(8), X)
    S = cosine_similarity(X.astype(np.float32), X[:3].astype(np.float32))
    assert S.dtype == np.float32                                              # the dtype is kept
    ref = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (X[:3] / np.linalg.norm(X[:3], axis=1, keepdims=True)).T
    assert np.allclose(cosine_similarity(X, X[:3]), ref)


def test_token_errors_name_n_tokens_and_codebook_size(X):
    with pytest.raises(ValueError, match="^n_tokens = 3 does not divide the 8 features"):
        pq.TokenQuantiser(3, 4).fit(X)
    with pytest.raises(ValueError, match="^codebook_size = 1000 is more than the 40 training tokens"):
        pq.TokenQuantiser(2, 1000).fit(X)


@pytest.mark.parametrize("probs", [[0.5, 0.5], [0.5, 0.5, 0.5], [1.5, -0.25, -0.25], [np.nan, 0.5, 0.5]])
def test_make_planted_checks_concept_probs(probs):
    with pytest.raises(ValueError, match=r"^concept_probs must be 3 non-negative probabilities summing to 1"):
        make_planted(n_samples=10, concepts_per_sample=(1, 3), concept_probs=probs)


def test_shape_errors_name_both_arguments():
    with pytest.raises(ValueError, match="^R_hat and R_true must have the same shape"):
        rotation_error(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="^true_support and estimated_support must be 2-D"):
        support_recovery(np.ones((3, 2), bool), np.ones((3, 3), bool))


# ------------------------------------------------------------------ raw tracebacks
def test_mean_average_precision_names_missing_columns():
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['ap_sub'\]"):
        mean_average_precision(pd.DataFrame({"ap_general": [1.0]}))
    with pytest.raises(TypeError, match="^pairs must be the DataFrame of filtered_retrieval, got dict"):
        mean_average_precision({"ap_general": [1.0], "ap_sub": [1.0]})
    with pytest.raises(ValueError, match="ap_general_minkr but not ap_sub_minkr"):
        mean_average_precision(pd.DataFrame({"ap_general": [1.0], "ap_sub": [1.0], "ap_general_minkr": [1.0]}))


# ------------------------------------------------------------------ files
def test_numpy_file_kind_reads_the_first_bytes(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(2))
    np.savez(tmp_path / "b.npz", a=np.ones(2))
    (tmp_path / "c.npy").write_text("not numpy")
    (tmp_path / "d.npy").write_bytes(b"\x80\x04K\x01.")                          # pickle.dumps(1)
    (tmp_path / "e.npy").write_bytes(b"")
    kinds = [numpy_file_kind(tmp_path / n) for n in ("a.npy", "b.npz", "c.npy", "d.npy", "e.npy")]
    assert kinds == ["npy", "npz", None, "pickle", None]


def test_cli_says_a_text_file_is_not_numpy_rather_than_a_pickle(tmp_path, capsys):
    from slics.cli import main

    (tmp_path / "emb.npy").write_text("not numpy")
    (tmp_path / "labels.csv").write_text("a,b\n1,0\n")
    assert main(["fit", "--embeddings", str(tmp_path / "emb.npy"), "--labels", str(tmp_path / "labels.csv"),
                 "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "is not a NumPy file" in err and "pickle" not in err and "Traceback" not in err
    model = tmp_path / "model.npz"
    model.write_text("garbage")
    assert main(["caption", "--model", str(model), "--words", str(tmp_path / "labels.csv"),
                 "--vocab-embeddings", str(tmp_path / "emb.npy")]) == 2
    err = capsys.readouterr().err
    assert "is not a slics model file" in err and "pickle" not in err


def test_a_file_where_a_folder_must_be_is_named(tmp_path):
    blocker = tmp_path / "emb.npy"
    blocker.write_text("x")
    for call in (lambda: write_text(blocker / "sub" / "m.txt", "x"), lambda: check_writable(blocker / "sub")):
        with pytest.raises(NotADirectoryError, match=f"{blocker} is a file, not a folder"):
            call()
    assert blocker.read_text() == "x"


def test_not_writable_error_is_a_permission_error_naming_the_fix(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setenv("SLICS_RESULTS_DIR", str(tmp_path))
    with pytest.raises(NotWritableError, match=r"Read-only file system\); make it writable .* SLICS_RESULTS_DIR") as err:
        write_text(tmp_path / "tables" / "t.csv", "x")
    assert isinstance(err.value, PermissionError) and json.dumps(str(err.value))
