"""Compiled per-row Lawson-Hanson NNLS with supports (``nnls_batch(method="lh")``).

Each row ``i`` solves ``min_w w G_S w / 2 - B[i, S] w`` subject to ``w >= 0`` on its support
``S`` (``G = D D^T + ridge I``, ``B = X D^T``) by the primal active-set method of Lawson and
Hanson, started from the feasible warm start (``init``, clipped to ``>= 0``) or, without one,
from the positive part of the unconstrained minimiser on the support: every iteration solves
the unconstrained problem on the passive set ``P`` (a Cholesky factor of the ``|P| x |P|``
block, extended by one row when a variable joins, downdated by Givens rotations when one
leaves: :mod:`slics.core._cholesky`), then either accepts it and adds the most violating
variable, or steps towards it until a coefficient reaches zero and drops it. The objective
decreases monotonically, so it cannot cycle; a row stops when the KKT conditions hold to
``tol`` times its ``max |B[i, S]|`` (the test of the batched solver).

Rows are independent and processed in parallel (numba ``prange``): each row's arithmetic is
the same whatever the number of threads, so the result is bitwise reproducible. No
``fastmath``. A variable whose column is numerically dependent on the passive ones (a duplicate
atom) is not added (its gradient is then zero up to rounding). A row whose warm-start block is
singular or that does not finish within ``max_iter`` iterations is flagged (``status < 0``) for the batched solver.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._cholesky import chol_append, chol_factor_rows, chol_remove, chol_solve


@njit(cache=True)
def _lh_row(Gs, b, x, tol, max_iter, cold):
    """Lawson-Hanson on one row's support block; ``x`` (feasible) in/out. Returns iterations or -1.

    ``cold``: ignore ``x`` and start from the positive part of the unconstrained minimiser on
    the whole support (zero if that block is singular).
    """
    p = b.shape[0]
    scale = 1e-300
    for a in range(p):
        if abs(b[a]) > scale:
            scale = abs(b[a])
    thr = tol * scale
    P = np.empty(p, np.int64)
    inP = np.zeros(p, np.bool_)
    blocked = np.zeros(p, np.bool_)
    z = np.empty(p)
    L = np.empty((p, p))
    if cold:
        for a in range(p):
            P[a] = a
        if chol_factor_rows(Gs, P, p, L):
            chol_solve(L, P, p, b, z)
            for a in range(p):
                x[a] = z[a]             # projected on the orthant below, with a warm start
        else:
            for a in range(p):
                x[a] = 0.0
    np_ = 0
    for a in range(p):          # the start's positive part is the passive set; the rest is zero
        if x[a] > 0.0:
            P[np_] = a
            inP[a] = True
            np_ += 1
        else:
            x[a] = 0.0
    factored = False       # L holds the factor of the current P
    need_solve = np_ > 0
    for it in range(max_iter):
        if need_solve:
            if not factored and not chol_factor_rows(Gs, P, np_, L):
                return -1
            factored = True
            chol_solve(L, P, np_, b, z)
            positive = True
            for a in range(np_):
                if z[a] <= 0.0:
                    positive = False
                    break
            if not positive:
                # step from x towards z until the first coefficient reaches zero
                step = 1.0
                for a in range(np_):
                    if z[a] <= 0.0:
                        xa = x[P[a]]
                        t = xa / (xa - z[a])
                        if t < step:
                            step = t
                for a in range(np_):
                    j = P[a]
                    xa = x[j] + step * (z[a] - x[j])
                    if z[a] <= 0.0 and (x[j] / (x[j] - z[a])) <= step * (1.0 + 1e-12):
                        xa = 0.0
                    x[j] = xa if xa > 0.0 else 0.0
                a = np_ - 1
                while a >= 0:            # drop the zeros, last first, downdating the factor
                    j = P[a]
                    if x[j] <= 0.0:
                        inP[j] = False
                        if factored:
                            chol_remove(L, P, np_, a)
                        else:
                            for q in range(a, np_ - 1):
                                P[q] = P[q + 1]
                        np_ -= 1
                    a -= 1
                need_solve = np_ > 0
                continue
            for a in range(np_):
                x[P[a]] = z[a]
        # gradient on the zero set; add the most violating variable that keeps P independent
        while True:
            best = -thr
            add = -1
            for c in range(p):
                if inP[c] or blocked[c]:
                    continue
                acc = -b[c]
                for a in range(np_):
                    j = P[a]
                    acc += Gs[c, j] * x[j]
                if acc < best:
                    best = acc
                    add = c
            if add < 0:
                return it
            P[np_] = add
            if not factored and not chol_factor_rows(Gs, P, np_, L):
                return -1
            factored = True
            if chol_append(Gs, P, np_, L):
                break
            blocked[add] = True      # dependent on the passive atoms (e.g. a duplicate)
        inP[add] = True
        np_ += 1
        need_solve = True
    return -1


@njit(parallel=True, cache=True)
def nnls_lh_chunk(G, B, S, W, tol, max_iter, cold, status):
    """Every row of a chunk in parallel: ``W`` (chunk, m) in/out (warm start, then solution)."""
    n, m = B.shape
    for i in prange(n):
        idx = np.empty(m, np.int64)
        p = 0
        for j in range(m):
            if S[i, j]:
                idx[p] = j
                p += 1
        if p == 0:
            status[i] = 0
            continue
        Gs = np.empty((p, p))
        b = np.empty(p)
        x = np.empty(p)
        for a in range(p):
            ja = idx[a]
            b[a] = B[i, ja]
            x[a] = W[i, ja]              # _lh_row projects it on the orthant
            for c in range(p):
                Gs[a, c] = G[ja, idx[c]]
        status[i] = _lh_row(Gs, b, x, tol, max_iter, cold)
        for a in range(p):
            W[i, idx[a]] = x[a]
