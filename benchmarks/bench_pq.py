"""Speed and storage of scoring a product-quantised pool through look-up tables (SLiCS paper, section 4.4.1).

Run ``.venv/bin/python benchmarks/bench_pq.py`` (about two minutes on 2 cores; ``--quick`` for a
smoke run). Writes ``results/benchmarks/pq.json`` (``--out`` to change).

TiTok-L-32 sizes: ``T = 32`` tokens of ``d = 12`` numbers, a codebook of ``K = 4,096`` unit
codewords. A random pool of ``n`` candidates (unit tokens) is quantised once; then ``m``
query vectors (not unit, like concept components) are scored against the whole pool

* dense: one float32 matrix product ``Z @ X.T`` (BLAS), ``n * D`` multiply-adds per query;
* LUT: the (m, T, K) look-up tables ``Z_t @ C.T`` and ``T`` gathers and adds per candidate
  (:meth:`slics.core.pq.QuantisedPool.scores`).

Both are timed as the best of ``--repeats`` runs (the same blocking of queries for both). The
JSON records the time ratio, the storage of each pool (float32 vectors against indices,
as ``uint16`` and packed at ``ceil(log2 K)`` bits) and the arithmetic counts of
:func:`slics.core.pq.operation_counts`, and checks that both give the same scores on the
quantised vectors. Timings depend on the machine: they are records, not reproducible results.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from slics.core.pq import QuantisedPool, normalise_tokens, operation_counts
from slics.utils.io import write_json

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_ista import machine_info  # noqa: E402  (one machine record for every benchmark)


def best_of(fn, repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run(n: int, m: int, T: int, d: int, K: int, repeats: int, block: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    codebook = rng.standard_normal((K, d)).astype(np.float32)
    codebook /= np.linalg.norm(codebook, axis=1, keepdims=True)
    X = normalise_tokens(rng.standard_normal((n, T * d)).astype(np.float32), T)
    Z = rng.standard_normal((m, T * d)).astype(np.float32)

    t = time.perf_counter()
    pool = QuantisedPool.from_vectors(X, codebook, T)
    t_encode = time.perf_counter() - t
    Xhat = pool.vectors()                          # dense float32 copy of the quantised pool

    def dense():
        out = np.empty((m, n), dtype=np.float32)
        for s in range(0, m, block):
            out[s:s + block] = Z[s:s + block] @ Xhat.T
        return out

    t_dense, S_dense = best_of(dense, repeats)
    t_lut, S_lut = best_of(lambda: pool.scores(Z, block=block), repeats)
    st = pool.storage()
    return {
        "sizes": {"n_candidates": n, "n_queries": m, "n_tokens": T, "token_dim": d, "codebook_size": K,
                  "query_block": block},
        "seconds": {"dense_scores": t_dense, "lut_scores": t_lut, "encode_pool": t_encode},
        "lut_over_dense_time": t_lut / t_dense,
        "storage_bytes": {"dense_float32": st["dense_bytes"], "indices_uint16": st["index_bytes"],
                          "indices_packed": st["packed_index_bytes"], "codebook_float32": st["codebook_bytes"]},
        "storage_ratio_dense_over_indices_uint16": st["dense_bytes"] / st["index_bytes"],
        "storage_ratio_dense_over_indices_packed": st["dense_bytes"] / st["packed_index_bytes"],
        "operations": operation_counts(n, T, d, K, n_queries=m),
        "max_abs_score_difference": float(np.max(np.abs(S_dense - S_lut))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "pq.json"))
    args = parser.parse_args(argv)
    if args.quick:
        cfg = dict(n=5_000, m=50, T=32, d=12, K=4096, repeats=1, block=256)
    else:
        cfg = dict(n=50_000, m=200, T=32, d=12, K=4096, repeats=3, block=256)
    result = {"machine": machine_info(), "settings": cfg, "result": run(**cfg),
              "notes": ("dense: float32 BLAS matrix product against the dequantised pool; LUT: numpy "
                        "look-up tables and one gather-add per token (QuantisedPool.scores). The LUT does "
                        "fewer multiply-adds, but numpy gathers are memory-bound where BLAS is not, so the "
                        "time ratio measures this implementation, not the operation count.")}
    write_json(args.out, result, significant=4)
    r = result["result"]
    print(f"LUT / dense time: {r['lut_over_dense_time']:.2f}; dense {r['storage_bytes']['dense_float32'] / 2**20:.1f} MiB, "
          f"indices {r['storage_bytes']['indices_uint16'] / 2**20:.2f} MiB (uint16), "
          f"{r['storage_bytes']['indices_packed'] / 2**20:.2f} MiB (packed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
