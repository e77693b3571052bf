"""The benchmark page is the one ``benchmarks/summary.py`` writes from the committed JSON."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _summary():
    spec = importlib.util.spec_from_file_location("bench_summary", ROOT / "benchmarks" / "summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_page_matches_the_committed_benchmarks(tmp_path):
    page = tmp_path / "benchmarks.md"
    _summary().main(page)
    assert page.read_text() == (ROOT / "docs" / "benchmarks.md").read_text(), (
        "docs/benchmarks.md is stale: run `python benchmarks/summary.py`")


def test_page_states_each_goal_from_the_json():
    summary = _summary()
    bench = ROOT / "results" / "benchmarks"
    solvers = json.loads((bench / "solvers.json").read_text())
    slics = json.loads((bench / "slics.json").read_text())
    text = summary.page(solvers, slics)
    assert text.startswith("# Benchmarks\n")
    speedup = solvers["nnls"]["planted"]["speedup"]
    assert f"{speedup:.1f}x a scipy loop" in text
    slow = json.loads(json.dumps(solvers))
    slow["nnls"]["planted"]["speedup"] = summary.NNLS_GOAL / 2  # a goal that fails says so
    assert "**not met**" in summary.page(slow, slics)


def test_readme_links_the_page_and_holds_no_benchmark_table():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/benchmarks.md)" in readme
    assert "| problem | solver |" not in readme


def test_grid_section_checks_the_issue_19_goals_on_every_cell():
    """The grid table of ``benchmarks/bench_grid.py``: one row per cell; a goal missed in one cell
    (auto 20 % over the faster own method) is reported as not met."""
    summary = _summary()

    def cell(auto_over_own, speedup, gap):
        solvers = {"slics_auto": {"seconds": 1.0, "method_used": "cd", "relative_objective_gap": gap},
                   "slics_cd": {"seconds": 1.0}, "slics_fista+cd": {"seconds": None, "stopped_after": 3.0},
                   "sparse_encode_lasso_cd": {"seconds": speedup, "relative_objective_gap": 1e-8}}
        return {"d": 384, "m": 1000, "dictionary": "coherent", "lam_fraction": 0.2, "sign": "signed",
                "dtype": "float32", "mean_nnz_per_row": 25.0, "solvers": solvers, "rows": 10,
                "auto_over_fastest_own": auto_over_own, "speedup_over_sparse_encode": speedup,
                "speedup_over_best_peer": speedup}
    grid = {"command": "python benchmarks/bench_grid.py --rows 10", "rows_per_cell": 10, "seed": 11, "tol": 1e-6,
            "load_average_before_after": [[0.5, 0.5, 0.5], [0.6, 0.6, 0.6]], "cells": [cell(1.02, 5.0, 1e-12)]}
    text = summary.grid_section(grid)
    assert text.count("| 384 | 1,000 | coherent |") == 1 and "**not met**" not in text
    assert "1,000 atoms" in text and "stopped" not in text
    grid["cells"].append(cell(1.2, 5.0, 1e-12))
    assert "worst 1.20: **not met**" in summary.grid_section(grid)
    grid.update(complete=False, cells_planned=96)      # a run stopped early says so
    text = summary.grid_section(grid)
    assert "**stopped after 2 of its 96 cells**" in text and "(only the 2 measured cells)" in text
    assert "at commit" not in text                     # no commit recorded: said so
    grid["commit"] = "abc1234"
    assert " at commit abc1234:" in summary.grid_section(grid)
    grid["cells"][1]["commit"] = "def5678"             # a resumed grid names each commit with its cells
    assert "(resumed) at commits abc1234 (1 cell), def5678 (1 cell)" in summary.grid_section(grid)
    assert "fastest of" not in summary.grid_section(grid)
    grid.update(calls_per_solver=2, lars=False)        # the settings of the 10,000-atom half are stated
    text = summary.grid_section(grid)
    assert "the fastest of at least 2 calls" in text and "`--no-lars`" in text
    assert "take turns" not in text.split("auto / own:")[0]
    grid["timing"] = "rotated rounds"                  # the solvers' calls in rotating order: stated
    assert "in rounds in which the solvers take turns" in summary.grid_section(grid)
    assert "after the same one in every round" in summary.grid_section(grid)
    grid["timing"] = "alternating rounds"              # forward and backward: stated as such
    assert "take turns, forward and backward" in summary.grid_section(grid)
    assert "coherent dictionaries" in text
    grid["cells"][1]["dictionary"] = "lowrank"         # the heading names every dictionary of the grid
    assert "1,000 atoms, coherent and lowrank dictionaries" in summary.grid_section(grid)
    grid["cells"].append({**grid["cells"][0], "dictionary": "clustered"})
    assert "1,000 atoms, coherent, lowrank and clustered dictionaries" in summary.grid_section(grid)


def test_pipeline_profile_shares_and_its_goal():
    """profile_pipeline.profile ranks stages and cells by time with shares of the total, and the
    page states the demo repro goal from the same numbers."""
    spec = importlib.util.spec_from_file_location("profile_pipeline", ROOT / "benchmarks" / "profile_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    timings = [{"stage": "02_ista_clip", "seconds": 150.0,
                "cells": [{"cell": 0, "line": "params = {}", "seconds": 0.01},
                          {"cell": 4, "line": "sweep = run_sweep(params)", "seconds": 120.0},
                          {"cell": 5, "line": "# a markdown-free cell | with a pipe", "seconds": 20.0}]}]
    record = module.profile({"fetch": 50.0, "02_ista_clip": 150.0}, timings, top=2)
    assert record["total_seconds"] == 200.0
    assert [s["stage"] for s in record["stages"]] == ["02_ista_clip", "fetch"]
    assert record["stages"][0]["share"] == 0.75 and record["stages"][0]["in_cells"] == 140.01
    assert record["stages"][1]["in_cells"] is None
    assert [c["cell"] for c in record["slowest_cells"]] == [4, 5] and record["slowest_cells"][0]["share"] == 0.6
    record.update(commit="abc1234", matmul_gflops={"float32": 250.0, "float64": 120.0}, results_changed=[],
                  machine={"load_average_at_start": [0.1, 0.1, 0.1]}, complete=True)
    text = _summary().pipeline_section(record)
    assert "| 02_ista_clip | 150.0 | 75.0 % | 140.0 |" in text
    assert "with a pipe" in text and "\\| with a pipe" in text
    assert "3.3 min: met" in text
    record["total_seconds"] = 400.0
    assert "6.7 min: **not met**" in _summary().pipeline_section(record)
    assert "CPU:" not in text          # no CPU seconds recorded: no floor stated
    with_cpu = module.profile({"fetch": 50.0, "02_ista_clip": 150.0}, timings, top=2,
                              cpu={"fetch": 25.0, "02_ista_clip": 285.0})
    assert [s["cpu_seconds"] for s in with_cpu["stages"]] == [285.0, 25.0]
    record.update(stages=with_cpu["stages"], machine={"load_average_at_start": [0.1], "cpu_count": 2})
    text = _summary().pipeline_section(record)
    assert "| 02_ista_clip | 150.0 | 75.0 % | 140.0 | 1.90 |" in text and "| fetch | 50.0 | 25.0 % |  | 0.50 |" in text
    assert "busy 310 s of CPU time in the 400 s (0.78 of its 2 cores" in text and "under 2.6 min" in text
    ista = {"float32": {"ista_report_settings": {"gflops": 200.0, "n_iter": 200}, "matmul_gflops_same_shape": 240.0}}
    assert "200 GFLOP/s, 83 % of a float32 matmul of the same shape (240 GFLOP/s; goal 80 %): met" in \
        _summary().pipeline_section(record, ista=ista)
    ista["float32"]["ista_report_settings"]["gflops"] = 190.0
    assert "79 % of a float32 matmul" in _summary().pipeline_section(record, ista=ista)
    assert "(240 GFLOP/s; goal 80 %): **not met**" in _summary().pipeline_section(record, ista=ista)


def test_test_command_profile_finds_steps_parts_and_files(tmp_path):
    """profile_tests splits the timed output of `make test` at the commands make echoes, reads the
    parts the inputs and the rehearsal report, and sums the JUnit times per file and notebook."""
    spec = importlib.util.spec_from_file_location("profile_tests", ROOT / "benchmarks" / "profile_tests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = [(0.5, "test -x .venv/bin/python || python3 -m venv .venv"),
             (90.0, "python -m slics.utils.pipeline inputs"),
             (95.0, "[05:17:57] inputs 2/4: embed_cifar10 (python -m slics.embedding.embed cifar10)"),
             (150.0, "[05:18:57] inputs 2/4: embed_cifar10 done in 55 s"),
             (160.0, "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 python -m pytest "
                     "--nbval -p no:cacheprovider --rehearse-full -n auto --maxprocesses 4"),
             (699.0, "=========== 512 passed, 2 skipped in 537.61s (0:08:57) ==========="),
             (700.0, "")]
    steps = module.steps(lines)
    junit = tmp_path / "junit.xml"     # the rehearsal's report: its test's output, in the JUnit report
    junit.write_text('<testsuites><testsuite><testcase classname="tests.test_rehearsal" '
                     'name="test_full_profile_rehearsal_runs_every_stage" time="260"><system-out>'
                     'random weights: clip-vit-b32, clip-rn50 in /tmp/x/hub (9 s)\n'
                     '[8/13] 03_slics_clip: python -m slics.utils.notebooks 03_slics_clip\n'
                     '    ok in 59 s, 31 expected output(s) present\n'
                     'rehearsal of the full profile passed: 13 stage(s), 80 expected outputs, in 258 s\n'
                     '</system-out></testcase></testsuite></testsuites>')
    report = module.rehearsal_report(junit)
    assert report[-1].startswith("rehearsal of the full profile passed") and len(report) == 4
    lines = lines[:-1] + [(700.0, text) for text in report]
    assert [s["seconds"] for s in steps] == [90.0, 70.0, 540.0]
    assert steps[2]["step"].startswith(module.BESIDE)
    parts = module.substeps(lines)
    assert parts["inputs"] == [{"name": "embed_cifar10", "seconds": 55}]
    assert parts["rehearsal"] == [{"name": "random weights", "seconds": 9}, {"name": "stage 03_slics_clip", "seconds": 59}]
    assert parts[module.BESIDE] == [{"name": "pytest", "seconds": 537.6}, {"name": "rehearsal", "seconds": 258.0}]
    junit.write_text('<testsuites><testsuite>'
                     '<testcase classname="tests.test_pq" name="a" time="1.5"/>'
                     '<testcase classname="tests.test_pq" name="b" time="2.0"/>'
                     '<testcase classname="results.notebooks.02_ista_clip.ipynb" name="Cell 9" time="120"/>'
                     '<testcase classname="results.notebooks.02_ista_clip.ipynb" name="Cell 25" time="30"/>'
                     '</testsuite></testsuites>')
    files = module.pytest_files(junit)
    assert files == [{"file": "results/notebooks/02_ista_clip.ipynb", "seconds": 150.0, "tests": 2},
                     {"file": "tests/test_pq.py", "seconds": 3.5, "tests": 2}]
    record = {"commit": "abc1234", "machine": {"load_average_at_start": [0.2]}, "command": ".ci/run (make test)",
              "total_seconds": 700.0, "steps": steps, "substeps": parts, "pytest_files": files,
              "tracked_files_changed": []}
    text = _summary().tests_section(record)
    beside = f"| {steps[2]['step']} | | 540 | 77.1 % |"
    assert beside in text
    assert "| | rehearsal | 258 | 36.9 % |" in text and "| | pytest | 538 | 76.8 % |" in text   # each by its own clock
    assert "| | rehearsal: stage 03_slics_clip | 59 | 8.4 % |" in text
    assert "| | pytest: results/notebooks/02_ista_clip.ipynb | 150 |" in text
    assert "notebooks that nbval re-executes take 150 s, the 1 test files 4 s, the rehearsal of the full profile 258 s of them" in text
    assert "11.7 min: **not met**" in text
    record["total_seconds"] = 590.0
    assert "9.8 min: met" in _summary().tests_section(record)
    # the machine's busy CPU seconds, sampled at the lines: each step's share of the cores, and the floor
    busy = [(0.0, 1000.0), (90.0, 1080.0), (160.0, 1200.0), (400.0, 1600.0), (700.0, 2200.0)]
    timed = module.steps(lines, busy)
    assert [s["cpu_seconds"] for s in timed] == [80.0, 120.0, 1000.0]
    record.update(total_seconds=700.0, steps=timed, machine={"load_average_at_start": [0.2], "cpu_count": 2})
    text = _summary().tests_section(record)
    assert f"{beside} 1.85 |" in text
    assert "busy 1200 s of CPU time in the 700 s (1.71 of its 2 cores" in text
    assert "cannot end in under 10.0 min" in text
    assert module.busy_seconds() is None or module.busy_seconds() > 0


def test_ista_sparse_section_lists_every_shape_and_lambda():
    """The sparse-product table: one row per shape and dtype with its threshold and every ratio,
    one row per lambda of the ISTA runs."""
    shape = lambda m, d, dtype, ratios: {"m": m, "d": d, "dtype": dtype, "threshold_nnz_per_row": 47.9,  # noqa: E731
                                         "products": [{"nnz_per_row": k, "dense_over_sparse": r}
                                                      for k, r in zip((0, 16, 128), ratios)]}
    record = {"commit": "abc1234", "rows": 10_000, "sparse_cost": 16,
              "shapes": [shape(1003, 384, "float32", (5.0, 2.5, 0.9)), shape(1010, 512, "float64", (8.0, 4.0, 1.25))],
              "ista": [{"lam": 0.2, "mean_nnz_per_row": 15.04, "dense_only_seconds": 24.0, "adaptive_seconds": 15.0,
                        "speedup": 1.6, "max_abs_code_difference": 2.4e-7}]}
    text = _summary().ista_sparse_section(record)
    assert "at commit abc1234" in text and "10,000 rows" in text and "1/16 " in text
    assert "| 1003 | 384 | float32 | 48 | 5.00x | 2.50x | 0.90x |" in text
    assert "| 1010 | 512 | float64 | 48 | 8.00x | 4.00x | 1.25x |" in text
    assert "| 0.2 | 15.0 | 24.00 | 15.00 | 1.60x | 2.4e-07 |" in text


def test_grid_rounds_give_every_solver_another_predecessor(monkeypatch):
    """``bench_grid.alternating``: a call can pay for the state the call before it left, so across rounds
    each solver follows more than one other (or itself), and each keeps its fastest call."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_grid

    order, times = [], iter([5.0, 4.0, 3.0, 1.0, 2.0, 6.0, 0.5, 7.0, 8.0])
    clock = [0.0]

    def timed(name):
        def call():
            order.append(name)
            clock[0] += next(times)
            return name
        return call

    monkeypatch.setattr(bench_grid.time, "perf_counter", lambda: clock[0])
    seconds, out = bench_grid.alternating({n: timed(n) for n in ("auto", "cd", "peer")}, 3)
    assert order == ["auto", "cd", "peer", "peer", "cd", "auto", "auto", "cd", "peer"]
    before = {n: {order[i - 1] for i in range(1, len(order)) if order[i] == n} for n in ("auto", "cd", "peer")}
    assert all(len(p) >= 2 for p in before.values()), before
    assert seconds == {"auto": 0.5, "cd": 2.0, "peer": 1.0} and out == {"auto": "auto", "cd": "cd", "peer": "peer"}
