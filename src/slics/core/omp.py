"""Greedy non-negative pursuits, for when the active concepts of a sample are unknown.

Both functions are batched over samples: every step selects one atom (or one
concept) for every row at once and refits all rows with one call of
:func:`slics.core.nnls.nnls_batch` (warm-started from the previous step).

- :func:`nn_omp`: atom-level non-negative OMP. Each step adds, for every row, the
  unselected atom with the largest *positive* correlation with the residual
  (atoms are normalised for the comparison), then refits NNLS on the selected
  atoms.
- :func:`group_nn_omp`: concept-level (group) non-negative OMP. Each step adds the
  unselected group whose atoms best explain the residual: the group with the
  largest energy ``||r||^2 - min_{w >= 0} ||r - w D_g||^2`` of the NNLS fit of the
  residual ``r`` on that group alone, then refits NNLS on all the selected groups'
  atoms.

A row stops early when no candidate can lower its error any more (no atom with a
positive correlation, or no group whose NNLS fit of the residual is non-zero), so
it may end with fewer than the requested atoms or groups. Selections are
returned as boolean masks with ``return_selection=True``; the coefficients may
still be zero on a selected atom when the final NNLS refit drops it.
"""

from __future__ import annotations

import numpy as np

from .nnls import nnls_batch
from ..utils.validation import check_matrix


def _counts(value, n: int, upper: int, name: str) -> np.ndarray:
    counts = np.asarray(value)
    if counts.ndim == 0:
        counts = np.full(n, counts)
    if counts.shape != (n,) or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 0):
        raise ValueError(f"{name} must be a non-negative integer or an array of {n} of them, got {value!r}.")
    return np.minimum(counts, upper)


def nn_omp(D, X, n_nonzero, *, return_selection: bool = False):
    """Atom-level non-negative orthogonal matching pursuit.

    Parameters
    ----------
    D : array of shape (m, d)
        Dictionary, its ``m`` atoms as rows (all of them, e.g. ``SLiCS.dictionary_``).
    X : array of shape (n, d)
        Signals, one per row.
    n_nonzero : int or array of shape (n,)
        Atoms to select per row; a count above ``m`` selects at most ``m`` (the pursuit also stops
        early on a row whose residual no atom reduces).
    return_selection : bool, default False
        Also return the boolean (n, m) mask of selected atoms.

    Returns
    -------
    W : ndarray of shape (n, m)
        Non-negative coefficients, the NNLS fit on the selected atoms (``X ≈ W @ D``).
    selected : ndarray of shape (n, m)
        Only with ``return_selection=True``.
    """
    D = check_matrix(D, "D")
    X = check_matrix(X, "X", n_cols=D.shape[1])
    n, m = X.shape[0], D.shape[0]
    counts = _counts(n_nonzero, n, m, "n_nonzero")
    norms = np.linalg.norm(D, axis=1)
    if np.any(norms == 0):
        raise ValueError("D has an all-zero atom; remove it before the pursuit.")
    Dn = D / norms[:, None]
    selected = np.zeros((n, m), bool)
    W = np.zeros((n, m))
    active = counts > 0
    for step in range(int(counts.max(initial=0))):
        rows = np.flatnonzero(active & (counts > step))
        if rows.size == 0:
            break
        corr = (X[rows] - W[rows] @ D) @ Dn.T
        corr[selected[rows]] = -np.inf
        best = np.argmax(corr, axis=1)
        gain = corr[np.arange(rows.size), best] > 0
        active[rows[~gain]] = False
        rows, best = rows[gain], best[gain]
        if rows.size == 0:
            break
        selected[rows, best] = True
        W[rows] = nnls_batch(D, X[rows], selected[rows], init=W[rows] + selected[rows])
    return (W, selected) if return_selection else W


def group_nn_omp(D, groups, X, n_groups, *, return_selection: bool = False):
    """Concept-level (group) non-negative orthogonal matching pursuit.

    Parameters
    ----------
    D : array of shape (m, d)
        Dictionary with atoms as rows.
    groups : array of shape (m,)
        Group (concept) label of each atom, e.g. ``SLiCS.atom_concept_``. The selection
        columns follow ``np.unique(groups)``.
    X : array of shape (n, d)
        Signals, one per row.
    n_groups : int or array of shape (n,)
        Groups to select per row; a count above the number of groups selects at most all of them.
    return_selection : bool, default False
        Also return the boolean (n, n_unique_groups) mask of selected groups.

    Returns
    -------
    W : ndarray of shape (n, m)
        Non-negative coefficients, the NNLS fit on all atoms of the selected groups.
    selected : ndarray of shape (n, n_unique_groups)
        Only with ``return_selection=True``.

    Notes
    -----
    The selection score of group ``g`` for residual ``r`` is the energy its NNLS fit
    removes, ``||p||^2`` with ``p = D_g^T argmin_{w >= 0} ||r - D_g^T w||`` (at the NNLS
    optimum ``r - p`` is orthogonal to ``p``). Unlike the largest single correlation,
    this credits a group for all of its atoms together.
    """
    D = check_matrix(D, "D")
    X = check_matrix(X, "X", n_cols=D.shape[1])
    groups = np.asarray(groups)
    if groups.shape != (D.shape[0],):
        raise ValueError(f"groups must have one label per atom ({D.shape[0]}), got shape {groups.shape}.")
    labels, gidx = np.unique(groups, return_inverse=True)
    n, n_labels = X.shape[0], labels.size
    counts = _counts(n_groups, n, n_labels, "n_groups")
    members = [np.flatnonzero(gidx == g) for g in range(n_labels)]
    selected = np.zeros((n, n_labels), bool)
    W = np.zeros((n, D.shape[0]))
    active = counts > 0
    for step in range(int(counts.max(initial=0))):
        rows = np.flatnonzero(active & (counts > step))
        if rows.size == 0:
            break
        R = X[rows] - W[rows] @ D
        score = np.empty((rows.size, n_labels))
        for g, atoms in enumerate(members):
            P = nnls_batch(D[atoms], R) @ D[atoms]
            score[:, g] = np.einsum("ij,ij->i", P, P)
        score[selected[rows]] = -np.inf
        best = np.argmax(score, axis=1)
        scale = np.einsum("ij,ij->i", R, R)
        gain = score[np.arange(rows.size), best] > 1e-12 * np.maximum(scale, np.finfo(float).tiny)
        active[rows[~gain]] = False
        rows, best = rows[gain], best[gain]
        if rows.size == 0:
            break
        selected[rows, best] = True
        support = selected[rows][:, gidx]
        W[rows] = nnls_batch(D, X[rows], support, init=W[rows] + support)
    return (W, selected) if return_selection else W
