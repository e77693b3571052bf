"""Benchmark: the exact sparse coders of ``slics`` against their peers, in one run (issue #9's table).

Writes ``results/benchmarks/solvers.json``. Every peer gets its best settings: scikit-learn's
``sparse_encode(algorithm="lasso_cd", n_jobs=2)`` (Gram precomputed, both cores), per-row loops
(scikit-learn ``Lasso`` with the Gram precomputed, celer, skglm) with ONE BLAS thread each
(threadpoolctl). Per-row loops run on a subset of rows and are extrapolated linearly to all rows
(each row is an independent problem; said in the JSON); every other solver runs on all rows.

Problems (synthetic, same shapes as the compendium's):

- ``lasso_section2``: 10,000 rows, d = 512, 1,010 concepts (the generator of ``bench_ista.py``,
  aligned as in the report), lam = 0.05 on the report's scale ``||z - wA||^2 + lam ||w||_1``.
  Also lam = 0.01 (dense) on 1,000 rows, where FISTA is the other candidate, and the
  notebook's 8-value lambda path (warm starts) against a cold ISTA sweep.
- ``nonneg_lasso_splice``: non-negative lasso, 10,000 vocabulary atoms, d = 512, lam giving
  10-30 non-zeros per row; peers on a subset.
- ``nnls`` and ``slics_fit``: ``bench_slics.py``'s planted COCO-sized data (20,000 x 512,
  12 concepts x 16 atoms), NNLS on the planted and the S-SVD dictionaries against a scipy loop,
  and ``SLiCS.fit`` for 10 iterations (wall and CPU seconds, at 5,000 and 20,000 rows).

Relative objective gaps are ``(sum of row objectives - reference) / reference`` on the rows each
solver ran, the reference being ``slics.lasso(tol=1e-12)`` (itself checked against
``sparse_encode``). The machine is shared (2 cores, other jobs): ``timing.loadavg`` records the
load before and after; timings are noisy, ratios measured in the same run are the figures to read.

Usage: ``python benchmarks/bench_solvers.py [--quick] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import sparse_encode
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ista import machine_info, matmul_gflops, synthetic_problem  # noqa: E402
from bench_slics import bench_nnls  # noqa: E402

from slics import SLiCS  # noqa: E402
from slics.core.lasso import lasso, lasso_path  # noqa: E402
from slics.core.objectives import lasso_objective  # noqa: E402
from slics.core.planted import make_planted  # noqa: E402
from slics.core.sparse_coding import fista, ista  # noqa: E402
from slics.utils.io import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
warnings.simplefilter("ignore", ConvergenceWarning)


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def objective(X, D, W, lam):
    return float(lasso_objective(X, D, np.asarray(W, dtype=np.float64), lam).sum())


def gap(X, D, W, lam, ref):
    return (objective(X, D, W, lam) - ref) / ref


def per_row_loop(make_model, X, D, positive):
    """One fit per row, ONE BLAS thread (the loop's best setting: 2 threads are ~4x slower per row)."""
    W = np.zeros((X.shape[0], D.shape[0]))
    with threadpool_limits(1):
        for i, x in enumerate(X):
            W[i] = make_model().fit(D.T, x).coef_
    return W


def peers(lam, d, positive, gram):
    """Per-row peers that are installed: name -> model factory (objective scaled to ours)."""
    alpha = lam / (2 * d)
    out = {"sklearn_Lasso_gram_loop": lambda: Lasso(alpha=alpha, fit_intercept=False, positive=positive,
                                                    precompute=gram)}
    try:
        import celer
        out["celer_loop"] = lambda: celer.Lasso(alpha=alpha, fit_intercept=False, positive=positive)
    except ImportError:
        pass
    try:
        import skglm
        # skglm's tol is an absolute optimality violation; its default 1e-4 exceeds alpha here and
        # stops far from the optimum (gap 6e-2): 1e-6 with max_iter=1000 reaches a gap below 1e-6.
        out["skglm_loop"] = lambda: skglm.Lasso(alpha=alpha, fit_intercept=False, positive=positive, tol=1e-6,
                                                max_iter=1000)
    except ImportError:
        pass
    return out


def compare(X, D, lam, positive, n_sub, dtype_ours=(np.float64, np.float32), extra=None):
    """Our solver on all rows, sparse_encode on all rows (or n_sub), per-row peers on n_sub rows."""
    n, d = X.shape
    res = {"n_rows": n, "d": d, "n_atoms": D.shape[0], "lam": lam, "positive": positive}
    t_ref, _, W_ref = timed(lambda: lasso(X, D, lam, positive=positive, tol=1e-12))
    ref_all = objective(X, D, W_ref, lam)
    sub = slice(0, n_sub)
    ref_sub = objective(X[sub], D, W_ref[sub], lam)
    res["mean_nnz_per_row"] = float(np.count_nonzero(W_ref, axis=1).mean())
    res["reference"] = {"how": "slics.lasso(tol=1e-12)", "seconds": t_ref}
    rows = {}
    for dt in dtype_ours:
        name = f"slics_lasso_{np.dtype(dt).name}_tol1e-6"
        Xd, Dd = X.astype(dt), D.astype(dt)
        lasso(Xd[:2], Dd, lam, positive=positive)                       # JIT compile / cache load
        wall, cpu, (W, info) = timed(lambda: lasso(Xd, Dd, lam, positive=positive, tol=1e-6, return_info=True))
        rows[name] = {"rows_timed": n, "seconds": wall, "cpu_seconds": cpu,
                      "relative_objective_gap": gap(X, D, W, lam, ref_all),
                      "max_certified_relative_duality_gap": float(info["gap"].max())}
        print(f"  {name}: {wall:.2f} s (cpu {cpu:.2f}), gap {rows[name]['relative_objective_gap']:.1e}", flush=True)
    n_se = n if extra is None else extra.get("sparse_encode_rows", n)
    wall, cpu, W = timed(lambda: sparse_encode(X[:n_se], D, algorithm="lasso_cd", alpha=lam / 2, n_jobs=2,
                                               positive=positive))
    ref_se = ref_all if n_se == n else objective(X[:n_se], D, W_ref[:n_se], lam)
    rows["sklearn_sparse_encode_lasso_cd_njobs2"] = {
        "rows_timed": n_se, "seconds": wall, "seconds_extrapolated_all_rows": wall * n / n_se,
        "relative_objective_gap": (objective(X[:n_se], D, W, lam) - ref_se) / ref_se}
    print(f"  sparse_encode: {wall:.2f} s on {n_se} rows", flush=True)
    gram = D @ D.T
    for name, make in peers(lam, d, positive, gram).items():
        per_row_loop(make, X[:2], D, positive)                          # warm-up (numba in skglm)
        wall, cpu, W = timed(lambda: per_row_loop(make, X[sub], D, positive))
        rows[name] = {"rows_timed": n_sub, "seconds": wall, "seconds_extrapolated_all_rows": wall * n / n_sub,
                      "relative_objective_gap": gap(X[sub], D, W, lam, ref_sub)}
        print(f"  {name}: {wall:.2f} s on {n_sub} rows", flush=True)
    ours = rows[f"slics_lasso_{np.dtype(dtype_ours[-1]).name}_tol1e-6"]["seconds"]
    best_ours = min(rows[f"slics_lasso_{np.dtype(dt).name}_tol1e-6"]["seconds"] for dt in dtype_ours)
    for name, r in rows.items():
        if not name.startswith("slics_lasso"):
            r["ratio_to_slics_lasso_best"] = r.get("seconds_extrapolated_all_rows", r["seconds"]) / best_ours
    res["solvers"] = rows
    res["slics_lasso_last_dtype_seconds"] = ours
    return res


def section2(quick):
    n, n_sub = (1000, 100) if quick else (10_000, 1000)
    d, m, lam = 512, 1010, 0.05
    al = synthetic_problem(n, d, m)
    X, D = al.Z, np.ascontiguousarray(al.D)
    print(f"[lasso, section-2 shape] {n} x {d}, {m} atoms, lam {lam}", flush=True)
    res = compare(X, D, lam, False, n_sub)
    ref_all = objective(X, D, lasso(X, D, lam, tol=1e-12), lam)
    D32, X32 = al.D.astype(np.float32), X.astype(np.float32)
    wall, _, W = timed(lambda: fista(X32, D32, lam, tol=1e-3, dtype=np.float32))
    res["solvers"]["slics_fista_float32_tol1e-3"] = {"rows_timed": n, "seconds": wall,
                                                     "relative_objective_gap": gap(X, D, W, lam, ref_all)}
    wall, _, W = timed(lambda: ista(X32, D32, lam, lr=0.01, n_iter=200, dtype=np.float32))
    res["solvers"]["slics_ista_float32_report_200_iterations"] = {
        "rows_timed": n, "seconds": wall, "relative_objective_gap": gap(X, D, W, lam, ref_all)}
    print(f"  fista/ista done", flush=True)
    return res, al


def dense_lambda(al, quick):
    """lam = 0.01 (dense codes): slics.lasso against FISTA, both float32, on 1,000 rows."""
    n = 200 if quick else 1000
    X, D, lam = al.Z[:n], np.ascontiguousarray(al.D), 0.01
    ref = objective(X, D, lasso(X, D, lam, tol=1e-12), lam)
    X32, D32 = X.astype(np.float32), D.astype(np.float32)
    out = {"n_rows": n, "lam": lam}
    for method in ("cd", "auto"):
        wall, cpu, (W, info) = timed(lambda: lasso(X32, D32, lam, tol=1e-6, method=method, return_info=True))
        out[f"slics_lasso_float32_tol1e-6_method_{method}"] = {
            "seconds": wall, "relative_objective_gap": gap(X, D, W, lam, ref), "method_used": info["method"],
            "mean_nnz_per_row": float(np.count_nonzero(W, axis=1).mean())}
    for tol in (1e-3, 1e-5):
        wall, cpu, W = timed(lambda: fista(X32, D32, lam, tol=tol, n_iter=20_000, dtype=np.float32))
        out[f"slics_fista_float32_tol{tol:g}"] = {"seconds": wall, "relative_objective_gap": gap(X, D, W, lam, ref)}
    print(f"[dense lam 0.01] {out}", flush=True)
    return out


def path(al, quick, lams):
    n = 500 if quick else 2_000         # 10,000 before: about 14 minutes on the shared machine
    X, D = al.Z[:n], np.ascontiguousarray(al.D)
    X32, D32 = X.astype(np.float32), D.astype(np.float32)
    wall_p, _, (Ws, infos) = timed(lambda: lasso_path(X32, D32, lams, tol=1e-6, return_info=True))
    wall_i, _, _ = timed(lambda: [ista(X32, D32, lam, lr=0.01, n_iter=200, dtype=np.float32) for lam in lams])
    out = {"n_rows": n, "lams": list(lams), "slics_lasso_path_float32_seconds": wall_p,
           "ista_cold_sweep_float32_200_iterations_seconds": wall_i, "ratio_path_to_ista_sweep": wall_p / wall_i,
           "mean_nnz_per_row": [float(np.count_nonzero(W, axis=1).mean()) for W in Ws],
           "method_per_lam": [i["method"] for i in infos]}
    print(f"[path] {out}", flush=True)
    return out


def splice_problem(n, d, m, seed=1):
    """Vocabulary-sized dictionary (SpLiCE): concept prompts and images, both centred and normalised."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    words = (rng.normal(size=(m, d)) * (1 + np.arange(d) / 10) ** -0.5) @ Q.T
    words /= np.linalg.norm(words, axis=1, keepdims=True)
    words += rng.normal(size=d) / np.sqrt(d)
    mix = rng.random((n, m)) * (rng.random((n, m)) < 8 / m)
    images = mix @ words + 0.3 * rng.normal(size=(n, d)) / np.sqrt(d) + rng.normal(size=d) / np.sqrt(d)
    from slics.core.sparse_coding import align_embeddings
    al = align_embeddings(images, words)
    return al.Z, np.ascontiguousarray(al.D)


def splice(quick, lam):
    n, n_sub, n_se = (1000, 20, 200) if quick else (10_000, 100, 1000)
    d, m = 512, 10_000
    X, D = splice_problem(n, d, m)
    print(f"[non-negative lasso, SpLiCE shape] {n} x {d}, {m} atoms, lam {lam}", flush=True)
    return compare(X, D, lam, True, n_sub, extra={"sparse_encode_rows": n_se})


def nnls_and_fit(quick):
    n, d, C, K = (2000, 128, 6, 8) if quick else (20000, 512, 12, 16)
    setting = dict(n_samples=n, n_features=d, n_concepts=C, n_atoms=K, concepts_per_sample=(1, 3),
                   concept_probs=(0.2, 0.3, 0.5), noise=0.1, atom_coherence=0.3, atom_density=0.5,
                   concept_coherence=0.3, random_state=0)
    X, Y, D, _ = make_planted(**setting)
    support = np.repeat(Y, K, axis=1)
    rng = np.random.default_rng(0)
    out = {"data": {"n_rows": n, "d": d, "n_concepts": C, "n_atoms": K}}
    dictionaries = {"planted": D, "ssvd_init": SLiCS(K, n_iter=0).fit(X, Y).dictionary_}
    out["nnls"] = {name: bench_nnls(Dx, X, support, 200 if quick else 2000, rng) for name, Dx in dictionaries.items()}
    from slics import nnls_batch
    from slics.core.reference.nnls_cd import nnls_cd
    nnls_cd(D, X[:10], support[:10])                                  # JIT compile / cache load
    for name, Dx in dictionaries.items():
        wall, cpu, W = timed(lambda: nnls_cd(Dx, X, support))
        r = out["nnls"][name]
        r["nnls_batch_method_cd_seconds"] = wall
        r["speedup_method_cd"] = r["scipy_loop_seconds_extrapolated"] / wall
        W_as = nnls_batch(Dx, X, support)
        f, f_as = (np.einsum("ij,ij->", X - V @ Dx, X - V @ Dx) for V in (W, W_as))
        r["method_cd_relative_objective_difference"] = abs(f - f_as) / f_as
    for name, r in out["nnls"].items():
        print(f"[nnls {name}] {r['nnls_batch_seconds']:.2f} s, x{r['speedup']:.1f} vs scipy loop", flush=True)
    fits = {}
    for rows in ((n // 4, n) if not quick else (n,)):
        wall, cpu, model = timed(lambda: SLiCS(K, n_iter=10).fit(X[:rows], Y[:rows]))
        fits[str(rows)] = {"seconds": wall, "cpu_seconds": cpu, "cpu_over_wall": cpu / wall,
                           "error_history": model.error_history_.tolist()}
        print(f"[fit {rows} rows] {wall:.1f} s (cpu {cpu:.1f})", flush=True)
    out["slics_fit_full_batch_10_iterations"] = fits
    out["data_mib"] = X.nbytes / 2 ** 20
    return out


def memory(quick):
    """Peak NumPy memory (tracemalloc) of ista / fista on 50,000 rows (2 iterations: the peak
    does not depend on the count), against the output ``n x m`` alone."""
    import tracemalloc

    n, d, m = (5_000 if quick else 50_000), 512, 1010
    al = synthetic_problem(n, d, m)
    out = {"n_rows": n, "n_atoms": m}
    for dt in (np.float64, np.float32):
        Z, D = al.Z.astype(dt), al.D.astype(dt)
        for name, fn in (("ista", lambda: ista(Z, D, 0.05, lr=0.01, n_iter=2, dtype=dt)),
                         ("fista", lambda: fista(Z, D, 0.05, n_iter=2, tol=0, dtype=dt))):
            tracemalloc.start()
            fn()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out[f"{name}_{np.dtype(dt).name}"] = {"peak_mib": peak / 2 ** 20,
                                                  "peak_over_output": peak / (n * m * np.dtype(dt).itemsize)}
    print(f"[memory] {out}", flush=True)
    return out


def markdown_table(res) -> str:
    """The README's table: seconds on all rows (extrapolated for per-row loops), gap, ratio to slics."""
    lines = ["| problem | solver | seconds | relative objective gap | time / slics.lasso |", "|---|---|---|---|---|"]
    for key in ("lasso_section2", "nonneg_lasso_splice"):
        if key not in res:
            continue
        for name, r in res[key]["solvers"].items():
            sec = r.get("seconds_extrapolated_all_rows", r["seconds"])
            note = "" if r["rows_timed"] == res[key]["n_rows"] else f" ({r['rows_timed']} rows, extrapolated)"
            ratio = r.get("ratio_to_slics_lasso_best")
            lines.append(f"| {key} | {name}{note} | {sec:.3g} | {r['relative_objective_gap']:.1e} | "
                         f"{'' if ratio is None else f'{ratio:.1f}x'} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small problems, for a smoke test")
    ap.add_argument("--only", nargs="*", default=None,
                    help="subset of: section2 dense path splice nnls memory (default all)")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "solvers.json"))
    args = ap.parse_args(argv)
    parts = set(args.only or ["section2", "dense", "path", "splice", "nnls", "memory"])
    load_before = os.getloadavg()
    previous = {}
    if args.only and Path(args.out).exists():       # refresh some parts, keep the others
        import json
        previous = json.loads(Path(args.out).read_text())
    res = {**previous, "quick": args.quick, "machine": machine_info(),
           "matmul_gflops": {np.dtype(dt).name: matmul_gflops(2000, 1010, dt) for dt in (np.float64, np.float32)}}
    try:
        import celer
        import skglm
        res["machine"]["peers"] = {"celer": celer.__version__, "skglm": skglm.__version__}
    except ImportError as e:
        res["machine"]["peers"] = f"not installed ({e}); pip install '.[bench]'"
    al = None
    if parts & {"section2", "dense", "path"}:
        if "section2" in parts:
            res["lasso_section2"], al = section2(args.quick)
        else:
            al = synthetic_problem(1000 if args.quick else 10_000, 512, 1010)
        if "dense" in parts:
            res["lasso_dense_lambda"] = dense_lambda(al, args.quick)
        if "path" in parts:
            res["lasso_path"] = path(al, args.quick, [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5])
    if "splice" in parts:
        res["nonneg_lasso_splice"] = splice(args.quick, 0.2)
    if "nnls" in parts:
        res.update(nnls_and_fit(args.quick))
    if "memory" in parts:
        res["batched_memory"] = memory(args.quick)
    if previous:
        res["refreshed_parts"] = sorted(parts)
    res["timing" if not previous else f"timing_refresh_{'_'.join(sorted(parts))}"] = {"loadavg_1_5_15_before": list(load_before), "loadavg_1_5_15_after": list(os.getloadavg()),
                     "note": ("2-core machine shared with other jobs during the run: absolute seconds are noisy "
                              "(a load average above 2 means the solvers got less than both cores); ratios "
                              "between solvers measured in this same run are the figures to read. Per-row "
                              "loops (one BLAS thread) are timed on rows_timed rows and extrapolated linearly.")}
    write_json(args.out, res, significant=4)
    print(markdown_table(res))
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
