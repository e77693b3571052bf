"""SpLiCE and F-SpLiCE baselines: sparse non-negative decompositions over a word vocabulary.

SpLiCE (Bhalla et al., 2024) writes a centred image embedding ``z`` as a sparse
non-negative combination of centred word embeddings ``V`` (rows; the LAION-10k
vocabulary, normalised, centred by its own mean and renormalised)::

    w = argmin_{w >= 0} ||z - w V||^2 + lam ||w||_1

and retrieves with the reconstruction ``w V``. F-SpLiCE (the SLiCS paper's filtered
variant) groups the words by their most cosine-similar centred concept-name embedding
and, for concept ``j``, uses the partial reconstruction ``w_{G_j} V_{G_j}`` of the words
in group ``j``.

The decomposition goes through :func:`nonneg_lasso`, the one place that names the
solver (the package's exact non-negative lasso, :mod:`slics.core.lasso`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .sparse_coding import center_and_normalise
from .normalise import normalise_rows
from ..utils.validation import check_index, check_matrix, check_positive, is_dask_array


# norm below which a centred unit word counts as zero: rounding leaves about 1e-16 per entry
_CENTRED_ZERO = 1e-10


def nonneg_lasso(X, D, lam: float, *, tol: float = 1e-7, max_iter: int = 10_000, gram=None) -> np.ndarray:
    """Non-negative lasso of every row of ``X`` over the atoms (rows) of ``D``.

    Solves ``min_{w >= 0} ||x - w D||^2 + lam ||w||_1`` for each row ``x`` with the package's
    exact batched solver (:func:`slics.core.lasso.lasso`: Gram coordinate descent on working
    sets, stopped by the relative duality gap ``tol``). This is the one place that names the
    solver of SpLiCE's decomposition; ``benchmarks/bench_splice.py`` compares it with
    SpLiCE's own approach (a per-image scikit-learn ``Lasso(positive=True)`` loop).

    Parameters
    ----------
    X : array of shape (n, d)
        Signals, one per row.
    D : array of shape (V, d)
        Dictionary, atoms (words) as rows.
    lam : float
        Positive L1 weight.
    tol : float, default 1e-7
        Relative duality gap at which a row stops.
    max_iter : int, default 10000
        Coordinate-descent sweeps per row at most.
    gram : array of shape (V, V), optional
        ``D @ D.T`` (see :func:`slics.core.lasso.lasso`), to share between calls with the same ``D``.

    Returns
    -------
    W : ndarray of shape (n, V), float64, non-negative
    """
    from .lasso import lasso

    if is_dask_array(X):      # lazy, block by block (slics.distributed)
        return np.maximum(lasso(X, D, check_positive(lam, "lam"), positive=True, tol=tol, max_iter=max_iter,
                                gram=gram), 0.0)
    X = check_matrix(X, "X")
    D = check_matrix(D, "D", n_cols=X.shape[1])
    lam = check_positive(lam, "lam")
    # method pinned (byte-reproducible): "auto" may time candidates
    W = lasso(X, D, lam, positive=True, tol=tol, max_iter=max_iter, method="cd", gram=gram)
    return np.maximum(W, 0.0, out=W)        # in place: a (n, V) block is 160 MB at 2,000 x 10,000


def group_vocabulary(vocab_centred, concept_emb, vocab_mean) -> np.ndarray:
    """Group of every word: the concept whose centred name embedding is most cosine-similar.

    ``concept_emb`` rows are centred by the vocabulary mean ``vocab_mean`` and renormalised,
    like the words; ties go to the lower concept index.
    """
    V = check_matrix(vocab_centred, "vocab_centred")
    T = normalise_rows(check_matrix(concept_emb, "concept_emb", n_cols=V.shape[1]) - np.asarray(vocab_mean))
    return np.argmax(normalise_rows(V) @ T.T, axis=1)


class SpLiCE(BaseEstimator):
    """Sparse non-negative decomposition over a centred word vocabulary.

    Parameters
    ----------
    lam : float, default 0.25
        L1 weight of :func:`nonneg_lasso`, on the package's lasso scale
        (:func:`slics.core.objectives.lasso_objective`).

    Attributes
    ----------
    vocab_ : ndarray of shape (V, d)
        Centred, renormalised word embeddings (the dictionary, atoms as rows).
    vocab_mean_ : ndarray of shape (d,)
        Mean of the normalised vocabulary, subtracted before renormalising.
    groups_ : ndarray of shape (V,) or None
        Concept of every word (after :meth:`fit` with ``concept_emb``), for F-SpLiCE.
    n_concepts_ : int or None
        Number of concepts of ``concept_emb`` (``None`` without it).
    """

    def __init__(self, lam: float = 0.25):
        self.lam = lam

    def fit(self, vocab_emb, concept_emb=None):
        """Centre the vocabulary; with ``concept_emb`` also group its words by concept.

        Parameters
        ----------
        vocab_emb : array of shape (V, d)
            Word embeddings, one per row (normalised here first).
        concept_emb : array of shape (n_concepts, d), optional
            Concept-name embeddings; each word joins the group of its most cosine-similar
            centred concept (:func:`group_vocabulary`), for F-SpLiCE.

        Returns
        -------
        self : SpLiCE
        """
        check_positive(self.lam, "lam")
        unit = normalise_rows(check_matrix(vocab_emb, "vocab_emb"))
        V, mean = center_and_normalise(unit)
        # a word equal to the vocabulary mean (every word of a one-word or all-identical
        # vocabulary) centres to zero, or to rounding noise that renormalising would blow up to
        # a random unit word; unit rows make the threshold relative
        zero = np.flatnonzero(np.linalg.norm(unit - mean, axis=1) <= _CENTRED_ZERO)
        if zero.size:
            raise ValueError(f"vocab_emb: centring by the vocabulary mean leaves {zero.size} of {V.shape[0]} "
                             f"word(s) all-zero up to rounding (rows {zero[:5].tolist()}); pass at least 2 distinct "
                             f"words (a one-word or all-identical vocabulary cannot be centred).")
        self.vocab_, self.vocab_mean_ = V, mean
        self.groups_ = None if concept_emb is None else group_vocabulary(V, concept_emb, mean)
        self.n_concepts_ = None if concept_emb is None else int(np.asarray(concept_emb).shape[0])
        return self

    def gram(self) -> np.ndarray:
        """The vocabulary's Gram matrix: computed once, it spares :meth:`transform` that product on
        every further call (chunks of one set of rows).

        Returns
        -------
        ndarray of shape (V, V), float64
            ``vocab_ @ vocab_.T``.
        """
        check_is_fitted(self, "vocab_")
        return self.vocab_ @ self.vocab_.T

    def transform(self, Z, *, gram=None) -> np.ndarray:
        """Sparse non-negative codes of centred, renormalised image embeddings ``Z``.

        Parameters
        ----------
        Z : array of shape (n, d)
            Image embeddings, one per row, centred and renormalised like the vocabulary.
        gram : array of shape (V, V), optional
            :meth:`gram`, to share between calls (in-memory ``Z`` only); the codes are the same.

        Returns
        -------
        ndarray of shape (n, V), float64, non-negative
        """
        check_is_fitted(self, "vocab_")
        if is_dask_array(Z):      # lazy, block by block, the fitted model sent once (slics.distributed)
            from ..distributed.coding import model_rows

            if gram is not None:
                raise ValueError("gram applies to an in-memory Z; a dask Z is decomposed block by block on the "
                                 "workers, each with its own product (pass gram=None).")
            return model_rows(self, "transform", Z, tail=(self.vocab_.shape[0],))
        Z = check_matrix(Z, "Z", n_cols=self.vocab_.shape[1])
        return nonneg_lasso(Z, self.vocab_, self.lam, gram=gram)

    def reconstruct(self, W, concept: int | None = None) -> np.ndarray:
        """``W V`` (SpLiCE), or the partial reconstruction of one concept's words (F-SpLiCE).

        Parameters
        ----------
        W : array or sparse matrix of shape (n, V)
            Codes, as :meth:`transform` returns them.
        concept : int, optional
            Reconstruct from the words of this concept's group only (needs :meth:`fit` with
            ``concept_emb``).

        Returns
        -------
        ndarray of shape (n, d)
        """
        check_is_fitted(self, "vocab_")
        W = W if scipy.sparse.issparse(W) else np.asarray(W)     # codes keep their dtype and format
        if W.ndim != 2 or W.shape[1] != self.vocab_.shape[0]:
            raise ValueError(f"W must be codes of shape (n, {self.vocab_.shape[0]}) (one column per word), "
                             f"got shape {W.shape}.")
        if concept is None:
            return W @ self.vocab_
        if self.groups_ is None:
            raise ValueError("fit with concept_emb to group the vocabulary before partial reconstructions.")
        concept = check_index(concept, "concept", self.n_concepts_)
        keep = self.groups_ == concept
        return W[:, keep] @ self.vocab_[keep]
