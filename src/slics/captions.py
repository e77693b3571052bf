"""Word captions of concept subspaces: the words each concept's atoms reconstruct best.

A concept ``j`` of a fitted :class:`slics.core.dictionary.SLiCS` spans the cone of its atoms
``D_j``. Its caption is the ``n_words`` vocabulary words with the smallest non-negative
reconstruction error ``min_{w >= 0} ||v - D_j^T w||^2`` (NNLS), ties by word order (the SLiCS
paper's Table 1). Any vocabulary works: the words and their embeddings by the backbone's text
tower (e.g. SpLiCE's LAION-10k list), rows aligned.

Centring (``centre=True``, the paper's): the word embeddings are scaled to unit length, their
mean is subtracted, and each row is scaled to unit length again
(``center_and_normalise(normalise_rows(vocab))``), so that the direction every word shares does
not dominate the caption.

Examples
--------
>>> import numpy as np
>>> from slics.captions import word_captions
>>> D = np.eye(3)                                   # one atom per concept, concepts 0..2
>>> vocab = np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.2], [0.1, 0.0, 1.0]])
>>> word_captions(D, vocab, ["red", "green", "blue"], n_words=1, atom_concept=np.arange(3),
...               concept_names=["x", "y", "z"], centre=False)
{'x': ['red'], 'y': ['green'], 'z': ['blue']}
"""

from __future__ import annotations

import numpy as np

from .core.nnls import nnls_batch
from .core.sparse_coding import center_and_normalise
from .core.normalise import normalise_rows
from .utils.validation import check_indices, check_int, check_matrix, check_names

__all__ = ["word_captions", "centre_vocabulary"]


def centre_vocabulary(vocab_emb) -> np.ndarray:
    """Word embeddings as the captions use them: unit rows, mean removed, unit rows again.

    Parameters
    ----------
    vocab_emb : array of shape (V, d)

    Returns
    -------
    ndarray of shape (V, d), float64
    """
    V = check_matrix(vocab_emb, "vocab_emb")
    return center_and_normalise(normalise_rows(V))[0]


def word_captions(model_or_dictionary, vocab_emb, words, *, n_words: int = 5, concept_names=None,
                  atom_concept=None, centre: bool = True) -> dict[str, list[str]]:
    """The ``n_words`` words best reconstructed (NNLS) by each concept's atoms.

    Parameters
    ----------
    model_or_dictionary : SLiCS or array of shape (n_atoms_total, d)
        A fitted model (its ``dictionary_`` and ``atom_concept_``), or the atoms as rows.
    vocab_emb : array of shape (V, d)
        Embeddings of ``words`` (row ``i`` is word ``i``), by the text tower of the backbone
        that made the image embeddings.
    words : sequence of V str
    n_words : int, default 5
        Words per concept (at most ``V``).
    concept_names : sequence of str, optional
        One per concept; default the model's ``concept_names_`` when it has them, else
        ``"concept 0"``, ``"concept 1"``, ...
    atom_concept : array of int, optional
        Concept of every atom; required with a bare dictionary, default the model's.
    centre : bool, default True
        Centre the vocabulary first (see the module docstring); ``False`` uses ``vocab_emb``
        as given.

    Returns
    -------
    dict
        Concept name -> list of ``n_words`` words, best first, in concept order.
    """
    if hasattr(model_or_dictionary, "dictionary_"):
        D = model_or_dictionary.dictionary_
        atom_concept = model_or_dictionary.atom_concept_ if atom_concept is None else atom_concept
        if concept_names is None:
            concept_names = getattr(model_or_dictionary, "concept_names_", None)
    else:
        D = check_matrix(model_or_dictionary, "dictionary")
        if atom_concept is None:
            raise ValueError("atom_concept is required with a bare dictionary: pass the concept index of every atom "
                             "(a fitted SLiCS model carries it).")
    if concept_names is not None:                # the keys of the result: one string each, no repeats
        concept_names = check_names(concept_names, "concept_names", unique=True)
    if np.shape(atom_concept) != (D.shape[0],):
        raise ValueError(f"atom_concept must hold one concept index per atom ({D.shape[0]}), "
                         f"got shape {np.shape(atom_concept)}.")
    # indices into the concept names (a concept without atoms, e.g. one U-SLiCS skipped for lack of
    # pseudo-labels, gets an empty caption); without names, at most one concept per atom
    bound = max(D.shape[0], 0 if concept_names is None else len(concept_names))
    atom_concept = check_indices(atom_concept, "atom_concept", bound)
    V = check_matrix(vocab_emb, "vocab_emb", n_cols=D.shape[1])
    words = check_names(words, "words")
    if len(words) != V.shape[0]:
        raise ValueError(f"words has {len(words)} entries but vocab_emb has {V.shape[0]} rows; row i of vocab_emb "
                         f"must be the embedding of words[i].")
    n_words = check_int(n_words, "n_words", minimum=1)
    if n_words > V.shape[0]:
        raise ValueError(f"n_words ({n_words}) exceeds the vocabulary size ({V.shape[0]}).")
    n_concepts = int(atom_concept.max()) + 1 if atom_concept.size else 0
    if concept_names is None:
        concept_names = [f"concept {j}" for j in range(n_concepts)]
    if len(concept_names) < n_concepts:     # more names: the last concepts have no atoms (skipped)
        raise ValueError(f"concept_names has {len(concept_names)} names for {n_concepts} concepts.")
    if centre:
        V = centre_vocabulary(V)
    out = {}
    for j, name in enumerate(concept_names):
        Dj = D[atom_concept == j]
        if not Dj.shape[0]:                  # a concept the model skipped (no pseudo-labels): no caption
            out[name] = []
            continue
        R = V - nnls_batch(Dj, V) @ Dj
        err = np.einsum("ij,ij->i", R, R)
        order = np.argsort(err, kind="stable")[:n_words]
        out[name] = [words[i] for i in order]
    return out
