import numpy as np
import pandas as pd
import pytest

from slics.sections import ista_clip as sec
from slics.core.sparse_coding import align_embeddings, sparse_memory_bytes


def _codes(seed=0, n=50, m=30, density=0.1):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, m)).astype(np.float32)
    W[rng.random((n, m)) > density] = 0
    return W


def test_memory_table_matches_scipy_csr():
    W = _codes()
    sweep = pd.DataFrame({"lambda": [0.1], "mean_nonzeros": [np.count_nonzero(W) / W.shape[0]]})
    table = sec.memory_table(sweep, *W.shape)
    actual = sparse_memory_bytes(W)
    assert table["csr_MB"].iloc[0] * 1e6 == pytest.approx(actual["csr_bytes"])
    assert table["dense_float32_MB"].iloc[0] * 1e6 == W.size * 4
    assert sec.check_csr_formula(W)


def test_memory_claim_inverts_the_csr_formula():
    n, m, nnz_per_row = 10_000, 1003, 25
    size_mb = (n * nnz_per_row * 8 + (n + 1) * 4) / 1e6
    claim = sec.memory_claim_check(size_mb, n, m)
    row = claim[claim["format"].str.startswith("CSR float32")].iloc[0]
    assert row["implied_mean_nonzeros"] == pytest.approx(nnz_per_row)


def test_top_concepts_counts_and_ties():
    W = np.array([[1.0, 0, 2], [0.5, 0, 0], [0, 0, -1]])
    table = sec.top_concepts(W, ["b", "c", "a"], k=3)
    # a and b are both used by 2 images: the tie goes alphabetically
    assert table["concept"].tolist() == ["a", "b", "c"]
    assert table["nonzero_images"].tolist() == [2, 2, 0]
    assert table["mean_abs_weight"].tolist() == pytest.approx([1.5, 0.75, 0.0])


def test_classifiers_on_perfect_codes():
    """A code that reproduces each centred image exactly classifies like the dense images."""
    rng = np.random.default_rng(1)
    classes = rng.normal(size=(3, 8))
    labels = np.repeat(np.arange(3), 5)
    images = classes[labels] + 0.05 * rng.normal(size=(15, 8))
    concepts = np.vstack([classes, rng.normal(size=(8, 8))])
    aligned = align_embeddings(images, concepts)
    W = np.linalg.lstsq(aligned.A, aligned.Z.T, rcond=None)[0].T  # exact: A is 8x11, full row rank
    assert sec.classify_codes(W, aligned, classes, labels, "image_mean") == 1.0
    for how in sec.CLASSIFIERS:
        assert 0.0 <= sec.classify_codes(W, aligned, classes, labels, how) <= 1.0
    with pytest.raises(ValueError, match="unknown classifier"):
        sec.classify_codes(W, aligned, classes, labels, "nope")


def test_example_items_are_distinct_classes_and_seeded():
    labels = np.repeat(np.arange(10), 20)
    a = sec.example_items(labels, 4, seed=3)
    assert len(set(labels[a])) == 4
    assert np.array_equal(a, sec.example_items(labels, 4, seed=3))


def test_top_weights_skips_zeros():
    W = np.array([[0.0, 0.3, -0.5, 0.0]])
    top = sec.top_weights(W, 0, ["a", "b", "c", "d"], k=3)
    assert top["concept"].tolist() == ["c", "b"]
