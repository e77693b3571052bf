"""Compiled kernels of :mod:`slics.core.lasso`: the exact lasso of one row by coordinate descent on
its working set, with support solves, Anderson extrapolation and the duality-gap certificate (the
method is described in that module's docstring), and the parallel loop over a chunk of rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._cholesky import chol_append, chol_factor, chol_remove, chol_solve

_GROW = 16          # atoms added to a working set at least, per outer iteration
_MAX_OUTER = 100    # working-set rounds per row (each tightens the row's gap, so rarely reached)
_STALL = 20        # sweeps of a row after which its support solves repeat while atoms drop out
_CHEAP = 30.0      # a support of s atoms in a working set of k is re-solved / reduced when s^3 <= this * k^2
_TRY_EVERY = 10     # sweeps between exact solves on the support when it keeps changing
_AMORTISE = 0.5     # a support solve waits until the sweeps since the last one cost this * its own cost
_CRAWL = 200        # sweeps of a row after which every support counts as cheap (it is crawling)
_UPDATE = 8         # a factor is updated, not made afresh, while the atoms that joined or left its support are at most 1 / this of it
_SINGULAR = 1e-12   # a support whose factor has a pivot L_jj^2 <= this * G_jj is reduced or solved on its eigenbasis
_ROUNDING = 1e-13   # primal objectives closer than this times ||x||^2 are equal up to rounding
_ANDERSON = 3       # sweeps whose differences make one Anderson extrapolation (after ANDERSON + 1 sweeps)
_ANDERSON_COEF = 1e4    # an extrapolation whose coefficients sum to more than this in absolute value is refused


@njit(cache=True)
def _refresh(G, slot, b, w, supp, ns, q):
    """q = b - sum_{j in supp} w_j G[j, :] (all atoms), from scratch; row j of G is ``G[slot[j]]``."""
    m = b.shape[0]
    for l in range(m):
        q[l] = b[l]
    for t in range(ns):
        j = supp[t]
        wj = w[j]
        g = G[slot[j]]
        for l in range(m):
            q[l] -= wj * g[l]


@njit(cache=True)
def _gap(q, w, b, idx, k, xx, lam, positive, qset, kq):
    """Duality gap and primal of one row; w is zero outside idx[:k]; dual scale from q over qset[:kq]."""
    wb = 0.0
    wq = 0.0
    l1 = 0.0
    for t in range(k):
        j = idx[t]
        wj = w[j]
        if wj != 0.0:
            wb += wj * b[j]
            wq += wj * q[j]
            l1 += abs(wj)
    qmax = 0.0
    for t in range(kq):
        v = q[qset[t]]
        if not positive:
            v = abs(v)
        if v > qmax:
            qmax = v
    rr = xx - wb - wq
    if rr < 0.0:
        rr = 0.0
    xr = xx - wb
    s = 1.0
    if 2.0 * qmax > lam:
        s = lam / (2.0 * qmax)
    primal = rr + lam * l1
    dual = 2.0 * s * xr - s * s * rr
    return primal - dual, primal


@njit(cache=True)
def _candidate(Gw, bw, w_new, S, s, k, xx, lam, positive):
    """q, duality gap and primal objective of a candidate supported on ``S[:s]``."""
    q_new = bw.copy()
    for i in range(s):
        a = S[i]
        dv = w_new[a]
        if dv != 0.0:
            for c in range(k):
                q_new[c] -= dv * Gw[a, c]
    loc = np.arange(k)
    g_new, p_new = _gap(q_new, w_new, bw, loc, k, xx, lam, positive, loc, k)
    return q_new, g_new, p_new


@njit(cache=True)
def _support_system(Gw, ww, k, rhs):
    """The support ``S[:s]`` of ``ww`` (working-set positions), its Gram block ``M`` and the
    right-hand side ``v = rhs[S]`` of the minimiser with the current signs (``M v = rhs[S]``)."""
    S = np.empty(k, np.int64)
    s = 0
    for a in range(k):
        if ww[a] != 0.0:
            S[s] = a
            s += 1
    M = np.empty((s, s))
    v = np.empty(s)
    for i in range(s):
        v[i] = rhs[S[i]]
        for j in range(s):
            M[i, j] = Gw[S[i], S[j]]
    return S, s, M, v


@njit(cache=True)
def _support_solve(Gw, bw, ww, qw, k, xx, lam, positive, again=False, crawling=False):
    """Exact minimiser ``v`` on the current support with its signs fixed (one Cholesky solve).

    Two candidates: ``v`` with the coefficients whose sign flipped set to zero (projection
    onto the orthant), and the step from ``ww`` towards ``v`` that stops where the first
    coefficient reaches zero (an active-set step, never uphill). The better one is kept
    (``ww``, ``qw`` updated in place) if it lowers the objective. This ends coordinate
    descent's slow linear convergence on ill-conditioned supports. Returns 0 (nothing better
    found, nothing changed), 1 (the minimiser on the support, signs kept) or 2 (atoms were
    dropped on the way: :func:`_active_set` calls again on the smaller support).

    A support whose atoms are linearly dependent (more atoms than dimensions, duplicated or
    nearly collinear atoms: the Gram block is singular and coordinate descent crawls along its
    null space) is first reduced by :func:`_reduce_support`, which moves along null directions
    and drops atoms without raising the objective; the solve then runs on what is left.

    This form factors the support's block afresh; :func:`_factored_solve` keeps the factor
    between calls.
    """
    return _factored_solve(Gw, bw, ww, qw, k, xx, lam, positive, again, crawling,
                           np.empty((k, k)), np.empty(k, np.int64), np.full(1, -1, np.int64), k)


@njit(cache=True)
def _changes(ww, k, FS, nf, s):
    """Atoms that joined or left the support of ``ww`` (``s`` atoms) since the factor of
    ``FS[:nf[0]]`` was made; -1 where there is none or it is cheaper afresh (:data:`_UPDATE`)."""
    n = nf[0]
    if n < 0:
        return -1
    kept = 0
    for t in range(n):
        if ww[FS[t]] != 0.0:
            kept += 1
    changes = (n - kept) + (s - kept)
    return -1 if changes * _UPDATE > s else changes


@njit(cache=True)
def _delete_atoms(L, n, F, keep):
    """Delete from the factor ``L[:n, :n]`` of the atoms ``F[:n]`` those where ``keep[t]`` is
    False (from the last, so that the positions before it hold); returns the atoms left."""
    for t in range(n - 1, -1, -1):
        if not keep[t]:
            chol_remove(L, F, n, t)
            n -= 1
    return n


@njit(cache=True)
def _update_factor(Gw, ww, k, L, FS, nf, s, rank):
    """Bring the factor ``L`` of the atoms ``FS[:nf[0]]`` (working-set positions) to the support
    of ``ww`` (``s`` atoms), deleting the atoms that left it and appending those that joined,
    where they are few (:func:`_changes`); False (``nf[0] = -1``) where it is to be made afresh
    or the support has more atoms than ``rank`` (it has no factor then)."""
    if s > rank or _changes(ww, k, FS, nf, s) < 0:
        nf[0] = -1
        return False
    n = nf[0]
    keep = np.empty(n, np.bool_)
    for t in range(n):
        keep[t] = ww[FS[t]] != 0.0
    n = _delete_atoms(L, n, FS, keep)
    if n < s:
        in_f = np.zeros(k, np.bool_)
        for t in range(n):
            in_f[FS[t]] = True
        for a in range(k):
            if ww[a] != 0.0 and not in_f[a]:
                FS[n] = a
                if not chol_append(Gw, FS, n, L):
                    nf[0] = -1
                    return False
                n += 1
    nf[0] = n
    return True


@njit(cache=True)
def _solve_cost(ww, k, FS, nf, s):
    """Multiply-adds of a support solve on the support of ``ww`` (``s`` atoms): its factor
    (``s^3 / 3`` afresh, ``2 s^2`` an atom that joined or left where :func:`_update_factor`
    updates it), two triangular solves and two candidates' ``q`` (``s k`` each)."""
    changes = _changes(ww, k, FS, nf, s)
    factor = s * s * s / 3.0 if changes < 0 else 2.0 * changes * s * s
    return factor + 2.0 * s * s + 2.0 * s * k


