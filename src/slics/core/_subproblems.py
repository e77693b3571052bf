"""Rows solved on their own working dictionaries: no row of ``G = D D^T`` over all the atoms.

The solver of :mod:`slics.core.lasso` keeps every row's correlations ``q = D r`` over all ``m``
atoms up to date from rows of ``G`` (``m`` long each). For a call on few rows over many atoms, the
rows of ``G`` that their working sets need cost ``m d`` flops an atom, and rows whose supports
differ need most of ``G`` (40 rows with 300-350 non-zeros each over 10,000 random atoms in 768
dimensions asked for all of it: ``m^2 d / 2``, 3.8e10 multiply-adds). Here each row is solved on
its own working set ``S`` alone, with its block ``D_S D_S^T`` (``|S|^2 d``); then its correlations
with every atom come from its residual, ``q = D r``, one product for all the rows of a round
(``m d`` a row), which gives the duality gap of the whole problem. A row whose gap is not yet
``tol`` takes the worst violators into its working set (``max(_GROW, |support|)`` of them, as
the kernel's own rounds do) and is solved again from where it stopped. The sub-problem is the
lasso of :func:`slics.core._lasso_kernels._solve_row` on ``D_S``: the same coordinate descent,
support solves and extrapolation, to the tolerance the row's whole gap calls for (celer's rule:
``0.3`` of it, at least ``0.3 tol``).

Everything here is float64, the blocks ``D_S D_S^T`` and ``b = D x`` included, and the certificate
is the gap of the whole problem from ``r`` and ``D r``: with float32 inputs, the optimum of the
float32-rounded ``X`` and ``D`` (the rows-of-``G`` path solves with a float32 ``G``, whose rounding
keeps a float64 gap from ``D r`` above 1e-6 on some rows).

Which path a call takes is decided from what its first rows cost
(:func:`slics.core._gram_rows.solve_rows`): a pilot of :data:`PILOT` rows is solved here, and the
multiply-adds they counted a row (with :data:`ROUND_OVERHEAD`), times the rows still to
come, are weighed against the rows of ``G`` those rows would need (the pilot's distinct atoms,
grown to all the rows; at most all of ``G``). A pilot whose rows alone count more than all of
``G`` would for the call's rows stops there, and the rows of ``G`` take over from its codes. The
work is counted, not timed: the path, hence the bytes, are the same on every machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..utils.threads import blas_threads_for, single_thread_blas
from ._lasso_kernels import _GROW, _MAX_OUTER, _solve_row

PILOT = 32          # rows of a call solved here before the call's path is chosen (slics.core._gram_rows._plan)
BATCH = 64          # rows whose working sets' blocks of G are held at once
# the counted work (plan): each row and round also costs about 0.3 ms of Python's bookkeeping, the time
# of this many multiply-adds in a large product on the 2-core machine. Calibrated there on 40-600 rows
# over 6,000-10,000 atoms in 384-768 dimensions (5-570 non-zeros a row); a pilot stopped late, near
# its budget, pays for both paths (up to 2.1x the faster one, on 40 dense float32 rows)
ROUND_OVERHEAD = 2e7


@njit(parallel=True, cache=True)
def _solve_packed(Gflat, g_off, sizes, b_flat, w_flat, v_off, xx, lam, positive, tols, max_sweeps, gaps, states, rank):
    """Row ``i``'s sub-problem: ``G_i = Gflat[g_off[i]:][:s*s]`` (s x s), ``b``, ``w`` at ``v_off[i]``
    (``w`` in/out), to ``tols[i]``; ``states[i]`` the row's sweeps and sweep of its last support solve
    (in/out, carried from round to round as the rows-of-G path carries them across its stops, so that
    ``max_sweeps`` bounds them all and a crawling row is seen as one); writes ``gaps[i]`` (the
    sub-problem's)."""
    for i in prange(sizes.shape[0]):
        s = sizes[i]
        G = Gflat[g_off[i]:g_off[i] + s * s].reshape((s, s))
        b = b_flat[v_off[i]:v_off[i] + s].copy()
        w = w_flat[v_off[i]:v_off[i] + s].copy()
        gaps[i], _ = _solve_row(G, np.arange(s), b, w, xx[i], lam, positive, tols[i], max_sweeps, states[i],
                                np.empty(s, np.int64), rank)
        w_flat[v_off[i]:v_off[i] + s] = w


def _whole_gaps(X, R, l1, D, lam, positive):
    """Relative duality gaps of the rows (residuals ``R``, ``l1`` the codes' L1 norms), their gaps,
    primal values and ``q = D r``, as :func:`slics.core.lasso.duality_gap` (``q`` on the kernel's
    scale: no factor 2)."""
    with blas_threads_for(R.shape[0] * D.shape[0] * D.shape[1]):
        Q = R @ D.T
    qmax = (np.maximum(Q, 0.0) if positive else np.abs(Q)).max(axis=1)
    s = np.where(2.0 * qmax > lam, lam / np.maximum(2.0 * qmax, np.finfo(float).tiny), 1.0)
    rr = np.einsum("ij,ij->i", R, R)
    primal = rr + lam * l1
    gap = primal - (2.0 * s * np.einsum("ij,ij->i", X, R) - s * s * rr)
    rel = np.where(primal > 0.0, gap / np.where(primal > 0.0, primal, 1.0), 0.0)
    return rel, gap, primal, Q


def _violators(supp, q, lam, positive):
    """The worst ``max(_GROW, |support|)`` violators outside the support (``|q_j| > lam / 2``;
    ``q_j > lam / 2`` if positive), and whether any violator was left out."""
    v = np.maximum(q, 0.0) if positive else np.abs(q)
    v[supp] = 0.0
    cand = np.flatnonzero(v > 0.5 * lam)
    grow = max(_GROW, supp.size)
    if cand.size > grow:
        return cand[np.argpartition(-v[cand], grow - 1)[:grow]], True
    return cand, False


class _Row:
    """One row's working set ``S`` (atoms, in the order of its block), its codes ``w`` on ``S`` (float64,
    carried from round to round: the storage dtype's rounding would move a float32 row's gap), ``D[S]``
    and ``D[S] D[S]^T``, grown from round to round: the support's block is kept, only the new atoms'
    products are formed."""

    def __init__(self, D, atoms, w):
        self.S, self.w, self.DS = atoms, w, D[atoms]
        self.G = np.empty((0, 0))
        self.macs = 0.0

    def regrow(self, D, new):
        """``S`` becomes the support (the atoms with non-zero codes) followed by the atoms ``new``."""
        keep = np.flatnonzero(self.w)
        k, d = keep.size, D.shape[1]
        DN = D[new]
        G = np.empty((k + new.size, k + new.size))
        G[:k, :k] = self.G[np.ix_(keep, keep)] if self.G.size else self.DS[keep] @ self.DS[keep].T
        with blas_threads_for(new.size * (k + new.size) * d):
            cross = DN @ self.DS[keep].T
            G[k:, k:] = DN @ DN.T              # numpy's symmetric product: exactly symmetric
        G[k:, :k] = cross
        G[:k, k:] = cross.T
        self.macs = new.size * (k + new.size / 2) * d + (0 if self.G.size else k * k * d / 2)
        self.S = np.concatenate([self.S[keep], new])
        self.w = np.concatenate([self.w[keep], np.zeros(new.size)])
        self.DS = np.concatenate([self.DS[keep], DN])
        self.G = G


def solve(D64, X, W, xx, lam, positive, tol, max_iter, budget=np.inf):
    """Solve the rows of ``X`` in place into ``W`` (n x m, storage dtype) over the atoms ``D64`` (float64),
    each on its own working sets, :data:`BATCH` rows at a time (their blocks of ``G`` are held together).

    Stops early once the rows of a batch have counted more than ``budget`` multiply-adds a row
    (their codes so far are written, warm starts for another solver). Returns (relative gaps, sweeps,
    multiply-adds spent, each row's last working set, False where it stopped for the budget)."""
    out = []
    for i in range(0, len(X), BATCH):
        out.append(_solve_batch(D64, np.asarray(X[i:i + BATCH], np.float64), W[i:i + BATCH], xx[i:i + BATCH], lam,
                                positive, tol, max_iter, budget))
        if out[-1][4]:
            break
    return (np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]), sum(o[2] for o in out),
            [S for o in out for S in o[3]], not (out and out[-1][4]))


