"""The internet-scale estimate of ``docs/scaling.md``, computed from ``results/benchmarks/dask.json``.

``python -m slics.distributed.estimate --write`` rewrites the part of ``docs/scaling.md``
between its ``estimate`` markers from the benchmark's numbers (so the page's numbers are
regenerated, never typed). The model: coding and retrieval cost the measured seconds per row
per worker (the 2-worker rates divided by 2, so the measured scaling loss is included); a
worker's memory is its measured peak at the largest row count (flat in the rows: it depends on
the chunk size, not on the data); storage is the rows in float16 (as LAION-400M's published
embeddings) or float32, the SLiCS codes as ``n_concepts * n_atoms`` float32 per row (dense),
the quantised pool as its bytes per row. Retrieval with the FAISS backend and over the quantised
pool is estimated the same way when the benchmark measured them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "results" / "benchmarks" / "dask.json"
PAGE = ROOT / "docs" / "scaling.md"
START, END = "<!-- estimate:start -->", "<!-- estimate:end -->"


def estimate(bench: dict, n_rows: float = 400e6, workers: int = 64, hours: float | None = None) -> dict:
    """Workers, memory, time and storage to code and index ``n_rows`` rows of the benchmark's dimension.

    Parameters
    ----------
    bench : dict
        ``results/benchmarks/dask.json``.
    n_rows : float, default 400 million (LAION-400M)
    workers : int, default 64
        Single-threaded worker processes (cores).
    hours : float, optional
        A deadline for coding: the workers it needs are reported too.
    """
    w = max(bench["scaling"], key=int)
    rate = bench["scaling"][w]
    per_worker = {k: rate[f"{k}_rows_per_s"] / int(w) for k in ("coding", "retrieval", "retrieval_faiss", "retrieval_pq")
                  if f"{k}_rows_per_s" in rate}
    peak = max(max(v["peak_rss_per_worker_bytes"]) for v in bench["memory"].values())
    d, C, K = bench["dim"], bench["n_concepts"], bench["n_atoms"]
    out = {"n_rows": n_rows, "dim": d, "workers": workers, "measured_workers": int(w),
           "coding_rows_per_s_per_worker": per_worker["coding"],
           "retrieval_rows_per_s_per_worker": per_worker["retrieval"],
           "coding_hours": n_rows / (per_worker["coding"] * workers) / 3600,
           "retrieval_seconds_per_100_queries": n_rows / (per_worker["retrieval"] * workers) * 100 / bench["n_queries"],
           "peak_memory_per_worker_gib": peak / 2 ** 30,
           "cluster_memory_gib": workers * peak / 2 ** 30,
           "embeddings_float16_tb": n_rows * d * 2 / 1e12, "embeddings_float32_tb": n_rows * d * 4 / 1e12,
           "codes_dense_float32_tb": n_rows * C * K * 4 / 1e12}
    for backend in ("faiss", "pq"):      # other retrieval backends, when the benchmark measured them
        if f"retrieval_{backend}" in per_worker:
            out[f"retrieval_{backend}_seconds_per_100_queries"] = (n_rows / (per_worker[f"retrieval_{backend}"] * workers)
                                                                   * 100 / bench["n_queries"])
    if "quantised_pool" in bench:
        out["quantised_pool_tb"] = n_rows * bench["quantised_pool"]["bytes_per_row"] / 1e12
    if hours is not None:
        out["workers_for_deadline"] = math.ceil(n_rows / (per_worker["coding"] * hours * 3600))
        out["deadline_hours"] = hours
    return out


SPEEDUP_GOAL, MEMORY_GOAL = 1.8, 1.10     # issue #21: 1 -> 2 workers; peak memory per worker, largest / smallest rows


def goals(bench: dict) -> dict:
    """The benchmark against its goals: the 1 -> 2 worker speed-up of every measured pass (the
    benchmark's ``speedup_2_workers``, its paired ratios; else rows per second at 2 over 1 worker)
    and the spread of the peak memory per worker over the row counts (the largest worker's peak:
    its highest over its lowest, as the benchmark's ``memory_growth_largest_over_smallest``)."""
    one, two = bench["scaling"].get("1", {}), bench["scaling"].get("2", {})
    speedup = bench.get("speedup_2_workers") or {
        k: two[f"{k}_rows_per_s"] / one[f"{k}_rows_per_s"] for k in ("coding", "retrieval", "retrieval_faiss", "retrieval_pq")
        if f"{k}_rows_per_s" in one and f"{k}_rows_per_s" in two}
    peaks = {int(rows): max(v["peak_rss_per_worker_bytes"]) for rows, v in bench["memory"].items()}
    return {"speedup_2_workers": speedup, "memory_growth": max(peaks.values()) / min(peaks.values()),
            "memory_rows": (min(peaks), max(peaks))}


def goals_markdown(g: dict) -> str:
    """One sentence: each measured number beside its goal, met or not."""
    verdict = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    names = {"coding": "coding", "retrieval": "exact retrieval", "retrieval_faiss": "FAISS backend",
             "retrieval_pq": "quantised pool"}
    main = [f"{names[k]} {v:.2f}x ({verdict(v >= SPEEDUP_GOAL)})" for k, v in g["speedup_2_workers"].items()
            if k in ("coding", "retrieval")]
    other = [f"{names[k]} {v:.2f}x" for k, v in g["speedup_2_workers"].items() if k not in ("coding", "retrieval")]
    lo, hi = g["memory_rows"]
    text = (f"Against the goals: speed-up from 1 to 2 workers (goal {SPEEDUP_GOAL:g}x) {', '.join(main) or 'not measured'}"
            + (f" (not goals: {', '.join(other)})" if other else "")
            + f"; peak memory per worker over {lo / 1e6:g} to {hi / 1e6:g} million rows, highest over lowest"
              f" x{g['memory_growth']:.2f}"
              f" (goal within {MEMORY_GOAL - 1:.0%}: {verdict(g['memory_growth'] <= MEMORY_GOAL)}).")
    return text


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def markdown(e: dict) -> str:
    """The estimate as the Markdown of ``docs/scaling.md``."""
    rows = [("rows x dimension", f"{e['n_rows'] / 1e6:.0f} million x {e['dim']}"),
            ("measured per worker (at " + str(e["measured_workers"]) + " workers)",
             f"coding {e['coding_rows_per_s_per_worker']:,.0f} rows/s, retrieval {e['retrieval_rows_per_s_per_worker']:,.0f} rows/s"),
            (f"coding on {e['workers']} workers", _duration(e["coding_hours"])),
            (f"retrieval of 100 queries on {e['workers']} workers", f"{e['retrieval_seconds_per_100_queries']:,.0f} s per pass over the pool"),
            *[(f"retrieval of 100 queries on {e['workers']} workers, {name}",
               f"{e[f'retrieval_{key}_seconds_per_100_queries']:,.0f} s per pass over the pool")
              for key, name in (("faiss", "FAISS backend"), ("pq", "quantised pool")) if f"retrieval_{key}_seconds_per_100_queries" in e],
            ("memory per worker (peak RSS, flat in the rows)", f"{e['peak_memory_per_worker_gib']:.2f} GiB"),
            (f"memory of {e['workers']} workers", f"{e['cluster_memory_gib']:.0f} GiB"),
            ("embeddings on disk", f"{e['embeddings_float16_tb']:.2f} TB float16, {e['embeddings_float32_tb']:.2f} TB float32"),
            ("SLiCS codes, dense float32", f"{e['codes_dense_float32_tb']:.2f} TB")]
    if "quantised_pool_tb" in e:
        rows.append((f"quantised pool ({e['quantised_pool_tb'] * 1e12 / e['n_rows']:.0f} bytes a row)", f"{e['quantised_pool_tb']:.3f} TB"))
    if "workers_for_deadline" in e:
        rows.append((f"workers to code in {e['deadline_hours']:g} h", f"{e['workers_for_deadline']:,}"))
    return "\n".join(["| quantity | estimate |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]) + "\n"


def write(page: Path = PAGE, bench: Path = BENCH) -> None:
    """Rewrite the estimate between the markers of ``page`` from ``bench``."""
    from ..utils.io import write_text

    text = page.read_text(encoding="utf-8")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    data = json.loads(bench.read_text())
    try:
        where = bench.resolve().relative_to(ROOT)
    except ValueError:
        where = bench
    source = (f"Computed from `{where}` ({data['rows']:,} rows of {data['dim']} on disk, load average "
              f"{data['machine']['load_average_at_start'][0]:.1f} at its start) by `python -m slics.distributed.estimate --write`.\n\n")
    if data["rows"] < 2_000_000:
        source = ("**Smoke-run numbers** (fewer rows than the benchmark's 2 million: start-up costs dominate); "
                  "rerun `python benchmarks/bench_dask.py` at full size, then this command. ") + source
    source += goals_markdown(goals(data)) + "\n\n"
    write_text(page, f"{head}{START}\n{source}{markdown(estimate(data, hours=24))}{END}{tail}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="the 400-million-row estimate of docs/scaling.md")
    ap.add_argument("--write", action="store_true", help="rewrite docs/scaling.md (else print the table)")
    ap.add_argument("--bench", default=str(BENCH))
    a = ap.parse_args()
    if a.write:
        write(bench=Path(a.bench))
    else:
        print(markdown(estimate(json.loads(Path(a.bench).read_text()), hours=24)), end="")
