"""Zero-shot scoring and the lasso objective at their edges (written from `make mutation` survivors)."""

import numpy as np
import pytest

from slics.core.objectives import lasso_objective
from slics.core.zero_shot import zero_shot_accuracy, zero_shot_predict, zero_shot_pseudo_labels

# 3 images in 4-D, 2 classes: image i is closest to class i % 2
IMAGES = np.array([[1.0, 0.1, 0, 0], [0.1, 1.0, 0, 0], [1.0, 0.0, 0.2, 0]])
CLASSES = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])


def test_accuracy_labels_of_every_accepted_dtype():
    for labels in ([0, 1, 0], np.array([0, 1, 0], np.int8), np.array([0.0, 1.0, 0.0]),
                   np.array([0, 1, 0], np.float32)):
        assert zero_shot_accuracy(IMAGES, CLASSES, labels) == 1.0
    assert zero_shot_accuracy(IMAGES, CLASSES, np.array([1, 1, 0], np.float32)) == pytest.approx(2 / 3)


@pytest.mark.parametrize("labels", [np.array([0.5, 1, 0]), np.array([0.5, 1, 0], np.float32),
                                    np.array([np.nan, 1, 0])])
def test_accuracy_rejects_non_integral_labels(labels):
    with pytest.raises(ValueError, match=r"^labels must be integer class indices; found non-integer values.$"):
        zero_shot_accuracy(IMAGES, CLASSES, labels)


def test_accuracy_label_range_is_half_open():
    """2 classes in 4 dimensions: label 2 is out of range (the bound is the number of classes, not d)."""
    with pytest.raises(ValueError, match=r"^labels must be class indices in \[0, n_classes\).$"):
        zero_shot_accuracy(IMAGES, CLASSES, [0, 2, 0])
    with pytest.raises(ValueError, match="labels must be class indices"):
        zero_shot_accuracy(IMAGES, CLASSES, [0, -1, 0])
    with pytest.raises(ValueError, match="labels must be integer class indices, got dtype bool"):
        zero_shot_accuracy(IMAGES, CLASSES, [True, False, True])


def test_predict_names_its_arguments():
    with pytest.raises(ValueError, match="^image_emb contains"):
        zero_shot_predict(np.full((2, 4), np.nan), CLASSES)
    with pytest.raises(ValueError, match="^class_text_emb has 3 columns but 4 are expected"):
        zero_shot_predict(IMAGES, CLASSES[:, :3])


def test_pseudo_labels_k_bounds_and_names():
    np.testing.assert_array_equal(zero_shot_pseudo_labels(IMAGES, CLASSES, k=2), np.ones((3, 2), bool))
    np.testing.assert_array_equal(zero_shot_pseudo_labels(IMAGES, CLASSES, k=1), [[1, 0], [0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"k must be between 1 and the number of concepts \(2\), got 3"):
        zero_shot_pseudo_labels(IMAGES, CLASSES, k=3)
    with pytest.raises(ValueError, match="^concept_text_emb has 3 columns but 4 are expected"):
        zero_shot_pseudo_labels(IMAGES, CLASSES[:, :3])


def test_pseudo_labels_default_k_is_two_and_ties_go_to_lower_concepts():
    texts = np.tile([1.0, 0, 0, 0], (40, 1))          # 40 identical concepts: all tie
    out = zero_shot_pseudo_labels(IMAGES, texts)
    assert out.sum(axis=1).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(np.flatnonzero(out[0]), [0, 1])
    np.testing.assert_array_equal(np.flatnonzero(zero_shot_pseudo_labels(IMAGES, texts, k=5)[2]), range(5))


def test_lasso_objective_by_hand_and_its_errors():
    X, D, W = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([[1.0, -1.0, 0.5]])
    # residual (1 - 1 - 0.5, 2 + 1 - 0.5) = (-0.5, 2.5): 0.25 + 6.25, plus 0.3 * 2.5
    np.testing.assert_allclose(lasso_objective(X, D, W, 0.3), [6.5 + 0.75])
    for args, match in [((X, D[:, :1], W, 0.1), "^X has 2 columns but 1 are expected"),
                        ((X, D, W[:, :2], 0.1), "^W has 2 columns but 3 are expected"),
                        ((X, np.full((3, 2), np.nan), W, 0.1), "^D contains"),
                        ((np.r_[X, X], D, W, 0.1), "^W has 1 rows but X has 2"),
                        ((X, D, W, -1.0), r"^lam \(lambda\) must be a finite non-negative number")]:
        with pytest.raises(ValueError, match=match):
            lasso_objective(*args)
