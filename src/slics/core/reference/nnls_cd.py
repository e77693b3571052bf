"""Exact NNLS with supports by compiled per-row coordinate descent: a reference solver.

Solves the problems of :func:`slics.core.nnls.nnls_batch` (same conventions: ``D`` is
``(m, d)`` with its atoms as rows, ``X ≈ W @ D``, ``W >= 0`` and zero off ``support``) by
coordinate descent on each row's support block of ``G = D D^T + ridge I``, with exact solves
on the positive set (:func:`slics.core.lasso._support_solve` with ``lam = 0``), in parallel
over rows. It was ``nnls_batch(method="cd")``; the benchmarks (``benchmarks/bench_solvers.py``)
measured the default Lawson-Hanson solver faster, so the pipeline does not use it. The tests
keep it as an independent exact solver to compare with.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ...utils.threads import single_thread_blas
from ...utils.validation import check_int, check_matrix, check_positive
from .._lasso_kernels import _TRY_EVERY, _support_solve
from ..lasso import _CHUNK_ELEMENTS
from ..nnls import _check_support, _start, nnls_batch

__all__ = ["nnls_cd"]


def nnls_cd(D, X, support=None, *, ridge: float = 0.0, init=None, tol: float = 1e-10, max_iter: int = 5000,
            return_info: bool = False):
    """Exact non-negative least squares of every row of ``X`` on the atoms of ``D``, by coordinate descent.

    Parameters
    ----------
    D : array of shape (m, d)
        Dictionary, its ``m`` atoms as rows.
    X : array of shape (n, d)
        Right-hand sides, one per row.
    support : bool array of shape (n, m), optional
        Where row ``i`` may use atom ``a`` (default: everywhere), as in
        :func:`slics.core.nnls.nnls_batch`.
    ridge : float, default 0.0
        Non-negative Tikhonov weight, as in :func:`~slics.core.nnls.nnls_batch`.
    init : array of shape (n, m), optional
        Warm start; only the speed depends on it.
    tol : float, default 1e-10
        A row stops when its KKT conditions hold to ``tol`` times its ``max |D x|``.
    max_iter : int, default 5000
        Sweeps per row at most; rows not finished by then are solved by
        :func:`~slics.core.nnls.nnls_batch` (counted in ``n_fallback``).
    return_info : bool, default False
        Also return a dict with ``n_iter`` (the most sweeps of a row) and ``n_fallback``.

    Returns
    -------
    W : ndarray of shape (n, m)
        Non-negative coefficients, zero outside ``support``, with ``X ≈ W @ D``.
    info : dict
        Only with ``return_info=True``.
    """
    D = check_matrix(D, "D")
    X = check_matrix(X, "X", n_cols=D.shape[1])
    ridge = check_positive(ridge, "ridge", allow_zero=True)
    check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    n, m = X.shape[0], D.shape[0]
    support = np.ones((n, m), bool) if support is None else _check_support(support, n, m)
    if init is not None:
        init = np.asarray(init)
        if init.shape != (n, m):
            raise ValueError(f"init must have shape {(n, m)}, got {init.shape}.")
    G = D @ D.T
    if ridge:
        G[np.diag_indices_from(G)] += ridge
    W = _start(init, support, False)
    sweeps = np.empty(n, np.int64)
    chunk = max(1, _CHUNK_ELEMENTS // max(m, 1))
    with single_thread_blas():
        for start in range(0, n, chunk):
            sl = slice(start, min(n, start + chunk))
            B = X[sl] @ D.T
            xx = np.einsum("ij,ij->i", X[sl], X[sl])
            _nnls_chunk(G, B, support[sl], W[sl], xx, float(tol), int(max_iter), sweeps[sl])
    failed = np.flatnonzero(sweeps < 0)
    if failed.size:
        W[failed] = nnls_batch(D, X[failed], support[failed], ridge=ridge, init=W[failed], tol=tol)
    np.maximum(W, 0.0, out=W)
    if return_info:
        return W, {"n_iter": int(sweeps.max(initial=0)), "n_fallback": int(failed.size)}
    return W


@njit(parallel=True, cache=True)
def _nnls_chunk(G, B, S, W, xx, tol, max_sweeps, sweeps):
    """Exact NNLS of each row on its support ``S[i]`` (Gram form), in parallel over rows.

    Coordinate descent on the row's support block of ``G``, with exact solves on the positive
    set (:func:`slics.core.lasso._support_solve` with ``lam = 0``) every ``_TRY_EVERY`` sweeps or once the set has
    settled; stops when the KKT conditions hold to ``tol`` times the row's ``max |b|``.
    ``sweeps[i]`` is ``-1`` for a row that did not converge within ``max_sweeps``.
    """
    n, m = B.shape
    for i in prange(n):
        p = 0
        idx = np.empty(m, np.int64)
        for j in range(m):
            if S[i, j]:
                idx[p] = j
                p += 1
        if p == 0:
            sweeps[i] = 0
            continue
        Gw = np.empty((p, p))
        bw = np.empty(p)
        ww = np.empty(p)
        scale = 1e-300
        for a in range(p):
            ja = idx[a]
            bw[a] = B[i, ja]
            ww[a] = max(W[i, ja], 0.0)
            if abs(bw[a]) > scale:
                scale = abs(bw[a])
            for c in range(p):
                Gw[a, c] = G[ja, idx[c]]
        qw = bw.copy()
        for a in range(p):
            if ww[a] != 0.0:
                for c in range(p):
                    qw[c] -= ww[a] * Gw[a, c]
        thr = tol * scale
        done = False
        tried = False
        last_try = 0
        it = 0
        while it < max_sweeps:
            viol = 0.0
            for a in range(p):
                v = abs(qw[a]) if ww[a] > 0.0 else qw[a]
                if v > viol:
                    viol = v
            if viol <= thr:
                done = True
                break
            it += 1
            changed = False
            for a in range(p):
                gaa = Gw[a, a]
                if gaa <= 0.0:
                    continue
                old = ww[a]
                z = qw[a] + gaa * old
                new = z / gaa if z > 0.0 else 0.0
                if new != old:
                    if (new > 0.0) != (old > 0.0):
                        changed = True
                    delta = new - old
                    ww[a] = new
                    for c in range(p):
                        qw[c] -= delta * Gw[a, c]
            if changed:
                tried = False
            if (not tried and not changed) or it - last_try >= _TRY_EVERY:
                tried = True
                last_try = it
                _support_solve(Gw, bw, ww, qw, p, xx[i], 0.0, True)
        for a in range(p):
            W[i, idx[a]] = ww[a]
        sweeps[i] = it if done else -1
