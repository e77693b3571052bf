"""Where the demo pipeline spends its time: a per-stage and per-cell table of ``dvc repro``.

Run ``.venv/bin/python benchmarks/profile_pipeline.py`` on a quiet machine (about as long as the
pipeline). It clones the committed project (``HEAD``) into a scratch folder and runs every stage
of ``dvc.yaml`` there, from scratch and in the pipeline's order, with
``dvc repro --force --single-item`` (so DVC's hashing of each stage counts), using this checkout's
environment and the clone's sources. The notebook stages append papermill's cell durations to
``$SLICS_TIMINGS`` (:func:`slics.utils.notebooks.record_timings`). Before the stages, the clone's
numba kernels are compiled into its own cache (``python -m slics.utils.jit``, timed apart), as
``make venv`` does before ``make reproduce`` runs ``dvc repro``: the stages load them, as they do
after the README's command, instead of compiling them inside whichever stage calls each first. Writes
``results/benchmarks/pipeline.json`` (``--out`` to change) and prints each stage's share of the
total and the slowest cells; ``benchmarks/summary.py`` puts the same table on ``docs/benchmarks.md``.

On Linux each stage also gets the CPU seconds the whole machine spent busy in it (``/proc/stat``):
how many cores the stage kept busy, and the floor that no schedule of the same work can beat.
The record also holds the machine's matmul rate (GFLOP/s of a 2048 x 2048 x 2048 product in float32
and float64), the limit of the steps that are dense linear algebra, and whether the rerun left the
clone's committed results byte for byte as they were (the profile changes no result).

Timings are not reproducible bytes; the JSON records the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ista import busy_seconds, head_commit, machine_info, matmul_gflops  # noqa: E402  (one machine record for every benchmark)
from summary import pipeline_section  # noqa: E402  (the page's table, written once)

OUT = ROOT / "results" / "benchmarks" / "pipeline.json"
SCRUBBED = ("SLICS_ROOT", "SLICS_RESULTS_DIR", "SLICS_DATA_DIR", "SLICS_TIMINGS")


def stage_order(project: Path, env: dict) -> list[str]:
    """The stages in the order ``dvc repro`` runs them (its dry run of a forced full repro)."""
    dry = subprocess.run(["dvc", "repro", "--dry", "--force"], cwd=project, env=env, capture_output=True,
                         text=True, check=True).stdout
    return re.findall(r"Running stage '([^']+)'", dry)


def precompile(env: dict, log=print) -> float:
    """Compile the clone's numba kernels into its cache, as installing does; returns the seconds."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "slics.utils.jit"], env=env, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"compiling the clone's numba kernels failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    seconds = round(time.perf_counter() - start, 1)
    log(f"numba kernels of the clone compiled in {seconds:.1f} s (installation, not counted in the stages)")
    return seconds


def run_stages(project: Path, env: dict, stages: list[str], log=print) -> tuple[dict[str, float], dict[str, float]]:
    """Run ``stages`` one by one; returns their seconds and the machine's busy CPU seconds in each
    (:func:`bench_ista.busy_seconds`; empty off Linux)."""
    seconds, cpu = {}, {}
    for index, stage in enumerate(stages, 1):
        start, busy = time.perf_counter(), busy_seconds()
        run = subprocess.run(["dvc", "repro", "--force", "--single-item", stage], cwd=project, env=env,
                             capture_output=True, text=True)
        seconds[stage] = round(time.perf_counter() - start, 2)
        if busy is not None:
            cpu[stage] = round(busy_seconds() - busy, 2)
        if run.returncode:
            raise RuntimeError(f"stage {stage} failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        log(f"[{index}/{len(stages)}] {stage}: {seconds[stage]:.1f} s")
    return seconds, cpu


def profile(stages: dict[str, float], timings: list[dict], top: int = 15, cpu: dict[str, float] | None = None) -> dict:
    """Stages by time (with ``cpu``, the CPU seconds of each), shares of the total, slowest cells."""
    total = sum(stages.values())
    cells = [{"stage": t["stage"], **c} for t in timings for c in t["cells"] if c["seconds"] is not None]
    cells.sort(key=lambda c: -c["seconds"])
    notebook = {t["stage"]: t["seconds"] for t in timings}
    return {
        "total_seconds": round(total, 1),
        "stages": [{"stage": s, "seconds": t, "share": round(t / total, 4),
                    "in_cells": round(sum(c["seconds"] for c in cells if c["stage"] == s), 2) if s in notebook else None,
                    **({"cpu_seconds": cpu[s]} if cpu and s in cpu else {})}
                   for s, t in sorted(stages.items(), key=lambda kv: -kv[1])],
        "slowest_cells": [{**c, "seconds": round(c["seconds"], 2), "share": round(c["seconds"] / total, 4)}
                          for c in cells[:top]],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"output JSON (default {OUT.relative_to(ROOT)})")
    ap.add_argument("--stages", nargs="*", help="profile only these stages (their inputs must exist: "
                                                "a smoke run, not a from-scratch profile)")
    args = ap.parse_args(argv)
    info = machine_info()
    rates = {name: round(matmul_gflops(2048, 2048, dtype), 1) for name, dtype in
             (("float32", np.float32), ("float64", np.float64))}
    commit = head_commit(mark_changes=False)      # the run clones HEAD: its commit is what is measured
    with tempfile.TemporaryDirectory(prefix="slics-profile-") as scratch:
        project = Path(scratch) / "project"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
        timings_file = Path(scratch) / "timings.jsonl"
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                   PYTHONPATH=str(project / "src"), SLICS_TIMINGS=str(timings_file), HF_HUB_OFFLINE="1")
        if not env.get("SLICS_DATA_MIRROR") and (ROOT.parent / "shared" / "data").is_dir():
            env["SLICS_DATA_MIRROR"] = str(ROOT.parent / "shared" / "data")
        jit_seconds = precompile(env)
        order = stage_order(project, env)
        if args.stages:
            unknown = sorted(set(args.stages) - set(order))
            if unknown:
                print(f"error: --stages {unknown} are not stages of dvc.yaml; its stages: {', '.join(order)}.",
                      file=sys.stderr)
                return 2
            order = [s for s in order if s in args.stages]
        seconds, cpu = run_stages(project, env, order)
        timings = [json.loads(line) for line in timings_file.read_text().splitlines()] if timings_file.exists() else []
        changed = subprocess.run(["git", "status", "--porcelain", "--", "results"], cwd=project,
                                 capture_output=True, text=True, check=True).stdout.split("\n")
    record = {"commit": commit, "machine": info, "matmul_gflops": rates, "complete": not args.stages,
              "jit_seconds": jit_seconds,
              **profile(seconds, timings, cpu=cpu),
              "results_changed": [line[3:] for line in changed if line.strip()]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(pipeline_section(record, top=len(record["slowest_cells"])))
    print(f"results changed by the rerun: {record['results_changed'] or 'none'}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