@njit(cache=True)
def _factored_solve(Gw, bw, ww, qw, k, xx, lam, positive, again, crawling, L, FS, nf, rank):
    """:func:`_support_solve`, with the Cholesky factor ``L`` of the atoms ``FS[:nf[0]]`` kept
    between calls (``nf[0] = -1``: none yet). A support that differs from the factor's by a few
    atoms updates it (``s^2`` a change, :mod:`slics.core._cholesky`) instead of factoring
    afresh (``s^3 / 3``).

    ``rank`` bounds the rank of every support (the atoms' dimension): a support of more atoms is
    dependent whatever its factor's pivots say. In float64 such a block's null eigenvalues are
    about 1e-15 and Cholesky fails; a float32 ``G`` puts them at about +-1e-7, where Cholesky can
    pass and the eigenvalue threshold of :func:`_reduce_support` sees only the negative ones
    (measured: chains of five reductions and eigen-solves on supports of 390-500 atoms in 384
    dimensions, each dropping a few atoms, ending on supports still dependent)."""
    half = 0.5 * lam
    s = 0
    for a in range(k):
        if ww[a] != 0.0:
            s += 1
    if s == 0:
        return 0
    # on large supports, one solve per call and no eigendecomposition: coordinate descent is then
    # the cheaper way on (measured on the section-2 data, where dense supports of 300 atoms made
    # repeated solves slower overall, and again with the factor updated), unless the row is
    # crawling (``_CRAWL`` sweeps): the repeats are then what ends the crawl
    cheap = crawling or s * s * s <= _CHEAP * k * k
    if again and not cheap:
        return 0
    reduced = False
    rhs = np.empty(k)        # the minimiser's right-hand side with the current signs: b - half sign(w)
    for a in range(k):
        rhs[a] = bw[a] - (half if ww[a] > 0.0 else -half)
    v = np.empty(s)
    if _update_factor(Gw, ww, k, L, FS, nf, s, rank):
        S = FS[:s].copy()
        chol_solve(L, FS, s, rhs, v)
    else:
        S, s, M, v = _support_system(Gw, ww, k, rhs)
        if s <= rank and chol_factor(M, s, L, _SINGULAR):
            FS[:s] = S[:s]
            nf[0] = s
            chol_solve(L, FS, s, rhs, v)
        else:
            if not cheap:
                return 0
            if _reduce_support(Gw, ww, qw, S, s, M, lam, positive, rank):
                reduced = True
                S, s, M, v = _support_system(Gw, ww, k, rhs)
                if s == 0:
                    return 2
                if s <= rank and chol_factor(M, s, L, _SINGULAR):
                    FS[:s] = S[:s]
                    nf[0] = s
                    chol_solve(L, FS, s, rhs, v)
                else:
                    _eig_solve(M, v, s, s - rank)
            else:
                # nearly dependent atoms that the optimum needs: solve on the eigenbasis
                _eig_solve(M, v, s, s - rank)
    loc = np.arange(k)
    g_now, p_now = _gap(qw, ww, bw, loc, k, xx, lam, positive, loc, k)
    # candidate 1: projection of v onto the sign pattern
    w1 = np.zeros(k)
    flips = 0
    for i in range(s):
        if (v[i] > 0.0) == (ww[S[i]] > 0.0) and v[i] != 0.0:
            w1[S[i]] = v[i]
        else:
            flips += 1
    q1, g1, p1 = _candidate(Gw, bw, w1, S, s, k, xx, lam, positive)
    best_w, best_q, best_g, best_p = w1, q1, g1, p1
    p2 = np.inf
    if flips > 0:
        # candidate 2: towards v until the first coefficient reaches zero
        step = 1.0
        for i in range(s):
            x0 = ww[S[i]]
            if (v[i] > 0.0) != (x0 > 0.0) or v[i] == 0.0:
                t = x0 / (x0 - v[i])
                if t < step:
                    step = t
        w2 = np.zeros(k)
        for i in range(s):
            x0 = ww[S[i]]
            x1 = x0 + step * (v[i] - x0)
            if (x1 > 0.0) != (x0 > 0.0) or abs(x1) <= 1e-15 * abs(x0):
                x1 = 0.0
            w2[S[i]] = x1
        q2, g2, p2 = _candidate(Gw, bw, w2, S, s, k, xx, lam, positive)
        if p2 < best_p:
            best_w, best_q, best_g, best_p = w2, q2, g2, p2
    # near the optimum the primal values differ by rounding only (rr = xx - w.b - w.q cancels, and q
    # sums over the support): a candidate within it that has the lower duality gap is the better point
    tie = best_p - p_now <= _ROUNDING * xx and best_g < g_now
    if best_p > p_now and not tie:
        return 2 if reduced else 0
    ww[:] = best_w
    qw[:] = best_q
    return 2 if (reduced or best_p == p2) else 1


