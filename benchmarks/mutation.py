"""Mutation score of the library's core, written to ``results/benchmarks/mutation.json``.

Run by ``make mutation`` (not in CI time: minutes per module). mutmut, configured in
``pyproject.toml`` (``[tool.mutmut]``: every module of ``src/slics/core/``, and the unit tests
that run against them), makes single small changes ("mutants") of the code and reruns the
tests that reach each changed function; a mutant that no test notices "survived" and shows
behaviour that no test pins down. mutmut leaves decorated functions alone, so the numba
kernels (``@njit``) get their mutants from ``benchmarks/mutation_kernels.py`` instead.

Usage::

    python benchmarks/mutation.py                         # every module of the config
    python benchmarks/mutation.py slics.core.retrieval    # some modules only
    python benchmarks/mutation.py --recheck --with=tests/test_mutants_core.py slics.core.splice
        # the survivors of the last run again, against the tests written for them

The JSON holds, per module checked, the count of each outcome, the score
``killed / (killed + survived + no tests + suspicious)`` (timeouts count as killed, as in
mutmut), the surviving mutants' names (``mutmut show NAME`` prints one) and the equivalent
mutants (``EQUIVALENT`` in ``mutation_equivalent.py``: each with the reason no test can kill it;
not counted), with the score counting them as survivors beside it.
Modules are merged into the existing file, so one module can be rerun alone.
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

from mutation_equivalent import EQUIVALENT      # benchmarks/, the script's folder, is on sys.path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "mutation.json"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
COUNTED = KILLED | {"survived", "no tests", "suspicious"}


def fork_safe_env(only_changes: bool = False) -> dict:
    """The environment of the mutant runs. mutmut forks one child per mutant from a warmed-up test
    process, and GNU OpenMP does not survive a fork once its threads exist: numba's default OpenMP
    layer kills the child (SIGTERM, which mutmut records as "suspicious"), and scikit-learn's
    OpenMP k-means (slics.core.pq's codebooks) leaves it waiting on a lock forever, which mutmut
    records as a timeout, that is, as killed; so does dask's threaded scheduler, whose pool the
    parent created (a mutant computing a dask array in memory hung for minutes). So numba takes
    its workqueue layer, OpenMP one thread (no thread pool to inherit) and dask its synchronous
    scheduler; the tests' results do not depend on either."""
    changes = {"NUMBA_THREADING_LAYER": os.environ.get("NUMBA_THREADING_LAYER", "workqueue"), "OMP_NUM_THREADS": "1",
               "DASK_SCHEDULER": "synchronous"}
    return changes if only_changes else {**os.environ, **changes}


def module_outcomes(module: str) -> Counter:
    """Outcome -> number of mutants of one module, and the names of the survivors and of the mutants
    no test reached, from mutmut's records."""
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / "src" / (module.replace(".", "/") + ".py.meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    outcomes = Counter(status_by_exit_code[c] for c in codes.values())
    survivors = sorted(k for k, c in codes.items() if status_by_exit_code[c] in ("survived", "no tests"))
    return outcomes, survivors


def score(outcomes: Counter) -> float | None:
    counted = sum(n for o, n in outcomes.items() if o in COUNTED)
    return sum(n for o, n in outcomes.items() if o in KILLED) / counted if counted else None


def strict_score(outcomes: Counter) -> float | None:
    """The score as if no mutant were equivalent (the listed ones counted as survivors)."""
    return score(outcomes - Counter({"equivalent": outcomes["equivalent"]}) + Counter({"survived": outcomes["equivalent"]}))


def write_record(record: dict) -> None:
    """Write ``record`` to ``OUT`` atomically (shared with ``mutation_kernels.py``)."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(OUT)


_RECHECK_RUNNER = """
import json, os, sys
import pytest
names, files = json.loads(sys.argv[1]), json.loads(sys.argv[2])
codes = {}
for name in [""] + names:                # "" first: the unmutated sources must pass
    os.environ["MUTANT_UNDER_TEST"] = name
    codes[name] = int(pytest.main([*files, "-x", "-q", "-p", "no:cacheprovider", "--no-header", "-p", "no:warnings"]))
    if name == "" and codes[name]:
        break
print("RECHECK " + json.dumps(codes))
"""


def _recheck(modules: list[str], extra_tests: list[str]) -> None:
    """Run the surviving mutants of ``modules`` again against ``extra_tests`` (tests written for the
    survivors), in the mutants tree of the last run, and record those they kill in mutmut's
    records (mutmut itself keeps a survivor's result while its function is unchanged). One
    process runs them all: mutmut's trampolines read the mutant's name at every call."""
    mutants = ROOT / "mutants"
    shutil.copytree(ROOT / "tests", mutants / "tests", dirs_exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(mutants / "src"), os.environ.get("PYTHONPATH", "")]),
           **fork_safe_env(only_changes=True)}
    survivors = {module: module_outcomes(module)[1] for module in modules}
    names = [n for group in survivors.values() for n in group]
    run = subprocess.run([sys.executable, "-c", _RECHECK_RUNNER, json.dumps(names), json.dumps(extra_tests)],
                         cwd=mutants, env=env, capture_output=True, text=True)
    line = next((l for l in run.stdout.splitlines() if l.startswith("RECHECK ")), None)
    if line is None:
        raise SystemExit(f"the recheck did not finish:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    codes = json.loads(line[len("RECHECK "):])
    if codes.pop(""):                    # a test that fails unmutated would "kill" every mutant
        raise SystemExit(f"{extra_tests} fail on the unmutated sources of the last run:\n{run.stdout[-3000:]}")
    for module in modules:
        meta_path = mutants / "src" / (module.replace(".", "/") + ".py.meta")
        meta = json.loads(meta_path.read_text())
        for name in survivors[module]:
            if codes.get(name) == 1:
                meta["exit_code_by_key"][name] = 1
            print(f"{name}: {'killed' if codes.get(name) == 1 else 'survived'}")
        meta_path.write_text(json.dumps(meta))


def main(argv: list[str]) -> int:
    unknown = [a for a in argv if a.startswith("-") and a != "--recheck" and not a.startswith("--with=")]
    if unknown:        # a whole run deletes the last run's mutants: never start one on a mistyped flag
        print(__doc__.split("Usage::")[1].split("The JSON")[0].rstrip(), file=sys.stderr)
        print(f"\nunknown option(s) {' '.join(unknown)}: the options are --recheck and --with=TESTS.", file=sys.stderr)
        return 2
    recheck = "--recheck" in argv
    extra_tests = [a.split("=", 1)[1] for a in argv if a.startswith("--with=")]
    modules = [a for a in argv if not a.startswith("--")] or None
    globs = [f"{m}.*" for m in modules] if modules else []
    start = time.perf_counter()
    if recheck:
        if not modules:
            print("--recheck needs the modules to recheck.", file=sys.stderr)
            return 2
        _recheck(modules, extra_tests)
    else:
        # mutmut keeps a mutant's result while its function is unchanged, even after the tests change
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        run = subprocess.run([sys.executable, "-m", "mutmut", "run", *globs], cwd=ROOT, env=fork_safe_env())
        if run.returncode:
            print(f"mutmut run failed (exit {run.returncode}); nothing recorded.", file=sys.stderr)
            return 2
    seconds = time.perf_counter() - start
    if modules is None:
        modules = sorted(".".join(p.relative_to(ROOT / "mutants" / "src").with_suffix("").with_suffix("").parts)
                         for p in (ROOT / "mutants" / "src").rglob("*.py.meta"))
    record = json.loads(OUT.read_text()) if OUT.exists() else {"modules": {}}
    for module in modules:
        outcomes, survivors = module_outcomes(module)
        equivalent = {name: EQUIVALENT[name] for name in survivors if name in EQUIVALENT}
        outcomes["survived"] -= len(equivalent)           # equivalent mutants are not counted
        outcomes = +outcomes
        if equivalent:
            outcomes["equivalent"] = len(equivalent)
        strict = strict_score(outcomes)
        work_only = sum(reason.startswith("work only") for reason in equivalent.values())
        entry = {"outcomes": dict(sorted(outcomes.items())), "score": score(outcomes),
                 "score_counting_equivalent_as_survived": strict, "equivalent_work_only": work_only,
                 "survivors": [n for n in survivors if n not in equivalent], "equivalent": equivalent,
                 "seconds": round(seconds, 1)}
        if recheck:
            entry["rechecked_with"] = extra_tests
        record["modules"][module] = entry
        print(f"{module}: score {score(outcomes):.3f} ({strict:.3f} counting the equivalent ones)  {dict(outcomes)}")
    total = sum((Counter(m["outcomes"]) for m in record["modules"].values()), Counter())
    record["total"] = {"outcomes": dict(sorted(total.items())), "score": score(total),
                       "score_counting_equivalent_as_survived": strict_score(total)}
    from importlib.metadata import version

    record["tool"] = f"mutmut {version('mutmut')}"
    write_record(record)
    print(f"total score {record['total']['score']:.3f} -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
