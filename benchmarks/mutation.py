"""Mutation score of the library's core, written to ``results/benchmarks/mutation.json``.

Run by ``make mutation`` (not in CI time: minutes per module). mutmut, configured in
``pyproject.toml`` (``[tool.mutmut]``: the modules of ``src/slics/core/`` except the
numba-compiled ones, and the unit tests that run against them), makes single small changes
("mutants") of the code and reruns the tests that reach each changed function; a mutant that
no test notices "survived" and shows behaviour that no test pins down.

Usage::

    python benchmarks/mutation.py                         # every module of the config
    python benchmarks/mutation.py slics.core.retrieval    # some modules only

The JSON holds, per module checked, the count of each outcome, the score
``killed / (killed + survived + no tests + suspicious)`` (timeouts count as killed, as in
mutmut) and the surviving mutants' names (``mutmut show NAME`` prints one). Modules are
merged into the existing file, so one module can be rerun alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "mutation.json"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
COUNTED = KILLED | {"survived", "no tests", "suspicious"}


def module_outcomes(module: str) -> Counter:
    """Outcome -> number of mutants of one module, and the survivors' names, from mutmut's records."""
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / "src" / (module.replace(".", "/") + ".py.meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    outcomes = Counter(status_by_exit_code[c] for c in codes.values())
    survivors = sorted(k for k, c in codes.items() if status_by_exit_code[c] == "survived")
    return outcomes, survivors


def score(outcomes: Counter) -> float | None:
    counted = sum(n for o, n in outcomes.items() if o in COUNTED)
    return sum(n for o, n in outcomes.items() if o in KILLED) / counted if counted else None


def main(argv: list[str]) -> int:
    modules = argv or None
    globs = [f"{m}.*" for m in modules] if modules else []
    # mutmut keeps a mutant's result while its function is unchanged, even after the tests change
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    start = time.perf_counter()
    # mutmut forks one child per mutant from a warmed-up test process; numba's default OpenMP
    # layer kills a forked child (SIGTERM, "fork() called from a process already using GNU
    # OpenMP"), which mutmut would record as "suspicious". The workqueue layer survives a fork.
    env = {**os.environ, "NUMBA_THREADING_LAYER": os.environ.get("NUMBA_THREADING_LAYER", "workqueue")}
    run = subprocess.run([sys.executable, "-m", "mutmut", "run", *globs], cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    if run.returncode:
        print(f"mutmut run failed (exit {run.returncode}); nothing recorded.", file=sys.stderr)
        return 2
    if modules is None:
        modules = sorted(".".join(p.relative_to(ROOT / "mutants" / "src").with_suffix("").with_suffix("").parts)
                         for p in (ROOT / "mutants" / "src").rglob("*.py.meta"))
    record = json.loads(OUT.read_text()) if OUT.exists() else {"modules": {}}
    for module in modules:
        outcomes, survivors = module_outcomes(module)
        record["modules"][module] = {"outcomes": dict(sorted(outcomes.items())), "score": score(outcomes),
                                     "survivors": survivors, "seconds": round(seconds, 1)}
        print(f"{module}: score {score(outcomes):.3f}  {dict(outcomes)}")
    total = sum((Counter(m["outcomes"]) for m in record["modules"].values()), Counter())
    record["total"] = {"outcomes": dict(sorted(total.items())), "score": score(total)}
    from importlib.metadata import version

    record["tool"] = f"mutmut {version('mutmut')}"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(OUT)
    print(f"total score {record['total']['score']:.3f} -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
