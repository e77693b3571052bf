"""The Gram matrix of :mod:`slics.core.lasso`, whole or formed row by row as the working sets need it.

The per-row solver reads row ``j`` of ``G = D D^T`` only for atoms ``j`` of its working sets (the
support, and the violators each round adds). For a dictionary of many atoms, a call on few rows
or with sparse codes needs few rows of ``G``, and forming all of it (``m^2 d`` flops: about 1e11,
a second or more, for 10,000 atoms in 768 dimensions) would be most of the call's time. From
:data:`LAZY_FROM` atoms on, :class:`GramRows` forms rows on demand: a row's round that needs
absent rows stops before its sweeps and reports them (:func:`slics.core._lasso_kernels._solve_row`),
the rows that all stopped rows need are formed in one product, and the rows resume where they
stopped. The rows formed are kept for the rest of the call (all its chunks, and every ``lam`` of
:func:`slics.core.lasso.lasso_path`).

All of ``G`` is formed at once (one symmetric product, ``m^2 d / 2`` flops: the cost of
:data:`WHOLE_COST` ``* m`` rows formed apart) when the rows still to be formed one batch at a time
would cost more: the rows a batch asks for, plus those that the growth of the batches foresees
(:func:`_foreseen`), at most the rows still absent. The rows already formed do not count: they are
paid for either way. So forming rows on demand costs at most about twice the whole product's
flops, on problems that end up needing all of ``G`` with batches too small to foresee it. Before
the first stop, the first rounds of a sample of rows decide (:data:`WHOLE_FROM`).

Measured on 40 rows over 10,000 atoms (``benchmarks/bench_grid.py``'s dictionaries, 0.06 and
0.015 of ``lam_max``): the rule before, all of ``G`` once a quarter of its rows were formed or
foreseen over four batches, formed all of ``G`` on rows that needed 26-38 % of it (coherent codes
at 0.06; low-rank and clustered dictionaries at 0.015, with 12-31 non-zeros a row) and took
1.3x to 4x as long there; this rule takes up to 18 % longer than that one on the densest codes (230
to 540 non-zeros a row, all of ``G`` needed), which switch a batch later. On other shapes (6,000 to
12,000 atoms, 256 to 1,024 dimensions, 60 to 200 rows): 0.44-0.78 of the time where 21-36 % of
``G`` was needed, and up to 1.29x on dense codes in 256 dimensions, where the rows formed before
the switch are a larger share of a short call.
"""

from __future__ import annotations

import numpy as np

from ..utils.threads import blas_threads_for, single_thread_blas
from . import _subproblems
from ._lasso_kernels import _GROW, _solve_chunk

LAZY_FROM = 4096   # atoms from which the rows of G are formed on demand (module docstring)
WHOLE_FROM = 0.25  # share of G's rows that a chunk's first rounds may ask for before all of G is formed at once
WHOLE_COST = 0.5   # all of G in one symmetric product costs the flops of this share of its rows formed apart
# rows of G in float32 count this share of float64's (plan): their products run at twice the rate, the
# sweeps that read them at the same rate, and the two weigh about alike on rows that need much of G
FLOAT32_COST = 0.75
_SAMPLE = 128      # fresh rows of a chunk whose first round's atoms are formed before the kernel starts
_AHEAD = 2         # batches of requested rows foreseen at the last growth ratio (solve_rows)


