"""Exact batched lasso and non-negative lasso, certified by a duality gap.

Problem, for every row ``x`` of ``X`` (``n, d``) over a dictionary ``D`` with atoms as ROWS
(``m, d``, the layout of scikit-learn and of ``SLiCS.dictionary_``)::

    min_w  ||x - w D||^2 + lam ||w||_1        (w >= 0 with positive=True)

on the report's scale (no 1/2, no 1/d; :func:`slics.core.objectives.lasso_objective`
evaluates it). scikit-learn's ``Lasso(alpha, fit_intercept=False)``
fitted on ``(D.T, x)`` minimises the same problem when ``alpha = lam / (2 d)``, and
``sklearn.decomposition.sparse_encode(..., algorithm="lasso_cd", alpha=a)`` when ``a = lam / 2``.

Method (chosen by measurement, see ``benchmarks/bench_solvers.py``): coordinate descent on
the Gram matrix ``G = D D^T`` with a working set per row, compiled with numba and
run in parallel over rows (all cores). For one row, with ``b = D x`` and the correlation
``q = b - G w`` (``q_j = D_j . r``, ``r`` the residual):

1. The working set starts with the support of the warm start and the atoms that violate
   the optimality conditions most (``|q_j| > lam / 2``; ``q_j > lam / 2`` if positive).
2. Cyclic coordinate descent on the working set only, with its small dense Gram block
   (``k x k`` in float64), until the duality gap of the sub-problem is small. From
   a round's second sweep on, every ``_ANDERSON + 1`` sweeps are extrapolated (Anderson
   acceleration, as in skglm), and the extrapolated point is kept where it lowers the objective:
   on coherent dictionaries at small ``lam`` (1,000 atoms, 270-360 non-zeros per row) this took
   8-30 % of the sweeps off, and it costs nothing measurable where rows converge in a few sweeps.
3. ``q`` is recomputed for all atoms from the support (``nnz x m`` flops, no ``n x m x m``
   product), giving the duality gap of the full problem: with the dual point
   ``theta = s r``, ``s = min(1, lam / (2 max_j |q_j|))``, the dual objective is
   ``2 s x.r - s^2 ||r||^2`` and the gap bounds the distance to the optimum. A row stops
   when ``gap <= tol * primal`` (relative gap, reported); otherwise the working set restarts
   from the support, the worst violators join it, and step 2 resumes.

Why this method (``benchmarks/bench_solvers.py``, ``results/benchmarks/solvers.json``): on
the section-2 shape (1,010 atoms, about 120 non-zeros per row) it reaches a relative duality
gap of 1e-6 several times faster than scikit-learn's ``sparse_encode`` and than per-row
scikit-learn, celer and skglm loops; the batched FISTA of :mod:`slics.core.sparse_coding`
runs at the machine's matmul peak but needs hundreds of full ``n x m x m`` products. At
dense ``lam`` (0.01, about 370 non-zeros per row, 70 % of ``d``) coordinate descent slows
down (the support blocks of ``G`` are ill-conditioned), and a loose FISTA solution (tolerance
1e-3) followed by this solver from it was once measured fastest there; with the exact support
solves below coordinate descent is usually the faster again, but not on every problem.
``method="auto"`` does not guess which of the two pays: it times both on pilot rows of the call,
the FISTA pilot under the budget of the coordinate-descent one (so that a losing candidate
costs about ``p / n`` of the call), and solves the rest with the faster
(``benchmarks/bench_grid.py`` checks the choice across shapes, lambdas, dictionaries and
dtypes). The choice depends on timing, hence on the machine and its load; the optimum does not
(every row is certified to ``tol``), and a pinned ``method`` gives the same bytes on every run.

Exact by default: a support whose atoms are linearly dependent (more atoms than dimensions,
duplicated or nearly collinear atoms) makes the Gram block singular, where coordinate descent
crawls. Such a support is reduced along its null space (the homotopy step: same residual, L1
norm not larger, an atom drops out), a nearly dependent one is solved on its eigenbasis, and a
row that has not converged after ``_STALL`` sweeps repeats the support solve while atoms drop
out (an active-set inner loop). All on supports small enough for the factorisations to be
cheaper than sweeps (``_CHEAP``), and on every support once a row has taken ``_CRAWL`` sweeps:
near interpolation (a small ``lam``, supports of nearly ``d`` atoms) coordinate descent alone
left rows unconverged at 1,000 sweeps (11 to 13 of 40 random overcomplete problems per seed).
Before ``_CRAWL``, a support solve waits until the sweeps since the last one have cost about as
much time as the solve (``_AMORTISE``): on dense rows (supports of 250 to 360 atoms)
a solve every few sweeps took most of the time. A row keeps its support's Cholesky factor from
solve to solve and from round to round, and updates it where a few atoms joined or left
(``_UPDATE``; :mod:`slics.core._cholesky`, ``s^2`` an atom instead of ``s^3 / 3`` afresh), so
that the solves can come more often. Near the optimum the primal values of two points differ
by rounding only, so a solve's candidate within ``_ROUNDING`` of the current objective is kept
where its duality gap is the lower (before, such rows crawled by coordinate descent from a
point the solve had already improved on). Together these took the median sweeps of a row from
146 to 88 on a coherent 1,000 x 384 dictionary at 0.015 of ``lam_max``, from 200 to 160 on a
clustered one at 0.001, and from 182 to 118 on the demo's section-2 rows at ``lam`` 0.02 (at
0.01 those rows still take about ``_CRAWL`` sweeps). The duality-gap certificate is unchanged.

Rows of ``G`` on demand: a row's solve reads row ``j`` of ``G`` only for atoms ``j`` of its
working sets. From ``LAZY_FROM`` (4,096) atoms on, ``G`` is not formed up front: the rows are
formed as the working sets ask for them, and kept for the call (:mod:`slics.core._gram_rows`).
With 10,000 atoms and sparse codes, a call on a few hundred rows then forms a few per cent of
``G``, whose ``m^2 d`` flops were most of its time (``benchmarks/bench_grid.py``). Where the rows
still to be formed (those asked for, and those that the growth of the requests foresees: dense
codes ask for more rows at every stop) would cost more flops than all of ``G`` in one symmetric
product, all of it is formed at once. Below 4,096 atoms, forming ``G`` takes at most
about 0.1 s on the 2-core machine, less than the stops for rows would cost.

Rows on their own working dictionaries: where ``G`` is formed on demand, a call's first
``_subproblems.PILOT`` (32) rows are solved without any row of ``G``: each row on its working set
``S`` alone (its block ``D_S D_S^T``, ``|S|^2 d`` flops, grown from round to round), with its
correlations over all the atoms from its residual (``q = D r``, one product for the rows of a
round), which certifies it on the whole problem (:mod:`slics.core._subproblems`). Their counted
multiply-adds a row, times the rows still to come, are then weighed against the rows of ``G`` that
those rows would need (the pilot's distinct atoms, grown to all the rows), and the rest of the
call takes the cheaper path; a pilot that alone counts more than all of ``G`` would for the call
stops, and rows of ``G`` take over from its codes. The work is counted, not timed, so the path
and the bytes are the same on every machine. Few rows with different supports need most of ``G`` between them:
on 40 rows over 10,000 random atoms in 768 dimensions with 300-350 non-zeros each, all of it,
where their working sets need 3 % of its flops.

Memory: ``G`` is at most ``m x m`` in the storage dtype (400 MB for a 10,000-word vocabulary in
float32, 800 MB in float64, as scikit-learn's ``sparse_encode``; only the rows formed are
committed); each chunk of rows holds ``D x`` (``chunk x m``); the output is dense ``n x m``.
:func:`lasso_path` keeps one output per ``lam``.

All arithmetic of the per-row solve is float64 (the inputs may be float32: ``G``, ``D x``
and the output are then float32, the optimum is that of the float32-rounded problem).
Rows are processed in chunks, so the memory besides the output is ``O(m^2 + chunk * m)``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..utils.threads import THREADED_FROM, blas_threads, blas_threads_for, single_thread_blas
from ..utils.validation import check_float_dtype, check_int, check_matrix, check_positive, is_dask_array
from ._lasso_kernels import _extrapolate, _support_solve  # noqa: F401 (tests import them from here)
from ._gram_rows import LAZY_FROM, GramRows, load_kernels, solve_rows
from .sparse_coding import _fista_rows, _prepare

__all__ = ["lasso", "lasso_path", "duality_gap"]

_CHUNK_ELEMENTS = 1 << 22   # rows per chunk = this / m (32 MiB of float64 per chunk array)
_PILOT = (16, 256)  # method="auto": rows per candidate in its timed pilot, n // 32 within these bounds
_FISTA_TOL = 1e-3   # FISTA's (relative code change) tolerance for those warm starts
_SCALE_ROWS = 256   # method="auto": rows on which FISTA's cost per row is timed for the bulk (_fista_row_seconds)
_STEADY = 0.1       # method="auto": seconds from which a timing is not moved by the machine's noise (a few ms)


# ----------------------------------------------------------------------------- Python API
_clock = time.perf_counter      # the pilot's timer (a module attribute, so that tests can replace it)
_LOADED = set()                 # dtypes whose compiled kernel this process has loaded
def _working_dtype(X, D, dtype):
    if dtype is not None:
        return check_float_dtype(dtype)
    kinds = [np.asarray(a).dtype for a in (X, D)]
    return np.dtype(np.float32) if all(k == np.float32 for k in kinds) else np.dtype(np.float64)


def _check_inputs(X, D, dtype, init, positive):
    dtype = _working_dtype(X, D, dtype)
    D = np.ascontiguousarray(check_matrix(D, "D", dtype=dtype))
    X = np.ascontiguousarray(check_matrix(X, "X", n_cols=D.shape[1], dtype=dtype))
    n, m = X.shape[0], D.shape[0]
    if init is None:
        W = np.zeros((n, m), dtype)
    else:
        W = np.array(check_matrix(init, "init", n_cols=m, dtype=dtype), dtype=dtype, order="C")
        if W.shape[0] != n:
            raise ValueError(f"init has {W.shape[0]} rows but X has {n}; one code per row is expected.")
        if positive:
            np.maximum(W, 0, out=W)
    return X, D, W, dtype


def _check_gram(gram, D) -> np.ndarray:
    """``gram`` as a C-contiguous (m, m) array in ``D``'s dtype, checked to be ``D @ D.T`` on three rows."""
    m = D.shape[0]
    G = np.ascontiguousarray(check_matrix(gram, "gram", dtype=D.dtype))
    if G.shape != (m, m):
        raise ValueError(f"gram must be D @ D.T, of shape ({m}, {m}) for this D; got shape {G.shape}.")
    rows = np.unique([0, m // 2, m - 1])
    with single_thread_blas():      # three rows: threads would only spin on into the solver's kernel
        expected = D[rows] @ D.T
    scale = max(float(np.max(np.einsum("ij,ij->i", D, D, dtype=np.float64))), np.finfo(np.float64).tiny)
    error = float(np.max(np.abs(G[rows] - expected)))
    if error > 1e-4 * scale:
        raise ValueError(f"gram is not D @ D.T: its rows {rows.tolist()} differ from D's products by up to {error:.3g} "
                         f"(largest squared atom norm {scale:.3g}). Pass the Gram matrix of this D (D @ D.T), "
                         f"or gram=None to compute it here.")
    return G


def _solve(X, D, G, W, lam, positive, tol, max_iter, fista=None, fista_init=False):
    """Solve in place into W, chunk by chunk; returns (relative gaps, sweeps) per row.

    ``G``: the :class:`GramRows` of :func:`_source`. With ``fista`` (the dictionary prepared by
    :func:`slics.core.sparse_coding._prepare`) each chunk first gets a loose batched FISTA solution
    (tolerance ``_FISTA_TOL``) as its warm start, started from zero or (``fista_init``) from the
    current ``W``; the coordinate-descent solver then certifies it.
    """
    n, m = W.shape
    gaps = np.empty(n)
    sweeps = np.empty(n, np.int64)
    chunk = max(1, _CHUNK_ELEMENTS // m)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        if fista is not None:
            W[sl] = _fista_rows(X[sl], lam, W[sl] if fista_init else None, fista, _FISTA_TOL, W.dtype)
        # one BLAS thread: OpenBLAS threads spin after a product, a core lost to the kernel that follows
        with single_thread_blas():
            B = X[sl] @ D.T
            xx = np.einsum("ij,ij->i", X[sl], X[sl], dtype=np.float64)
        gaps[sl], sweeps[sl] = solve_rows(G, X[sl], B, W[sl], xx, float(lam), bool(positive), float(tol), int(max_iter))
    return gaps, sweeps


def _source(D, gram):
    """The :class:`GramRows` the solver reads ``G = D @ D.T`` from, and the seconds of ``G`` where it
    was formed here (None otherwise).

    ``gram`` checked; else, from :data:`LAZY_FROM` atoms on, rows formed as the working sets need
    them (:mod:`slics.core._gram_rows`); else ``G`` formed and timed (:func:`_gram`).
    """
    if gram is not None:
        return GramRows(D, _check_gram(gram, D)), None
    if D.shape[0] >= LAZY_FROM:
        return GramRows(D), None
    G, seconds = _gram(D)
    return GramRows(D, G), seconds


def lasso(X, D, lam, *, positive=False, tol=1e-6, max_iter=1000, init=None, dtype=None,
          return_info=False, method="auto", gram=None):
    """Exact lasso (or non-negative lasso) codes of every row of ``X`` over the atoms of ``D``.

    Minimises ``||x - w D||^2 + lam ||w||_1`` (with ``w >= 0`` if ``positive``) for each row
    ``x``; see the module docstring for the method and the scale.

    Parameters
    ----------
    X : array of shape (n, d)
        Signals, one per row.
    D : array of shape (m, d)
        Dictionary, atoms as rows (need not be unit norm; all-zero atoms get zero codes).
    lam : float
        Positive L1 weight, on the scale above (``lam >= 2 max_j |D_j . x|`` gives ``w = 0``).
    positive : bool, default False
        Constrain the codes to be non-negative.
    tol : float, default 1e-6
        Stop a row when its duality gap is at most ``tol`` times its primal objective. The
        gap bounds the objective's distance to the optimum, so the relative objective gap
        is at most about ``tol``.
    max_iter : int, default 1000
        Maximum coordinate-descent sweeps per row (over its working set).
    init : array of shape (n, m), optional
        Warm start (e.g. the codes at a nearby ``lam``); only the speed depends on it.
    dtype : {None, float32, float64}
        Storage dtype of ``G``, ``D x`` and the output. Default float32 when both ``X`` and
        ``D`` are float32, else float64. The per-row arithmetic is float64 either way.
    return_info : bool, default False
        Also return a dict: ``gap`` (relative duality gap per row), ``n_iter`` (sweeps per
        row), ``converged`` (bool per row, ``gap <= tol``), ``tol``, ``method`` (the one used
        for the bulk of the rows) and ``pilot`` (``method="auto"``: ``rows_per_method``, the
        ``seconds`` each candidate took on its pilot rows, None for a FISTA pilot stopped over
        its budget, ``cd_again_seconds``, None where ``"cd"`` was timed once,
        ``fista_setup_seconds`` and ``fista_bulk_scale``, the factor applied to FISTA's part
        where the pilot alone did not decide, None where it was not measured; None where no
        choice was made), ``gram_rows`` (the rows of
        ``G`` formed or given: ``m`` unless they were formed on demand, see the module docstring)
        and ``subproblem_rows`` (the rows solved on their own working dictionaries, without rows
        of ``G``: the module docstring).
    method : {"auto", "cd", "fista+cd"}, default "auto"
        ``"cd"``: the coordinate-descent solver from ``init`` (or zero). ``"fista+cd"``: warm
        start every chunk with the batched FISTA of :mod:`slics.core.sparse_coding` at a loose
        tolerance, then certify with ``"cd"`` (signed lasso only). ``"auto"`` (measured per
        call): the first ``p`` rows (``n // 32``, within 16 and 256; ``p // 4`` where those
        alone took 0.1 s or more, ``rows_per_method``) are solved with ``"cd"``, the next ``p``
        with ``"fista+cd"`` (FISTA started from ``init`` when given), each timed, and the other
        rows with the faster (FISTA's set-up, which cannot be stopped, starts only if its
        modelled time is under ``"cd"``'s and, where that was under 0.1 s, ``"cd"`` timed again on
        ``p`` more rows, ``cd_again_seconds``, also says it may pay); the FISTA pilot stops as soon as it has
        taken longer than the ``"cd"`` pilot (it cannot win then), so a pilot costs at most
        about ``p / n`` of the call besides the set-up. Where ``"fista+cd"`` lost on its pilot
        but its certification alone did not, FISTA's part is scaled by its cost per row on
        rows of the bulk over that on the pilot's few rows (``fista_bulk_scale``: small
        products cost more per row). Every row is certified to ``tol`` whichever method solved
        it, so the optimum does not depend on the choice (the objectives agree to the certified
        relative gap), but the bytes may: the choice depends on timing, so ``"auto"`` can pick
        differently on another machine, under another load or between two runs. Pass ``"cd"``
        or ``"fista+cd"`` for byte-reproducible output (the pipeline pins ``"cd"``). ``"auto"``
        is ``"cd"`` with ``positive=True`` or fewer than ``8 p`` rows.
    gram : array of shape (m, m), optional
        ``D @ D.T``, computed once for several calls with the same dictionary (as
        scikit-learn's ``sparse_encode(gram=...)``); converted to the storage dtype, and three of
        its rows are checked against ``D``. Default: computed here. The codes are the same as
        without it when it is ``D @ D.T`` of ``D`` in the storage dtype.

    Returns
    -------
    W : ndarray of shape (n, m)
        Codes, ``X ≈ W @ D``.
    info : dict
        Only with ``return_info=True``.

    Examples
    --------
    >>> import numpy as np
    >>> lasso(np.array([[3.0, 0.0]]), np.eye(2), 2.0)
    array([[2., 0.]])
    """
    lam = check_positive(lam, "lam (lambda)")
    tol = check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if method not in ("auto", "cd", "fista+cd"):
        raise ValueError(f"method must be 'auto', 'cd' or 'fista+cd', got {method!r}.")
    if method == "fista+cd" and positive:
        raise ValueError("method='fista+cd' solves the signed lasso only; use 'cd' with positive=True.")
    if is_dask_array(X):      # a lazy (n, m) array, block by block (slics.distributed)
        if init is not None or return_info or gram is not None:
            raise ValueError("lasso on a dask array takes neither init, return_info nor gram; compute X first to "
                             "use them.")
        from ..distributed.coding import lasso_rows

        return lasso_rows(X, D, lam, dtype=dtype, positive=positive, tol=tol, max_iter=max_iter, method=method)
    X, D, W, dtype = _check_inputs(X, D, dtype, init, positive)
    G, gram_seconds = _source(D, gram)
    G.to_come = len(X)
    if method == "auto":
        gaps, sweeps, used, pilot = _auto(X, D, G, W, lam, positive, tol, max_iter, init is not None,
                                          gram_seconds)
    else:
        used, pilot = method, None
        prepared = _prepare(D, dtype, G.whole) if method == "fista+cd" else None
        gaps, sweeps = _solve(X, D, G, W, lam, positive, tol, max_iter, fista=prepared)
    return _finish(W, gaps, sweeps, tol, lam, return_info, used, pilot, G.filled, G.sub_rows)


def _gram(D, rows=None):
    """``G = D @ D.T`` (only its first ``rows`` rows if given) and the seconds the whole ``G`` would
    take on every BLAS thread (the scale of :func:`_setup_seconds`), from the time of these rows. A
    small ``G`` is formed on one thread (see ``blas_threads_for``), and its time divided by the
    thread count."""
    m, d = D.shape
    t0 = _clock()
    with blas_threads_for(m * m * d):
        G = D @ D.T if rows is None else D[:rows] @ D.T
    seconds = (_clock() - t0) * (1.0 if rows is None else m / rows)
    return G, seconds if m * m * d >= THREADED_FROM else seconds / blas_threads()


def _pilot_rows(n):
    """Rows per candidate in ``method="auto"``'s pilot (0: too few rows for a pilot to pay)."""
    lo, hi = _PILOT
    p = min(hi, max(lo, n // 32))
    return p if n >= 8 * p else 0


def _setup_seconds(D, gram_seconds):
    """The FISTA set-up's time (:func:`slics.core.sparse_coding._prepare`), from the time of ``G``.

    With ``k = min(d, m)`` and ``r = k^2 / (m d)``: ``gram_seconds * k / m * precision * (2.5 + 4 r)``
    (``precision`` 2.6 when ``G`` is float32: the set-up is float64 work), times the BLAS thread
    count where its product (``m d k`` multiply-adds) is under ``THREADED_FROM`` and so runs on
    one thread while ``gram_seconds`` counts every thread. Measured on 21 dictionaries (m 300 to
    10,000, d 64 to 1,000, both dtypes), the set-up took 0.25-1.1 of this; the model before (the
    thread count left out, ``precision + 20 r``) gave 2.4 times too little on small dictionaries
    (1,500 x 128 float32), and let a set-up of 7.5 ms start after a ``"cd"`` pilot of 4.3 ms.
    """
    m, d = D.shape
    k = min(m, d)
    precision = 2.6 if D.dtype == np.float32 else 1.0
    threads = 1 if m * d * k >= THREADED_FROM else blas_threads()
    return gram_seconds * (k / m) * precision * (2.5 + 4.0 * k * k / (m * d)) * threads


def _auto(X, D, G, W, lam, positive, tol, max_iter, warm, gram_seconds):
    """``method="auto"``: time each candidate on its own pilot rows, solve the rest with the faster.

    ``"cd"`` is timed first, on rows ``[0, q)`` (``T`` seconds): ``q = p // 4`` rows where those
    alone took at least ``_STEADY`` seconds, else ``q = p`` (the next rows join the first, timed
    together). On slow rows a pilot row of the slower method is time lost: on 160 dense coherent
    rows (d = 384, 1,000 atoms, 0.001 of ``lam_max``, float64), ``"cd"`` took 0.14 s a row and
    ``"fista+cd"`` 0.034 s, and the 32 rows that ``"cd"`` solved in the pilot (16 timed, then 16
    timed again) took ``auto`` to 1.7 times ``"fista+cd"``'s time; with 4 rows and no second
    timing, 1.17 times (250 such rows: 1.5 before, 1.11 now). FISTA's set-up (the Lipschitz constant and the gradient
    product) cannot be stopped, so it starts only if its modelled time (:func:`_setup_seconds`) is
    at most ``T`` and, where ``T`` is under ``_STEADY``, at most the time of ``"cd"`` timed again
    on the next ``q`` rows (one short timing can be several milliseconds long on a shared machine;
    the second only vetoes, ``T`` stays the budget). The next ``q`` rows go to ``"fista+cd"``
    (FISTA from the current ``W`` when ``warm``) under a budget: if the FISTA part alone (after its
    set-up) runs past ``T``, ``"fista+cd"`` is slower than ``"cd"`` whatever the certification
    costs, so FISTA stops there (or is not started) and those rows are solved by ``"cd"`` from
    their start, in one call with the rest (the rows then equal ``method="cd"``'s; the time lost
    is at most ``T``, about ``p / n`` of the call, and the set-up). Otherwise the rows after the
    pilots go to the method that took less time on its ``q`` rows (the set-up, paid once, is left
    out of that comparison). Where FISTA's pilot lost but its certification alone took less than
    ``T``, FISTA's part is first scaled by :func:`_scale` (its cost per row and iteration on up to
    ``_SCALE_ROWS`` rows after the pilots, at the bulk's BLAS threads, over that on its pilot):
    the bulk's products have thousands of rows, the pilot's ``q``. Measured on coherent
    1,000-atom dictionaries at 0.004 of ``lam_max`` (float32, 500 rows): FISTA took 2.2 times
    as long per row on its 16 pilot rows, and ``"auto"`` chose ``"cd"``, 1.4-1.6 times slower
    than ``"fista+cd"`` at d 512 and 768; with the scale it chose ``"fista+cd"``, 1.06-1.08
    times its time. Every pilot row is kept (each is certified to ``tol``). Returns the gaps,
    sweeps, the method used for the bulk and the pilot's record (None when there was no choice:
    the non-negative lasso, where FISTA does not apply, or fewer than ``8 p`` rows).
    """
    n = X.shape[0]
    p = 0 if positive else _pilot_rows(n)
    if p == 0:
        gaps, sweeps = _solve(X, D, G, W, lam, positive, tol, max_iter)
        return gaps, sweeps, "cd", None
    if W.dtype not in _LOADED:        # load the compiled kernels before timing (once: each call wakes the threads)
        load_kernels(W.dtype)
        _LOADED.add(W.dtype)
    q = p // 4
    t0 = _clock()
    parts = [_solve(X[:q], D, G, W[:q], lam, positive, tol, max_iter)]
    budget = _clock() - t0
    if budget < _STEADY:
        parts.append(_solve(X[q:p], D, G, W[q:p], lam, positive, tol, max_iter))
        budget = _clock() - t0
        q = p
    done, again = q, None
    if gram_seconds is None:      # G not formed here: the set-up's model is scaled from the time of a slice of it
        gram_seconds = _gram(D, rows=min(D.shape[0], 128))[1]
    setup_estimate = _setup_seconds(D, gram_seconds)
    if setup_estimate <= budget < _STEADY:
        # the set-up cannot be stopped: before paying it, time "cd" again on the next q rows (kept,
        # as the first). On a shared machine one short call can take several milliseconds more (a
        # thread waiting for a core), enough to let a set-up start that costs more than every row
        # of a small call; the second timing can only veto the set-up, the budget stays the first.
        t0 = _clock()
        parts.append(_solve(X[q:2 * q], D, G, W[q:2 * q], lam, positive, tol, max_iter))
        again = _clock() - t0
        done = 2 * q
    seconds = {"cd": budget}
    pilot = slice(done, done + q)
    start = W[pilot].copy()
    t0 = _clock()
    prepared = Wf = scale = None
    setup = 0.0
    if setup_estimate <= budget and (again is None or setup_estimate <= again):
        m, d = D.shape
        with blas_threads_for(m * d * min(m, d)):
            prepared = _prepare(D, W.dtype, G.whole)
        setup = _clock() - t0
        deadline = _clock() + budget
        iterations = [0]

        def stop():
            iterations[0] += 1
            return _clock() > deadline

        # the pilot's products (q rows) by the rule of blas_threads_for: OpenBLAS's threads, woken for
        # products this small, spin on into the kernel that follows and took 45 ms from the next
        # 500 rows of "cd" (0.80 s against 0.75 s), a fixed cost that made "auto" 6 % slower there
        with blas_threads_for(q * m * d):
            Wf = _fista_rows(X[pilot], lam, start if warm else None, prepared, _FISTA_TOL, W.dtype, stop=stop)
    rest = slice(done, None)
    if Wf is None:                                # not run or stopped: over the budget
        W[pilot] = start
        seconds["fista+cd"] = None
        used = "cd"
    else:
        W[pilot] = Wf
        fista_seconds = _clock() - t0 - setup
        t1 = _clock()
        parts.append(_solve(X[pilot], D, G, W[pilot], lam, positive, tol, max_iter))
        certify = _clock() - t1
        seconds["fista+cd"] = estimate = fista_seconds + certify
        if certify < budget <= estimate:
            # lost on its pilot, where FISTA's part may be slow for its small products alone: scaled
            # by FISTA's cost per row and iteration on rows after the pilots over that on its pilot
            sample = X[done + q:done + q + min(_SCALE_ROWS, n - done - q, max(1, _CHUNK_ELEMENTS // m))]
            scale = _scale(_fista_row_seconds(sample, lam, prepared, W.dtype),
                           fista_seconds / (q * max(1, iterations[0])))
            estimate = fista_seconds * scale + certify
        used = "fista+cd" if estimate < budget else "cd"
        rest = slice(done + q, None)
    # the pilot rows of a FISTA that did not run join the rest: one call less (on a short call, each
    # hand-off of the cores between the BLAS threads and the solver's can cost milliseconds)
    parts.append(_solve(X[rest], D, G, W[rest], lam, positive, tol, max_iter,
                        fista=prepared if used == "fista+cd" else None, fista_init=warm))
    gaps = np.concatenate([g for g, _ in parts])
    sweeps = np.concatenate([sw for _, sw in parts])
    return gaps, sweeps, used, {"rows_per_method": q, "seconds": seconds, "cd_again_seconds": again,
                                "fista_setup_seconds": setup, "fista_bulk_scale": scale}


def _fista_row_seconds(Z, lam, prepared, dtype, iterations=3):
    """FISTA's seconds per row and iteration on the rows ``Z`` (timed over ``iterations`` iterations,
    at the BLAS threads the bulk's FISTA gets); None if ``Z`` converged first.

    ``method="auto"``'s FISTA pilot multiplies ``p`` rows (16 for calls of up to 512 rows), the bulk
    thousands: on a coherent 1,000 x 512 dictionary at 0.004 of ``lam_max`` (float32, 500 rows),
    FISTA took 8.7 ms a row on its 16 pilot rows and 3.9 ms a row on all 500, so that ``"fista+cd"``,
    slower than ``"cd"`` on the pilot (0.226 s against 0.183 s), was 1.6 times faster on the call.
    """
    calls, marks = [0], []

    def stop():
        calls[0] += 1
        if calls[0] in (1, iterations + 1):
            marks.append(_clock())
        return calls[0] > iterations

    _fista_rows(Z, lam, None, prepared, _FISTA_TOL, dtype, stop=stop)
    return (marks[1] - marks[0]) / (iterations * Z.shape[0]) if len(marks) == 2 else None


def _scale(bulk, pilot) -> float:
    """The factor from FISTA's seconds on the pilot's rows to those on as many rows of the bulk: the
    ratio of their costs per row and iteration (:func:`_fista_row_seconds`), at most 1 (the bulk's
    larger products are not slower per row); 1 where either is unknown."""
    if bulk is None or not pilot > 0:
        return 1.0
    return min(1.0, bulk / pilot)


def _finish(W, gaps, sweeps, tol, lam, return_info, method="cd", pilot=None, gram_rows=None, subproblem_rows=0):
    converged = gaps <= tol
    if not converged.all():
        warnings.warn(f"lasso (lam={lam:g}): {int((~converged).sum())} of {converged.size} rows did not "
                      f"reach the relative duality gap tol={tol:g} (largest {gaps.max():.3g}); "
                      f"raise max_iter.", ConvergenceWarning, stacklevel=3)
    if return_info:
        return W, {"gap": gaps, "n_iter": sweeps, "converged": converged, "tol": tol, "method": method,
                   "pilot": pilot, "gram_rows": gram_rows, "subproblem_rows": subproblem_rows}
    return W


def lasso_path(X, D, lams, *, positive=False, tol=1e-6, max_iter=1000, dtype=None,
               return_info=False):
    """Exact lasso codes for several ``lam``, warm-started from the largest ``lam`` down.

    Each ``lam`` starts from the codes of the previous (larger) one and makes its own measured
    choice, as ``lasso(method="auto")``: a timed pilot of ``"cd"`` and of ``"fista+cd"`` (FISTA
    started from the previous codes), then the faster for the other rows; each ``info`` records
    the pilot. Pin nothing here: for byte-reproducible output call :func:`lasso` per ``lam``
    with a fixed ``method`` and ``init``.

    Parameters
    ----------
    X, D, positive, tol, max_iter, dtype
        As in :func:`lasso`.
    lams : sequence of float
        Positive L1 weights, in any order.

    Returns
    -------
    Ws : list of ndarray of shape (n, m)
        ``Ws[i]`` are the codes at ``lams[i]`` (the caller's order).
    infos : list of dict
        Only with ``return_info=True``; as in :func:`lasso`.
    """
    lams = np.atleast_1d(np.asarray(lams, dtype=object))
    if lams.ndim != 1:
        raise ValueError(f"lams must be a number or a 1-D sequence of numbers, got shape {lams.shape}.")
    lams = [check_positive(v, "lams (lambda)") for v in lams]      # each checked before it is converted
    if not lams:
        raise ValueError("lams is empty; pass at least one lambda.")
    X, D, W, dtype = _check_inputs(X, D, dtype, None, positive)
    tol = check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    G, gram_seconds = _source(D, None)
    out, infos = [None] * len(lams), [None] * len(lams)
    for i in np.argsort(lams)[::-1]:
        # from the previous (larger) lam's codes: each lam measures its own choice
        G.to_come, sub_rows = len(X), G.sub_rows
        if not G.filled:
            G.plan = None       # no row of G formed yet: this lam's first rows choose its path again
        gaps, sweeps, used, pilot = _auto(X, D, G, W, lams[i], positive, tol, max_iter, True, gram_seconds)
        out[i], infos[i] = _finish(W.copy(), gaps, sweeps, tol, lams[i], True, used, pilot, G.filled,
                                   G.sub_rows - sub_rows)
    return (out, infos) if return_info else out


def duality_gap(X, D, W, lam, *, positive=False) -> np.ndarray:
    """Relative duality gap of codes ``W`` per row, computed directly in float64.

    Uses the dual point ``theta = s r`` with ``r = x - w D`` and ``s = min(1, lam / ||2 D r||_inf)``
    (the positive part of ``2 D r`` when ``positive``); returns ``(primal - dual) / primal``
    (0 where the primal is 0). An independent check of :func:`lasso`'s certificate.
    """
    D = check_matrix(D, "D")
    X = check_matrix(X, "X", n_cols=D.shape[1])
    W = check_matrix(W, "W", n_cols=D.shape[0])
    R = X - W @ D
    C = 2.0 * R @ D.T
    cmax = (np.maximum(C, 0) if positive else np.abs(C)).max(axis=1)
    s = np.minimum(1.0, lam / np.maximum(cmax, np.finfo(float).tiny))
    rr = np.einsum("ij,ij->i", R, R)
    primal = rr + lam * np.abs(W).sum(axis=1)
    dual = 2 * s * np.einsum("ij,ij->i", X, R) - s * s * rr
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(primal > 0, (primal - dual) / np.where(primal > 0, primal, 1.0), 0.0)
