"""Speed and storage of scoring a product-quantised pool through look-up tables (SLiCS paper, section 4.4.1).

Run ``.venv/bin/python benchmarks/bench_pq.py`` (about a minute on 2 idle cores; ``--quick`` for a
smoke run). Writes ``results/benchmarks/pq.json`` (``--out`` to change).

TiTok-L-32 sizes: ``T = 32`` tokens of ``d = 12`` numbers, a codebook of ``K = 4,096`` unit
codewords. A random pool of ``n`` candidates (unit tokens) is quantised once
(:func:`slics.core.pq.encode`, timed); then ``m`` query vectors (not unit, like concept
components) are scored against the whole pool, in float64 as the pipeline does:

* dense: one BLAS matrix product ``Z @ Xhat.T`` for all queries against the dequantised pool
  (BLAS on all its threads: its best setting), ``n * D`` multiply-adds per query; the float32
  product is timed too, for reference (the pipeline does not use it);
* LUT: :meth:`slics.core.pq.QuantisedPool.scores`, the compiled kernel of
  :mod:`slics.core.pq_kernels` (numba on all its threads): the (T, K) look-up table of each
  query (``K * D`` multiply-adds) and ``T`` look-ups and additions per (query, candidate);
  the pure-numpy reference of the tests (the same tables, one ``np.take`` gather and add per
  token, the implementation before the kernel) is timed too, and must give the same bits.

Each is timed as the best of ``--repeats`` rounds, the methods interleaved within a round so
that a load change on a shared machine hits them alike, with all threads and again with one
(BLAS and numba): the one-thread ratio is the per-core cost, less sensitive to a busy machine;
``best_lut_over_best_dense_time`` compares each method at its faster setting. The load average
before and after is recorded. The JSON records the time ratios, the storage of each pool (float32 vectors, the
paper's count, against indices as ``uint16`` and packed at ``ceil(log2 K)`` bits) and the
arithmetic counts of :func:`slics.core.pq.operation_counts`, and checks that the LUT and dense
float64 scores agree. Timings depend on the machine: they are records, not reproducible results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# numba's OpenMP threads otherwise spin between parallel regions: on a shared machine that steals
# the cores from the working threads (measured: the LUT scores 3.6 times slower with 2 threads at
# a load average of 5 on 2 cores). Set before numba starts its thread pool; recorded in the JSON.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numba  # noqa: E402
import numpy as np

from threadpoolctl import threadpool_limits  # noqa: E402

from slics.core.pq import QuantisedPool, _token_tables, normalise_tokens, operation_counts  # noqa: E402
from slics.utils.io import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_ista import machine_info  # noqa: E402  (one machine record for every benchmark)


def best_of_interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Best time of each function over ``repeats`` rounds (one call of each per round), and its last output."""
    best, out = {k: float("inf") for k in fns}, {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best, out


def numpy_lut_scores(Z, codebook, codes, block: int = 32) -> np.ndarray:
    """The pure-numpy reference (as in the tests, and the look-up path before the compiled kernel):
    the same fixed-order tables, then one ``np.take`` gather and add per token."""
    T = codes.shape[1]
    idx = np.ascontiguousarray(codes.T, dtype=np.intp)
    S = np.empty((Z.shape[0], codes.shape[0]))
    for start in range(0, Z.shape[0], block):
        L = _token_tables(Z[start:start + block], codebook, T)
        acc = np.zeros((L.shape[1], idx.shape[1]))
        for t in range(T):
            acc += np.take(L[t], idx[t], axis=1)
        S[start:start + block] = acc
    return S


def run(n: int, m: int, T: int, d: int, K: int, repeats: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    codebook = rng.standard_normal((K, d))
    codebook /= np.linalg.norm(codebook, axis=1, keepdims=True)
    X = normalise_tokens(rng.standard_normal((n, T * d)), T)
    Z = rng.standard_normal((m, T * d))

    t = time.perf_counter()
    pool = QuantisedPool.from_vectors(X, codebook, T)
    t_encode = time.perf_counter() - t
    Xhat = pool.vectors()                          # dense float64 copy of the quantised pool
    Z32, Xhat32 = Z.astype(np.float32), Xhat.astype(np.float32)
    fns = {"dense_float64": lambda: Z @ Xhat.T, "lut_float64": lambda: pool.scores(Z),
           "dense_float32": lambda: Z32 @ Xhat32.T,
           "lut_numpy_reference": lambda: numpy_lut_scores(Z, codebook, pool.codes)}
    seconds, out, one_thread = {}, {}, {}
    for threads in (None, 1):                     # all threads (the best setting of each), then one
        with threadpool_limits(threads):
            numba.set_num_threads(threads or numba.config.NUMBA_NUM_THREADS)
            for fn in fns.values():               # compile and warm the caches
                fn()
            best, res = best_of_interleaved(fns, repeats)
        if threads is None:
            seconds, out = best, res
        else:
            one_thread = best
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    st = pool.storage()
    return {
        "sizes": {"n_candidates": n, "n_queries": m, "n_tokens": T, "token_dim": d, "codebook_size": K},
        "seconds": {**seconds, "encode_pool": t_encode},
        "seconds_one_thread": one_thread,
        "lut_over_dense_time": seconds["lut_float64"] / seconds["dense_float64"],
        "lut_over_dense_time_one_thread": one_thread["lut_float64"] / one_thread["dense_float64"],
        "lut_over_dense_float32_time": seconds["lut_float64"] / seconds["dense_float32"],
        "numpy_reference_over_lut_time_one_thread": one_thread["lut_numpy_reference"] / one_thread["lut_float64"],
        "best_lut_over_best_dense_time": (min(seconds["lut_float64"], one_thread["lut_float64"])
                                          / min(seconds["dense_float64"], one_thread["dense_float64"])),
        "encode_tokens_per_second": n * T / t_encode,
        "storage_bytes": {"dense_float32": st["dense_bytes"], "indices_uint16": st["index_bytes"],
                          "indices_packed": st["packed_index_bytes"], "codebook_float32": st["codebook_bytes"]},
        "storage_ratio_dense_over_indices_uint16": st["dense_bytes"] / st["index_bytes"],
        "storage_ratio_dense_over_indices_packed": st["dense_bytes"] / st["packed_index_bytes"],
        "operations": operation_counts(n, T, d, K, n_queries=m),
        "lut_equals_numpy_reference_bitwise": bool(np.array_equal(out["lut_float64"], out["lut_numpy_reference"])),
        "max_abs_score_difference_lut_vs_dense_float64":
            float(np.max(np.abs(out["dense_float64"] - out["lut_float64"]))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "pq.json"))
    args = parser.parse_args(argv)
    if args.quick:
        cfg = dict(n=5_000, m=50, T=32, d=12, K=4096, repeats=1)
    else:
        cfg = dict(n=50_000, m=200, T=32, d=12, K=4096, repeats=7)
    machine = {**machine_info(), "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
               "numba_threading_layer_env": os.environ.get("NUMBA_THREADING_LAYER", "default"),
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    result = run(**cfg)
    machine["load_average_at_end"] = list(os.getloadavg())
    result = {"machine": machine, "settings": cfg, "result": result,
              "notes": ("float64 throughout (the pipeline's dtype); storage counted as float32 (the paper's "
                        "convention). dense: one BLAS product for all queries against the dequantised pool; "
                        "LUT: QuantisedPool.scores (compiled fixed-order tables and look-ups, 8 queries per table "
                        "line). The machine is shared: compare the load averages.")}
    write_json(args.out, result, significant=4)
    r = result["result"]
    print(f"LUT / dense float64 time: {r['lut_over_dense_time']:.2f} "
          f"(one thread {r['lut_over_dense_time_one_thread']:.2f}, "
          f"LUT / dense float32 {r['lut_over_dense_float32_time']:.2f}); encode {r['seconds']['encode_pool']:.1f} s; "
          f"dense {r['storage_bytes']['dense_float32'] / 2**20:.1f} MiB, "
          f"indices {r['storage_bytes']['indices_uint16'] / 2**20:.2f} MiB (uint16), "
          f"{r['storage_bytes']['indices_packed'] / 2**20:.2f} MiB (packed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
