"""Exact non-negative least squares for many right-hand sides at once.

This is the hot path of SLiCS: every coefficient step, every projection and
every greedy pursuit solves thousands of small NNLS problems that share one
dictionary. :func:`nnls_batch` solves them together.

Convention (the same as ``SLiCS.dictionary_``): the dictionary ``D`` has shape
``(m, d)`` and its *rows* are its ``m`` atoms (all of them: for a SLiCS dictionary
``m = n_concepts * n_atoms``); the data ``X`` has shape ``(n, d)``; the result ``W`` has
shape ``(n, m)`` and ``X ≈ W @ D``. Row ``i`` of ``W``
solves::

    minimise  ||X[i] - W[i] @ D||^2 + ridge * ||W[i]||^2
    subject to W[i] >= 0  and  W[i, a] = 0 wherever support[i, a] is False.

Algorithm
---------
Block principal pivoting (Kim & Park, 2011) on the Gram form of the problem:
with ``G = D D^T + ridge I`` and ``B = X D^T``, each row minimises
``w G w / 2 - B[i] w``. Every row carries its own passive set ``F`` (the entries
allowed to be positive). One iteration computes, for *all* unfinished rows at
once, the minimiser with the other entries fixed at zero and its gradient, then
exchanges every variable that violates the KKT conditions. A row is done when
the KKT conditions hold to a tight relative tolerance (``tol``): ``w >= 0``,
gradient ``>= 0`` on the zero entries and ``= 0`` on the positive ones.

Full exchanges can oscillate on ill-conditioned rows (nearly parallel atoms).
Where Kim & Park fall back to exchanging one variable at a time, a row that has
not reduced its number of violations for three exchanges is handed over, with
its current point clipped to be feasible, to a batched Lawson-Hanson active-set
method: each iteration either moves to the minimiser on the passive set and adds
the most violating variable, or steps towards it until a coefficient reaches
zero and drops it. Its objective decreases monotonically, so it cannot cycle.

Rows are grouped by identical support (``np.unique`` on the packed mask), and
every group shares one Cholesky factorisation of its Gram block ``G_S``: it gives
all the group's unconstrained solutions ``z0`` (the first passive sets are their
positive parts) and ``H = G_S^{-1}``. Each row's subproblem is then solved in the
cheaper of two exact forms, batched over rows (rows are bucketed by system size
and each bucket is one stacked LAPACK solve, so an iteration is a handful of
numpy calls, not a loop over rows):

- passive-set form: ``G[F, F] w_F = B[i, F]``, a ``|F| x |F|`` system;
- zero-set form (shared factorisation): with ``Z = S \\ F``,
  ``w = z0 + H[:, Z] lam`` and ``lam = -H[Z, Z]^{-1} z0[Z]`` (``lam`` is the
  gradient on ``Z``), a ``|Z| x |Z|`` system.

Because the zero-set form uses an explicit inverse, every row it finishes is
re-checked against the KKT conditions computed directly from ``G`` and ``B``;
rows that fail (ill-conditioned blocks) are re-solved with the passive-set form
only. When supports are (nearly) all distinct, grouping would not pay and only
the passive-set form is used. Rows still unfinished after ``max_iter``
Lawson-Hanson iterations (not observed in the tests, possible with exactly
degenerate data) are solved one by one with :func:`scipy.optimize.nnls`;
``return_info=True`` reports how many rows took each path.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.optimize

from ..utils.threads import blas_threads_for, single_thread_blas
from ..utils.validation import check_int, check_matrix, check_positive, is_dask_array

_SOLVE_CHUNK = 4_000_000  # max elements of one stacked (rows, k, k) system
_MIN_GROUP = 8            # group by support when groups average at least this many rows
_PATIENCE = 3             # full exchanges without progress before a row moves to Lawson-Hanson


def _check_support(support, n: int, m: int) -> np.ndarray:
    support = np.asarray(support)
    if support.shape != (n, m):
        raise ValueError(f"support must be a boolean mask of shape (n_samples, atoms of D) = ({n}, {m}), "
                         f"got shape {support.shape}.")
    if support.dtype != bool:
        if not np.all(np.isin(support, (0, 1))):
            raise ValueError("support must be boolean (or 0/1): True where an atom may be used.")
        support = support.astype(bool)
    return support


def _buckets(values: np.ndarray):
    """Yield ``(v, idx)`` for every distinct value ``v`` of ``values`` (idx: where it occurs)."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
    ends = np.r_[starts[1:], values.size]
    for s, e in zip(starts, ends):
        yield int(v[s]), order[s:e]