@njit(cache=True)
def _active_set(Gw, bw, ww, qw, k, xx, lam, positive, repeat, crawling, L, FS, nf, rank):
    """Repeat :func:`_support_solve` while it drops atoms (at most ``k`` times): the inner loop of
    an active-set (homotopy-like) method, which ends at the minimiser on a support whose signs
    hold. Coordinate descent then adds the atoms that violate the optimality conditions. Returns
    True if the point changed. ``L``, ``FS``, ``nf``: the working set's factor (:func:`_factored_solve`)."""
    moved = False
    for _ in range(k + 1):
        res = _factored_solve(Gw, bw, ww, qw, k, xx, lam, positive, moved, crawling, L, FS, nf, rank)
        if res == 0:
            break
        moved = True
        if res == 1 or not repeat:
            break
    return moved


@njit(cache=True)
def _reduce_support(Gw, ww, qw, S, s, M, lam, positive, rank):
    """Drop atoms of a linearly dependent support ``S[:s]`` (Gram block ``M``) without raising the objective.

    For a direction ``u`` in the (numerical) null space of the support's atoms, ``w + t u`` has
    the same residual, and with the signs fixed its L1 term is linear in ``t``: moving, in the
    direction where the objective does not rise, until the first coefficient reaches zero drops
    that atom (the step of homotopy / LARS on a degenerate support). The null space comes from one
    eigendecomposition; after each drop the remaining directions are made zero on the dropped
    atom by elimination. The objective change along ``u`` is computed exactly (``g t + e t^2``
    with the directional derivative ``g`` and the curvature ``e = u M u``), and a step that would
    raise it is not taken. The null space has at least ``s - rank`` directions (``rank`` bounds
    the support's rank): the eigenvectors of the smallest eigenvalues, whatever rounding made of
    those. ``ww``, ``qw`` are updated in place; returns True if an atom was dropped.
    """
    evals, evecs = np.linalg.eigh(M)
    scale = 0.0
    for i in range(s):
        if M[i, i] > scale:
            scale = M[i, i]
    r = 0
    while r < s and evals[r] <= 1e-10 * scale:
        r += 1
    r = max(r, s - rank)
    if r == 0:
        r = 1          # Cholesky failed on a pivot this threshold missed: try the weakest direction
    N = evecs[:, :r].copy()
    alive = np.ones(s, np.bool_)
    dropped = False
    k = qw.shape[0]
    for step in range(r):
        u = N[:, step]
        nu = 0.0
        for i in range(s):
            nu += u[i] * u[i]
        if nu <= 1e-24:
            continue
        nu = np.sqrt(nu)
        for i in range(s):
            u[i] /= nu
        g = 0.0
        for i in range(s):
            if alive[i] and u[i] != 0.0:
                sg = 1.0 if ww[S[i]] > 0.0 else -1.0
                g += u[i] * (lam * sg - 2.0 * qw[S[i]])
        if g > 0.0:
            for i in range(s):
                u[i] = -u[i]
            g = -g
        e = 0.0
        for i in range(s):
            acc = 0.0
            for j in range(s):
                acc += M[i, j] * u[j]
            e += u[i] * acc
        # first coefficient to reach zero along u
        t = np.inf
        hit = -1
        for i in range(s):
            if alive[i]:
                wi = ww[S[i]]
                if wi * u[i] < 0.0:
                    ti = -wi / u[i]
                    if ti < t:
                        t = ti
                        hit = i
        if hit < 0 or g * t + e * t * t > 0.0:
            continue
        for i in range(s):
            if alive[i] and u[i] != 0.0:
                a = S[i]
                ww[a] += t * u[i]
                for c in range(k):
                    qw[c] -= t * u[i] * Gw[a, c]
        ww[S[hit]] = 0.0
        alive[hit] = False
        dropped = True
        # keep the remaining directions zero on the dropped atom
        for later in range(step + 1, r):
            f = N[hit, later] / u[hit]
            for i in range(s):
                N[i, later] -= f * u[i]
            N[hit, later] = 0.0
    return dropped


