"""The 400-million-row estimate of docs/scaling.md (slics.distributed.estimate): its arithmetic
from a benchmark JSON, and the rewrite of only the page's marked part. Needs no dask."""

from __future__ import annotations

import json

import pytest

from slics.distributed.estimate import END, START, estimate, goals, goals_markdown, markdown, write

BENCH = {
    "rows": 2_000_000, "dim": 512, "n_concepts": 12, "n_atoms": 4, "n_queries": 100,
    "machine": {"load_average_at_start": [1.0, 1.0, 1.0]},
    "scaling": {"1": {"coding_rows_per_s": 1000.0, "retrieval_rows_per_s": 9000.0},
                "2": {"coding_rows_per_s": 1900.0, "retrieval_rows_per_s": 18000.0,
                      "retrieval_pq_rows_per_s": 36000.0}},
    "memory": {"2000000": {"peak_rss_per_worker_bytes": [2 ** 30, 2 ** 29]},
               "8000000": {"peak_rss_per_worker_bytes": [3 * 2 ** 29]}},
    "quantised_pool": {"bytes_per_row": 32},
}


def test_estimate_from_the_two_worker_rates():
    e = estimate(BENCH, n_rows=400e6, workers=64, hours=24)
    assert e["coding_rows_per_s_per_worker"] == 950.0                  # 2 workers' rate / 2
    assert e["coding_hours"] == pytest.approx(400e6 / (950 * 64) / 3600)
    assert e["retrieval_seconds_per_100_queries"] == pytest.approx(400e6 / (9000 * 64))
    assert e["retrieval_pq_seconds_per_100_queries"] == pytest.approx(400e6 / (18000 * 64))
    assert "retrieval_faiss_seconds_per_100_queries" not in e           # not measured
    assert e["peak_memory_per_worker_gib"] == 1.5 and e["cluster_memory_gib"] == 96
    assert e["embeddings_float16_tb"] == pytest.approx(400e6 * 512 * 2 / 1e12)
    assert e["quantised_pool_tb"] == pytest.approx(0.0128)
    assert e["workers_for_deadline"] == 5                                # ceil(400e6 / (950 * 86400))


def test_write_replaces_only_the_marked_part(tmp_path):
    page, bench = tmp_path / "scaling.md", tmp_path / "dask.json"
    bench.write_text(json.dumps(BENCH))
    page.write_text(f"# head\n\n{START}\nold numbers\n{END}\n\ntail\n")
    write(page, bench)
    text = page.read_text()
    assert text.startswith("# head\n\n") and text.endswith(f"{END}\n\ntail\n") and "old numbers" not in text
    assert markdown(estimate(BENCH, hours=24)) in text and "Smoke-run" not in text


def test_goals_from_the_rates_and_peaks():
    g = goals(BENCH)
    assert g["speedup_2_workers"] == {"coding": 1.9, "retrieval": 2.0}     # pq: measured at 2 workers only
    assert g["memory_growth"] == 1.5 and g["memory_rows"] == (2_000_000, 8_000_000)
    text = goals_markdown(g)
    assert "coding 1.90x (met)" in text and "exact retrieval 2.00x (met)" in text
    assert "highest over lowest x1.50 (goal within 10%: **not met**)" in text
    slow = {**BENCH, "scaling": {"1": {"coding_rows_per_s": 1000.0, "retrieval_rows_per_s": 1000.0},
                                 "2": {"coding_rows_per_s": 1790.0, "retrieval_rows_per_s": 1800.0}}}
    assert "coding 1.79x (**not met**)" in goals_markdown(goals(slow))
    assert "exact retrieval 1.80x (met)" in goals_markdown(goals(slow))


def test_memory_goal_is_the_spread_over_every_row_count():
    """A peak in the middle counts too; row counts are read as numbers ('10000000' < '2000000' as text)."""
    bench = {**BENCH, "memory": {"10000000": {"peak_rss_per_worker_bytes": [110, 90]},
                                 "2000000": {"peak_rss_per_worker_bytes": [100]},
                                 "4000000": {"peak_rss_per_worker_bytes": [80, 130]}}}
    g = goals(bench)
    assert g["memory_rows"] == (2_000_000, 10_000_000) and g["memory_growth"] == pytest.approx(1.3)
    assert "over 2 to 10 million rows, highest over lowest x1.30 (goal within 10%: **not met**)" in goals_markdown(g)


def test_goals_prefer_the_benchmarks_paired_ratios():
    paired = {**BENCH, "speedup_2_workers": {"coding": 1.85, "retrieval": 1.7}}
    assert goals(paired)["speedup_2_workers"] == {"coding": 1.85, "retrieval": 1.7}
    assert "exact retrieval 1.70x (**not met**)" in goals_markdown(goals(paired))


def test_short_coding_times_are_printed_in_minutes():
    fast = {**BENCH, "scaling": {"2": {"coding_rows_per_s": 2e5, "retrieval_rows_per_s": 2e5}}}
    e = estimate(fast, n_rows=400e6, workers=64)
    assert "| coding on 64 workers | 1.0 min |" in markdown(e)        # 400e6 / (1e5 * 64) s = 62.5 s
    assert "| coding on 4 workers | 29.2 h |" in markdown(estimate(BENCH, n_rows=400e6, workers=4))   # 950 rows/s a worker
