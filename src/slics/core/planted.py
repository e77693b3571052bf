"""Planted data that follows the SLiCS model, and scores for recovering it.

The generator draws a ground-truth group-structured dictionary and samples from
the model ``x = sum_j D_j w_j + noise`` (then scaled to unit norm), so that tests,
benchmarks and notebooks can check that SLiCS finds what was planted:

- :func:`make_planted` returns ``X, Y, true_dictionary, true_coefficients``;
- :func:`atom_recovery` scores a learned dictionary against the planted one
  (mean ``|cosine|`` after Hungarian matching within each concept);
- :func:`support_recovery` scores estimated supports (atoms or concepts);
- :func:`relative_error` is the relative reconstruction error used everywhere.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..utils.validation import check_int, check_matrix, check_positive, check_random_state
from .normalise import normalise_rows


def relative_error(X, W, D) -> float:
    """Relative reconstruction error ``||X - W D||_F / ||X||_F``.

    Parameters
    ----------
    X : array of shape (n, d)
    W : array of shape (n, m)
    D : array of shape (m, d)

    Returns
    -------
    float
    """
    D = check_matrix(D, "D")
    X = check_matrix(X, "X", n_cols=D.shape[1])
    W = check_matrix(W, "W", n_cols=D.shape[0])
    if W.shape[0] != X.shape[0]:
        raise ValueError(f"W has {W.shape[0]} rows but X has {X.shape[0]}; one code per row of X is expected.")
    if not np.any(X):
        raise ValueError("X is all zeros: the relative error ||X - W D|| / ||X|| is undefined.")
    return float(np.linalg.norm(X - W @ D) / np.linalg.norm(X))


def make_planted(n_samples: int = 1000, n_features: int = 64, n_concepts: int = 6, n_atoms: int = 4,
                 concepts_per_sample=(1, 3), concept_probs=None, noise: float = 0.05,
                 atom_coherence: float = 0.3, atom_density: float = 0.6, concept_coherence: float = 0.0,
                 random_state=0):
    """Draw embeddings from the SLiCS model with a known dictionary.

    Ground truth: every concept ``j`` has ``n_atoms`` unit atoms
    ``normalise(sqrt(c) a_j + sqrt(1 - c) g_jk)`` built from a shared random concept
    direction ``a_j`` and independent Gaussian directions ``g_jk``, so atoms of one concept
    have pairwise cosine about ``c = atom_coherence`` (not orthogonal). The concept
    directions ``a_j`` share a common direction with weight ``concept_coherence`` (0: only
    randomly correlated concepts; > 0 mimics the common mean of real embeddings, which
    makes concepts harder to tell apart). Every sample has between ``lo`` and ``hi``
    concepts (``concepts_per_sample = (lo, hi)``, uniform or with ``concept_probs``), drawn
    without replacement; within each active concept every atom is used with probability
    ``atom_density`` (at least one atom) with a coefficient uniform on [0.5, 1.5].
    Isotropic Gaussian noise of norm about ``noise`` times the clean signal's norm is added,
    then each row is scaled to unit norm (the true coefficients are scaled with it).

    Parameters
    ----------
    n_samples, n_features, n_concepts, n_atoms : int
        ``n``, ``d``, ``C`` and ``K``.
    concepts_per_sample : (int, int), default (1, 3)
        Inclusive range of the number of concepts of each sample.
    concept_probs : sequence of float, optional
        Probabilities of ``lo, lo + 1, ..., hi`` concepts (default uniform). For example
        ``(1, 3)`` with ``(0.2, 0.3, 0.5)`` gives 2.3 concepts per sample on average.
    noise : float, default 0.05
        Relative noise level sigma (>= 0).
    atom_coherence : float in [0, 1), default 0.3
        Expected cosine between two atoms of the same concept.
    atom_density : float in (0, 1], default 0.6
        Probability that an atom of an active concept has a non-zero coefficient.
    concept_coherence : float in [0, 1), default 0.0
        Expected cosine between the directions of two concepts.
    random_state : int or numpy Generator, default 0
        Seed of every random draw.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Unit-norm embeddings.
    Y : bool ndarray of shape (n_samples, n_concepts)
        Concept labels (every row has at least one concept).
    dictionary : ndarray of shape (n_concepts * n_atoms, n_features)
        True unit atoms, concept-major (atom ``j * K + k`` belongs to concept ``j``), the
        layout of ``SLiCS.dictionary_``.
    coefficients : ndarray of shape (n_samples, n_concepts * n_atoms)
        True non-negative coefficients, zero outside the labelled concepts.
    """
    n, d, C, K = (check_int(v, name) for v, name in
                  ((n_samples, "n_samples"), (n_features, "n_features"), (n_concepts, "n_concepts"),
                   (n_atoms, "n_atoms")))
    if min(n, d, C, K) < 1:
        raise ValueError("n_samples, n_features, n_concepts and n_atoms must all be >= 1.")
    if isinstance(concepts_per_sample, str) or np.ndim(concepts_per_sample) != 1 or len(concepts_per_sample) != 2:
        raise ValueError(f"concepts_per_sample must be a pair (lo, hi) of concept counts, got {concepts_per_sample!r}.")
    lo, hi = (check_int(v, "concepts_per_sample") for v in concepts_per_sample)
    if not 1 <= lo <= hi <= C:
        raise ValueError(f"concepts_per_sample must satisfy 1 <= lo <= hi <= n_concepts ({C}), "
                         f"got {concepts_per_sample}.")
    check_positive(noise, "noise", allow_zero=True)
    # numbers first (a string would fail the comparisons below with Python's words), then their ranges
    atom_coherence, concept_coherence = (check_positive(v, name, allow_zero=True) for v, name in
                                         ((atom_coherence, "atom_coherence"), (concept_coherence, "concept_coherence")))
    atom_density = check_positive(atom_density, "atom_density")
    if not 0 <= atom_coherence < 1:
        raise ValueError(f"atom_coherence must be in [0, 1), got {atom_coherence}.")
    if not 0 <= concept_coherence < 1:
        raise ValueError(f"concept_coherence must be in [0, 1), got {concept_coherence}.")
    if not 0 < atom_density <= 1:
        raise ValueError(f"atom_density must be in (0, 1], got {atom_density}.")
    if concept_probs is not None:
        probs = np.asarray(concept_probs, dtype=float)
        if probs.shape != (hi - lo + 1,) or not np.all(np.isfinite(probs)) or np.any(probs < 0) \
                or not np.isclose(probs.sum(), 1.0):
            raise ValueError(f"concept_probs must be {hi - lo + 1} non-negative probabilities summing to 1 (one for "
                             f"each count {lo}..{hi} of concepts_per_sample), got {concept_probs!r}.")
    rng = check_random_state(random_state)

    common = normalise_rows(rng.standard_normal((1, d)))
    shared = normalise_rows(np.sqrt(concept_coherence) * common
                        + np.sqrt(1 - concept_coherence) * normalise_rows(rng.standard_normal((C, d))))
    own = normalise_rows(rng.standard_normal((C * K, d)))
    D = normalise_rows(np.sqrt(atom_coherence) * np.repeat(shared, K, axis=0) + np.sqrt(1 - atom_coherence) * own)

    counts = rng.choice(np.arange(lo, hi + 1), size=n, p=concept_probs)
    order = np.argsort(rng.random((n, C)), axis=1)  # a random permutation of concepts per row
    Y = np.zeros((n, C), bool)
    np.put_along_axis(Y, order, np.arange(C)[None, :] < counts[:, None], axis=1)

    use = rng.random((n, C, K)) < atom_density
    first = rng.integers(0, K, size=(n, C))
    np.put_along_axis(use, first[:, :, None], True, axis=2)  # at least one atom per active concept
    W = rng.uniform(0.5, 1.5, size=(n, C, K)) * use * Y[:, :, None]
    W = W.reshape(n, C * K)

    S = W @ D
    E = rng.standard_normal((n, d)) / np.sqrt(d)
    X = S + noise * np.linalg.norm(S, axis=1, keepdims=True) * E
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / norms, Y, D, W / norms


def atom_recovery(true_D, learned_D, atom_concept) -> float:
    """Mean ``|cosine|`` between planted and learned atoms, Hungarian-matched within concepts.

    Parameters
    ----------
    true_D, learned_D : arrays of shape (m, d)
        Dictionaries with rows as atoms, in the same concept layout.
    atom_concept : array of shape (m,)
        Concept index of each row (``SLiCS.atom_concept_``); atoms are only matched to
        atoms of the same concept (one-to-one, maximising the total ``|cosine|`` with
        :func:`scipy.optimize.linear_sum_assignment`).

    Returns
    -------
    float
        Mean ``|cosine|`` of the matched pairs (1 is perfect recovery, up to sign and order).
    """
    true_D = normalise_rows(check_matrix(true_D, "true_D"))
    learned_D = normalise_rows(check_matrix(learned_D, "learned_D", n_cols=true_D.shape[1]))
    atom_concept = np.asarray(atom_concept)
    if true_D.shape != learned_D.shape or atom_concept.shape != (true_D.shape[0],):
        raise ValueError(f"true_D {true_D.shape}, learned_D {learned_D.shape} and atom_concept "
                         f"{atom_concept.shape} must describe the same atoms.")
    total = []
    for j in np.unique(atom_concept):
        rows = atom_concept == j
        cos = np.abs(true_D[rows] @ learned_D[rows].T)
        r, c = linear_sum_assignment(cos, maximize=True)
        total.append(cos[r, c])
    return float(np.mean(np.concatenate(total)))


def support_recovery(true_support, estimated_support) -> dict:
    """Compare boolean supports (atoms or concepts) row by row.

    Parameters
    ----------
    true_support, estimated_support : bool arrays of shape (n, m)

    Returns
    -------
    dict
        ``recall`` (mean over rows of the fraction of the true support found),
        ``precision`` (mean fraction of the estimate that is true; rows with an empty
        estimate count as 0) and ``exact`` (fraction of rows recovered exactly).
    """
    t = np.asarray(true_support, bool)
    e = np.asarray(estimated_support, bool)
    if t.shape != e.shape or t.ndim != 2:
        raise ValueError(f"true_support and estimated_support must be 2-D boolean arrays of the same shape "
                         f"(n, m), got {t.shape} and {e.shape}.")
    hit = (t & e).sum(axis=1)
    recall = hit / np.maximum(t.sum(axis=1), 1)
    precision = hit / np.maximum(e.sum(axis=1), 1)
    return {"recall": float(recall.mean()), "precision": float(precision.mean()),
            "exact": float(np.mean((t == e).all(axis=1)))}