class GramRows:
    """``G = D @ D.T`` by rows: ``buffer[slot[j]]`` is row ``j`` where ``slot[j] >= 0``.

    With ``G`` every row is present. Without, ``buffer`` is allocated at ``m x m`` but not
    written: the operating system commits only the pages of the rows formed. Rows formed one batch
    at a time are in the order they were asked for, even once every row is present.
    """

    def __init__(self, D: np.ndarray, G: np.ndarray | None = None):
        self.D = D
        m = D.shape[0]
        self.to_come = 0  # rows of the call that later chunks will solve (set by the caller; solve_rows)
        if G is None:
            self.buffer = np.empty((m, m), D.dtype)
            self.slot = np.full(m, -1, np.int64)
            self.filled, self.ordered = 0, False
        else:
            self.buffer, self.slot, self.filled, self.ordered = G, np.arange(m, dtype=np.int64), m, True
        self.plan = None        # "subproblems" or "rows", once a pilot decided (solve_rows)
        self.sub_rows = 0       # rows solved on their own working dictionaries (_subproblems)
        self._D64 = None

    @property
    def D64(self) -> np.ndarray:
        """``D`` in float64 (itself where it is float64), for the residuals of :mod:`._subproblems`."""
        if self._D64 is None:
            self._D64 = self.D if self.D.dtype == np.float64 else self.D.astype(np.float64)
        return self._D64

    @property
    def whole(self) -> np.ndarray | None:
        """``G`` (row ``j`` at ``j``) when passed or formed at once, else None."""
        return self.buffer if self.ordered else None

    def form_whole(self) -> None:
        """All of ``G`` in one symmetric product (half the flops of forming its rows; the rows
        already formed, at most :data:`WHOLE_FROM` of them, are formed again), written over the
        buffer: one ``m x m`` array at a time, not two (0.8 GB less for 10,000 atoms in float64)."""
        m, d = self.D.shape
        with blas_threads_for(m * m * d):
            np.matmul(self.D, self.D.T, out=self.buffer)  # numpy's symmetric product (syrk), as D @ D.T
        self.slot, self.filled, self.ordered = np.arange(m, dtype=np.int64), m, True

    def ensure(self, atoms: np.ndarray, foreseen: float = 0.0) -> int:
        """Form the rows of ``atoms`` not yet present (one product), or every absent row where
        forming them and the ``foreseen`` rows still to be asked for, at most the absent ones, would
        cost more than all of ``G`` at once (module docstring). Returns how many rows were asked for."""
        new = np.unique(atoms[self.slot[atoms] < 0])
        if not new.size:
            return 0
        m, d = self.D.shape
        if min(new.size + foreseen, m - self.filled) > WHOLE_COST * m:
            self.form_whole()
            return new.size
        end = self.filled + new.size
        rows = self.buffer[self.filled:end]
        with blas_threads_for(new.size * m * d):
            _product(self.D[new], self.D.T, rows)
        # G exactly symmetric among the rows present, as the symmetric product makes it: a general
        # product may round G[i, j] and G[j, i] differently (seen with OpenBLAS's SSE3 kernels in
        # float32), and the support solves factor blocks of G that must be symmetric
        present = np.flatnonzero(self.slot >= 0)
        if present.size:
            rows[:, present] = self.buffer[np.ix_(self.slot[present], new)].T
        block = rows[:, new]
        rows[:, new] = np.triu(block) + np.triu(block, 1).T
        self.slot[new] = np.arange(self.filled, end)
        self.filled = end
        return new.size


def _product(A, B, out):
    """``out = A @ B`` (a module function, so that tests can round it as another BLAS would)."""
    np.matmul(A, B, out=out)