def _chunks(rows: np.ndarray, per_row: int):
    step = max(1, _SOLVE_CHUNK // max(per_row, 1))
    for c in range(0, rows.size, step):
        yield rows[c:c + step]


def _stacked_solve(M: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(M, rhs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:  # an exactly singular block (duplicate atoms, more atoms than d)
        return np.einsum("rij,rj->ri", np.linalg.pinv(M, hermitian=True), rhs)


def _solve_passive(G: np.ndarray, B: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Solve ``G[F_i, F_i] w = B[i, F_i]`` for every row ``i``; zero outside ``F_i``."""
    W = np.zeros(F.shape)
    for k, bucket in _buckets(F.sum(axis=1)):
        if k == 0:
            continue
        for rows in _chunks(bucket, k * k):
            idx = np.nonzero(F[rows])[1].reshape(rows.size, k)
            M = G[idx[:, :, None], idx[:, None, :]]
            rhs = np.take_along_axis(B[rows], idx, axis=1)
            W[rows[:, None], idx] = _stacked_solve(M, rhs)
    return W


def _group_ids(support: np.ndarray) -> np.ndarray:
    packed = np.ascontiguousarray(np.packbits(support, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    return np.unique(keys, return_inverse=True)[1].ravel()


class _Groups:
    """Rows grouped by identical support: ``B``, unconstrained solutions and inverse Gram blocks."""

    def __init__(self, G: np.ndarray, D: np.ndarray, X: np.ndarray, support: np.ndarray, gid: np.ndarray):
        n, m = support.shape
        self.gid = gid
        n_groups = int(gid.max()) + 1
        self.p_max = p_max = max(int(support.sum(axis=1).max()), 1)
        self.cols = np.full((n_groups, p_max), m)          # padded with a dummy column
        self.pos = np.zeros((n_groups, m + 1), dtype=np.intp)
        self.H = np.zeros((n_groups, p_max, p_max))
        self.ok = np.zeros(n_groups, bool)
        self.B = np.zeros((n, m))
        self.z0 = np.zeros((n, m))
        eye = np.eye(p_max)
        for g, rows in _buckets(gid):
            cols = np.flatnonzero(support[rows[0]])
            p = cols.size
            self.cols[g, :p] = cols
            self.pos[g, cols] = np.arange(p)
            self.H[g] = eye
            self.ok[g] = True
            if p == 0:
                continue
            Bs = X[rows] @ D[cols].T
            self.B[np.ix_(rows, cols)] = Bs
            Gs = G[np.ix_(cols, cols)]
            try:
                factor = scipy.linalg.cho_factor(Gs, check_finite=False)
            except np.linalg.LinAlgError:  # singular Gram block: passive-set form only
                self.ok[g] = False
                self.z0[np.ix_(rows, cols)] = np.linalg.lstsq(Gs, Bs.T, rcond=None)[0].T
                continue
            self.z0[np.ix_(rows, cols)] = scipy.linalg.cho_solve(factor, Bs.T, check_finite=False).T
            self.H[g, :p, :p] = scipy.linalg.cho_solve(factor, eye[:p, :p], check_finite=False)
        self.H_rows = self.H.reshape(n_groups * p_max, p_max)

    def solve_zero(self, rows: np.ndarray, F: np.ndarray, S: np.ndarray):
        """Minimisers and gradients of ``rows`` (indices into the full problem) via ``Z = S & ~F``."""
        m = S.shape[1]
        Zm = S & ~F
        X = np.zeros((rows.size, m + 1))
        Y = np.zeros((rows.size, m))
        X[:, :m] = self.z0[rows]
        Xf = X.reshape(-1)
        for q, bucket in _buckets(Zm.sum(axis=1)):
            if q == 0:
                continue
            for loc in _chunks(bucket, q * (q + self.p_max)):
                g = self.gid[rows[loc]]
                zi = np.nonzero(Zm[loc])[1].reshape(loc.size, q)
                zc = self.pos[g[:, None], zi]
                # rows Z of each H (H is symmetric, so these are also its columns Z)
                Hz = self.H_rows[(g[:, None] * self.p_max + zc).ravel()].reshape(loc.size, q, self.p_max)
                M = np.take_along_axis(Hz, zc[:, None, :], axis=2)
                lam = _stacked_solve(M, -np.take_along_axis(X[loc], zi, axis=1))
                flat = (loc[:, None] * (m + 1) + self.cols[g]).ravel()
                Xf[flat] += np.einsum("rq,rqp->rp", lam, Hz).ravel()
                X[loc[:, None], zi] = 0.0
                Y[loc[:, None], zi] = lam
        return X[:, :m], Y


def _solve(G, B, S, F, rows, groups):
    """Minimiser on each row's passive set and its gradient, in the cheaper exact form."""
    m = S.shape[1]
    X = np.empty((rows.size, m))
    Y = np.empty((rows.size, m))
    zero_form = np.zeros(rows.size, bool)
    if groups is not None:
        k = F.sum(axis=1)
        zero_form = groups.ok[groups.gid[rows]] & (S.sum(axis=1) - k < k)
    if zero_form.any():
        z = np.flatnonzero(zero_form)
        X[z], Y[z] = groups.solve_zero(rows[z], F[z], S[z])
    if not zero_form.all():
        p = np.flatnonzero(~zero_form)
        X[p] = _solve_passive(G, B[p], F[p])
        Y[p] = X[p] @ G - B[p]
    return X, Y, zero_form


def _bpp(G, B, S, F, tol, max_iter, groups=None):
    """Block principal pivoting (full exchanges) from passive sets ``F``.

    A row whose number of KKT violations has not decreased for three full exchanges
    (where Kim & Park switch to single exchanges) stops here and is handed over, with
    its current point, to :func:`_lawson_hanson`. Returns the solutions, whether each
    row's last solve used the zero-set form, the handed-over rows, their points and the
    number of iterations.
    """
    n, m = S.shape
    W = np.zeros((n, m))
    via_zero = np.zeros(n, bool)
    act = np.arange(n)
    sc = np.maximum(np.abs(B).max(axis=1), np.finfo(float).tiny)
    ninf = np.full(n, m + 1)
    alpha = np.full(n, _PATIENCE)
    Ba, Sa, Fa = B, S, F
    stalled, stalled_x = [], []
    with single_thread_blas():
        Xa, Ya, zf = _solve(G, Ba, Sa, Fa, act, groups)
    it = 0
    while act.size:
        xs = np.maximum(np.abs(Xa).max(axis=1), np.finfo(float).tiny)
        V = (Fa & (Xa < -tol * xs[:, None])) | (~Fa & Sa & (Ya < -tol * sc[:, None]))
        count = V.sum(axis=1)
        done = count == 0
        W[act[done]] = Xa[done]
        via_zero[act[done]] = zf[done]
        better = count < ninf
        stall = ~done & ((~better & (alpha < 1)) | (it >= max_iter))
        stalled.append(act[stall])
        stalled_x.append(np.where(Fa[stall], np.maximum(Xa[stall], 0.0), 0.0))
        keep = ~done & ~stall
        act = act[keep]
        if not act.size:
            break
        Ba, Sa, Fa, V, count, sc = Ba[keep], Sa[keep], Fa[keep], V[keep], count[keep], sc[keep]
        ninf, alpha, better = ninf[keep], alpha[keep], better[keep]
        ninf = np.where(better, count, ninf)
        alpha = np.where(better, _PATIENCE, alpha - 1)
        Fa = Fa ^ V
        with single_thread_blas():
            Xa, Ya, zf = _solve(G, Ba, Sa, Fa, act, groups)
        it += 1
    return W, via_zero, np.concatenate(stalled), np.concatenate(stalled_x), it


def _lawson_hanson(G, B, S, x0, tol, max_iter, groups=None, rows=None):
    """Batched primal active-set method (Lawson & Hanson) from feasible points ``x0``.

    Every iteration, each row either moves to the minimiser on its passive set (when that
    is positive) and then adds its most violating variable, or steps towards it as far as
    feasibility allows and drops the variables that reach zero. The objective decreases
    monotonically, so it cannot cycle. Returns the solutions (the last feasible point of a
    row still unconverged after ``max_iter`` iterations), zero-form flags, those rows and the
    number of iterations.
    """
    n, m = S.shape
    W = np.zeros((n, m))
    via_zero = np.zeros(n, bool)
    act = np.arange(n)
    glob = act if rows is None else rows
    sc = np.maximum(np.abs(B).max(axis=1), np.finfo(float).tiny)
    xa = np.where(S, np.maximum(x0, 0.0), 0.0)
    Pa = xa > 0
    Ba, Sa = B, S
    it = 0
    while act.size and it < max_iter:
        with single_thread_blas():
            Z, Yg, zf = _solve(G, Ba, Sa, Pa, glob, groups)
        neg = Pa & (Z <= 0)
        step = neg.any(axis=1)
        # rows whose passive minimiser is positive: accept it, then add a variable or stop
        xa = np.where(step[:, None], xa, Z)
        viol = ~step[:, None] & ~Pa & Sa & (Yg < -tol * sc[:, None])
        has = viol.any(axis=1)
        done = ~step & ~has
        add = np.argmin(np.where(viol, Yg, np.inf), axis=1)
        Pa = Pa.copy()
        Pa[np.flatnonzero(has), add[has]] = True
        # the others: move towards the minimiser until a coefficient hits zero
        if step.any():
            r = np.flatnonzero(step)
            x, z = xa[r], Z[r]
            ratio = np.where(neg[r], x / np.where(neg[r], x - z, 1.0), np.inf)
            t = ratio.min(axis=1, keepdims=True)
            x = x + t * (z - x)
            hit = neg[r] & (ratio <= t * (1 + 1e-12))
            P = Pa[r] & ~hit & (x > 0)
            xa[r] = np.where(P, x, 0.0)
            Pa[r] = P
        W[act[done]] = xa[done]
        via_zero[act[done]] = zf[done]
        keep = ~done
        act, glob, Ba, Sa, Pa, xa, sc = act[keep], glob[keep], Ba[keep], Sa[keep], Pa[keep], xa[keep], sc[keep]
        it += 1
    W[act] = xa
    return W, via_zero, act, it


def _kkt_failures(G, B, W, rows, groups, tol):
    """Rows (of ``rows``) whose KKT conditions, computed directly, fail at tolerance ``tol``."""
    fail = []
    for g, loc in _buckets(groups.gid[rows]):
        r = rows[loc]
        cols = groups.cols[g][groups.cols[g] < W.shape[1]]
        Wg = W[np.ix_(r, cols)]
        Bg = B[np.ix_(r, cols)]
        Yg = Wg @ G[np.ix_(cols, cols)] - Bg
        t = tol * np.maximum(np.abs(Bg).max(axis=1, initial=0.0), np.finfo(float).tiny)[:, None]
        pos = Wg > 0
        bad = ((pos & (np.abs(Yg) > t)) | (~pos & (Yg < -t))).any(axis=1)
        fail.append(r[bad])
    return np.concatenate(fail) if fail else np.zeros(0, dtype=np.intp)


def _scipy_row(D: np.ndarray, x: np.ndarray, cols: np.ndarray, ridge: float) -> np.ndarray:
    A = D[cols].T
    b = x
    if ridge > 0:
        A = np.vstack([A, np.sqrt(ridge) * np.eye(cols.size)])
        b = np.r_[x, np.zeros(cols.size)]
    return scipy.optimize.nnls(A, b, maxiter=50 * max(1, cols.size))[0]


def nnls_batch(D, X, support=None, *, ridge: float = 0.0, init=None, tol: float = 1e-10,
               max_iter: int | None = None, method: str = "auto", return_info: bool = False,
               overwrite_init: bool = False):
    """Exact non-negative least squares of every row of ``X`` on the atoms (rows) of ``D``.

    Parameters
    ----------
    D : array of shape (m, d)
        Dictionary; its ``m`` rows are atoms (same layout as ``SLiCS.dictionary_``, where
        ``m = n_concepts * n_atoms``). Atoms need not be unit norm.
    X : array of shape (n, d)
        Right-hand sides, one per row.
    support : bool array of shape (n, m), optional
        ``support[i, a]`` is True where row ``i`` may use atom ``a``; the coefficients of the
        other atoms are fixed at zero. Default: every atom for every row.
    ridge : float, default 0.0
        Non-negative Tikhonov weight: minimise ``||x - w D||^2 + ridge ||w||^2`` (the
        augmented system ``[D^T; sqrt(ridge) I]``), which makes the solution unique when the
        active atoms are linearly dependent.
    init : array of shape (n, m), optional
        Warm start: the entries ``> 0`` give the initial passive sets (e.g. the previous
        coefficients in an alternating scheme). Only the speed depends on it.
    tol : float, default 1e-10
        Relative tolerance of the KKT checks: negative coefficients and negative gradients
        smaller than ``tol`` times the row's scale count as zero.
    max_iter : int, optional
        Iteration cap of each phase (block pivoting, then Lawson-Hanson) before a row falls
        back to :func:`scipy.optimize.nnls`. Default ``3 * m + 50``.
    method : {"auto", "lh", "active_set"}, default "auto"
        ``"lh"`` (what ``"auto"`` picks, the fastest measured, ``benchmarks/bench_slics.py``):
        a compiled per-row Lawson-Hanson active-set solver with Cholesky up- and downdates,
        run in parallel over rows (both cores, bitwise the same for any thread count; see
        :mod:`slics.core._nnls_lh`); rows it cannot finish (a singular warm-start block, or
        ``max_iter`` iterations) go to ``"active_set"``.
        ``"active_set"``: batched block principal pivoting, then Lawson-Hanson, then scipy
        (NumPy, described above). Both are exact: the results agree wherever the solution is
        unique. (A third exact solver, coordinate descent, is kept as a reference for the tests
        and benchmarks: :func:`slics.core.reference.nnls_cd.nnls_cd`.)
    return_info : bool, default False
        Also return a dict with ``n_iter`` (iterations, both phases), ``n_groups`` (distinct
        supports, 0 when not grouped), ``n_zero_form`` (rows finished with the
        shared-factorisation form), ``n_lawson_hanson`` (rows handed to the active-set
        phase) and ``n_fallback`` (rows solved by scipy); with ``"lh"``, ``n_iter`` (the most
        iterations of a row) and ``n_fallback`` (rows handed over).

    overwrite_init : bool, default False
        Allow the solver to write the solution into ``init`` (a C-contiguous float64 array)
        and return it, instead of a new ``(n, m)`` array: one array less at the peak of
        an alternating scheme that replaces ``init`` by the result (``SLiCS.fit``). The
        default solver (``"lh"``) does so.

    Returns
    -------
    W : ndarray of shape (n, m)
        Non-negative coefficients, zero outside ``support``, with ``X ≈ W @ D``.
    info : dict
        Only with ``return_info=True``.

    Examples
    --------
    >>> import numpy as np
    >>> nnls_batch(np.eye(3), np.array([[1.0, -2.0, 0.5]]))
    array([[1. , 0. , 0.5]])
    """
    D = check_matrix(D, "D")
    ridge = check_positive(ridge, "ridge", allow_zero=True)
    check_positive(tol, "tol")
    if is_dask_array(X):      # a lazy (n, m) array, block by block (slics.distributed)
        return _nnls_dask(D, X, support, ridge=ridge, init=init, tol=tol, max_iter=max_iter, method=method,
                          return_info=return_info)
    # float32 rows stay float32 here: the "lh" path converts them chunk by chunk (exactly, so the
    # results are the same), instead of doubling the memory of a large input
    X = check_matrix(X, "X", n_cols=D.shape[1], dtype=[np.float64, np.float32])
    n, m = X.shape[0], D.shape[0]
    support = np.ones((n, m), bool) if support is None else _check_support(support, n, m)
    max_iter = 3 * m + 50 if max_iter is None else check_int(max_iter, "max_iter", minimum=0)
    if init is not None:
        init = np.asarray(init)
        if init.shape != (n, m):
            raise ValueError(f"init must have shape {(n, m)}, got {init.shape}.")
        init = check_matrix(init, "init")           # numbers, finite: a NaN start never converges

    if method == "auto":
        method = "lh"
    if method not in ("active_set", "lh"):
        raise ValueError(f"method must be 'auto', 'lh' or 'active_set', got {method!r}.")
    with blas_threads_for(m * m * D.shape[1]):      # a compiled kernel follows (see blas_threads_for)
        G = D @ D.T
    if ridge:
        G[np.diag_indices_from(G)] += ridge
    if method == "lh":
        return _nnls_lh(D, X, G, support, _start(init, support, overwrite_init), tol, max_iter, ridge,
                        return_info, cold=init is None)
    X = X.astype(np.float64, copy=False)
    gid = _group_ids(support)
    n_groups = int(gid.max()) + 1
    groups = None
    if n_groups * _MIN_GROUP <= n or n_groups == 1:
        with single_thread_blas():
            groups = _Groups(G, D, X, support, gid)
        B = groups.B
        F = support & ((groups.z0 > 0) if init is None else (init > 0))
    else:
        B = X @ D.T
        B[~support] = 0.0
        if init is None:
            with single_thread_blas():
                F = support & (_solve_passive(G, B, support) > 0)
        else:
            F = support & (init > 0)
    W, via_zero, stalled, x_stalled, n_iter = _bpp(G, B, support, F, tol, max_iter, groups)
    bad = np.zeros(0, dtype=np.intp)
    if stalled.size:
        W2, vz2, bad2, it2 = _lawson_hanson(G, B[stalled], support[stalled], x_stalled, tol,
                                            max_iter, groups, stalled)
        W[stalled], via_zero[stalled] = W2, vz2
        bad = stalled[bad2]
        n_iter += it2

    # The zero-set form uses an explicit inverse: verify the KKT conditions directly and
    # re-solve (passive-set form only) the rows where rounding made them fail.
    check = np.flatnonzero(via_zero)
    if check.size:
        redo = _kkt_failures(G, B, W, check, groups, max(tol, 1e-9))
        if redo.size:
            W2, _, bad2, it2 = _lawson_hanson(G, B[redo], support[redo], W[redo], tol, max_iter)
            W[redo] = W2
            bad = np.union1d(bad, redo[bad2])
            n_iter += it2

    for i in bad:
        cols = np.flatnonzero(support[i])
        W[i] = 0.0
        if cols.size:
            W[i, cols] = _scipy_row(D, X[i], cols, ridge)
    np.maximum(W, 0.0, out=W)
    if return_info:
        return W, {"n_iter": n_iter, "n_groups": n_groups if groups is not None else 0,
                   "n_zero_form": int(via_zero.sum()), "n_lawson_hanson": int(stalled.size),
                   "n_fallback": int(bad.size)}
    return W


def _nnls_dask(D, X, support, *, init, return_info, **options):
    if init is not None or return_info:
        raise ValueError("nnls_batch on a dask array takes neither init nor return_info (each block is solved "
                         "cold, as one in-memory call); compute X first to use them.")
    if options["max_iter"] is not None:
        check_int(options["max_iter"], "max_iter", minimum=0)
    if options["method"] not in ("auto", "active_set", "lh"):
        raise ValueError(f"method must be 'auto', 'lh' or 'active_set', got {options['method']!r}.")
    from ..distributed.coding import nnls_rows

    return nnls_rows(D, X, support, **options)


def _start(init, support, overwrite):
    """The feasible warm start ``max(init, 0)`` off the support set to 0 (zeros without ``init``),
    in ``init`` itself when allowed and possible."""
    if init is None:
        return np.zeros(support.shape)
    if overwrite and init.dtype == np.float64 and init.flags.c_contiguous and init.flags.writeable:
        W = init
        np.maximum(W, 0.0, out=W)
    else:
        W = np.maximum(init, 0.0, dtype=np.float64)
    W[~support] = 0.0
    return W


ROW_BLOCK = 192     # rows per BLAS call of row_products: a multiple of every x86 and ARM OpenBLAS row tile


def row_products(X, D) -> np.ndarray:
    """``X @ D.T`` in float64, one BLAS call per :data:`ROW_BLOCK` rows.

    A BLAS may sum a row in another order depending on how many rows the call has (OpenBLAS's
    AVX-512 small-matrix path does, for products with few atoms), so the rows are always taken
    192 at a time: a row's sums then do not depend on the call, and row blocks of a multiple of
    192 rows (Dask's, or one call's chunks) give the bits of one call over all rows. float32
    rows are cast to float64 192 at a time into one buffer: no float64 copy of all of ``X``, and
    no allocation per block (a Dask worker's malloc returns every freed block of 128 KiB or more
    to the system, so a temporary per block cost a page fault per 4 KiB: 7x the time, measured).
    """
    B = np.empty((X.shape[0], D.shape[0]))
    cast = None if X.dtype == np.float64 else np.empty((min(ROW_BLOCK, X.shape[0]), X.shape[1]))
    for s in range(0, X.shape[0], ROW_BLOCK):
        rows = X[s:s + ROW_BLOCK]
        if cast is not None:
            rows = cast[:len(rows)]
            np.copyto(rows, X[s:s + ROW_BLOCK])
        np.matmul(rows, D.T, out=B[s:s + ROW_BLOCK])
    return B


def _nnls_lh(D, X, G, support, W, tol, max_iter, ridge, return_info, cold):
    """``nnls_batch(method="lh")`` on checked inputs: compiled per-row Lawson-Hanson, chunked rows."""
    from ._nnls_lh import nnls_lh_chunk
    from .lasso import _CHUNK_ELEMENTS

    n, m = support.shape
    status = np.empty(n, np.int64)
    # B: about 4 MiB per chunk, in whole blocks of row_products
    chunk = max(1, (_CHUNK_ELEMENTS // 8) // max(m, 1) // ROW_BLOCK) * ROW_BLOCK
    # One BLAS thread for the products: OpenBLAS's threads keep spinning after a product and
    # would take a core from the kernel's threads (measured: 0.32 s against 0.50 s on 20k rows).
    with single_thread_blas():
        for start in range(0, n, chunk):
            sl = slice(start, min(n, start + chunk))
            B = row_products(X[sl], D)
            nnls_lh_chunk(G, B, support[sl], W[sl], float(tol), int(max_iter), cold, status[sl])
    failed = np.flatnonzero(status < 0)
    if failed.size:
        W[failed] = nnls_batch(D, X[failed], support[failed], ridge=ridge, tol=tol, method="active_set")
    if return_info:
        return W, {"n_iter": int(status.max(initial=0)), "n_fallback": int(failed.size)}
    return W
