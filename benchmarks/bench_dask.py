"""SLiCS on Dask: rows per second of coding and of retrieval at 1 and 2 workers, and peak memory
per worker as the rows grow (issue #21's goals: at least 1.8x from 1 to 2 workers; peak memory
per worker flat, within 10 %, from 2 to 8 million rows).

Run ``.venv/bin/python benchmarks/bench_dask.py`` (full size: 2,000,000 x 512 float32 rows on
disk, about 4.1 GB in a temporary folder, then 2, 4 and 8 million rows; about 20 minutes on 2
quiet cores) or ``--quick`` (20,000 rows, seconds). Every size is a parameter (``--rows``,
``--grow``, ``--dim``, ``--chunk``, ``--workers``, ``--repeat``). Writes ``results/benchmarks/dask.json``
(``--out`` to change; ``--quick`` writes to ``results-scratch/``); ``docs/scaling.md`` is computed from it (``python -m
slics.distributed.estimate --write``).

Problem. A zarr store of ``--rows`` unit rows (seeded normal, float32, ``--chunk`` rows per
chunk, raw as :func:`slics.distributed.save_store` writes by default), written once by the cluster. A SLiCS model of 12 concepts x 4 atoms fitted in memory on
20,000 planted rows of the same dimension. In each of ``--repeat`` rounds, per worker count in
turn (a fresh ``LocalCluster`` of that many single-threaded processes); the JSON keeps every
pass, the median seconds per worker count, and the speed-up as the median of the rounds' paired
1-to-2-worker ratios:

* coding: ``model.transform(X, Y)`` over the store (labels: 1 to 3 seeded concepts per row,
  lazy), reduced to its column sums (so nothing is written back);
* retrieval: :func:`slics.distributed.sharded_top_k` of 100 queries, top 20, over the store,
  exact (``dense``) and with the ``faiss`` backend (float32 flat index per shard, when
  ``faiss-cpu`` is installed); and :func:`slics.distributed.quantised_top_k` over the quantised
  pool (``TokenQuantiser``, 32 tokens x 256 codewords fitted on the first 20,000 rows: 32 bytes a
  row, a zarr store of codes written once before the timings).

Memory growth: with the largest worker count, coding and retrieval over the store read
``g / rows`` times (``--grow``; one blockwise source of ``g`` rows, :func:`repeated_store`, so the
rows read from disk grow as from a larger store, without writing 16 GB), while a thread polls every worker's resident set size every 0.2 s
(``Client.run`` with psutil); the JSON records each worker's peak.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ista import machine_info  # noqa: E402

N_CONCEPTS, N_ATOMS, N_QUERIES, K = 12, 4, 100, 20
N_TOKENS, CODEBOOK = 32, 256
PASSES = ("coding", "retrieval", "retrieval_faiss", "retrieval_pq")   # timed per worker count (faiss: if installed)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class PeakMemory:
    """Poll every worker's RSS in a thread; ``peaks`` maps worker address to its maximum (bytes)."""

    def __init__(self, client, every: float = 0.2):
        self.client, self.every, self.peaks = client, every, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for worker, rss in self.client.run(_rss).items():
                self.peaks[worker] = max(rss, self.peaks.get(worker, 0))
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _unit_rows(block_id, rows, dim, seed):
    rng = np.random.default_rng([seed, block_id])
    X = rng.standard_normal((rows, dim), dtype=np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def write_store(path: Path, n: int, dim: int, chunk: int) -> None:
    import dask
    import dask.array as da

    from slics.distributed import save_store

    parts = [da.from_delayed(dask.delayed(_unit_rows)(i, min(chunk, n - s), dim, 0), (min(chunk, n - s), dim),
                             np.float32) for i, s in enumerate(range(0, n, chunk))]
    save_store(da.concatenate(parts), path)


def _labels(block_id, rows):
    rng = np.random.default_rng([1, block_id])
    Y = rng.random((rows, N_CONCEPTS)) < 1.0 / N_CONCEPTS
    Y[np.arange(rows), rng.integers(0, N_CONCEPTS, rows)] = True
    return Y


def lazy_labels(X):
    import dask
    import dask.array as da

    return da.concatenate([da.from_delayed(dask.delayed(_labels)(i, r), (r, N_CONCEPTS), bool)
                           for i, r in enumerate(X.chunks[0])])


class Repeated:
    """A raw zarr store's rows (:func:`slics.distributed.store.raw_chunks`) repeated to ``n`` rows,
    read chunk by chunk as :func:`slics.distributed.open_embeddings` reads the store (a larger
    store, without writing it)."""

    def __init__(self, store: Path, n: int):
        from slics.distributed.store import raw_chunks

        self.rows = raw_chunks(store)
        self.step, self.dtype, self.ndim, self.shape = self.rows.step, self.rows.dtype, 2, (n, self.rows.shape[1])

    def __getitem__(self, index):
        rows, cols = index                              # whole chunks (fancy=False)
        start = rows.start % self.rows.shape[0]
        return self.rows[slice(start, start + rows.stop - rows.start), cols]


def repeated_store(store: Path, n: int):
    """:class:`Repeated` as one blockwise dask source (fused with the work on its rows, as a store's
    reads are; separate read tasks with shared names would be kept until their last use)."""
    import dask.array as da

    rows = Repeated(store, n)
    return da.from_array(rows, chunks=(rows.step, rows.shape[1]), asarray=False, lock=False, fancy=False,
                         inline_array=True, meta=np.empty((0, 0), rows.dtype), name=f"pool-repeated-{n}")


def fitted_model(dim: int):
    from slics import SLiCS
    from slics.core.planted import make_planted

    X, Y, _, _ = make_planted(n_samples=20_000, n_features=dim, n_concepts=N_CONCEPTS, n_atoms=N_ATOMS,
                              random_state=0)
    return SLiCS(N_ATOMS, n_iter=3).fit(X, Y)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_both(model, X, Q):
    from slics.distributed import sharded_top_k

    coding = timed(lambda: model.transform(X, lazy_labels(X)).sum(axis=0).compute())
    retrieval = timed(lambda: sharded_top_k(Q, X, K))
    return coding, retrieval


def run_backends(X, Q, codes, codebook):
    """Seconds of the FAISS backend (None without faiss-cpu) and of the quantised pool."""
    from slics.distributed import quantised_top_k, sharded_top_k

    try:
        import faiss  # noqa: F401
    except ImportError:
        faiss_s = None
    else:
        faiss_s = timed(lambda: sharded_top_k(Q, X, K, backend="faiss"))
    return faiss_s, timed(lambda: quantised_top_k(Q, codes, codebook, K))


def quantised_pool(X, path: Path):
    """A TokenQuantiser fitted on the first rows, and the store of every row's codes (written now)."""
    from slics import TokenQuantiser
    from slics.distributed import open_embeddings, save_store

    tq = TokenQuantiser(N_TOKENS, CODEBOOK, random_state=0).fit(X[:min(20_000, X.shape[0])].compute())
    seconds = timed(lambda: save_store(tq.transform(X), path))
    return tq.codebook_, open_embeddings(path, what="codes"), seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 rows: a smoke run")
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows of the store on disk (default 2,000,000)")
    ap.add_argument("--grow", type=int, nargs="+", default=[2_000_000, 4_000_000, 8_000_000],
                    help="row counts of the memory measurement, multiples of --rows")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=50_000, help="rows per chunk (default 50,000: 100 MB float32)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed passes per worker count, their median reported (default 5; --quick: 1)")
    ap.add_argument("--tmp", default=None, help="folder for the store (default a temporary folder)")
    ap.add_argument("--out", default=None, help="default results/benchmarks/dask.json (--quick: results-scratch/)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.grow, args.chunk = 20_000, [20_000, 40_000, 80_000], 2_000
    args.repeat = (1 if args.quick else 5) if args.repeat is None else args.repeat
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    args.out = args.out or str(ROOT / ("results-scratch" if args.quick else "results") / "benchmarks" / "dask.json")
    if any(g % args.rows for g in args.grow):
        ap.error("every --grow count must be a multiple of --rows")

    from slics.distributed import connect, open_embeddings
    from slics.utils.io import write_json

    load = os.getloadavg()
    model = fitted_model(args.dim)
    Q = np.random.default_rng(2).standard_normal((N_QUERIES, args.dim))
    result = {"machine": machine_info(), "rows": args.rows, "repeat": args.repeat, "dim": args.dim, "chunk_rows": args.chunk,
              "dtype": "float32", "n_concepts": N_CONCEPTS, "n_atoms": N_ATOMS, "n_queries": N_QUERIES, "k": K,
              "scaling": {}, "memory": {}}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        store = Path(tmp) / "pool.zarr"
        with connect(workers=max(args.workers)):
            t = timed(lambda: write_store(store, args.rows, args.dim, args.chunk))
        result["store"] = {"write_seconds": t, "bytes_on_disk": sum(f.stat().st_size for f in store.rglob("*")
                                                                    if f.is_file())}
        X = open_embeddings(store)
        with connect(workers=max(args.workers)):
            codebook, codes, t = quantised_pool(X, Path(tmp) / "codes.zarr")
        result["quantised_pool"] = {"n_tokens": N_TOKENS, "codebook_size": CODEBOOK, "encode_seconds": t,
                                    "bytes_per_row": N_TOKENS * codes.dtype.itemsize}
        # the worker counts interleaved, --repeat rounds: the machine's speed drifts by 10-20 % over
        # minutes, so each round's ratio compares passes run close together
        passes = {w: [] for w in args.workers}
        for _ in range(args.repeat):
            for w in args.workers:
                with connect(workers=w, memory_limit="4GiB"):
                    part = slice(0, args.chunk * w)      # warm-up: each worker compiles the numba kernels
                    run_both(model, X[part], Q), run_backends(X[part], Q, codes[part], codebook)
                    passes[w].append(dict(zip(PASSES, (*run_both(model, X, Q), *run_backends(X, Q, codes, codebook)))))
        for w in args.workers:
            rates = {}
            for key in PASSES:
                if passes[w][0][key] is not None:
                    seconds = float(np.median([p[key] for p in passes[w]]))
                    rates.update({f"{key}_seconds": seconds, f"{key}_rows_per_s": args.rows / seconds})
            rates["passes_seconds"] = passes[w]
            result["scaling"][str(w)] = rates
            print(f"{w} worker(s), median of {args.repeat}: " + ", ".join(
                f"{key} {rates[f'{key}_rows_per_s']:,.0f} rows/s" for key in PASSES if f"{key}_seconds" in rates), flush=True)
        with connect(workers=max(args.workers), memory_limit="4GiB") as client:
            run_both(model, X[:args.chunk * max(args.workers)], Q)
            for g in args.grow:
                Xg = repeated_store(store, g)
                with PeakMemory(client) as mem:
                    coding, retrieval = run_both(model, Xg, Q)
                result["memory"][str(g)] = {"peak_rss_per_worker_bytes": sorted(mem.peaks.values()),
                                            "coding_seconds": coding, "retrieval_seconds": retrieval}
                print(f"{g:,} rows: peak RSS per worker {[f'{p / 2**20:.0f} MiB' for p in sorted(mem.peaks.values())]}",
                      flush=True)
    if 1 in passes and 2 in passes:              # median of the rounds' paired ratios
        result["speedup_2_workers"] = {key: float(np.median([a[key] / b[key] for a, b in zip(passes[1], passes[2])]))
                                       for key in PASSES if passes[1][0][key] is not None}
    peaks = [max(v["peak_rss_per_worker_bytes"]) for v in result["memory"].values()]
    result["memory_growth_largest_over_smallest"] = max(peaks) / min(peaks)
    result["machine"]["load_average_at_start"], result["machine"]["load_average_at_end"] = list(load), list(os.getloadavg())
    write_json(args.out, result, significant=4)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
