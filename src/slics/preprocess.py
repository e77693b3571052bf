"""The SLiCS paper's preprocessing of image embeddings (section 4.1), per backbone.

Three kinds, named by each backbone's registry entry (:mod:`slics.embedding.registry`):

* ``"centre"`` (CLIP and any embedding with a text tower): scale every row to unit length,
  subtract an image mean, scale to unit length again. The mean is SpLiCE's precomputed
  CLIP image mean where the backbone has one, else the mean of the unit training rows
  (:func:`image_mean`).
* ``"tokens"`` (TiTok): each of ``n_tokens`` equal slices of a row scaled to unit length
  (the row's norm is then ``sqrt(n_tokens)``); no mean is removed.
* ``"unit"`` (DINOv2): unit rows; no mean is removed.

Every function returns a new float64 array and leaves its input unchanged. A zero row
stays zero; a zero token raises (it has no direction).

Examples
--------
>>> import numpy as np
>>> from slics import preprocess
>>> X = np.random.default_rng(0).normal(size=(100, 8))
>>> mean = preprocess.image_mean(X[:80])                 # training rows
>>> Z = preprocess.preprocess(X, "centre", mean=mean)
>>> bool(np.allclose(np.linalg.norm(Z, axis=1), 1))
True
"""

from __future__ import annotations

import numpy as np

from .core.pq import normalise_tokens
from .core.normalise import normalise_rows
from .utils.validation import check_matrix, check_rows, check_vector

__all__ = ["KINDS", "image_mean", "centre", "preprocess", "preprocess_for", "backbone_mean"]

KINDS = ("centre", "tokens", "unit")


UNIT_TOLERANCE = 1e-12   # rows this close to unit length are averaged as they are


def image_mean(X_train) -> np.ndarray:
    """The mean removed by ``"centre"`` when no precomputed one exists: the mean of the
    training rows after scaling each to unit length.

    Rows already of unit length (within ``UNIT_TOLERANCE``, as an encoder returns them)
    are averaged as they are, so the mean of an encoder's output does not depend on a
    rescaling's last bits.

    Parameters
    ----------
    X_train : array of shape (n, d)
        Training embeddings (any scale; those of an encoder are already unit rows).

    Returns
    -------
    mean : ndarray of shape (d,), float64
    """
    X = check_matrix(X_train, "X_train")
    if np.any(np.abs(np.linalg.norm(X, axis=1) - 1) > UNIT_TOLERANCE):
        X = normalise_rows(X)
    return X.mean(axis=0)


def centre(X, mean) -> np.ndarray:
    """Unit rows, minus ``mean``, unit rows again (float64).

    Parameters
    ----------
    X : array of shape (n, d)
    mean : array of shape (d,)

    Returns
    -------
    ndarray of shape (n, d)
    """
    X = check_matrix(X, "X")
    mean = check_vector(mean, "mean", X.shape[1])
    return normalise_rows(normalise_rows(X) - mean)


def preprocess(X, kind: str, *, mean=None, n_tokens: int | None = None) -> np.ndarray:
    """Apply one preprocessing kind to the rows of ``X``.

    Parameters
    ----------
    X : array of shape (n, d)
    kind : {"centre", "tokens", "unit"}
    mean : array of shape (d,), optional
        The image mean for ``"centre"`` (required there, ignored otherwise).
    n_tokens : int, optional
        Tokens per row for ``"tokens"`` (``d`` must be a multiple).

    Returns
    -------
    ndarray of shape (n, d), float64
    """
    if kind == "centre":
        if mean is None:
            raise ValueError("preprocess(kind='centre') needs mean=: image_mean(X_train) or the backbone's "
                             "precomputed mean (backbone_mean).")
        return centre(X, mean)
    if kind == "tokens":
        if n_tokens is None:
            raise ValueError("preprocess(kind='tokens') needs n_tokens= (tokens per row).")
        return normalise_tokens(check_matrix(X, "X"), n_tokens)
    if kind == "unit":
        return normalise_rows(check_matrix(X, "X"))
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")


def backbone_mean(backbone: str) -> np.ndarray | None:
    """The precomputed image mean of ``backbone`` (SpLiCE's CLIP means), or None when it has none."""
    from .embedding.registry import get_spec

    spec = get_spec(backbone)
    if spec.mean_resource is None:
        return None
    import torch

    from .data.resources import resource_path

    path = resource_path("splice_means", spec.mean_resource)
    return torch.load(path, map_location="cpu", weights_only=True).double().numpy().reshape(-1)


def preprocess_for(X, backbone: str, *, train=None) -> tuple[np.ndarray, np.ndarray]:
    """The paper's preprocessing of backbone ``backbone`` (a registry name).

    Parameters
    ----------
    X : array of shape (n, d)
        Embeddings as the backbone gives them.
    backbone : str
        Registry name (``slics.embedding.registry.backbone_names()``).
    train : array of int or bool, optional
        Training rows of ``X``, whose mean ``"centre"`` removes where the backbone has no
        precomputed mean (default all rows).

    Returns
    -------
    X_pre : ndarray of shape (n, d), float64
    mean : ndarray of shape (d,)
        The mean removed (zeros for ``"tokens"`` and ``"unit"``).
    """
    from .embedding.registry import get_spec

    spec = get_spec(backbone)
    X = check_matrix(X, "X")
    rows = None if train is None else check_rows(train, "train", X.shape[0])   # indices or a mask
    if spec.dim is not None and X.shape[1] != spec.dim:
        raise ValueError(f"X has {X.shape[1]} columns but backbone {backbone!r} gives {spec.dim}-d embeddings.")
    if spec.preprocessing != "centre":
        return preprocess(X, spec.preprocessing, n_tokens=spec.n_tokens), np.zeros(X.shape[1])
    mean = backbone_mean(backbone)
    if mean is None:
        mean = image_mean(X if train is None else X[rows])
    return centre(X, mean), mean
