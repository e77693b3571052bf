"""Speed (and planted-recovery) benchmark of the SLiCS core.

Run ``.venv/bin/python benchmarks/bench_slics.py`` (about a few minutes on 2 cores) or
with ``--quick`` for a smoke run on a small problem. Writes
``results/benchmarks/slics.json`` (``--out`` to change).

On COCO-sized planted data (20,000 x 512, 12 concepts, K = 16, about 2.3 concepts
per sample) it measures:

1. ``nnls_batch`` against a loop of ``scipy.optimize.nnls`` on the same problems
   (each row on its labelled concepts' atoms), at matched objective. The scipy loop is
   timed on a random subset of rows and extrapolated to all rows (said in the JSON).
   Two dictionaries: the planted one (well conditioned) and the S-SVD initialisation of
   the same data (the first coefficient step of every fit; its per-concept top singular
   vectors all contain the data's common direction, which makes the problems much
   harder for any active-set method).
2. ``SLiCS.fit`` for 10 iterations, full batch and with batches of 2,000, in seconds
   and as a ratio to one ``nnls_batch`` pass.

It also records the planted-recovery setting of the tests and the final errors of
the three atom updates (the paper's appendix A comparison).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy.optimize import nnls as scipy_nnls

from slics import SLiCS, nnls_batch
from slics.utils.io import write_json
from slics.core.planted import atom_recovery, make_planted, relative_error

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_ista import machine_info  # noqa: E402  (one machine record for every benchmark)


def row_objectives(D, X, W):
    R = X - W @ D
    return np.einsum("ij,ij->i", R, R)


def bench_nnls(D, X, support, n_scipy, rng) -> dict:
    nnls_batch(D, X[:20], support[:20])                              # JIT compile / cache load
    t = time.perf_counter()
    W, info = nnls_batch(D, X, support, return_info=True)
    t_batch = time.perf_counter() - t
    t = time.perf_counter()
    W_as, info_as = nnls_batch(D, X, support, method="active_set", return_info=True)
    t_as = time.perf_counter() - t

    rows = np.sort(rng.choice(X.shape[0], size=min(n_scipy, X.shape[0]), replace=False))
    W_ref = np.zeros((rows.size, D.shape[0]))
    t = time.perf_counter()
    for k, i in enumerate(rows):
        cols = np.flatnonzero(support[i])
        W_ref[k, cols] = scipy_nnls(D[cols].T, X[i])[0]
    t_subset = time.perf_counter() - t
    t_scipy = t_subset * X.shape[0] / rows.size

    f = row_objectives(D, X[rows], W[rows])
    f_ref = row_objectives(D, X[rows], W_ref)
    return {
        "nnls_batch_seconds": t_batch,
        "scipy_loop_seconds_extrapolated": t_scipy,
        "scipy_loop_seconds_on_subset": t_subset,
        "scipy_subset_rows": int(rows.size),
        "speedup": t_scipy / t_batch,
        "nnls_batch_method": "auto (compiled per-row Lawson-Hanson)",
        "method_active_set_seconds": t_as,
        "speedup_method_active_set": t_scipy / t_as,
        "method_active_set_info": info_as,
        "max_relative_objective_difference_to_active_set": float(np.max(
            np.abs(row_objectives(D, X, W) - row_objectives(D, X, W_as)) / np.maximum(row_objectives(D, X, W_as), 1e-300))),
        "max_relative_objective_difference": float(np.max(np.abs(f - f_ref) / np.maximum(f_ref, 1e-300))),
        "nnls_batch_not_worse_on_every_row": bool(np.all(f <= f_ref * (1 + 1e-8) + 1e-14)),
        "nnls_batch_info": info,
    }


def bench_fit(X, Y, K, n_iter, batch_size, nnls_seconds) -> dict:
    t = time.perf_counter()
    model = SLiCS(K, n_iter=n_iter, batch_size=batch_size).fit(X, Y)
    seconds = time.perf_counter() - t
    return {
        "batch_size": batch_size,
        "n_iter": n_iter,
        "seconds": seconds,
        "ratio_to_one_nnls_batch_pass_planted_dictionary": seconds / nnls_seconds["planted"],
        "ratio_to_one_nnls_batch_pass_ssvd_dictionary": seconds / nnls_seconds["ssvd_init"],
        "error_history": model.error_history_,
    }


def _fit_child(setting, K, n_iter, queue):
    X, Y, _, _ = make_planted(**setting)
    SLiCS(K, n_iter=1).fit(X[:500], Y[:500])                        # JIT compile / cache load
    data_bytes = X.nbytes
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t, c = time.perf_counter(), time.process_time()
    model = SLiCS(K, n_iter=n_iter).fit(X, Y)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()                      # a second fit for the memory: tracing slows allocations
    SLiCS(K, n_iter=n_iter).fit(X, Y)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    queue.put({"n_rows": setting["n_samples"], "seconds": wall, "cpu_seconds": cpu, "cpu_over_wall": cpu / wall,
               "data_mib": data_bytes / 2 ** 20, "peak_rss_increase_mib": max(peak - base, 0) / 2 ** 20,
               "peak_rss_increase_over_data": max(peak - base, 0) / data_bytes,
               "tracemalloc_peak_mib": traced / 2 ** 20, "tracemalloc_peak_over_data": traced / data_bytes,
               "error_history": model.error_history_.tolist()})


def previous_solver_fit(X, Y, K, n_iter) -> dict:
    """The solver before the compiled atom step and NNLS, timed in this run: the Python atom
    step (``compiled=False``) at the previous tolerance 1e-6 and ``nnls_batch(method="active_set")``."""
    import slics.core.dictionary as dictionary

    saved = dictionary._atom_step, dictionary.nnls_batch, dictionary._KSVD_TOL
    dictionary._atom_step = lambda *a: saved[0](*a, compiled=False)
    dictionary.nnls_batch = lambda *a, **k: nnls_batch(*a, method="active_set", **k)
    dictionary._KSVD_TOL = 1e-6
    try:
        t, c = time.perf_counter(), time.process_time()
        model = SLiCS(K, n_iter=n_iter).fit(X, Y)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    finally:
        dictionary._atom_step, dictionary.nnls_batch, dictionary._KSVD_TOL = saved
    print(f"previous solver, same run: {wall:.1f} s (cpu {cpu:.1f})", flush=True)
    return {"seconds": wall, "cpu_seconds": cpu, "error_history": model.error_history_}


def fit_scaling(setting, K, n_iter, sizes) -> dict:
    """Full-batch fits at several row counts, each in a fresh process: wall and CPU time and the
    peak resident memory it added (over the data and the compiled code already loaded), then
    a second, untimed fit for the peak of the traced allocations."""
    out = {}
    ctx = mp.get_context("spawn")
    for n in sizes:
        queue = ctx.Queue()
        proc = ctx.Process(target=_fit_child, args=({**setting, "n_samples": n}, K, n_iter, queue))
        proc.start()
        r = queue.get()
        proc.join()
        out[str(n)] = r
        print(f"SLiCS.fit [{n} rows, {n_iter} iterations]: {r['seconds']:.1f} s (cpu {r['cpu_seconds']:.1f}), "
              f"peak RSS +{r['peak_rss_increase_over_data']:.2f}x data, tracemalloc {r['tracemalloc_peak_over_data']:.2f}x", flush=True)
    sec = [out[str(n)]["seconds"] / n for n in sizes]
    out["seconds_per_row_relative_to_smallest"] = [v / sec[0] for v in sec]
    return out


def planted_recovery(quick: bool) -> dict:
    """The setting of tests/test_dictionary.py::test_planted_recovery_at_low_noise."""
    setting = dict(n_samples=1500, n_features=48, n_concepts=5, n_atoms=4, concepts_per_sample=(1, 3),
                   noise=0.02, atom_coherence=0.3, atom_density=0.3, concept_coherence=0.3, random_state=0)
    n_iter = 10 if quick else 30
    X, Y, D, W = make_planted(**setting)
    model = SLiCS(4, n_iter=n_iter).fit(X, Y)
    out = {
        "setting": {**setting, "concepts_per_sample": list(setting["concepts_per_sample"]), "n_iter": n_iter,
                    "mean_concepts_per_sample": float(Y.sum(axis=1).mean())},
        "mean_abs_cos_learned": atom_recovery(D, model.dictionary_, model.atom_concept_),
        "mean_abs_cos_ssvd_init": atom_recovery(D, model.init_dictionary_, model.atom_concept_),
        "relative_error_final": float(model.error_history_[-1]),
        "relative_error_ssvd_init": float(model.error_history_[0]),
        "relative_error_noise_floor": relative_error(X, W, D),
    }
    updates = {}
    for update in ("ksvd", "power", "bcd"):
        m = SLiCS(4, n_iter=n_iter, update=update).fit(X, Y)
        updates[update] = {"relative_error_final": float(m.error_history_[-1]),
                           "mean_abs_cos": atom_recovery(D, m.dictionary_, m.atom_concept_)}
    out["atom_update_comparison"] = updates
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "slics.json"))
    args = parser.parse_args(argv)
    load_before = os.getloadavg()

    if args.quick:
        n, d, C, K, n_scipy, n_iter, batch = 2000, 128, 6, 8, 200, 2, 500
    else:
        n, d, C, K, n_scipy, n_iter, batch = 20000, 512, 12, 16, 2000, 10, 2000
    setting = dict(n_samples=n, n_features=d, n_concepts=C, n_atoms=K, concepts_per_sample=(1, 3),
                   concept_probs=(0.2, 0.3, 0.5), noise=0.1, atom_coherence=0.3, atom_density=0.5,
                   concept_coherence=0.3, random_state=0)
    X, Y, D, _ = make_planted(**setting)
    support = np.repeat(Y, K, axis=1)
    rng = np.random.default_rng(0)
    result = {
        "quick": args.quick,
        "machine": machine_info(),
        "data": {**setting, "concepts_per_sample": list(setting["concepts_per_sample"]),
                 "concept_probs": list(setting["concept_probs"]),
                 "mean_concepts_per_sample": float(Y.sum(axis=1).mean()),
                 "mean_atoms_per_problem": float(support.sum(axis=1).mean())},
        "notes": [
            f"scipy.optimize.nnls is timed on a random subset of {min(n_scipy, n)} rows and extrapolated "
            f"linearly to all {n} rows; both solve each row on its labelled concepts' atoms.",
            "Objectives are compared on that subset (relative difference of the squared residuals).",
            "The machine is shared: load_average_at_start gives the context of the timings.",
            "fit_scaling_full_batch: each fit in a fresh process; peak_rss_increase is the growth of the "
            "process's peak resident memory during fit (the data and compiled code were already loaded; it "
            "misses what fits under the earlier peak, e.g. of JIT compilation); tracemalloc_peak is the peak "
            "of the NumPy/Python allocations made during fit (not numba's internal buffers, at most one "
            "concept's rows x d for the atom step), the data excluded.",
            "previous_solver_full_batch_error_history: the history of the solver before the compiled atom "
            "step and NNLS (Python Golub-Kahan-Lanczos to 1e-6, batched NumPy NNLS), same data.",
        ],
    }
    dictionaries = {"planted": D, "ssvd_init": SLiCS(K, n_iter=0).fit(X, Y).dictionary_}
    result["nnls"] = {name: bench_nnls(Dx, X, support, n_scipy, rng) for name, Dx in dictionaries.items()}
    for name, r in result["nnls"].items():
        print(f"nnls_batch [{name}]: {r['nnls_batch_seconds']:.2f} s vs scipy loop "
              f"{r['scipy_loop_seconds_extrapolated']:.1f} s (x{r['speedup']:.1f}), "
              f"max rel. objective diff {r['max_relative_objective_difference']:.1e}")
    nnls_seconds = {k: v["nnls_batch_seconds"] for k, v in result["nnls"].items()}
    previous = None
    if Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        previous = old.get("previous_solver_full_batch_error_history",
                           old.get("fit", {}).get("full_batch", {}).get("error_history"))
    result["fit"] = {
        "full_batch": bench_fit(X, Y, K, n_iter, None, nnls_seconds),
        "mini_batch": bench_fit(X, Y, K, n_iter, batch, nnls_seconds),
    }
    for name, r in result["fit"].items():
        print(f"SLiCS.fit [{name}, {n_iter} iterations]: {r['seconds']:.1f} s, final rel. error "
              f"{r['error_history'][-1]:.4f}")
    result["fit"]["previous_solver_full_batch_same_run"] = prev = previous_solver_fit(X, Y, K, n_iter)
    result["fit"]["full_batch"]["speedup_over_previous_solver_same_run"] = \
        prev["seconds"] / result["fit"]["full_batch"]["seconds"]
    if previous is not None and not args.quick:
        new = np.asarray(result["fit"]["full_batch"]["error_history"])
        result["previous_solver_full_batch_error_history"] = previous
        result["max_relative_difference_to_previous_history"] = float(
            np.max(np.abs(new - previous) / np.asarray(previous)))
    sizes = (500, 2000) if args.quick else (5000, 20000, 50000)
    result["fit_scaling_full_batch"] = fit_scaling(setting, K, n_iter, sizes)
    result["planted_recovery"] = planted_recovery(args.quick)
    pr = result["planted_recovery"]
    print(f"planted recovery: mean |cos| {pr['mean_abs_cos_learned']:.3f} (S-SVD init "
          f"{pr['mean_abs_cos_ssvd_init']:.3f}); rel. error {pr['relative_error_final']:.4f} vs floor "
          f"{pr['relative_error_noise_floor']:.4f}")
    result["load_average_before_after"] = [list(load_before), list(os.getloadavg())]
    write_json(args.out, result, significant=8)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
