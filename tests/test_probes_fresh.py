"""Bad inputs found by a fresh probe set (issue #18): each was a silent wrong answer, a raw
traceback or an unclear error; now a clear error that names the parameter, or a correct result.

Classes fixed at their root (one helper each, in :mod:`slics.utils.validation`):

- a single string where a sequence of names is expected was read as one-letter names, and
  repeated names silently collapsed the keys of a result (``check_names``);
- mean vectors were converted before they were named, and a NaN mean propagated (``check_vector``);
- row selections wrapped around, truncated or failed inside numpy (``check_rows``);
- arrays of strings reached numpy's ufuncs (``check_real_array``);
- hand-edited model files failed with KeyError / AttributeError; metadata with NumPy scalars
  could not be saved;
- the command line's text inputs: a spreadsheet's byte-order mark stuck to the first concept
  name, a non-UTF-8 file or a malformed CSV gave a message without the file, a folder was
  reported as missing, a negative ``--seed`` failed with numpy's words.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from slics.captions import word_captions
from slics.cli import main
from slics.core.dictionary import SLiCS
from slics.core.nnls import nnls_batch
from slics.core.normalise import normalise_rows
from slics.core.planted import make_planted
from slics.core.sparse_coding import (center_and_normalise, concept_dictionary, fista, fista_from, reconstruct,
                                      soft_threshold, sparse_memory_bytes)
from slics.embedding.retrieval_set import RetrievalSet
from slics.model_io import load_model, save_model
from slics.preprocess import centre, image_mean, preprocess_for

NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def planted():
    X, Y, D, _ = make_planted(60, 8, 3, 2, random_state=1)
    return X, Y, SLiCS(2, n_iter=1).fit(X, Y)


# ------------------------------------------------------------------ names (check_names)
@pytest.mark.parametrize("kwargs, match", [
    ({"words": "abc"}, "words must be a sequence of names"),
    ({"concept_names": "xyz"}, "concept_names must be a sequence of names"),
    ({"concept_names": ["x", "x", "y"]}, r"concept_names must be unique; repeated: \['x'\]"),
    ({"concept_names": 3}, "concept_names must be a sequence of names"),
])
def test_word_captions_names(kwargs, match):
    args = {"words": ["red", "green", "blue"], "concept_names": ["x", "y", "z"]} | kwargs
    with pytest.raises(ValueError, match=match):
        word_captions(np.eye(3), np.eye(3), args["words"], atom_concept=[0, 1, 2], n_words=1, centre=False,
                      concept_names=args["concept_names"])
    ok = word_captions(np.eye(3), np.eye(3), ("red", "green", "blue"), atom_concept=[0, 1, 2], n_words=1,
                       centre=False, concept_names=("x", "y", "z"))          # tuples are sequences of names
    assert ok == {"x": ["red"], "y": ["green"], "z": ["blue"]}


def test_save_model_refuses_a_string_of_names(planted, tmp_path):
    with pytest.raises(ValueError, match="concept_names must be a sequence of names"):
        save_model(planted[2], tmp_path / "m.npz", concept_names="abc")
    assert list(tmp_path.iterdir()) == []


def test_retrieval_set_names_and_parents():
    X = np.random.default_rng(0).normal(size=(24, 6))
    G = np.zeros((24, 2), bool)
    G[::2, 0] = G[1::2, 1] = True
    split = np.array(["train"] * 12 + ["query"] * 4 + ["pool"] * 8)
    sub = np.ones((24, 1), bool)
    with pytest.raises(ValueError, match="general_names must be a sequence of names"):
        RetrievalSet.from_arrays(X, G, split, general_names="ab")
    with pytest.raises(ValueError, match="got dtype float64"):          # was truncated to concept 0
        RetrievalSet.from_arrays(X, G, split, general_names=NAMES[:2], sub=sub, sub_parent=[0.7])
    with pytest.raises(ValueError, match=r"sub_parent must hold indices in \[0, 2\), got \[2\]"):
        RetrievalSet.from_arrays(X, G, split, general_names=NAMES[:2], sub=sub, sub_parent=[2])
    with pytest.raises(ValueError, match="sub_names has 2 names but 1 are expected"):
        RetrievalSet.from_arrays(X, G, split, general_names=NAMES[:2], sub=sub, sub_parent=[1], sub_names=["p", "q"])
    rs = RetrievalSet.from_arrays(X, G, split, general_names=NAMES[:2], sub=sub, sub_parent=[1], sub_names=["p"])
    assert rs.data.sub_parent.tolist() == [1] and rs.data.sub_names == ("p",)


# ------------------------------------------------------------------ vectors (check_vector)
@pytest.mark.parametrize("mean, match", [
    ("abc", "mean must be a finite vector of length 8 .*dtype <U3"),
    (np.full(8, np.nan), "mean contains 8 NaN or infinite value"),
    (np.zeros(3), r"mean must be a finite vector of length 8 \(the embedding dimension\), got shape \(3,\)"),
    ([True] * 8, "dtype bool"),
])
@pytest.mark.parametrize("call", [
    lambda X, m: centre(X, m),
    lambda X, m: center_and_normalise(X, mean=m),
    lambda X, m: reconstruct(np.ones((2, 3)), X[:3], mean=m),       # was NaN rows for a NaN mean
])
def test_mean_vectors_are_named_before_conversion(planted, call, mean, match):
    with pytest.raises(ValueError, match=match):
        call(planted[0], mean)


def test_reconstruct_adds_a_list_mean(planted):
    X = planted[0]
    np.testing.assert_allclose(reconstruct(np.eye(3), X[:3], mean=list(range(8))), X[:3] + np.arange(8))


# ------------------------------------------------------------------ rows (check_rows)
@pytest.mark.parametrize("train, match", [
    ([0, -1], r"train must hold indices in \[0, 60\), got \[-1\]"),          # was the last row
    ([0.5, 1.5], "train must hold integer indices"),                          # was numpy's IndexError
    (np.ones(3, bool), r"train as a boolean mask must have one entry per row \(60\)"),
])
def test_preprocess_for_checks_train_rows(planted, train, match):
    with pytest.raises(ValueError, match=match):
        preprocess_for(planted[0], "precomputed", train=train)


def test_preprocess_for_train_mask_and_indices_agree_with_the_formula(planted):
    X = planted[0]
    mask = np.arange(60) % 3 == 0
    by_mask, mean = preprocess_for(X, "precomputed", train=mask)
    by_rows, mean2 = preprocess_for(X, "precomputed", train=np.flatnonzero(mask))
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_allclose(mean, unit[mask].mean(axis=0))
    np.testing.assert_array_equal(by_mask, by_rows)
    np.testing.assert_array_equal(mean, mean2)
    assert np.array_equal(image_mean(X[mask]), mean)


# ------------------------------------------------------------------ numbers only (check_real_array)
@pytest.mark.parametrize("call", [lambda v: normalise_rows(v), lambda v: soft_threshold(v, 0.1)])
@pytest.mark.parametrize("value", [["a", "b"], np.array([{"x": 1}], dtype=object), [1 + 2j]])
def test_non_numbers_are_named(call, value):
    with pytest.raises(TypeError, match="X must hold real numbers"):
        call(value)


def test_normalise_rows_and_soft_threshold_still_take_lists_and_bools():
    np.testing.assert_allclose(normalise_rows([[3, 4], [0, 0]]), [[0.6, 0.8], [0, 0]])
    np.testing.assert_array_equal(soft_threshold([True, False], 0.25), [0.75, 0.0])


# ------------------------------------------------------------------ solvers
def test_sparse_memory_bytes_needs_a_float_dtype():
    W = np.full((3, 4), 0.5)
    W[0, 1] = 0
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got int8"):
        sparse_memory_bytes(W, dtype=np.int8)                 # counted 0 non-zeros (0.5 truncated)
    with pytest.raises(TypeError, match="dtype must be a NumPy dtype .* got 'abc'"):
        sparse_memory_bytes(W, dtype="abc")
    out = sparse_memory_bytes(W, dtype=np.float64)
    assert out["nnz"] == np.count_nonzero(W) == 11 and out["data_bytes"] == 11 * 8


def test_fista_from_checks_the_rows_of_w0():
    rng = np.random.default_rng(0)
    Z = normalise_rows(rng.normal(size=(7, 8)))
    D = concept_dictionary(rng.normal(size=(5, 8)))[0]
    for rows in (3, 9):                        # 3: numpy's matmul message; 9: rows 7, 8 ignored
        with pytest.raises(ValueError, match=f"W0 has {rows} rows but Z has 7"):
            fista_from(Z, D, 0.1, np.zeros((rows, 5)))
    np.testing.assert_allclose(fista_from(Z, D, 0.1, np.zeros((7, 5)), tol=1e-10),
                               fista(Z, D, 0.1, tol=1e-10), atol=1e-6)


def test_nnls_refuses_a_nan_start():
    rng = np.random.default_rng(0)
    D, X = rng.normal(size=(5, 8)), rng.normal(size=(7, 8))
    with pytest.raises(ValueError, match="init contains 35 NaN"):
        nnls_batch(D, X, init=np.full((7, 5), np.nan))
    start = np.abs(rng.normal(size=(7, 5)))
    np.testing.assert_allclose(nnls_batch(D, X, init=start), nnls_batch(D, X), atol=1e-8)


# ------------------------------------------------------------------ model files
def _metadata(path, meta):
    z = dict(np.load(path))
    z["metadata"] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    np.savez(path, **z)


@pytest.mark.parametrize("edit, match", [
    (lambda m: {k: v for k, v in m.items() if k != "n_concepts"}, r"lacks or garbles the entr\(y/ies\) \['n_concepts'\]"),
    (lambda m: m | {"params": None, "n_atoms": "2"}, r"\['n_atoms', 'params'\]: the file is damaged"),
    (lambda m: m | {"preprocessing": "mystery"}, r"\['preprocessing'\]"),
    (lambda m: "[1, 2]", "the model metadata is a JSON list, not an object"),
])
def test_load_model_names_damaged_metadata(planted, tmp_path, edit, match):
    path = save_model(planted[2], tmp_path / "m.npz")
    meta = json.loads(str(np.load(path)["metadata"]))
    _metadata(path, edit(meta))
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_metadata_with_numpy_values_round_trips(planted, tmp_path):
    user = {"score": np.float32(0.5), "rows": np.arange(3), "n": np.int64(7)}
    back = load_model(save_model(planted[2], tmp_path / "m.npz", metadata=user))
    assert back.metadata_["user"] == {"score": 0.5, "rows": [0, 1, 2], "n": 7}


# ------------------------------------------------------------------ command line text inputs
@pytest.fixture(scope="module")
def inputs(tmp_path_factory, planted):
    d = tmp_path_factory.mktemp("cli")
    X, Y, _ = planted
    np.save(d / "emb.npy", X)
    text = pd.DataFrame(Y.astype(int), columns=NAMES).to_csv(index=False, lineterminator="\n")
    (d / "labels.csv").write_text(text)
    return d, text


def _fit(d, labels, *extra):
    return main(["fit", "--embeddings", str(d / "emb.npy"), "--labels", str(labels), "--n-atoms", "2",
                 "--n-iter", "1", "--preprocess", "none", "--out", str(d / "m.npz"), *extra])


def test_labels_written_with_a_byte_order_mark(inputs):
    d, text = inputs
    (d / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())            # as a spreadsheet saves UTF-8
    assert _fit(d, d / "bom.csv") == 0
    assert load_model(d / "m.npz").concept_names_ == tuple(NAMES)         # was ('\ufeffa', 'b', 'c')


@pytest.mark.parametrize("name, body, words", [
    ("latin.csv", lambda t: t.replace("a,b,c", "a,b,caf\xe9", 1).encode("latin-1"),
     ["latin.csv' is not UTF-8 text (line 1", "save it as UTF-8"]),
    ("quote.csv", lambda t: (t + '"1,0,1\n').encode(), ["quote.csv' is not a well-formed CSV"]),
])
def test_unreadable_text_inputs_name_the_file(inputs, capsys, name, body, words):
    d, text = inputs
    (d / name).write_bytes(body(text))
    assert _fit(d, d / name) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err, err


def test_a_folder_is_not_reported_as_missing(inputs, capsys):
    d, _ = inputs
    (d / "labels_dir.csv").mkdir(exist_ok=True)
    assert _fit(d, d / "labels_dir.csv") == 2
    assert "labels file" in (err := capsys.readouterr().err) and "is a folder" in err, err


def test_negative_seed_is_an_argument_error(inputs, capsys):
    d, _ = inputs
    with pytest.raises(SystemExit) as stop:
        _fit(d, d / "labels.csv", "--seed", "-1")
    assert stop.value.code == 2
    assert "argument --seed: expected an integer >= 0, got -1" in capsys.readouterr().err


# ------------------------------------------------------------------ metrics and planted data
@pytest.mark.parametrize("n_relevant", [[2.5], [np.nan], ["3"], [True]])
def test_n_relevant_must_be_whole_counts(n_relevant):
    from slics.core.retrieval import average_precision_at_k

    with pytest.raises(ValueError, match="n_relevant must hold whole counts"):     # 2.5 and NaN gave a number
        average_precision_at_k([[1, 0, 1]], n_relevant=n_relevant)


def test_n_relevant_integral_floats_and_unsigned_counts_follow_the_formula():
    from slics.core.retrieval import average_precision_at_k

    # hits at ranks 1 and 3: precisions 1 and 2/3; normaliser min(k=3, R)
    np.testing.assert_allclose(average_precision_at_k([[1, 0, 1]], n_relevant=[4.0]), [(1 + 2 / 3) / 3])
    np.testing.assert_allclose(average_precision_at_k([[1, 0, 1]], n_relevant=np.array([2], np.uint8)),
                               [(1 + 2 / 3) / 2])


def test_filtered_retrieval_refuses_repeated_concepts():
    from slics.core.retrieval import filtered_retrieval, mean_average_precision

    rng = np.random.default_rng(0)
    Q, P = rng.normal(size=(4, 6)), rng.normal(size=(9, 6))
    Yq, Yp = np.ones((4, 2), bool), rng.random((9, 2)) < 0.5
    with pytest.raises(ValueError, match=r"concepts must not repeat a concept, got \[0, 0\]"):
        filtered_retrieval(Q, P, Yq, Yp, k=2, concepts=[0, 0])     # concept 0's pairs counted twice in mAP
    both = filtered_retrieval(Q, P, Yq, Yp, k=2, concepts=[1, 0])
    assert mean_average_precision(both)["n_pairs"] == 8


@pytest.mark.parametrize("kwargs, error, match", [
    ({"atom_coherence": "0.3"}, TypeError, "atom_coherence must be a real number"),
    ({"concept_coherence": None}, TypeError, "concept_coherence must be a real number"),
    ({"atom_density": 0}, ValueError, "atom_density must be a finite positive number"),
    ({"concepts_per_sample": 3}, ValueError, r"concepts_per_sample must be a pair \(lo, hi\)"),
    ({"concepts_per_sample": "13"}, ValueError, r"concepts_per_sample must be a pair \(lo, hi\)"),
])
def test_make_planted_names_its_scalars(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_planted(20, 8, 3, 2, **kwargs)


def test_relative_error_and_alignment_errors_refuse_an_undefined_ratio(planted):
    from slics.core.alignment import alignment_errors
    from slics.core.planted import relative_error

    X, Y, model = planted
    D = model.dictionary_
    with pytest.raises(ValueError, match="X is all zeros"):                          # was nan
        relative_error(np.zeros_like(X), np.zeros((60, 6)), D)
    with pytest.raises(ValueError, match="W has 5 columns but 6 are expected"):      # was numpy's matmul words
        relative_error(X, np.zeros((60, 5)), D)
    with pytest.raises(ValueError, match="W has 3 rows but X has 60"):
        relative_error(X, np.zeros((3, 6)), D)
    W = model.transform(X, Y)
    assert relative_error(X, W, D) == pytest.approx(np.linalg.norm(X - W @ D) / np.linalg.norm(X), rel=1e-12)
    with pytest.raises(ValueError, match="Y is all zeros"):                          # relative_error was inf
        alignment_errors(X[:5], np.zeros((5, 8)))


# ------------------------------------------------------------------ the site builder replaces its folder whole
def test_site_refuses_a_folder_of_other_files_and_a_file(tmp_path):
    """``python -m slics.site --out DIR`` deleted every file of an existing DIR (data loss): now refused
    before anything is written, unless DIR is absent, empty or an earlier site."""
    from slics.site.build import SITE_MARKER, build, check_site_folder

    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="holds other files and is not a site built here"):
        build(mine)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        check_site_folder(tmp_path / "notes.txt")
    site = tmp_path / "site"
    for path in (site / SITE_MARKER, tmp_path / "old" / "index.html", tmp_path / "old" / "static" / "site.css"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    for ok in (site, tmp_path / "old", tmp_path / "absent", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        check_site_folder(ok)                                 # an earlier site (marked or not), absent, empty


def test_verdict_refuses_an_unknown_revision(tmp_path):
    """``python -m slics.utils.verdict --rev typo`` (or a copy without .git) reported every result
    file as 'new' and 'NOT reproduced' with exit 0, as if the run had failed to reproduce."""
    from slics.utils.config import project_root
    from slics.utils.verdict import check_rev, compare_results

    with pytest.raises(ValueError, match="--rev 'no-such-rev' is not a commit of"):
        compare_results(rev="no-such-rev")
    with pytest.raises(ValueError, match="is it a git checkout"):
        check_rev(tmp_path, "HEAD")
    check_rev(project_root(), "HEAD")


def _damage(path, drop=(), **arrays):
    z = {k: v for k, v in np.load(path).items() if k not in drop}
    np.savez(path, **(z | arrays))


@pytest.mark.parametrize("damage, match", [
    (lambda m: {"dictionary": np.where(np.arange(48).reshape(6, 8) == 3, np.nan, m.dictionary_)},
     "dictionary contains 1 NaN"),                                     # failed only at use, naming 'D'
    (lambda m: {"dictionary": m.dictionary_.astype(str)}, "dictionary must be real-valued numbers"),
    (lambda m: {"atom_concept": np.array([0, 0, 1, 1, 2, 5])}, "atom_concept is not the concept-major layout"),
    (lambda m: {"atom_concept": np.array([0, 0, 1, 1, 2, 2.5])}, "atom_concept is not the concept-major layout"),
    (lambda m: {"init_dictionary": m.dictionary_[:4]}, r"init_dictionary has shape \(4, 8\)"),
])
def test_load_model_checks_its_arrays(planted, tmp_path, damage, match):
    """A damaged array loaded silently: project() of concept 2 used one atom (atom_concept [.., 2, 5])."""
    model = planted[2]
    path = save_model(model, tmp_path / "m.npz")
    _damage(path, **damage(model))
    with pytest.raises(ValueError, match=f"m.npz'?: .*{match}.*the file is damaged"):
        load_model(path)


def test_load_model_centre_needs_a_finite_mean(planted, tmp_path):
    X, _, model = planted
    path = save_model(model, tmp_path / "m.npz", preprocessing="centre", image_mean=X.mean(axis=0))
    back = load_model(path)
    assert back.image_mean_.tobytes() == X.mean(axis=0).tobytes()
    _damage(path, image_mean=np.full(8, np.inf))
    with pytest.raises(ValueError, match="image_mean contains 8 NaN or infinite.*damaged"):
        load_model(path)
    _damage(path, drop=("image_mean",))
    with pytest.raises(ValueError, match="preprocessing 'centre' needs the 8-vector image_mean: the file is damaged"):
        load_model(path)
