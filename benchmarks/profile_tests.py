"""Where the test command spends its time: a per-step table of ``make test`` on a fresh clone.

Run ``.venv/bin/python benchmarks/profile_tests.py`` on a quiet machine (about as long as the test
command). It clones the committed project (``HEAD``) into a scratch folder and runs CI's own command
there (``.ci/run``, the README's test command: a fresh ``.venv``, the pipeline's inputs, the browser
check, then one pytest on one worker per core: the rehearsal of the full profile, nbval and the unit
tests), timing every line it prints. pytest also writes a JUnit report (through ``PYTEST_ADDOPTS``),
which gives the seconds of every test file and of every notebook that nbval re-executes, and the
rehearsal's own report of its stages (its test's output). Writes ``results/benchmarks/tests.json``
(``--out`` to change) and prints the table that ``benchmarks/summary.py`` puts on
``docs/benchmarks.md``.

The steps are found by the commands ``make`` echoes (see ``STEPS``); the inputs' and the
rehearsal's sub-steps by the lines those commands print about themselves. On Linux each step also
gets the CPU seconds the whole machine spent busy in it (``/proc/stat``): divided by the cores, a
floor under the step's time that no parallel schedule of the same work can beat. Timings are not
reproducible bytes; the JSON records the machine.
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
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ista import busy_seconds, head_commit, machine_info  # noqa: E402  (one machine record for every benchmark)
from profile_pipeline import SCRUBBED as PIPELINE_SCRUBBED  # noqa: E402  (the project's own variables)
from summary import BESIDE, tests_section  # noqa: E402  (the page's table and its step name, written once)

OUT = ROOT / "results" / "benchmarks" / "tests.json"
# (step, the echoed command that starts it); the first step starts with the run
STEPS = [("setup: .venv and the package", None),
         ("inputs: the stages' inputs, and the browser check", re.compile(r"^python -m slics\.utils\.pipeline inputs")),
         (f"{BESIDE}: pytest on one worker per core (the rehearsal of the full profile, nbval, the unit tests)",
          re.compile(r"python -m pytest .*--rehearse-full"))]
SUBSTEP = {  # sub-steps a command reports itself: (pattern, name group, seconds group)
    "inputs": re.compile(r"inputs \d+/\d+: (\S+) (?:\(.*\) )?done in (\d+) s"),
    "rehearsal": re.compile(r"^(fixtures|random weights): .* \((\d+) s\)$"),
}
# the rehearsal (a test among the others) and the whole of pytest, each by its own clock
BESIDE_PARTS = {"rehearsal": re.compile(r"^rehearsal of the full profile passed: .* in (\d+) s"),
                "pytest": re.compile(r"^=+ .*\b(?:passed|failed)\b.* in ([\d.]+)s")}
STAGE_LINE = re.compile(r"^\[\d+/\d+\] (\S+): ")
STAGE_OK = re.compile(r"^\s+ok in (\d+) s")
SCRUBBED = PIPELINE_SCRUBBED + ("VIRTUAL_ENV", "PYTEST_ADDOPTS")   # and this checkout's venv and pytest options


def run_timed(cmd: list[str], cwd: Path, env: dict, log_path: Path):
    """Run ``cmd``, keep every output line with the seconds since the start.

    Returns (exit status, lines, busy): ``busy`` holds ``(seconds, busy_seconds())`` at the start
    and at every line (empty off Linux), so that a step's CPU time is the difference at its ends.
    """
    start = time.perf_counter()
    lines, busy = [], []

    def sample(t):
        b = busy_seconds()
        if b is not None:
            busy.append((t, b))

    sample(0.0)
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", bufsize=1) as proc, open(log_path, "w") as log:
        for line in proc.stdout:
            t = time.perf_counter() - start
            for part in line.rstrip("\n").split("\r"):      # progress bars redraw with \r
                lines.append((t, part))
            sample(t)
            log.write(line)
        status = proc.wait()
    t = time.perf_counter() - start
    lines.append((t, ""))
    sample(t)
    return status, lines, busy


def _busy_at(busy: list[tuple[float, float]], t: float) -> float:
    """The machine's busy CPU seconds at the first sample at or after ``t`` (or the last)."""
    return next((b for s, b in busy if s >= t), busy[-1][1])