def solve_rows(G: GramRows, X, B, W, xx, lam, positive, tol, max_iter):
    """Solve the rows of one chunk in place into ``W`` (``B = X D^T``, ``xx`` the rows' squared norms);
    returns their (relative gaps, sweeps).

    Where ``G`` is formed on demand and no row of it is formed yet, the call's path is chosen first:
    a pilot of the chunk's first rows is solved on their own working dictionaries
    (:mod:`._subproblems`), and the rest of the call goes that way or by rows of ``G``
    (:func:`_solve_by_rows`), as :func:`_plan` counts. A pilot whose rows count more than all of ``G``
    would for the call's rows (:func:`_whole_cost` a row) stops, and the chunk's rows, the pilot's
    from where they stopped, go by rows of ``G``."""
    n = W.shape[0]
    gaps, sweeps = np.empty(n), np.zeros(n, np.int64)
    done = 0
    if G.plan is None and G.whole is None and G.filled == 0:
        G.plan, done = "rows", min(n, _subproblems.PILOT)
        if done:
            rows = n + max(G.to_come - n, 0)           # of the call, this chunk's included
            gaps[:done], sweeps[:done], macs, sets, complete = _subproblems.solve(
                G.D64, X[:done], W[:done], xx[:done], lam, positive, tol, max_iter,
                budget=_whole_cost(G.D) / rows)
            G.sub_rows += done
            if complete:
                G.plan = _plan(sets, macs, rows - done, G.D)
            else:       # the pilot's rows alone would cost all of G: every row of the chunk by rows of G
                G.sub_rows -= done
                done = 0
    if G.plan == "subproblems" and done < n:
        gaps[done:], sweeps[done:], _, _, _ = _subproblems.solve(
            G.D64, X[done:], W[done:], xx[done:], lam, positive, tol, max_iter)
        G.sub_rows += n - done
        G.to_come = max(G.to_come - n, 0)
    elif done < n:
        G.to_come = max(G.to_come - done, 0)
        pilot = sweeps[done:].copy()
        gaps[done:], sweeps[done:] = _solve_by_rows(G, B[done:], W[done:], xx[done:], lam, positive, tol, max_iter)
        sweeps[done:] += pilot
    else:
        G.to_come = max(G.to_come - n, 0)
    return gaps, sweeps


def _whole_cost(D) -> float:
    """All of ``G`` in one symmetric product (:data:`WHOLE_COST` of its rows formed apart), in float64
    multiply-adds (float32: :data:`FLOAT32_COST` of them)."""
    m, d = D.shape
    return WHOLE_COST * m * m * d * (FLOAT32_COST if D.dtype == np.float32 else 1.0)


