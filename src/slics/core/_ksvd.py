"""Compiled K-SVD atom step of SLiCS (``update="ksvd"``), in place on the residual.

For every atom (concept-major order, as :func:`slics.core.dictionary._atom_step`), on the
rows ``a`` where the atom is active, the residual with the atom added back is
``R_i = E_i + c_i d`` (gathered into one reused buffer).
Its leading right singular vector is the top eigenvector of ``C = R^T R``, found by
Lanczos with full re-orthogonalisation, warm-started from the current atom and stopped
when the Ritz residual ``||C v - theta v|| <= tol * theta`` (``SLiCS`` uses ``1e-9``, far
tighter than the previous Golub-Kahan solver's ``1e-6``, so that the result hardly depends
on the solver). The concept's rows of ``E`` are gathered once per concept (a buffer that stays in cache
while its atoms are updated), each atom's active rows once per atom into a second buffer
(``R``), every Lanczos step applies ``R^T R`` block by block (two BLAS matrix-vector products per
block of ``_ROWS`` rows, the second reading the block from cache), and the updated rows
go back into the concept buffer, then into ``E`` once per concept; there is no Python
overhead per step.

Parallelism and determinism: atoms are updated one after another (each sees the residual
left by the previous ones), but inside one atom the passes over its rows run on every core
once there are ``_PARALLEL_ROWS`` of them (numba ``prange``, BLAS on one thread): the gather
and the write-back row by row, each ``R^T R q`` over fixed blocks of ``_ROWS`` rows. Every row
or block writes its own slot and the slots are then added in order, which is exactly the order
of the one-thread loop, so the bytes do not depend on numba's thread count (tested).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_LANCZOS = 24      # Lanczos steps between restarts
_ROWS = 32         # rows per block of R^T R q (32 x 512 float64 = 128 KiB: stays in L2)
_MAX_STEPS = 400   # total Lanczos steps per atom
_PARALLEL_ROWS = 1024  # below this many rows a pass stays on one thread (measured: starting the threads costs more)


@njit(cache=True)
def _dot(a, b):
    """BLAS ``np.dot``, compiled apart: inside a ``parallel=True`` function numba would turn
    ``np.dot`` into its own loop, with another summation order."""
    return np.dot(a, b)


@njit(cache=True)
def _gather_row(e, ci, dv, r):
    """``r = e + ci dv``; returns ``(||e||^2, ||r||^2)`` (four fixed partial sums each)."""
    d = e.shape[0]
    a0 = a1 = a2 = a3 = 0.0
    b0 = b1 = b2 = b3 = 0.0
    d4 = d - d % 4
    for l in range(0, d4, 4):
        e0, e1, e2, e3 = e[l], e[l + 1], e[l + 2], e[l + 3]
        r0 = e0 + ci * dv[l]
        r1 = e1 + ci * dv[l + 1]
        r2 = e2 + ci * dv[l + 2]
        r3 = e3 + ci * dv[l + 3]
        r[l], r[l + 1], r[l + 2], r[l + 3] = r0, r1, r2, r3
        a0 += e0 * e0
        a1 += e1 * e1
        a2 += e2 * e2
        a3 += e3 * e3
        b0 += r0 * r0
        b1 += r1 * r1
        b2 += r2 * r2
        b3 += r3 * r3
    for l in range(d4, d):
        r[l] = e[l] + ci * dv[l]
        a0 += e[l] * e[l]
        b0 += r[l] * r[l]
    return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3)


@njit(cache=True)
def _cov_block(R, q, t, P, b):
    """``t = R q`` and ``P[b] = R_b^T (R_b q)`` on block ``b`` (``_ROWS`` rows, read once)."""
    b0 = b * _ROWS
    b1 = min(R.shape[0], b0 + _ROWS)
    Rb = R[b0:b1]
    tb = _dot(Rb, q)
    t[b0:b1] = tb
    P[b] = _dot(tb, Rb)


@njit(parallel=True, cache=True)
def _cov_blocks(R, q, t, P):
    """:func:`_cov_block` on every block, in parallel."""
    for b in prange((R.shape[0] + _ROWS - 1) // _ROWS):
        _cov_block(R, q, t, P, b)


@njit(parallel=True, cache=True)
def _gather_rows(Ej, loc, c, dv, R, norms):
    """``R[i] = Ej[loc[i]] + c[i] dv`` with ``norms[i] = (||Ej[loc[i]]||^2, ||R[i]||^2)``, in parallel."""
    for i in prange(R.shape[0]):
        norms[i, 0], norms[i, 1] = _gather_row(Ej[loc[i]], c[i], dv, R[i])


@njit(cache=True)
def _write_row(Ej, r, Ri, ki, atom):
    """``Ej[r] = Ri - ki atom``."""
    for l in range(Ri.shape[0]):
        Ej[r, l] = Ri[l] - ki * atom[l]


@njit(parallel=True, cache=True)
def _write_back(Ej, loc, R, coef, atom):
    """``Ej[loc[i]] = R[i] - coef[i] atom``, in parallel."""
    for i in prange(R.shape[0]):
        _write_row(Ej, loc[i], R[i], coef[i], atom)


@njit(parallel=True, cache=True)
def _copy_rows(dst, dst_rows, src, src_rows):
    """``dst[dst_rows[t]] = src[src_rows[t]]`` for every ``t``, in parallel."""
    for t in prange(dst_rows.shape[0]):
        dst[dst_rows[t]] = src[src_rows[t]]


@njit(cache=True)
def _cov_apply(R, q, y, t, P):
    """``y = R^T (R q)`` and ``t = R q``, in blocks of ``_ROWS`` rows, each read from memory
    once and reused from cache (half the traffic of two full products); the blocks' products
    (in ``P``, at least ``ceil(m / _ROWS)`` x d) are added in block order."""
    m, d = R.shape
    nb = (m + _ROWS - 1) // _ROWS
    if m < _PARALLEL_ROWS:
        for b in range(nb):
            _cov_block(R, q, t, P, b)
    else:
        _cov_blocks(R, q, t, P)
    for l in range(d):
        y[l] = 0.0
    for b in range(nb):
        y += P[b]


@njit(cache=True)
def _top_eigvec(R, v0, tol, p):
    """Top eigenvector ``v`` of ``R^T R`` by restarted Lanczos with full re-orthogonalisation;
    also ``p = R v`` (from the products of the last cycle, without another pass over ``R``)."""
    m, d = R.shape
    L = min(_LANCZOS, d)
    Q = np.empty((L + 1, d))
    P = np.empty(((m + _ROWS - 1) // _ROWS, d))
    Rq = np.empty((L, m))       # R q_j of the current cycle
    y = np.empty(d)
    v = v0.copy()
    steps = 0
    while True:
        nv = np.sqrt(_dot(v, v))
        for l in range(d):
            Q[0, l] = v[l] / nv
        alpha = np.zeros(L)
        beta = np.zeros(L)
        k = 0
        done = False
        theta = 0.0
        while k < L:
            _cov_apply(R, Q[k], y, Rq[k], P)
            steps += 1
            alpha[k] = _dot(Q[k], y)
            # full re-orthogonalisation, twice (classical Gram-Schmidt)
            for _ in range(2):
                for j in range(k + 1):
                    h = _dot(Q[j], y)
                    for l in range(d):
                        y[l] -= h * Q[j, l]
            bk = np.sqrt(_dot(y, y))
            beta[k] = bk
            k += 1
            T = np.zeros((k, k))
            for j in range(k):
                T[j, j] = alpha[j]
                if j + 1 < k:
                    T[j, j + 1] = beta[j]
                    T[j + 1, j] = beta[j]
            w, S = np.linalg.eigh(T)
            theta = w[k - 1]
            resid = abs(bk * S[k - 1, k - 1])
            if theta <= 0.0:
                done = True
            elif resid <= tol * theta or bk <= 1e-14 * theta or steps >= _MAX_STEPS or k == d:
                done = True
            if done or k == L:
                for l in range(d):
                    v[l] = 0.0
                for i in range(m):
                    p[i] = 0.0
                for j in range(k):
                    s = S[j, k - 1]
                    for l in range(d):
                        v[l] += s * Q[j, l]
                    for i in range(m):
                        p[i] += s * Rq[j, i]
                break
            for l in range(d):
                Q[k, l] = y[l] / bk
        if done:
            nv = np.sqrt(_dot(v, v))
            for l in range(d):
                v[l] /= nv
            for i in range(m):
                p[i] /= nv
            return theta, v, steps


@njit(cache=True)
def ksvd_step(E, W, D, ptr, idx, K, monotone, tol, jitter):
    """The K-SVD atom step in place on ``E`` (residual), ``W`` and ``D``.

    ``idx[ptr[j]:ptr[j + 1]]`` are the rows labelled with concept ``j`` (increasing).
    ``jitter`` is the fixed unit vector added (times 1e-3) to the warm start. Returns the
    number of rejected updates (``monotone``) and of Lanczos steps.
    """
    n, d = E.shape
    C = ptr.shape[0] - 1
    size = 0
    for j in range(C):
        size = max(size, ptr[j + 1] - ptr[j])
    Ej = np.empty((size, d))          # the concept's rows of E, gathered once per concept
    buf = np.empty(size * d)
    loc = np.empty(size, np.int64)
    c = np.empty(size)
    p_buf = np.empty(size)
    norm_buf = np.empty((size, 2))
    here = np.arange(size)
    rejected = 0
    total_steps = 0
    for j in range(C):
        nj = ptr[j + 1] - ptr[j]
        rows = idx[ptr[j]:ptr[j + 1]]
        if nj >= _PARALLEL_ROWS:       # (small passes stay on this thread: a parallel start costs more)
            _copy_rows(Ej, here[:nj], E, rows)
        else:
            for t in range(nj):
                Ej[t] = E[rows[t]]
        for k in range(K):
            col = j * K + k
            m = 0
            for t in range(nj):
                i = idx[ptr[j] + t]
                if W[i, col] > 0.0:
                    loc[m] = t
                    c[m] = W[i, col]
                    m += 1
            if m == 0:
                continue
            dv = D[col].copy()
            R = buf[:m * d].reshape((m, d))
            norms = norm_buf[:m]
            if m >= _PARALLEL_ROWS:             # R = E_a + c d^T, ||E_a||^2, ||R||^2
                _gather_rows(Ej, loc[:m], c[:m], dv, R, norms)
            else:
                for i in range(m):
                    norms[i, 0], norms[i, 1] = _gather_row(Ej[loc[i]], c[i], dv, R[i])
            old = 0.0
            total = 0.0
            for i in range(m):
                old += norms[i, 0]
                total += norms[i, 1]
            v0 = np.empty(d)
            nd = np.sqrt(np.dot(dv, dv))
            for l in range(d):
                v0[l] = dv[l] / nd + 1e-3 * jitter[l]
            p = p_buf[:m]
            theta, v, nst = _top_eigvec(R, v0, tol, p)
            total_steps += nst
            if theta <= 0.0:       # the residual is zero on these rows: nothing to fit
                continue
            signed = 0.0
            for i in range(m):
                signed += p[i] * abs(p[i])
            s = 1.0 if signed >= 0.0 else -1.0
            coef = np.empty(m)
            for i in range(m):
                coef[i] = max(0.0, s * p[i])
            new = total - np.dot(coef, coef)
            if monotone and not new < old:
                rejected += 1
                continue
            atom = s * v
            if m >= _PARALLEL_ROWS:
                _write_back(Ej, loc[:m], R, coef, atom)
            else:
                for i in range(m):
                    _write_row(Ej, loc[i], R[i], coef[i], atom)
            for i in range(m):
                W[idx[ptr[j] + loc[i]], col] = coef[i]
            D[col] = atom
        if nj >= _PARALLEL_ROWS:
            _copy_rows(E, rows, Ej, here[:nj])
        else:
            for t in range(nj):
                E[rows[t]] = Ej[t]
    return rejected, total_steps
