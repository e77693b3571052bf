import numpy as np
import pytest

from slics import zero_shot_accuracy, zero_shot_pseudo_labels
from slics.core.zero_shot import cosine_similarity, zero_shot_predict


def _data(seed=0, n=40, d=6, c=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(c, d)), rng.integers(0, c, size=n)


def test_accuracy_matches_brute_force():
    images, classes, labels = _data()
    correct = 0
    for x, y in zip(images, labels):
        sims = [x @ t / np.linalg.norm(x) / np.linalg.norm(t) for t in classes]
        correct += int(np.argmax(sims) == y)
    assert zero_shot_accuracy(images, classes, labels) == pytest.approx(correct / len(labels))


def test_accuracy_is_scale_invariant_and_perfect_on_prototypes():
    _, classes, _ = _data()
    labels = np.array([2, 0, 3, 1])
    assert zero_shot_accuracy(5.0 * classes[labels], classes, labels) == 1.0


def test_pseudo_labels_are_top_k_by_cosine():
    images, concepts, _ = _data(seed=1, c=7)
    labels = zero_shot_pseudo_labels(images, concepts, k=3)
    assert labels.dtype == bool and labels.shape == (40, 7)
    assert np.all(labels.sum(axis=1) == 3)
    sims = cosine_similarity(images, concepts)
    for row, chosen in zip(sims, labels):
        assert row[chosen].min() >= row[~chosen].max()


def test_pseudo_label_ties_go_to_the_lower_index():
    concepts = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = zero_shot_pseudo_labels(np.array([[1.0, 0.0]]), concepts, k=1)
    assert labels.tolist() == [[True, False, False]]


@pytest.mark.parametrize("images, classes, match", [
    (np.full((3, 4), np.nan), np.ones((2, 4)), "NaN"),
    (np.ones((3, 4)), np.ones((2, 5)), "dimension mismatch"),
    (np.ones(4), np.ones((2, 4)), "2-D"),
])
def test_bad_embeddings(images, classes, match):
    with pytest.raises(ValueError, match=match):
        zero_shot_predict(images, classes)


def test_bad_labels_and_k():
    images, classes, labels = _data()
    with pytest.raises(ValueError, match="one per image"):
        zero_shot_accuracy(images, classes, labels[:-1])
    with pytest.raises(ValueError, match="class indices"):
        zero_shot_accuracy(images, classes, labels + 10)
    with pytest.raises(ValueError, match="k must be between"):
        zero_shot_pseudo_labels(images, classes, k=0)


def test_normalise_rows_rows_and_vectors():
    from slics.core.normalise import normalise_rows

    X = np.array([[3.0, 4.0], [0.0, 0.0]])
    with np.errstate(all="raise"):                       # the zero row is divided by 1: no warning
        np.testing.assert_array_equal(normalise_rows(X), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_array_equal(normalise_rows(np.array([3.0, 4.0])), [0.6, 0.8])
    assert normalise_rows(X.astype(np.float32)).dtype == np.float32


def test_one_row_normaliser():
    """Every module that normalises rows uses slics.core.normalise, bit for bit ``x / ||x||``."""
    import slics.core.retrieval as retrieval
    import slics.core.zero_shot as zs
    import slics.embedding.encoders as encoders
    from slics.core.normalise import normalise_rows

    assert zs.normalise_rows is normalise_rows and encoders.normalise_rows is normalise_rows
    assert retrieval.normalise_rows is normalise_rows and not hasattr(retrieval, "_unit")
    X = np.random.default_rng(0).standard_normal((50, 7))
    X[3] = 0.0
    expected = X / np.where((n := np.linalg.norm(X, axis=1, keepdims=True)) == 0, 1, n)
    assert normalise_rows(X).tobytes() == expected.tobytes()


@pytest.mark.parametrize("shape", [(1, 5), (256, 3), (257, 512), (3000, 1), (2049, 1003), (5000, 17)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_normalise_rows_in_blocks_and_converted_keeps_the_formula_bits(shape, dtype):
    """Past NORM_BLOCK_ROWS rows the rows are normalised a block at a time (and converted as they go
    with ``dtype=``): bit for bit the formula on the whole array, zero rows, a row of huge values
    and non-contiguous inputs included."""
    from slics.core.normalise import NORM_BLOCK_ROWS, normalise_rows

    assert NORM_BLOCK_ROWS == 256
    X = (np.random.default_rng(shape[0]).standard_normal(shape) * 1e3).astype(dtype)
    X[0] = 0
    X[-1] = np.finfo(np.float32).max / 4 if dtype == np.float32 else X[-1]

    def formula(A):
        n = np.sqrt(np.add.reduce(A * A, axis=-1, keepdims=True))
        return A / np.where(n == 0, 1, n)

    with np.errstate(over="ignore"):
        for A in (X, np.asfortranarray(X), X[::-1]):
            ref = formula(A.astype(np.float64) if A.dtype.kind == "i" else A)
            got = normalise_rows(A)
            assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes()
            got = normalise_rows(A, dtype=np.float64)
            assert got.dtype == np.float64 and got.tobytes() == formula(A.astype(np.float64)).tobytes()
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got int64"):
        normalise_rows(X, dtype=np.int64)


@pytest.mark.parametrize("labels", [np.array([0.5, 1.0, 0.0]), np.array([True, False, True]), np.array(["0", "1", "0"])])
def test_accuracy_rejects_non_integer_labels(labels):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="integer"):
        zero_shot_accuracy(rng.normal(size=(3, 4)), rng.normal(size=(2, 4)), labels)


def test_accuracy_accepts_integral_float_labels():
    rng = np.random.default_rng(0)
    img, cls = rng.normal(size=(5, 4)), rng.normal(size=(2, 4))
    labels = np.array([0, 1, 1, 0, 1])
    assert zero_shot_accuracy(img, cls, labels.astype(float)) == zero_shot_accuracy(img, cls, labels)


def test_pseudo_labels_reject_fractional_k():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="k must be an integer"):
        zero_shot_pseudo_labels(rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), k=1.7)