def _plan(sets, macs, rest, D) -> str:
    """``"subproblems"`` where the ``rest`` rows still to come would cost less on their own working
    dictionaries (``macs`` a row, as the pilot's rows counted them) than by rows of ``G``: the distinct
    atoms of the pilot's last working sets (``sets``), extrapolated to all the rows by their growth
    with the rows (:func:`_heaps`), each an ``m d`` row, at most all of ``G`` (:func:`_whole_cost`), at
    :data:`FLOAT32_COST` in float32 (the working dictionaries are float64); else ``"rows"``."""
    m, d = D.shape
    p = len(sets)
    union = np.unique(np.concatenate(sets)).size
    half = np.unique(np.concatenate(sets[::2])).size
    needed = _heaps(union, half, p, (p + 1) // 2, p + rest)
    gram = min(needed * m * d * (FLOAT32_COST if D.dtype == np.float32 else 1.0), _whole_cost(D))
    return "subproblems" if macs / max(p, 1) * rest < gram else "rows"


def _heaps(u, u_half, s, s_half, n_rows) -> float:
    """Distinct atoms of ``n_rows`` rows, from ``u`` among ``s`` rows and ``u_half`` among ``s_half`` of
    them: Heaps' law, ``u(n) = u(s) (n / s)^a``, its exponent ``0 <= a <= 1`` from the two counts."""
    if s < 2 or not u:
        return u * n_rows / max(s, 1)
    a = float(np.clip(np.log(u / max(u_half, 1)) / np.log(s / s_half), 0.0, 1.0))
    return u * (n_rows / s) ** a


def _solve_by_rows(G: GramRows, B, W, xx, lam, positive, tol, max_iter):
    """Solve the rows in place into ``W``, forming the rows of ``G`` they need between rounds; returns
    their (relative gaps, sweeps).

    The first-round estimate counts the rows of the call still to come (``G.to_come``, less this
    chunk's): ``G`` is kept for them, and a pilot of 16 rows that formed rows one batch at a time
    for itself formed them again in all of ``G`` for the rows after it (seen on 200 rows over 8,000
    atoms: 3,823 rows formed apart, then all of ``G``, twice the time of forming ``G`` first)."""
    n, m = W.shape
    G.to_come = max(G.to_come - n, 0)
    started = (W != 0).any(axis=1)
    G.ensure(np.flatnonzero(W[started].any(axis=0)))
    fresh = np.flatnonzero(~started)
    last = 0              # rows asked for by the last batch (first, the sample's first rounds)
    if G.whole is None and fresh.size:
        # the first-round atoms of up to _SAMPLE fresh rows, spread over the chunk, are formed before
        # the kernel starts, or all of G at once if those of every fresh row, and of the rows still to
        # come, would pass WHOLE_FROM
        sample = fresh[np.linspace(0, fresh.size - 1, min(fresh.size, _SAMPLE)).astype(np.int64)]
        atoms, expected = _first_round(B[sample], lam, positive, fresh.size + G.to_come)
        if expected > WHOLE_FROM * m:
            G.form_whole()
        else:
            last = G.ensure(atoms)
    gaps = np.empty(n)
    state = np.zeros((n, 3), np.int64)
    n_need = np.zeros(n, np.int64)
    need = np.empty((n, m if G.whole is None else 1), np.int64)  # a whole G never stops a row
    active = np.arange(n)
    while active.size:
        with single_thread_blas():    # the kernel's rows call LAPACK from every core at once
            _solve_chunk(G.buffer, G.slot, B, W, active, xx, lam, positive, tol, max_iter, gaps, state, need,
                         n_need, G.D.shape[1])
        active = active[n_need[active] > 0]
        if active.size:
            atoms = np.unique(np.concatenate([need[r, :n_need[r]] for r in active]))
            atoms = atoms[G.slot[atoms] < 0]
            last = G.ensure(atoms, foreseen=_foreseen(atoms.size, last))
    return gaps, state[:, 0].copy()


def _foreseen(asked: int, last: int) -> float:
    """Rows the next :data:`_AHEAD` batches would ask for if each grew by ``asked / last``, the growth
    of this batch over the last, when this batch asks for at least as many rows as the last (else
    none, and none without a last batch). Codes that grow dense ask for more rows every round and
    end up needing all of ``G``: this switches to it a batch or two before a batch alone would ask
    for more than :data:`WHOLE_COST` of it. Growth is a weak forecast: batches of coherent codes
    grew by 1.5x and then shrank (596, 367, 352, 522, 521, 413, 27, 8, 1 rows: over four batches,
    the growth to 522 foresaw 6,149 more rows, and 970 came), hence only two batches ahead.
    Shrinking batches foresee nothing: their ratio says little about their tail (622, 525, 372,
    245, 184 rows: the ratio of the second to the first foresaw 1,399 more, and 815 came)."""
    if last <= 0 or asked < last:
        return 0.0
    ratio = asked / last
    return asked * sum(ratio ** i for i in range(1, _AHEAD + 1))


def _first_round(B, lam, positive, n_rows) -> tuple[np.ndarray, float]:
    """The atoms that the rows of ``B``, starting from zero, add in their first round (the worst
    ``_GROW`` violators of each: ``q = b``), and how many distinct atoms ``n_rows`` such rows would
    add: the count of the rows of ``B`` and of half of them give the exponent of its growth with the
    rows (Heaps' law, ``u(n) = u(s) (n / s)^a``, ``0 <= a <= 1``)."""
    V = B if positive else np.abs(B)
    k = min(_GROW, V.shape[1])
    top = np.argpartition(V, V.shape[1] - k, axis=1)[:, -k:]
    ok = np.take_along_axis(V, top, axis=1) > 0.5 * lam
    atoms = np.unique(top[ok])
    half = np.unique(top[::2][ok[::2]]).size
    return atoms, _heaps(atoms.size, half, len(B), len(top[::2]), n_rows)


def load_kernels(dtype) -> None:
    """Load (or compile) the kernel for ``dtype`` on empty inputs."""
    dtype = np.dtype(dtype)
    none = np.empty(0, np.int64)
    _solve_chunk(np.empty((0, 0), dtype), none, np.empty((0, 0), dtype), np.empty((0, 0), dtype), none,
                 np.empty(0), 1.0, False, 1.0, 1, np.empty(0), np.empty((0, 3), np.int64), np.empty((0, 1), np.int64),
                 none.copy(), 1)
