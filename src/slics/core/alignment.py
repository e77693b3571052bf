"""Aligning two embedding spaces of the same images (the SLiCS paper, section 3.7).

Stable Diffusion is conditioned on CLIP ViT-L/14, while SLiCS's components live in another
image space (e.g. ViT-B/32). Given the embeddings ``X`` (n, p) and ``Y`` (n, q) of the same
``n`` images in the two spaces, the orthogonal Procrustes problem

``R = argmin_{R R^T = I} ||X R - Y||_F``

has the closed form ``R = U V^T`` from the SVD ``X^T Y = U S V^T`` (Schoenemann, 1966);
:class:`ProcrustesAlignment` solves it with ``scipy.linalg.orthogonal_procrustes``. When the
dimensions differ (512 to 768), ``R`` is ``p x q`` with orthonormal rows (``p < q``) or
columns: ``X`` (or ``Y``) is padded with zero columns to a square problem, which leaves the
solution's first ``p`` rows equal to the rectangular ``U V^T``. The map preserves inner
products within the source space whenever ``p <= q``, so a concept component keeps its norm
and its angles to the other components.

:class:`LeastSquaresAlignment` is the unconstrained linear map ``W = argmin ||X W - Y||_F``
(minimum-norm least squares), the natural competitor: it fits at least as well on the
training rows and can overfit when ``n`` is not much larger than ``p``.
:func:`alignment_errors` measures a map on held-out rows.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lstsq, orthogonal_procrustes
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..utils.validation import check_int, check_matrix


def _check_pair(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X = check_matrix(X, "X", dtype=np.float64)
    Y = check_matrix(Y, "Y", dtype=np.float64)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}: they must be the same images.")
    return X, Y


class _LinearMap(BaseEstimator):
    def transform(self, X) -> np.ndarray:
        """Map rows of the source space into the target space: ``X @ map_``.

        Parameters
        ----------
        X : array of shape (n, n_features_in)
            Embeddings in the source space, one per row.

        Returns
        -------
        ndarray of shape (n, n_features_out), float64
        """
        check_is_fitted(self, "map_")
        return check_matrix(X, "X", n_cols=self.map_.shape[0], dtype=np.float64) @ self.map_


class ProcrustesAlignment(_LinearMap):
    """Orthogonal (or semi-orthogonal) map between two embedding spaces.

    ``R = argmin_{R R^T = I} ||X R - Y||_F`` (see the module docstring). No parameters.

    Attributes
    ----------
    map_ : ndarray of shape (n_features_in, n_features_out)
        ``R`` with ``R R^T = I`` (``p <= q``) or ``R^T R = I`` (``p > q``).
    scale_ : float
        scipy's ``scale``: the sum of the singular values of ``X^T Y`` (the optimal
        ``trace(R^T X^T Y)``).
    """

    def fit(self, X, Y):
        """Solve the (padded) orthogonal Procrustes problem.

        Parameters
        ----------
        X : array of shape (n, p)
            The images in the source space.
        Y : array of shape (n, q)
            The same images, in the same order, in the target space.

        Returns
        -------
        self : ProcrustesAlignment
        """
        X, Y = _check_pair(X, Y)
        p, q = X.shape[1], Y.shape[1]
        size = max(p, q)
        Xs = np.pad(X, ((0, 0), (0, size - p)))
        Ys = np.pad(Y, ((0, 0), (0, size - q)))
        R, scale = orthogonal_procrustes(Xs, Ys)
        self.map_ = R[:p, :q]
        self.scale_ = float(scale)
        return self


class LeastSquaresAlignment(_LinearMap):
    """The unconstrained linear map ``W = argmin ||X W - Y||_F`` (minimum norm when not unique).

    No parameters.

    Attributes
    ----------
    map_ : ndarray of shape (n_features_in, n_features_out)
    """

    def fit(self, X, Y):
        """Solve the least-squares problem (``scipy.linalg.lstsq``).

        Parameters
        ----------
        X : array of shape (n, p)
            The images in the source space.
        Y : array of shape (n, q)
            The same images, in the same order, in the target space.

        Returns
        -------
        self : LeastSquaresAlignment
        """
        X, Y = _check_pair(X, Y)
        self.map_ = lstsq(X, Y)[0]
        return self


def rotation_error(R_hat, R_true) -> float:
    """``||R_hat - R_true||_F / sqrt(p)``: 0 for exact recovery, about 1.41 for an unrelated rotation."""
    R_hat, R_true = np.asarray(R_hat, dtype=np.float64), np.asarray(R_true, dtype=np.float64)
    if R_hat.shape != R_true.shape:
        raise ValueError(f"R_hat and R_true must have the same shape (p, p), got {R_hat.shape} and {R_true.shape}.")
    return float(np.linalg.norm(R_hat - R_true) / np.sqrt(R_true.shape[0]))


def alignment_errors(mapped, Y) -> dict:
    """How well ``mapped`` (rows mapped into the target space) matches ``Y`` on the same rows.

    Returns
    -------
    dict
        ``mse``: mean over rows of ``||m_i - y_i||^2``; ``relative_error``:
        ``||M - Y||_F / ||Y||_F``; ``mean_cosine``: mean cosine of ``m_i`` and ``y_i``;
        ``top1_match``: fraction of rows whose nearest target row (cosine) is their own.
    """
    M, Y = _check_pair(mapped, Y)
    if M.shape[1] != Y.shape[1]:
        raise ValueError(f"mapped rows have {M.shape[1]} features but Y has {Y.shape[1]}.")
    if not np.any(Y):
        raise ValueError("Y is all zeros: the relative error ||M - Y|| / ||Y|| is undefined.")
    diff = M - Y
    Mn = M / np.maximum(np.linalg.norm(M, axis=1, keepdims=True), 1e-300)
    Yn = Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-300)
    nearest = np.argmax(Mn @ Yn.T, axis=1)
    return {"mse": float(np.mean(np.sum(diff ** 2, axis=1))),
            "relative_error": float(np.linalg.norm(diff) / np.linalg.norm(Y)),
            "mean_cosine": float(np.mean(np.sum(Mn * Yn, axis=1))),
            "top1_match": float(np.mean(nearest == np.arange(M.shape[0])))}


def random_rotation(dim: int, seed: int) -> np.ndarray:
    """A seeded Haar-random rotation (``scipy.stats.special_ortho_group``), shape (dim, dim)."""
    from scipy.stats import special_ortho_group

    dim, seed = check_int(dim, "dim", minimum=2), check_int(seed, "seed", minimum=0)
    return special_ortho_group.rvs(dim, random_state=np.random.default_rng(seed))
