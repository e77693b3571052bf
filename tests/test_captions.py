"""Public retrieval and captions modules: re-exports, captions against scipy's NNLS, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

import slics.core.retrieval as core_retrieval
import slics.retrieval
from slics.captions import centre_vocabulary, word_captions
from slics.core.dictionary import SLiCS
from slics.core.sparse_coding import center_and_normalise
from slics.core.normalise import normalise_rows


def test_retrieval_reexports_the_core_functions():
    assert set(slics.retrieval.__all__) == {"top_k", "filtered_retrieval", "average_precision_at_k",
                                            "mean_average_precision", "AP_CONVENTION"}
    for name in slics.retrieval.__all__:
        assert getattr(slics.retrieval, name) is getattr(core_retrieval, name)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 12))
    Y = rng.random((200, 3)) < 0.5
    Y[:3] = np.eye(3, dtype=bool)
    return SLiCS(n_atoms=2, n_iter=2).fit(X[Y.any(axis=1)], Y[Y.any(axis=1)]), rng.standard_normal((80, 12))


def test_captions_match_scipy_nnls_reference(fitted):
    model, vocab = fitted
    words = [f"w{i}" for i in range(len(vocab))]
    got = word_captions(model, vocab, words, n_words=6, concept_names=["a", "b", "c"])
    V = center_and_normalise(normalise_rows(vocab))[0]
    for j, name in enumerate("abc"):
        Dj = model.dictionary_[model.atom_concept_ == j]
        err = np.array([nnls(Dj.T, v)[1] ** 2 for v in V])
        assert got[name] == [words[i] for i in np.argsort(err, kind="stable")[:6]]


def test_centring_is_unit_rows_then_centre_and_normalise(fitted):
    model, vocab = fitted
    words = [str(i) for i in range(len(vocab))]
    np.testing.assert_array_equal(centre_vocabulary(vocab), center_and_normalise(normalise_rows(vocab))[0])
    assert word_captions(model, vocab, words) == word_captions(model, centre_vocabulary(vocab), words, centre=False)
    # the default names, and the loaded model's names when it carries them
    assert list(word_captions(model, vocab, words)) == ["concept 0", "concept 1", "concept 2"]


def test_captions_refuse_misaligned_or_mismatched_inputs(fitted):
    model, vocab = fitted
    with pytest.raises(ValueError, match="words has 79 entries but vocab_emb has 80 rows"):
        word_captions(model, vocab, [str(i) for i in range(79)])
    with pytest.raises(ValueError, match="columns but 12 are expected"):
        word_captions(model, vocab[:, :5], [str(i) for i in range(80)])
    with pytest.raises(ValueError, match="atom_concept is required"):
        word_captions(model.dictionary_, vocab, [str(i) for i in range(80)])
    with pytest.raises(ValueError, match="concept_names has 2 names for 3 concepts"):
        word_captions(model, vocab, [str(i) for i in range(80)], concept_names=["a", "b"])
    with pytest.raises(ValueError, match="n_words"):
        word_captions(model, vocab, [str(i) for i in range(80)], n_words=81)
    bad = vocab.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        word_captions(model, bad, [str(i) for i in range(80)])