def _solve_batch(D, X, W, xx, lam, positive, tol, max_iter, budget):
    n, m = W.shape
    d = D.shape[1]
    gaps = np.full(n, np.inf)
    states = np.zeros((n, 3), np.int64)     # per row: sweeps, sweep of the last support solve, 0
    rows = []
    for r in range(n):                  # from the warm start's support
        supp = np.flatnonzero(W[r])
        rows.append(_Row(D, supp, np.asarray(W[r, supp], np.float64)))
    macs = 0.0
    active = np.arange(n)
    stopped = False         # for the budget
    for _ in range(_MAX_OUTER + 1):
        R = X[active] - np.stack([rows[r].w @ rows[r].DS for r in active])
        l1 = np.array([np.abs(rows[r].w).sum() for r in active])
        rel, gap, primal, Q = _whole_gaps(X[active], R, l1, D, lam, positive)
        macs += active.size * (m * d + ROUND_OVERHEAD)
        gaps[active] = rel
        going = (gap > tol * primal) & (gap > 1e-13 * xx[active]) & (states[active, 0] < max_iter)
        if not going.any():
            break
        keep = np.flatnonzero(going)
        active, rel, Q = active[keep], rel[keep], Q[keep]
        outside = np.zeros(active.size, bool)
        for a, r in enumerate(active):
            row = rows[r]
            new, outside[a] = _violators(row.S[row.w != 0], Q[a], lam, positive)
            row.regrow(D, new)
            macs += row.macs
        if macs > budget * n:
            stopped = True
            break
        sizes = np.array([rows[r].S.size for r in active], np.int64)
        g_off = np.concatenate([[0], np.cumsum(sizes * sizes)])
        v_off = np.concatenate([[0], np.cumsum(sizes)])
        Gflat, b_flat, w_flat = np.empty(g_off[-1]), np.empty(v_off[-1]), np.empty(v_off[-1])
        for i, r in enumerate(active):
            Gflat[g_off[i]:g_off[i + 1]] = rows[r].G.ravel()
            b_flat[v_off[i]:v_off[i + 1]] = rows[r].DS @ X[r]
            w_flat[v_off[i]:v_off[i + 1]] = rows[r].w
        # the sub-problem as far as the whole problem is from its target; all violators inside: tight
        tols = np.where(outside, np.maximum(0.3 * tol, 0.3 * rel), 0.3 * tol)
        state = states[active]
        with single_thread_blas():      # the rows call LAPACK from every core at once
            _solve_packed(Gflat, g_off[:-1], sizes, b_flat, w_flat, v_off[:-1], xx[active], float(lam),
                          bool(positive), tols, int(max_iter), np.empty(active.size), state, d)
        states[active, :2] = state[:, :2]
        for i, r in enumerate(active):
            rows[r].w = w_flat[v_off[i]:v_off[i + 1]].copy()
    for r, row in enumerate(rows):
        W[r] = 0
        W[r, row.S] = row.w
    return gaps, states[:, 0].copy(), macs, [row.S for row in rows], stopped
