"""A Cholesky factor of a Gram block kept up to date as atoms join and leave (compiled kernels).

Used by the active-set solvers of one row: the Lawson-Hanson NNLS (:mod:`slics.core._nnls_lh`)
and the lasso's support solves (:mod:`slics.core._lasso_kernels`). Between two solves the set
changes by a few atoms, so updating the factor costs ``s^2`` an atom instead of ``s^3 / 3``
for a new one: appending an atom is one row of forward substitution, removing one leaves a
factor with one entry right of the diagonal in each later row, taken out by Givens rotations
(Golub and Van Loan, *Matrix Computations*, 4th ed., section 6.5).

The factor is lower triangular, ``G[P, P] = L L^T``, in the leading ``n x n`` block of ``L``,
its rows in the order of the atoms ``P[:n]`` (indices into the Gram matrix ``G``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

PIVOT = 1e-13     # a new row whose pivot L_aa^2 is at most this times G_aa is (numerically) dependent


@njit(cache=True)
def chol_factor_rows(Gs, P, np_, L):
    """Cholesky factor ``L`` of ``Gs[P, P]`` (``P[:np_]``), row by row; False if not positive definite."""
    for a in range(np_):
        if not chol_append(Gs, P, a, L):
            return False
    return True


@njit(cache=True)
def chol_factor(M, s, L, pivot):
    """Cholesky factor of the block ``M`` (``s x s``) into ``L[:s, :s]`` by LAPACK (``potrf``,
    blocked: about ten times :func:`chol_factor_rows` on blocks of hundreds of atoms); False
    (``L`` unchanged) if not positive definite or a pivot ``L_jj^2 <= pivot * M_jj``."""
    try:
        F = np.linalg.cholesky(M)
    except Exception:          # not positive definite
        return False
    for j in range(s):
        if not F[j, j] * F[j, j] > pivot * M[j, j]:
            return False
    L[:s, :s] = F
    return True


@njit(cache=True)
def chol_append(Gs, P, a, L):
    """Extend the factor of ``Gs[P[:a], P[:a]]`` by the row of ``P[a]``; False if singular."""
    ja = P[a]
    for c in range(a):
        acc = Gs[ja, P[c]]
        for t in range(c):
            acc -= L[a, t] * L[c, t]
        L[a, c] = acc / L[c, c]
    acc = Gs[ja, ja]
    for t in range(a):
        acc -= L[a, t] * L[a, t]
    if acc <= PIVOT * Gs[ja, ja] or acc <= 0.0:
        return False
    L[a, a] = np.sqrt(acc)
    return True


@njit(cache=True)
def chol_remove(L, P, np_, a):
    """Remove position ``a`` of ``P[:np_]`` and update the factor ``L`` by Givens rotations."""
    for i in range(a, np_ - 1):
        P[i] = P[i + 1]
        for t in range(i + 2):
            L[i, t] = L[i + 1, t]
    # rows a..np_-2 now have one entry right of the diagonal in columns (i, i + 1): rotate
    for i in range(a, np_ - 1):
        x = L[i, i]
        y = L[i, i + 1]
        r = np.sqrt(x * x + y * y)
        cs = x / r
        sn = y / r
        for q in range(i, np_ - 1):
            u = L[q, i]
            v = L[q, i + 1]
            L[q, i] = cs * u + sn * v
            L[q, i + 1] = -sn * u + cs * v
        L[i, i + 1] = 0.0


@njit(cache=True)
def chol_solve(L, P, np_, b, z):
    """``z[:np_]`` solves ``L L^T z = b[P]``."""
    for a in range(np_):
        acc = b[P[a]]
        for t in range(a):
            acc -= L[a, t] * z[t]
        z[a] = acc / L[a, a]
    for a in range(np_ - 1, -1, -1):
        acc = z[a]
        for t in range(a + 1, np_):
            acc -= L[t, a] * z[t]
        z[a] = acc / L[a, a]
