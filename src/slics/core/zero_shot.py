"""Zero-shot classification and pseudo-labels by cosine similarity."""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_int, check_matrix
from .normalise import normalise_rows


def cosine_similarity(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(n, m) cosine similarities between the rows of ``A`` and ``B`` (a zero row has similarity 0)."""
    A, B = np.asarray(A), np.asarray(B)         # the dtype is kept (float32 stays float32)
    for name, M in (("A", A), ("B", B)):
        if M.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array (rows are vectors), got shape {M.shape}.")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"B has {B.shape[1]} columns but A has {A.shape[1]}; the rows must have the same dimension.")
    return normalise_rows(A) @ normalise_rows(B).T


def zero_shot_predict(image_emb, class_text_emb) -> np.ndarray:
    """Index of the most similar class prompt for every image."""
    image_emb = check_matrix(image_emb, "image_emb")
    class_text_emb = check_matrix(class_text_emb, "class_text_emb", n_cols=image_emb.shape[1])
    return np.argmax(cosine_similarity(image_emb, class_text_emb), axis=1)


def zero_shot_accuracy(image_emb, class_text_emb, labels) -> float:
    """Fraction of images whose most cosine-similar class prompt is their label.

    Parameters
    ----------
    image_emb : array of shape (n_images, d)
    class_text_emb : array of shape (n_classes, d)
        One prompt embedding per class, in label order.
    labels : array of shape (n_images,)
        Integer class index of each image.

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    labels = np.asarray(labels)
    if labels.dtype == bool or not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}.")
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels) & (labels == np.round(labels))):
            raise ValueError("labels must be integer class indices; found non-integer values.")
        labels = labels.astype(np.int64)
    predictions = zero_shot_predict(image_emb, class_text_emb)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels has shape {labels.shape}; expected ({predictions.shape[0]},), one per image.")
    if labels.size and (labels.min() < 0 or labels.max() >= np.shape(class_text_emb)[0]):
        raise ValueError("labels must be class indices in [0, n_classes).")
    return float(np.mean(predictions == labels))


def zero_shot_pseudo_labels(image_emb, concept_text_emb, k: int = 2) -> np.ndarray:
    """Binary (n_images, n_concepts) labels: the ``k`` most cosine-similar concepts of each image.

    These are the labels of unsupervised SLiCS. Ties are broken by the lower concept index
    (a stable sort), so the result is deterministic.

    Parameters
    ----------
    image_emb : array of shape (n_images, d)
        Image embeddings, one per row.
    concept_text_emb : array of shape (n_concepts, d)
        Concept text embeddings, one per row.
    k : int, default 2
        Concepts per image, between 1 and ``n_concepts``.

    Returns
    -------
    ndarray of shape (n_images, n_concepts), bool
        Exactly ``k`` True entries per row.
    """
    image_emb = check_matrix(image_emb, "image_emb")
    concept_text_emb = check_matrix(concept_text_emb, "concept_text_emb", n_cols=image_emb.shape[1])
    n_concepts = concept_text_emb.shape[0]
    k = check_int(k, "k")
    if not 1 <= k <= n_concepts:
        raise ValueError(f"k must be between 1 and the number of concepts ({n_concepts}), got {k}.")
    sims = cosine_similarity(image_emb, concept_text_emb)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    labels = np.zeros(sims.shape, dtype=bool)
    np.put_along_axis(labels, top, True, axis=1)
    return labels