def steps(lines: list[tuple[float, str]], busy: list[tuple[float, float]] | None = None) -> list[dict]:
    """The seconds of each of ``STEPS``, from the first line of one to the first line of the next;
    with ``busy`` (from :func:`run_timed`), also the CPU seconds the machine spent in each."""
    starts = [(STEPS[0][0], 0.0)]
    for name, pattern in STEPS[1:]:
        hit = next((t for t, text in lines if pattern.search(text)), None)
        if hit is not None:
            starts.append((name, hit))
    end = lines[-1][0]
    out = []
    for i, (name, t) in enumerate(starts):
        stop = starts[i + 1][1] if i + 1 < len(starts) else end
        step = {"step": name, "seconds": round(stop - t, 1)}
        if busy:
            step["cpu_seconds"] = round(_busy_at(busy, stop) - _busy_at(busy, t), 1)
        out.append(step)
    return out


def substeps(lines: list[tuple[float, str]]) -> dict[str, list[dict]]:
    """The inputs' and the rehearsal's own reports of their parts (seconds as they print them), and
    the time of each of the two commands that run side by side (``BESIDE``), by its own clock."""
    out = defaultdict(list)
    stage = None
    for _, text in lines:
        for name, pattern in BESIDE_PARTS.items():
            m = pattern.search(text)
            if m:
                out[BESIDE].append({"name": name, "seconds": round(float(m.group(1)), 1)})
        for kind, pattern in SUBSTEP.items():
            m = pattern.search(text)
            if m:
                out[kind].append({"name": m.group(1), "seconds": int(m.group(2))})
        m = STAGE_LINE.match(text)
        if m:
            stage = m.group(1)
        m = STAGE_OK.match(text)
        if m and stage:
            out["rehearsal"].append({"name": f"stage {stage}", "seconds": int(m.group(1))})
            stage = None
    return dict(out)


def pytest_files(junit: Path) -> list[dict]:
    """Seconds per test file and per re-executed notebook (setup and teardown included), slowest first."""
    seconds, counts = defaultdict(float), defaultdict(int)
    for case in ET.parse(junit).iter("testcase"):
        cls = case.get("classname", "")
        name = (cls[:cls.index(".ipynb")].replace(".", "/", 2) + ".ipynb" if ".ipynb" in cls
                else "/".join(cls.split(".")[:2]) + ".py")
        seconds[name] += float(case.get("time", 0))
        counts[name] += 1
    return [{"file": f, "seconds": round(s, 1), "tests": counts[f]} for f, s in sorted(seconds.items(), key=lambda kv: -kv[1])]


def rehearsal_report(junit: Path) -> list[str]:
    """The lines the rehearsal's test printed (its stages and their seconds), from the JUnit report."""
    for case in ET.parse(junit).iter("testcase"):
        if case.get("name") == "test_full_profile_rehearsal_runs_every_stage":
            out = case.find("system-out")
            return (out.text or "").splitlines() if out is not None else []
    return []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"output JSON (default {OUT.relative_to(ROOT)})")
    ap.add_argument("--keep", type=Path, default=None, help="also copy the run's full log here")
    args = ap.parse_args(argv)
    info = machine_info()
    commit = head_commit(mark_changes=False)      # the run clones HEAD: its commit is what is measured
    with tempfile.TemporaryDirectory(prefix="slics-profile-tests-") as scratch:
        project = Path(scratch) / "main"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
        if (ROOT.parent / "shared").is_dir():       # .ci/run looks for the data mirror beside the clone
            os.symlink(ROOT.parent / "shared", Path(scratch) / "shared")
        junit = Path(scratch) / "junit.xml"
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if not p.startswith(str(ROOT)))      # not this checkout's .venv
        env.update(CI="true", PYTEST_ADDOPTS=f"--junitxml={junit} -o junit_logging=system-out")
        log = Path(scratch) / "test-command.log"
        status, lines, busy = run_timed(["bash", ".ci/run"], project, env, log)
        if args.keep:
            args.keep.write_text(log.read_text(errors="replace"))
        if status:
            print("\n".join(text for _, text in lines[-40:]), file=sys.stderr)
            print(f"error: the test command failed (exit {status}); nothing written.", file=sys.stderr)
            return 1
        changed = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True,
                                 text=True, check=True).stdout.split("\n")
        record = {"commit": commit, "machine": info, "command": ".ci/run (make test)",
                  "total_seconds": round(lines[-1][0], 1), "steps": steps(lines, busy),
                  "substeps": substeps(lines + [(lines[-1][0], text) for text in rehearsal_report(junit)]),
                  "pytest_files": pytest_files(junit),
                  "tracked_files_changed": [line[3:] for line in changed if line.strip()]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(tests_section(record))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
