"""Benchmark: ISTA's product over the non-zeros of its iterate against the dense product it replaces.

``slics.core.sparse_coding.ista`` multiplies an iterate ``W`` (n x m) by ``A^T A`` once per
iteration. Where ``W`` has few non-zeros it uses ``slics.core._sparse_product.sparse_rows_product``
(``W G`` over the non-zeros: ``2 nnz m`` flops, a gather of rows of ``G``) instead of the dense
product (``min(2 n m^2, 4 n m d)`` flops at the matmul peak), once the sparse flops are at most
``1 / _SPARSE_COST`` of the dense ones. This measures both products on random codes with a given
number of non-zeros per row, for dictionary shapes of both sections, in float32 (the pipeline's
ISTA) and float64: the crossover, and how much faster the sparse product is at the threshold.
Then the report's ISTA (200 iterations, ``lr = 0.01``) on a synthetic problem at lambdas whose codes
grow sparse, with the sparse product allowed and not (``_SPARSE_COST = inf``), in the same process.

Usage: ``python benchmarks/bench_ista_sparse.py [--quick] [--out PATH]``
(default ``results/benchmarks/ista_sparse.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slics.core.sparse_coding as sc  # noqa: E402
from bench_ista import best_time, head_commit, machine_info, synthetic_problem  # noqa: E402
from slics.core._sparse_product import sparse_rows_product  # noqa: E402
from slics.utils.io import write_json  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "ista_sparse.json"


def products(n, m, d, dtype, nnz_per_row, repeat, seed=0) -> list[dict]:
    """Seconds of the sparse and the dense product for codes with ``nnz_per_row`` non-zeros a row."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((m, d)).astype(dtype)
    A = np.ascontiguousarray(D.T)
    dense = sc._gram_product(A)
    G = np.ascontiguousarray(A.T @ A)
    out = np.empty((n, m), dtype)
    rows = []
    for k in nnz_per_row:
        W = np.zeros((n, m), dtype)
        cols = np.argsort(rng.random((n, m)), axis=1)[:, :k]
        np.put_along_axis(W, cols, rng.standard_normal((n, k)).astype(dtype), axis=1)
        sparse_rows_product(W[:2], G, out[:2])
        t_sparse, _ = best_time(lambda: sparse_rows_product(W, G, out), repeat)
        t_dense, _ = best_time(lambda: dense(W, out), repeat)
        rows.append({"nnz_per_row": k, "sparse_seconds": t_sparse, "dense_seconds": t_dense,
                     "dense_over_sparse": t_dense / t_sparse})
    return rows


def ista_runs(n, d, m, lams, repeat) -> list[dict]:
    """The report's ISTA (float32) with and without the sparse product, at each ``lam``."""
    al = synthetic_problem(n, d, m)
    Z, D = al.Z, al.D
    cost = sc._SPARSE_COST
    rows = []
    for lam in lams:
        times = {}
        for name, value in (("dense_only", np.inf), ("adaptive", cost), ("dense_only", np.inf), ("adaptive", cost)):
            sc._SPARSE_COST = value
            try:
                t, W = best_time(lambda: sc.ista(Z, D, lam, lr=0.01, n_iter=200, dtype=np.float32), 1)
            finally:
                sc._SPARSE_COST = cost
            times.setdefault(name, []).append((t, W))
        (t_dense, W_dense), (t_adaptive, W_adaptive) = (min(times[k], key=lambda x: x[0])
                                                        for k in ("dense_only", "adaptive"))
        rows.append({"lam": lam, "mean_nnz_per_row": float(np.count_nonzero(W_adaptive, axis=1).mean()),
                     "dense_only_seconds": t_dense, "adaptive_seconds": t_adaptive,
                     "speedup": t_dense / t_adaptive,
                     "max_abs_code_difference": float(np.abs(W_dense - W_adaptive).max()),
                     "zero_pattern_differences": int(((W_dense != 0) != (W_adaptive != 0)).sum())})
        print(f"ISTA lam {lam}: dense only {t_dense:.2f} s, adaptive {t_adaptive:.2f} s "
              f"({rows[-1]['mean_nnz_per_row']:.1f} non-zeros a row)", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small problems, for a smoke test")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    n, repeat = (1000, 2) if args.quick else (10_000, 3)
    nnz = [0, 1, 4, 16, 32, 64, 128, 256]
    load = os.getloadavg()
    record = {"commit": head_commit(), "machine": machine_info(), "rows": n, "sparse_cost": sc._SPARSE_COST,
              "shapes": []}
    for m, d in ((1003, 384), (1010, 512)):
        for dtype in (np.float32, np.float64):
            dense_flops = min(2 * m * m, 4 * m * d)
            threshold = dense_flops / (2 * m * sc._SPARSE_COST)
            rows = products(n, m, d, dtype, nnz, repeat)
            record["shapes"].append({"m": m, "d": d, "dtype": np.dtype(dtype).name,
                                     "threshold_nnz_per_row": threshold, "products": rows})
            print(f"m={m} d={d} {np.dtype(dtype).name}: threshold {threshold:.0f} non-zeros a row; "
                  + ", ".join(f"{r['nnz_per_row']}: {r['dense_over_sparse']:.2f}x" for r in rows), flush=True)
    record["ista"] = ista_runs(n, 384, 1003, [0.05, 0.2, 0.5], 1)
    record["timing"] = {"statistic": f"best of {repeat} (products), best of 2 (ISTA, alternating)",
                        "loadavg_before": list(load), "loadavg_after": list(os.getloadavg())}
    write_json(Path(args.out), record, significant=4)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"{time.perf_counter() - t0:.0f} s")
