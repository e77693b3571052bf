"""Benchmark grid (issue #19): ``slics.lasso`` against scikit-learn's ``sparse_encode`` across shapes.

Every cell is one problem: ``d`` features, ``m`` atoms, a lambda (a fraction of the median of the
rows' ``lambda_max``, so that the codes run from a few to a few hundred non-zeros per row; the
mean non-zeros are recorded), signed or non-negative, a coherent or an incoherent dictionary,
float32 or float64. In each cell, on the same rows and in the same process:

- ``slics.lasso`` with ``method="auto"`` and with each forced method (``"cd"``; ``"fista+cd"``
  for the signed lasso), all at ``tol=1e-6``. The forced ``"fista+cd"`` is stopped once its FISTA
  part alone has taken ``--censor`` (3) times the faster of ``auto`` and ``"cd"`` (on coherent
  dictionaries FISTA can run its 5,000 iterations: 77 s where ``"cd"`` took 2.3 s); it cannot be
  the fastest own method then, and the cell records ``stopped_after``;
- ``sparse_encode(algorithm="lasso_cd", n_jobs=2)`` at its defaults and ``algorithm="lasso_lars"``
  (the strongest peer at its best settings: whichever is faster in the cell), ``alpha = lam / 2``
  (the same objective). ``lasso``'s two methods and the peers take turns in ``--calls`` rounds,
  forward and backward (:func:`alternating`), and each keeps its fastest call;
- the relative objective gap of each (summed row objectives, float64) against the best row by row
  over all of them, the ratio of ``auto``'s time to the faster forced method, and the speed-up of
  ``auto`` over ``sparse_encode`` and over the best peer. Calls under half a second are repeated
  until they have taken half a second (at most 25 times) and the fastest is kept. The ratio is the
  median over ``--rounds`` (5) rounds in which ``auto`` and that forced method take turns: separate
  measurements of the same call differ by up to 30 % on the shared 2-core machine (seen in the
  non-negative cells, where ``auto`` runs ``"cd"`` itself).

Dictionaries: ``coherent``, the CLIP-like generator of ``bench_ista.py`` (power-law spectrum and a
shared offset, then the report's alignment); ``incoherent``, Gaussian unit atoms; ``--seed`` draws
other problems (the project's own data is never used here). Timings are noisy on a shared
machine: ratios within a cell are the figures to read.

Usage::

    python benchmarks/bench_grid.py                       # the full grid, 192 cells of 500 rows
    python benchmarks/bench_grid.py --rows 200            # fewer rows per cell (auto's pilot is then
                                                          # up to about 8 % of a call: read ratios with care)
    python benchmarks/bench_grid.py --m 1000              # the 96 cells of 1,000 atoms only
    python benchmarks/bench_grid.py --quick               # a tiny grid (smoke test)
    python benchmarks/bench_grid.py --m 10000 --rows 40 --out results/benchmarks/grid_10k.json --resume
                                                          # go on with a stopped grid (its cells kept)
    python benchmarks/bench_grid.py --m 1000 --d 384 768 --dicts lowrank clustered --calls 2 \
        --fractions 0.5 0.2 0.06 0.015 0.004 0.001 --out results/benchmarks/grid_other.json
                                                          # dictionaries of other origins, down to
                                                          # the dense codes of small lambdas

Time: every ``sparse_encode`` call at 10,000 atoms forms a 10,000 x 10,000 Gram matrix (about
1e11 flops at d = 768; ``lasso`` forms only the rows its working sets need, or all of it when
they would be many), and on dense rows ``sparse_encode`` takes up to 1.5 s a row there: ``make
benchmarks`` runs the 1,000-atom half at 500 rows per cell (``grid.json``) and the 10,000-atom
half at 40 (``--m 10000 --rows 40 --calls 3 --no-lars --out results/benchmarks/grid_10k.json``).
At 40 rows there is no pilot (``auto`` is ``"cd"``, see ``lasso``), so ``auto / own`` is the
measurement's spread. At 10,000 atoms ``lasso_lars`` took 1.9 to 8 times ``lasso_cd``'s time in
each of the 45 cells measured with it (at 5013f80), 30 to 54 s a call on dense rows, so that half
leaves it out, and spends the time on more calls of every solver: there the product that forms a
10,000 x 10,000 Gram matrix (0.8 GB in float64, ``lasso``'s and ``sparse_encode``'s alike) took
0.58 s in a steady state and 1.09-1.71 s as the first of a process or right after ``sparse_encode``
(at ad7fd75; allocating and filling an array of that size was not slowed, and the cause was not
found), so that half keeps the fastest of 3 calls, in rounds that change each solver's predecessor
(:func:`alternating`).

Writes ``results/benchmarks/grid.json`` (``--out``); ``benchmarks/summary.py`` turns it into the
grid table of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import sparse_encode
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ista import head_commit, machine_info, synthetic_problem  # noqa: E402

from slics.core.lasso import _FISTA_TOL, lasso  # noqa: E402
from slics.core.objectives import lasso_objective  # noqa: E402
from slics.core.sparse_coding import _fista_rows, _prepare  # noqa: E402
from slics.utils.io import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRACTIONS = (0.5, 0.2, 0.06, 0.015)     # lambda / median lambda_max: about 3 to 400 non-zeros per row
TOL = 1e-6
# coherent, incoherent: the grid of make benchmarks; lowrank, clustered: dictionaries of other origins
DICTIONARIES = ("coherent", "incoherent", "lowrank", "clustered")


def dictionary(kind: str, n: int, d: int, m: int, seed: int):
    """Rows ``X`` (n, d) and atoms ``D`` (m, d), unit norm, of one of :data:`DICTIONARIES`."""
    if kind not in DICTIONARIES:
        raise SystemExit(f"error: --dicts: unknown dictionary {kind!r}; choose among {', '.join(DICTIONARIES)}.")
    if kind == "coherent":
        al = synthetic_problem(n, d, m, seed=seed)
        return np.ascontiguousarray(al.Z), np.ascontiguousarray(al.D)
    rng = np.random.default_rng(seed)
    if kind == "incoherent":
        D = rng.normal(size=(m, d))
    elif kind == "lowrank":          # rank 12 plus a little noise: nearly degenerate, very coherent
        D = rng.normal(size=(m, 12)) @ rng.normal(size=(12, d)) + 0.05 * rng.normal(size=(m, d))
    else:                            # clustered: 20 centres, heavy-tailed (Student t, 3 dof) spread around them
        centres = rng.normal(size=(20, d))
        D = centres[rng.integers(0, 20, m)] + 0.4 * rng.standard_t(3, size=(m, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    weights = rng.lognormal(size=(n, m)) if kind == "clustered" else rng.random((n, m))
    W = weights * (rng.random((n, m)) < 8 / m)
    X = W @ D + 0.3 * rng.normal(size=(n, d)) / np.sqrt(d)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, D


def run(fn, repeat_below: float = 0.5, repeats: int = 25, min_calls: int = 1):
    """Seconds and result of ``fn()``: the fastest of at least ``min_calls`` calls, and of as many as
    take ``repeat_below`` seconds in all (at most ``repeats``). On this shared 2-core machine a short
    call is often several milliseconds late (a thread waiting for a core), which is most of a 10 ms
    call; a call of seconds over 10,000 atoms can be a second late (the product that forms its 800 MB
    Gram matrix, see the module's docstring): one call of ``lasso`` took 2.76 s where the same method took 1.75 s in the
    same cell. The fastest of a few is the call's own time."""
    best, out, spent = np.inf, None, 0.0
    for call in range(max(repeats, min_calls)):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            out = fn()
        sec = time.perf_counter() - t0
        best, spent = min(best, sec), spent + sec
        if spent >= repeat_below and call + 1 >= min_calls:
            break
    return best, out


def paired(fa, fb, rounds: int) -> list[float]:
    """Ratios ``time(fa) / time(fb)`` of ``rounds`` rounds that take turns (ab, ba, ab, ...), each time
    as :func:`run` takes it: the two calls of a round see the same machine, so their ratio is
    steadier than a ratio of two separate measurements."""
    ratios = []
    for r in range(rounds):
        order = (fa, fb) if r % 2 == 0 else (fb, fa)
        first, second = (run(f)[0] for f in order)
        ratios.append(first / second if r % 2 == 0 else second / first)
    return ratios


def fista_then_cd(X, D, lam, limit: float):
    """``method="fista+cd"`` as ``lasso`` runs it (the loose FISTA warm start, then ``"cd"`` from it),
    with the FISTA part stopped once it has taken ``limit`` seconds: then ``(None, None)``, the
    method being slower than that (on coherent dictionaries FISTA can run its 5,000 iterations:
    77 s where ``"cd"`` took 2.3 s). Otherwise ``(W, info)`` of ``lasso``."""
    t0 = time.perf_counter()
    prepared = _prepare(D, X.dtype)
    W0 = _fista_rows(X, lam, None, prepared, _FISTA_TOL, X.dtype, stop=lambda: time.perf_counter() - t0 > limit)
    if W0 is None:
        return None, None
    return lasso(X, D, lam, tol=TOL, init=W0, method="cd", return_info=True)


def alternating(fns: dict, calls: int) -> tuple[dict, dict]:
    """The seconds (the fastest of ``calls`` rounds, each as :func:`run` takes it) and the last result of
    each of ``fns``. The rounds take turns, forward and backward (a slow spell of the machine falls on
    all of them alike), so that each callable follows a different one from round to round, and the
    last of a round runs again first in the next. A call can pay for the state the one before it
    left: at 10,000 atoms, ``lasso`` right after ``sparse_encode`` took 1.16-1.38 s where it took
    0.85-0.96 s after itself. In rounds that only rotated the order, each callable had the same
    predecessor in every round but the first, and ``auto``'s fastest call took 1.5x ``"cd"``'s on
    the same computation (a326d0c)."""
    names, seconds, out = list(fns), {n: np.inf for n in fns}, {}
    for r in range(calls):
        for name in (names if r % 2 == 0 else names[::-1]):
            sec, out[name] = run(fns[name])
            seconds[name] = min(seconds[name], sec)
    return seconds, out


def _own_record(seconds: float, W, info: dict) -> tuple[dict, np.ndarray]:
    """The record of one ``slics.lasso`` method in a cell (its time, method used, certificate and
    pilot) and its codes."""
    return {"seconds": seconds, "method_used": info["method"], "max_certified_gap": float(info["gap"].max()),
            "pilot": info["pilot"]}, W


def cell(X, D, lam, positive, dtype, lars: bool, censor: float, rounds: int, calls: int = 1) -> dict:
    X, D = X.astype(dtype), D.astype(dtype)
    X64, D64 = X.astype(np.float64), D.astype(np.float64)
    methods = ["auto", "cd"] + ([] if positive else ["fista+cd"])
    peers = [("sparse_encode_lasso_cd", "lasso_cd")] + ([("sparse_encode_lasso_lars", "lasso_lars")] if lars else [])
    fns = {f"slics_{method}": (lambda method=method: lasso(X, D, lam, positive=positive, tol=TOL, method=method,
                                                           return_info=True)) for method in ("auto", "cd")}
    fns.update({name: (lambda algorithm=algorithm: sparse_encode(X, D, algorithm=algorithm, alpha=lam / 2,
                                                                 positive=positive, n_jobs=2))
                for name, algorithm in peers})
    seconds, outs = alternating(fns, calls)
    solvers, codes = {}, {}
    for name, sec in seconds.items():
        if name.startswith("slics_"):
            solvers[name], codes[name] = _own_record(sec, *outs[name])
        else:
            solvers[name], codes[name] = {"seconds": sec}, outs[name]
    if "fista+cd" in methods:
        limit = censor * min(seconds["slics_auto"], seconds["slics_cd"])
        sec, (W, info) = run(lambda: fista_then_cd(X, D, lam, limit), min_calls=calls)
        if W is None:
            solvers["slics_fista+cd"] = {"seconds": None, "stopped_after": limit}
        else:
            solvers["slics_fista+cd"], codes["slics_fista+cd"] = _own_record(sec, W, info)
    objectives = {k: lasso_objective(X64, D64, np.asarray(W, np.float64), lam) for k, W in codes.items()}
    best_rows = np.min(np.vstack(list(objectives.values())), axis=0)
    best = float(best_rows.sum())
    for k, f in objectives.items():
        solvers[k]["relative_objective_gap"] = float((f.sum() - best) / best) if best > 0 else 0.0
    fastest = min((m for m in methods[1:] if solvers[f"slics_{m}"]["seconds"] is not None),
                  key=lambda m: solvers[f"slics_{m}"]["seconds"])
    forced = {"cd": lambda: lasso(X, D, lam, positive=positive, tol=TOL, method="cd"),
              "fista+cd": lambda: fista_then_cd(X, D, lam, np.inf)}[fastest]
    ratios = paired(lambda: lasso(X, D, lam, positive=positive, tol=TOL, method="auto"), forced, rounds)
    auto = solvers["slics_auto"]["seconds"]
    peer_best = min(solvers[name]["seconds"] for name, _ in peers)
    return {"mean_nnz_per_row": float(np.count_nonzero(codes["slics_cd"]) / len(X)), "solvers": solvers,
            "auto_over_fastest_own": float(np.median(ratios)), "auto_over_own_rounds": ratios, "fastest_own": fastest,
            "speedup_over_sparse_encode": solvers["sparse_encode_lasso_cd"]["seconds"] / auto,
            "speedup_over_best_peer": peer_best / auto}


def cell_key(c: dict) -> tuple:
    """What names a cell of the grid."""
    return c["d"], c["m"], c["dictionary"], c["lam_fraction"], c["sign"], c["dtype"]


def resumed_cells(path, settings: dict) -> list[dict]:
    """The cells of an earlier run in ``path`` (none if there is no file), each with the commit it was
    measured at; an earlier run with other ``settings`` (rows per cell, seed, tol) is refused."""
    if not Path(path).is_file():
        return []
    old = json.loads(Path(path).read_text())
    for key, value in settings.items():
        if old.get(key) != value:
            raise SystemExit(f"error: --resume: {path} was measured with {key} = {old.get(key)!r}, this run "
                             f"has {value!r}; rerun with the same setting or without --resume (a new file).")
    return [{**c, "commit": c.get("commit", old.get("commit"))} for c in old["cells"]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=500,
                    help="rows per cell (default 500: auto's pilot, 2 x 16 rows, is then a few per cent of a call)")
    ap.add_argument("--d", type=int, nargs="+", default=[384, 512, 768])
    ap.add_argument("--m", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS),
                    help="lambda as fractions of the median lambda_max of the rows")
    ap.add_argument("--dicts", nargs="+", default=["coherent", "incoherent"],
                    help=f"dictionaries among {', '.join(DICTIONARIES)}")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--signs", nargs="+", default=["signed", "nonneg"])
    ap.add_argument("--seed", type=int, default=11, help="problem seed (other seeds: other problems)")
    ap.add_argument("--no-lars", action="store_true", help="skip sparse_encode(algorithm='lasso_lars')")
    ap.add_argument("--censor", type=float, default=3.0,
                    help="stop the forced fista+cd once its FISTA part has taken this many times the "
                         "faster of auto and cd (it cannot be the fastest own method then)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds in which auto and the fastest forced method take turns; auto / own is the "
                         "median of the rounds' ratios")
    ap.add_argument("--calls", type=int, default=1,
                    help="every solver's time is the fastest of at least this many calls (calls under half a "
                         "second are repeated anyway)")
    ap.add_argument("--quick", action="store_true", help="a tiny grid: d 64, m 200, 100 rows, two lambdas")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "grid.json"))
    ap.add_argument("--resume", action="store_true",
                    help="keep the cells already in --out (a stopped run's, with the same rows, seed and tol) "
                         "and measure only the others; each cell records the commit it was measured at")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.d, args.m, args.fractions = 100, [64], [200], [0.3, 0.03]
    for dtype in args.dtypes:                                    # load the compiled kernels of each dtype
        lasso(np.ones((1, 4), dtype), np.eye(4, dtype=dtype), 0.1)
    commit = head_commit()
    settings = {"rows_per_cell": args.rows, "seed": args.seed, "tol": TOL, "calls_per_solver": args.calls,
                "lars": not args.no_lars, "timing": "alternating rounds"}
    cells = resumed_cells(args.out, settings) if args.resume else []
    done = {cell_key(c) for c in cells}
    load0 = os.getloadavg()
    planned = (len(args.d) * len(args.m) * len(args.dicts) * len(args.fractions) * len(args.signs)
               * len(args.dtypes))
    command = "python benchmarks/bench_grid.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def record():
        """The cells so far (written after each: a stopped run keeps them, marked incomplete)."""
        write_json(args.out, {"cells": cells, "cells_planned": planned, "complete": len(cells) == planned,
                              "commit": commit, "commits": sorted({c["commit"] for c in cells}), **settings,
                              "command": command, "machine": machine_info(),
                              "load_average_before_after": [list(load0), list(os.getloadavg())]}, significant=4)

    for d, m, kind in itertools.product(args.d, args.m, args.dicts):
        X, D = dictionary(kind, args.rows, d, m, args.seed)
        lam_max = np.median(np.abs(2 * X @ D.T).max(axis=1))
        for frac, sign, dtype in itertools.product(args.fractions, args.signs, args.dtypes):
            lam = float(frac * lam_max)
            if (d, m, kind, frac, sign, dtype) in done:
                continue
            res = cell(X, D, lam, sign == "nonneg", np.dtype(dtype), not args.no_lars, args.censor, args.rounds,
                       args.calls)
            res.update({"d": d, "m": m, "dictionary": kind, "lam_fraction": frac, "lam": lam, "sign": sign,
                        "dtype": dtype, "rows": args.rows, "commit": commit, "calls": args.calls,
                        "lars": not args.no_lars})
            cells.append(res)
            print(f"d={d} m={m} {kind} lam={frac:g}*max {sign} {dtype}: nnz {res['mean_nnz_per_row']:.1f}, "
                  f"auto/own {res['auto_over_fastest_own']:.2f}, x sparse_encode "
                  f"{res['speedup_over_sparse_encode']:.1f}, x best peer {res['speedup_over_best_peer']:.1f}",
                  flush=True)
            record()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