@njit(cache=True)
def _eig_solve(M, v, s, null):
    """``v <- M^+ v`` for symmetric positive semi-definite ``M`` (``s x s``): the minimum-norm
    solution on the eigenbasis, eigenvalues below ``1e-15`` of the largest, and the ``null``
    smallest, treated as zero. For the supports Cholesky rejects (a pivot below ``1e-12`` of its
    diagonal) or that have more atoms than dimensions (``null`` of them more)."""
    evals, evecs = np.linalg.eigh(M)
    cut = 1e-15 * max(evals[s - 1], 0.0)
    c = np.zeros(s)
    for t in range(s):
        if t >= null and evals[t] > cut:
            acc = 0.0
            for i in range(s):
                acc += evecs[i, t] * v[i]
            c[t] = acc / evals[t]
    for i in range(s):
        acc = 0.0
        for t in range(s):
            acc += evecs[i, t] * c[t]
        v[i] = acc


@njit(cache=True)
def _extrapolate(Hw, Hq, K, k, positive, Gw):
    """Anderson extrapolation of ``K + 1`` consecutive sweeps' iterates (rows of ``Hw``, their ``q`` in ``Hq``).

    With ``U`` the ``K`` differences of consecutive iterates, the coefficients ``c = z / sum(z)``,
    ``(U U^T) z = 1``, combine the last ``K`` iterates into the point that cancels the
    best linear model of the iteration's residual (Anderson acceleration of coordinate descent:
    Bertrand and Massias, AISTATS 2021, as in skglm). ``q = b - G w`` is affine in ``w`` and the
    coefficients sum to 1, so the extrapolated ``q`` is the same combination of the iterates' ``q``:
    ``K k`` flops instead of a product with the Gram block. With ``positive``, the extrapolated
    codes that are negative are set to zero and ``q`` corrected atom by atom. Returns (ok, w, q); ``ok`` is
    False where the system is singular or the coefficients are so large that the combined ``q``
    would lose accuracy (the caller also keeps the point only if it lowers the objective).
    """
    U = np.empty((K, k))
    for i in range(K):
        for c in range(k):
            U[i, c] = Hw[i + 1, c] - Hw[i, c]
    C = np.empty((K, K))
    for i in range(K):
        for j in range(i, K):
            acc = 0.0
            for c in range(k):
                acc += U[i, c] * U[j, c]
            C[i, j] = acc
            C[j, i] = acc
    wa = np.zeros(k)
    qa = np.zeros(k)
    try:
        z = np.linalg.solve(C, np.ones(K))
    except Exception:          # singular: the iterates have (nearly) stopped moving in some direction
        return False, wa, qa
    total = 0.0
    size = 0.0
    for i in range(K):
        total += z[i]
        size += abs(z[i])
    if not (np.isfinite(size) and total != 0.0 and size <= _ANDERSON_COEF * abs(total)):
        return False, wa, qa
    for i in range(K):
        ci = z[i] / total
        for c in range(k):
            wa[c] += ci * Hw[i + 1, c]
            qa[c] += ci * Hq[i + 1, c]
    if positive:
        for a in range(k):
            if wa[a] < 0.0:
                v = wa[a]
                wa[a] = 0.0
                for c in range(k):
                    qa[c] += v * Gw[a, c]
    return True, wa, qa


