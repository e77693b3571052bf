"""Compiled K-SVD atom step of SLiCS (``update="ksvd"``), in place on the residual.

For every atom (concept-major order, as :func:`slics.core.dictionary._atom_step`), on the
rows ``a`` where the atom is active, the residual with the atom added back is
``R_i = E_i + c_i d`` (gathered into one reused buffer).
Its leading right singular vector is the top eigenvector of ``C = R^T R``, found by
Lanczos with full re-orthogonalisation, warm-started from the current atom and stopped
when the Ritz residual ``||C v - theta v|| <= tol * theta`` (default ``1e-11``, far tighter
than the previous Golub-Kahan solver's ``1e-6``, so that the result does not depend on the
solver). The rows are gathered once per atom into one buffer (``R``, reused), every Lanczos step is
two BLAS matrix-vector products on it, and the updated rows are written straight back into
``E``: no per-concept copies of ``E`` and no Python overhead per step (the previous solver
spent most of its time there).

Determinism: the step is sequential (each atom sees the residual left by the previous ones)
and runs on one thread; it gives the same bytes whatever numba's thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_LANCZOS = 24      # Lanczos steps between restarts
_MAX_STEPS = 400   # total Lanczos steps per atom


@njit(cache=True)
def _vdot(x, y):
    return np.dot(x, y)


@njit(cache=True)
def _top_eigvec(R, v0, tol):
    """Top eigenvector of ``R^T R`` by restarted Lanczos with full re-orthogonalisation."""
    d = R.shape[1]
    L = min(_LANCZOS, d)
    Q = np.empty((L + 1, d))
    y = np.empty(d)
    v = v0.copy()
    steps = 0
    while True:
        nv = np.sqrt(_vdot(v, v))
        for l in range(d):
            Q[0, l] = v[l] / nv
        alpha = np.zeros(L)
        beta = np.zeros(L)
        k = 0
        done = False
        theta = 0.0
        while k < L:
            y[:] = np.dot(np.dot(R, Q[k]), R)
            steps += 1
            alpha[k] = _vdot(Q[k], y)
            # full re-orthogonalisation, twice (classical Gram-Schmidt)
            for _ in range(2):
                for j in range(k + 1):
                    h = _vdot(Q[j], y)
                    for l in range(d):
                        y[l] -= h * Q[j, l]
            bk = np.sqrt(_vdot(y, y))
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
                for j in range(k):
                    s = S[j, k - 1]
                    for l in range(d):
                        v[l] += s * Q[j, l]
                break
            for l in range(d):
                Q[k, l] = y[l] / bk
        if done:
            nv = np.sqrt(_vdot(v, v))
            for l in range(d):
                v[l] /= nv
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
    buf = np.empty(size * d)
    rows = np.empty(size, np.int64)
    c = np.empty(size)
    rejected = 0
    total_steps = 0
    for j in range(C):
        for k in range(K):
            col = j * K + k
            m = 0
            for t in range(ptr[j], ptr[j + 1]):
                i = idx[t]
                if W[i, col] > 0.0:
                    rows[m] = i
                    c[m] = W[i, col]
                    m += 1
            if m == 0:
                continue
            dv = D[col].copy()
            R = buf[:m * d].reshape((m, d))
            for i in range(m):
                R[i] = E[rows[i]]
            flat = buf[:m * d]
            old = np.dot(flat, flat)
            for i in range(m):
                ci = c[i]
                for l in range(d):
                    R[i, l] += ci * dv[l]
            total = np.dot(flat, flat)
            v0 = np.empty(d)
            nd = np.sqrt(np.dot(dv, dv))
            for l in range(d):
                v0[l] = dv[l] / nd + 1e-3 * jitter[l]
            theta, v, nst = _top_eigvec(R, v0, tol)
            total_steps += nst
            if theta <= 0.0:       # the residual is zero on these rows: nothing to fit
                continue
            p = np.dot(R, v)
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
            for i in range(m):
                r = rows[i]
                ki = coef[i]
                for l in range(d):
                    E[r, l] = R[i, l] - ki * atom[l]
                W[r, col] = ki
            D[col] = atom
    return rejected, total_steps