@njit(cache=True)
def _carry_factor(L_old, FA, n_fa, wsk, k, pos):
    """The factor of the last round's support solves (atoms ``FA[:n_fa]``, -1: none) for a new
    working set ``wsk[:k]``: in a buffer of at least ``k x k``, its atoms as working-set
    positions (``FS``), those outside the working set deleted. ``pos`` (length m, all -1) is
    scratch, left all -1."""
    size = max(k, n_fa)
    L = np.empty((size, size))
    FS = np.empty(size, np.int64)
    nf = np.full(1, -1, np.int64)
    if n_fa <= 0:
        return L, FS, nf
    for t in range(k):
        pos[wsk[t]] = t
    n = n_fa
    for i in range(n):
        for j in range(i + 1):
            L[i, j] = L_old[i, j]
    keep = np.empty(n, np.bool_)
    for t in range(n):
        FS[t] = pos[FA[t]]
        keep[t] = FS[t] >= 0
    n = _delete_atoms(L, n, FS, keep)
    for t in range(k):
        pos[wsk[t]] = -1
    nf[0] = n if n > 0 else -1
    return L, FS, nf


@njit(cache=True)
def _solve_row(G, slot, b, w, xx, lam, positive, tol, max_sweeps, state, need, rank):
    """Exact lasso of one row (see :mod:`slics.core.lasso`). ``w`` (float64, length m) in/out.

    Row ``j`` of the Gram matrix is ``G[slot[j]]``, present where ``slot[j] >= 0``. A round whose
    working set needs an absent row stops before its sweeps (nothing changed since the round's
    start), writes those atoms to ``need`` and returns their count: the caller forms the rows and
    calls again, and the row resumes from ``w`` and ``state`` (sweeps, sweep of the last support
    solve, rounds; in/out) as if it had not stopped. Rows of the support of ``w`` must be present.

    ``rank``: the atoms' dimension, which bounds the rank of every support (see :func:`_factored_solve`).

    Returns (relative duality gap, atoms needed: 0 once the row has stopped).
    """
    m = b.shape[0]
    half = 0.5 * lam
    q = np.empty(m)
    supp = np.empty(m, np.int64)
    ws = np.empty(m, np.int64)
    in_ws = np.zeros(m, np.bool_)
    allidx = np.arange(m)
    ns = 0
    for j in range(m):
        if w[j] != 0.0:
            if G[slot[j], j] > 0.0 and (w[j] > 0.0 or not positive):
                supp[ns] = j
                ns += 1
            else:
                w[j] = 0.0
    _refresh(G, slot, b, w, supp, ns, q)
    k = 0
    sweeps = state[0]
    tol_in = 0.3 * tol
    last_try = state[1]
    floor = 1e-13 * xx
    rel = np.inf
    n_need = 0
    # the support solves' Cholesky factor (atoms FA[:n_fa]), carried from round to round
    L = np.empty((0, 0))
    FA = np.empty(m, np.int64)
    n_fa = -1
    pos = np.full(m, -1, np.int64)
    for rnd in range(state[2], _MAX_OUTER):
        gap, primal = _gap(q, w, b, supp, ns, xx, lam, positive, allidx, m)
        rel = gap / primal if primal > 0.0 else 0.0
        if gap <= tol * primal or gap <= floor or sweeps >= max_sweeps:
            break
        # each round's working set starts from the support (celer's pruning): atoms that left
        # the support stop costing every sweep k multiply-adds, and violators rejoin below
        for t in range(k):
            in_ws[ws[t]] = False
        k = 0
        for t in range(ns):
            ws[k] = supp[t]
            in_ws[supp[t]] = True
            k += 1
        # add the worst violators outside the working set
        n_cand = 0
        cand = np.empty(m, np.int64)
        score = np.empty(m)
        for j in range(m):
            if not in_ws[j]:
                v = q[j] if positive else abs(q[j])
                if v > half:
                    cand[n_cand] = j
                    score[n_cand] = -v
                    n_cand += 1
        grow = max(_GROW, ns)
        if n_cand > grow:
            order = np.argsort(score[:n_cand])[:grow]
            for t in range(grow):
                j = cand[order[t]]
                ws[k] = j
                in_ws[j] = True
                k += 1
        else:
            for t in range(n_cand):
                j = cand[t]
                ws[k] = j
                in_ws[j] = True
                k += 1
        for t in range(ns, k):          # the violators just added (the support's rows are present)
            if slot[ws[t]] < 0:
                need[n_need] = ws[t]
                n_need += 1
        if n_need > 0:
            state[2] = rnd
            break
        # solve the sub-problem only as far as the full problem is from its target (celer's rule)
        tol_in = max(0.3 * tol, 0.3 * rel)
        if n_cand == 0:
            tol_in = 0.3 * tol   # all violators inside: the sub-problem needs the tight solve
        # coordinate descent on the working set, in float64
        Gw = np.empty((k, k))
        bw = np.empty(k)
        qw = np.empty(k)
        ww = np.empty(k)
        wsk = ws[:k]
        for a in range(k):
            ja = wsk[a]
            bw[a] = b[ja]
            qw[a] = q[ja]
            ww[a] = w[ja]
            for c in range(k):
                Gw[a, c] = G[slot[ja], wsk[c]]
        loc = np.arange(k)
        L, FS, nf = _carry_factor(L, FA, n_fa, wsk, k, pos)
        tried = False
        Hw = np.empty((0, 0))     # the last sweeps' iterates and their q, for _extrapolate (from a round's second sweep)
        Hq = np.empty((0, 0))
        nh = 0
        first = sweeps
        while sweeps < max_sweeps:
            sweeps += 1
            changed = False
            nz = 0
            for a in range(k):
                gaa = Gw[a, a]
                if gaa <= 0.0:
                    continue
                old = ww[a]
                z = qw[a] + gaa * old
                if z > half:
                    new = (z - half) / gaa
                elif z < -half and not positive:
                    new = (z + half) / gaa
                else:
                    new = 0.0
                if new != old:
                    if (new > 0.0) != (old > 0.0) or (new < 0.0) != (old < 0.0):
                        changed = True
                    delta = new - old
                    ww[a] = new
                    for c in range(k):
                        qw[c] -= delta * Gw[a, c]
                if ww[a] != 0.0:
                    nz += 1
            g_in, p_in = _gap(qw, ww, bw, loc, k, xx, lam, positive, loc, k)
            if g_in <= tol_in * p_in or g_in <= floor:
                break
            if sweeps - first < 2:
                pass
            elif Hw.shape[1] != k:
                Hw = np.empty((_ANDERSON + 1, k))
                Hq = np.empty((_ANDERSON + 1, k))
            if sweeps - first >= 2:
                Hw[nh] = ww
                Hq[nh] = qw
                nh += 1
            if nh == _ANDERSON + 1:
                nh = 0
                ok, wa, qa = _extrapolate(Hw, Hq, _ANDERSON, k, positive, Gw)
                if ok:
                    g_a, p_a = _gap(qa, wa, bw, loc, k, xx, lam, positive, loc, k)
                    if p_a < p_in:
                        for a in range(k):
                            if (wa[a] > 0.0) != (ww[a] > 0.0) or (wa[a] < 0.0) != (ww[a] < 0.0):
                                changed = True
                        ww[:] = wa
                        qw[:] = qa
                        if g_a <= tol_in * p_a or g_a <= floor:
                            break
            if changed:
                tried = False
            due = sweeps - last_try
            crawling = sweeps >= _CRAWL
            # support and signs settled for a sweep (or not tried for a while): jump to the exact
            # solution on the support, once the sweeps since the last try (at most k * nz
            # multiply-adds each) have cost half the solve's (_solve_cost): at most two thirds
            # of a row's multiply-adds go to solves, which run faster (LAPACK's blocked factor)
            if ((not tried and not changed) or due >= _TRY_EVERY) and (
                    crawling or due * k * nz >= _AMORTISE * _solve_cost(ww, k, FS, nf, nz)):
                tried = True
                last_try = sweeps
                nh = 0          # the solve jumps: the next extrapolation starts from its point
                if _active_set(Gw, bw, ww, qw, k, xx, lam, positive, sweeps >= _STALL, crawling, L, FS, nf, rank):
                    g_in, p_in = _gap(qw, ww, bw, loc, k, xx, lam, positive, loc, k)
                    if g_in <= tol_in * p_in or g_in <= floor:
                        break
        n_fa = nf[0]
        for t in range(n_fa):
            FA[t] = wsk[FS[t]]
        ns = 0
        for a in range(k):
            j = wsk[a]
            w[j] = ww[a]
            if ww[a] != 0.0:
                supp[ns] = j
                ns += 1
        _refresh(G, slot, b, w, supp, ns, q)
    state[0] = sweeps
    state[1] = last_try
    return rel, n_need


@njit(parallel=True, cache=True)
def _solve_chunk(G, slot, B, W, rows, xx, lam, positive, tol, max_sweeps, gaps, state, need, n_need, rank):
    """The rows ``rows`` of a chunk in parallel (see :func:`_solve_row`); ``W`` (chunk, m) in/out in its
    own dtype; per chunk row: ``gaps``, ``state`` (chunk, 3) and ``n_need``, ``need`` (chunk, m);
    ``rank``: the atoms' dimension ``d``."""
    m = B.shape[1]
    for i in prange(rows.shape[0]):
        r = rows[i]
        b = np.empty(m)
        w = np.empty(m)
        for j in range(m):
            b[j] = B[r, j]
            w[j] = W[r, j]
        gaps[r], n_need[r] = _solve_row(G, slot, b, w, xx[r], lam, positive, tol, max_sweeps, state[r], need[r],
                                        rank)
        for j in range(m):
            W[r, j] = w[j]
